package k8snode

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"errors"
	"io"
	"log"
	"math/big"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// testCA issues client certificates.
type testCA struct {
	cert *x509.Certificate
	key  *ecdsa.PrivateKey
}

func newCA(t *testing.T) testCA {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "test-ca"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	c, _ := x509.ParseCertificate(der)
	return testCA{c, key}
}

// issue returns a client certificate for cn and its key, in one PEM file like the kubelet's.
func (ca testCA) issue(t *testing.T, cn string) []byte {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(2), Subject: pkix.Name{CommonName: cn, Organization: []string{"system:nodes"}},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}, KeyUsage: x509.KeyUsageDigitalSignature}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.cert, &key.PublicKey, ca.key)
	if err != nil {
		t.Fatal(err)
	}
	kder, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	return append(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}),
		pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kder})...)
}

// apiServer answers GET /api/v1/nodes/<name> for the nodes it has, to the node itself only, as
// the Node authorizer does.
func apiServer(t *testing.T, ca testCA, nodes map[string]string, delay time.Duration) (*httptest.Server, *atomic.Int32) {
	return podServer(t, ca, nodes, nil, delay)
}

// podServer is apiServer that also lists pods by the node they are bound to: pods holds each
// node's items, JSON objects joined by commas.
func podServer(t *testing.T, ca testCA, nodes, pods map[string]string, delay time.Duration) (*httptest.Server, *atomic.Int32) {
	t.Helper()
	var hits atomic.Int32
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hits.Add(1)
		if delay > 0 {
			select {
			case <-time.After(delay):
			case <-r.Context().Done():
				return
			}
		}
		user := r.TLS.PeerCertificates[0].Subject.CommonName
		if r.URL.Path == "/api/v1/pods" && r.Method == http.MethodGet {
			// As the Node authorizer lets a node list pods; the field selector is the node's.
			node, _ := strings.CutPrefix(r.URL.Query().Get("fieldSelector"), "spec.nodeName=")
			w.Header().Set("Content-Type", "application/json")
			w.Write([]byte(`{"kind":"PodList","apiVersion":"v1","items":[` + pods[node] + `]}`))
			return
		}
		name, ok := strings.CutPrefix(r.URL.Path, "/api/v1/nodes/")
		if r.Method != http.MethodGet || !ok || user != "system:node:"+name {
			w.WriteHeader(http.StatusForbidden)
			json.NewEncoder(w).Encode(map[string]string{"kind": "Status", "message": "forbidden: " + user})
			return
		}
		status, ok := nodes[name]
		if !ok {
			w.WriteHeader(http.StatusNotFound)
			json.NewEncoder(w).Encode(map[string]string{"kind": "Status", "message": `nodes "` + name + `" not found`})
			return
		}
		w.Header().Set("Content-Type", "application/json")
		w.Write([]byte(`{"kind":"Node","apiVersion":"v1","metadata":{"name":"` + name + `"},"status":` + status + `}`))
	}))
	pool := x509.NewCertPool()
	pool.AddCert(ca.cert)
	srv.Config.ErrorLog = log.New(io.Discard, "", 0) // the refused handshakes are expected
	srv.TLS = &tls.Config{ClientAuth: tls.RequireAndVerifyClientCert, ClientCAs: pool}
	srv.StartTLS()
	t.Cleanup(srv.Close)
	return srv, &hits
}

func certPEM(srv *httptest.Server) []byte {
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: srv.Certificate().Raw})
}

func writeFile(t *testing.T, root, p string, b []byte) {
	t.Helper()
	f := filepath.Join(root, p)
	if err := os.MkdirAll(filepath.Dir(f), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(f, b, 0o600); err != nil {
		t.Fatal(err)
	}
}

const (
	kubeconfigPath = "/var/lib/kubelet/kubeconfig"
	clientPEM      = "/var/lib/kubelet/pki/kubelet-client-current.pem"
	caPath         = "/etc/kubernetes/pki/ca.crt"
)

// kubeletKubeconfig is the file clientcmd.WriteToFile makes after TLS bootstrapping.
func kubeletKubeconfig(server string) string {
	return `apiVersion: v1
clusters:
- cluster:
    certificate-authority: ` + caPath + `
    server: ` + server + `
  name: default-cluster
contexts:
- context:
    cluster: default-cluster
    namespace: default
    user: default-auth
  name: default-context
current-context: default-context
kind: Config
preferences: {}
users:
- name: default-auth
  user:
    client-certificate: ` + clientPEM + `
    client-key: ` + clientPEM + `
`
}

const (
	ready    = `{"conditions":[{"type":"MemoryPressure","status":"False"},{"type":"Ready","status":"True","reason":"KubeletReady"}]}`
	notReady = `{"conditions":[{"type":"Ready","status":"False","reason":"KubeletNotReady","message":"container runtime network not ready"}]}`
)

func TestCheck(t *testing.T) {
	ca := newCA(t)
	other := newCA(t)
	srv, _ := apiServer(t, ca, map[string]string{"node-a": ready, "node-b": notReady, "node-c": `{}`}, 0)
	tests := []struct {
		name  string
		setup func(t *testing.T, root string)
		node  string
		err   string // "" when Ready
		is    error
	}{
		{"registered and Ready", func(t *testing.T, root string) {
			writeFile(t, root, kubeconfigPath, []byte(kubeletKubeconfig(srv.URL)))
			writeFile(t, root, caPath, certPEM(srv))
			writeFile(t, root, clientPEM, ca.issue(t, "system:node:node-a"))
		}, "node-a", "", nil},
		{"Ready, JSON kubeconfig with inline data and a relative key path", func(t *testing.T, root string) {
			pair := ca.issue(t, "system:node:node-a")
			cfg := map[string]any{
				"clusters": []any{map[string]any{"name": "c", "cluster": map[string]any{"server": srv.URL,
					"certificate-authority-data": base64.StdEncoding.EncodeToString(certPEM(srv))}}},
				"users": []any{map[string]any{"name": "u", "user": map[string]any{
					"client-certificate-data": base64.StdEncoding.EncodeToString(pair), "client-key": "pki/key.pem"}}},
			}
			b, _ := json.Marshal(cfg)
			writeFile(t, root, kubeconfigPath, b)
			writeFile(t, root, "/var/lib/kubelet/pki/key.pem", pair)
		}, "node-a", "", nil},
		{"NotReady", func(t *testing.T, root string) {
			writeFile(t, root, kubeconfigPath, []byte(kubeletKubeconfig(srv.URL)))
			writeFile(t, root, caPath, certPEM(srv))
			writeFile(t, root, clientPEM, ca.issue(t, "system:node:node-b"))
		}, "node-b", "node node-b not Ready: KubeletNotReady: container runtime network not ready", nil},
		{"no Ready condition", func(t *testing.T, root string) {
			writeFile(t, root, kubeconfigPath, []byte(kubeletKubeconfig(srv.URL)))
			writeFile(t, root, caPath, certPEM(srv))
			writeFile(t, root, clientPEM, ca.issue(t, "system:node:node-c"))
		}, "node-c", "node node-c not Ready: no Ready condition yet", nil},
		{"not registered", func(t *testing.T, root string) {
			writeFile(t, root, kubeconfigPath, []byte(kubeletKubeconfig(srv.URL)))
			writeFile(t, root, caPath, certPEM(srv))
			writeFile(t, root, clientPEM, ca.issue(t, "system:node:node-x"))
		}, "node-x", "node node-x not registered", ErrNotRegistered},
		{"no kubeconfig yet", func(t *testing.T, root string) {}, "", "no client certificate yet (" + kubeconfigPath + ": not there)", ErrNoCredentials},
		{"no certificate yet", func(t *testing.T, root string) {
			writeFile(t, root, kubeconfigPath, []byte(kubeletKubeconfig(srv.URL)))
		}, "", "no client certificate yet (" + clientPEM + ": not there)", ErrNoCredentials},
		{"certificate from a CA the cluster does not trust", func(t *testing.T, root string) {
			writeFile(t, root, kubeconfigPath, []byte(kubeletKubeconfig(srv.URL)))
			writeFile(t, root, caPath, certPEM(srv))
			writeFile(t, root, clientPEM, other.issue(t, "system:node:node-a"))
		}, "node-a", "node node-a: Get ", nil},
		{"not a certificate", func(t *testing.T, root string) {
			writeFile(t, root, kubeconfigPath, []byte(kubeletKubeconfig(srv.URL)))
			writeFile(t, root, clientPEM, []byte("-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n"))
		}, "", clientPEM + ": ", nil},
		{"certificate CN not a node", func(t *testing.T, root string) {
			writeFile(t, root, kubeconfigPath, []byte(kubeletKubeconfig(srv.URL)))
			writeFile(t, root, caPath, certPEM(srv))
			writeFile(t, root, clientPEM, ca.issue(t, "system:kube-proxy"))
		}, "", clientPEM + `: the client certificate is for "system:kube-proxy", not a node (system:node:<name>)`, nil},
		{"server not the cluster's", func(t *testing.T, root string) {
			writeFile(t, root, kubeconfigPath, []byte(kubeletKubeconfig(srv.URL)))
			writeFile(t, root, caPath, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: other.cert.Raw}))
			writeFile(t, root, clientPEM, ca.issue(t, "system:node:node-a"))
		}, "node-a", "certificate signed by unknown authority", nil},
		{"CA file missing", func(t *testing.T, root string) {
			writeFile(t, root, kubeconfigPath, []byte(kubeletKubeconfig(srv.URL)))
			writeFile(t, root, clientPEM, ca.issue(t, "system:node:node-a"))
		}, "node-a", "certificate-authority: open ", nil},
		{"two clusters", func(t *testing.T, root string) {
			writeFile(t, root, kubeconfigPath, []byte(kubeletKubeconfig(srv.URL)+"- cluster:\n    server: https://elsewhere\n"))
		}, "", kubeconfigPath + ": line 22: server a second time", nil},
		{"insecure", func(t *testing.T, root string) {
			writeFile(t, root, kubeconfigPath, []byte(strings.Replace(kubeletKubeconfig(srv.URL),
				"    server:", "    insecure-skip-tls-verify: true\n    server:", 1)))
		}, "", "insecure-skip-tls-verify", nil},
		{"http server", func(t *testing.T, root string) {
			writeFile(t, root, kubeconfigPath, []byte(kubeletKubeconfig("http://127.0.0.1:1")))
			writeFile(t, root, clientPEM, ca.issue(t, "system:node:node-a"))
		}, "node-a", `server "http://127.0.0.1:1": not an https URL`, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			root := t.TempDir()
			tt.setup(t, root)
			node, err := Checker{Kubeconfig: kubeconfigPath, Root: root, Timeout: 5 * time.Second}.Check(context.Background())
			if node != tt.node {
				t.Errorf("node %q, want %q", node, tt.node)
			}
			if tt.err == "" {
				if err != nil {
					t.Errorf("Check: %v", err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.err) {
				t.Errorf("Check error %v, want %q", err, tt.err)
			}
			if tt.is != nil && !errors.Is(err, tt.is) {
				t.Errorf("Check error %v is not %v", err, tt.is)
			}
		})
	}
}

// A server that does not answer costs one timeout, not a hung health gate.
func TestCheckTimeout(t *testing.T) {
	ca := newCA(t)
	srv, hits := apiServer(t, ca, map[string]string{"node-a": ready}, time.Minute)
	root := t.TempDir()
	writeFile(t, root, kubeconfigPath, []byte(kubeletKubeconfig(srv.URL)))
	writeFile(t, root, caPath, certPEM(srv))
	writeFile(t, root, clientPEM, ca.issue(t, "system:node:node-a"))
	start := time.Now()
	_, err := Checker{Kubeconfig: kubeconfigPath, Root: root, Timeout: 200 * time.Millisecond}.Check(context.Background())
	if err == nil || !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("Check: %v", err)
	}
	if took := time.Since(start); took > 3*time.Second {
		t.Errorf("took %v with a 200ms timeout", took)
	}
	if hits.Load() != 1 {
		t.Errorf("%d requests", hits.Load())
	}
}

func pod(ns, name, phase string) string {
	return `{"metadata":{"namespace":"` + ns + `","name":"` + name + `"},"status":{"phase":"` + phase + `"}}`
}

func TestUnsettled(t *testing.T) {
	ca := newCA(t)
	srv, _ := podServer(t, ca, nil, map[string]string{
		"node-a": pod("default", "done", "Succeeded") + "," + pod("default", "stopped", "Failed"),
		"node-b": pod("default", "sleeper", "Running") + "," + pod("kube-system", "dns", "Failed") + "," + pod("default", "refused", "Pending"),
	}, 0)
	for _, tt := range []struct {
		node string
		left []string
	}{
		{"node-a", nil},
		{"node-b", []string{"default/sleeper (Running)", "default/refused (Pending)"}},
		{"node-c", nil}, // no pods at all
	} {
		t.Run(tt.node, func(t *testing.T) {
			root := t.TempDir()
			writeFile(t, root, kubeconfigPath, []byte(kubeletKubeconfig(srv.URL)))
			writeFile(t, root, caPath, certPEM(srv))
			writeFile(t, root, clientPEM, ca.issue(t, "system:node:"+tt.node))
			node, left, err := Checker{Kubeconfig: kubeconfigPath, Root: root}.Unsettled(context.Background())
			if err != nil || node != tt.node || !slices.Equal(left, tt.left) {
				t.Errorf("Unsettled: %q %q %v, want %q %q", node, left, err, tt.node, tt.left)
			}
		})
	}
	t.Run("refused", func(t *testing.T) {
		root := t.TempDir()
		// Behind another path the fake server refuses, as the API server does a list it forbids.
		writeFile(t, root, kubeconfigPath, []byte(kubeletKubeconfig(srv.URL+"/elsewhere")))
		writeFile(t, root, caPath, certPEM(srv))
		writeFile(t, root, clientPEM, ca.issue(t, "system:node:node-a"))
		_, left, err := Checker{Kubeconfig: kubeconfigPath, Root: root}.Unsettled(context.Background())
		if err == nil || !strings.Contains(err.Error(), "403 Forbidden: forbidden: system:node:node-a") {
			t.Errorf("Unsettled: %q %v, want the refusal", left, err)
		}
	})
}

func TestYAMLScalar(t *testing.T) {
	tests := []struct{ in, want, err string }{
		{"https://10.0.2.2:6443", "https://10.0.2.2:6443", ""},
		{`"/var/lib/kubelet/pki/a b.pem"`, "/var/lib/kubelet/pki/a b.pem", ""},
		{`'it''s'`, "it's", ""},
		{"plain # comment", "plain", ""},
		{"", "", ""},
		{"|", "", "one-line"},
		{"'open", "", "unterminated"},
		{`"bad\q"`, "", "invalid syntax"},
	}
	for _, tt := range tests {
		got, err := yamlScalar(tt.in)
		if got != tt.want || (err == nil) != (tt.err == "") || err != nil && !strings.Contains(err.Error(), tt.err) {
			t.Errorf("yamlScalar(%q) = %q, %v; want %q, %q", tt.in, got, err, tt.want, tt.err)
		}
	}
}
