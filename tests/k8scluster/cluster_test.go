package k8scluster

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	certv1 "k8s.io/api/certificates/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
)

// TestControlPlane starts the pinned control plane and goes through what a kubelet does with
// it, without a kubelet: TLS bootstrapping with the bootstrap token (the controller-manager
// approves and signs the node's client certificate), registering its Node under the Node
// authoriser and NodeRestriction, and being reached by the apiserver at its InternalIP
// (ReachNode) for the kubelet API. A pod nobody can run is marked unschedulable by the scheduler.
func TestControlPlane(t *testing.T) {
	c := Start(t, Options{Binaries: PinnedBinaries(t), Hosts: []string{"10.0.2.100"}})
	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
	defer cancel()
	admin := c.Client()

	if _, err := admin.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "ballast-test"}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	if ns, err := admin.CoreV1().Namespaces().Get(ctx, "ballast-test", metav1.GetOptions{}); err != nil || ns.Status.Phase != corev1.NamespaceActive {
		t.Fatalf("namespace ballast-test: %v %+v", err, ns)
	}

	// The bootstrap token may ask for a certificate and nothing else.
	boot, err := kubernetes.NewForConfig(c.BootstrapConfig())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := boot.CoreV1().Nodes().List(ctx, metav1.ListOptions{}); !apierrors.IsForbidden(err) {
		t.Errorf("bootstrap token lists nodes: %v, want forbidden", err)
	}
	const nodeName = "fake-node"
	node := bootstrapNode(ctx, t, c, boot, nodeName)

	if _, err := node.CoreV1().Nodes().Create(ctx, &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: nodeName}}, metav1.CreateOptions{}); err != nil {
		t.Fatalf("the node registers itself: %v", err)
	}
	if _, err := node.CoreV1().Nodes().Create(ctx, &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: "other-node"}}, metav1.CreateOptions{}); !apierrors.IsForbidden(err) {
		t.Errorf("a node registers another: %v, want forbidden (NodeRestriction)", err)
	}

	// The apiserver reaches the "kubelet" at the node's InternalIP through ReachNode.
	kubelet := fakeKubelet(t, c)
	c.ReachNode(t, "10.0.2.15", 10250, kubelet)
	// A patch of the status alone, as a kubelet makes it: the controller-manager writes the Node
	// too (its pod CIDR, the not-ready taint), and an update carrying a Node read before its
	// taint was added is refused by NodeRestriction ("not allowed to modify taints") before it
	// could be a conflict to retry.
	status, err := json.Marshal(map[string]any{"status": map[string]any{
		"addresses":       []corev1.NodeAddress{{Type: corev1.NodeInternalIP, Address: "10.0.2.15"}, {Type: corev1.NodeHostName, Address: nodeName}},
		"daemonEndpoints": corev1.NodeDaemonEndpoints{KubeletEndpoint: corev1.DaemonEndpoint{Port: 10250}},
	}})
	if err != nil {
		t.Fatal(err)
	}
	_, err = node.CoreV1().Nodes().Patch(ctx, nodeName, types.StrategicMergePatchType, status, metav1.PatchOptions{}, "status")
	if err != nil {
		t.Fatalf("the node's status: %v", err)
	}
	body, err := admin.CoreV1().RESTClient().Get().AbsPath("/api/v1/nodes", nodeName, "proxy", "healthz").DoRaw(ctx)
	if err != nil || string(body) != "ok from "+userKubeletClient {
		t.Errorf("GET nodes/%s/proxy/healthz: %v %q, want the fake kubelet's answer to the apiserver's client certificate", nodeName, err, body)
	}

	// The scheduler looks at a pod no node can take and says so.
	pod := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: "unschedulable", Namespace: "ballast-test"},
		Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "c", Image: "ballast.test/none:1"}},
			NodeSelector: map[string]string{"ballast.test/none": "true"}},
	}
	if _, err := admin.CoreV1().Pods("ballast-test").Create(ctx, pod, metav1.CreateOptions{}); err != nil {
		t.Fatalf("pod (needs the namespace's default service account): %v", err)
	}
	err = wait.PollUntilContextTimeout(ctx, 250*time.Millisecond, time.Minute, true, func(ctx context.Context) (bool, error) {
		p, err := admin.CoreV1().Pods("ballast-test").Get(ctx, "unschedulable", metav1.GetOptions{})
		if err != nil {
			return false, err
		}
		for _, cond := range p.Status.Conditions {
			if cond.Type == corev1.PodScheduled && cond.Reason == corev1.PodReasonUnschedulable && strings.Contains(cond.Message, "0/1 nodes are available") {
				return true, nil
			}
		}
		return false, nil
	})
	if err != nil {
		t.Errorf("the scheduler never marked the pod unschedulable: %v", err)
	}
}

// bootstrapNode does a kubelet's TLS bootstrapping: a CSR for system:node:<name> made with the
// bootstrap token, approved and signed by the controller-manager; it returns a client with the
// certificate.
func bootstrapNode(ctx context.Context, t *testing.T, c *Cluster, boot kubernetes.Interface, name string) kubernetes.Interface {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	der, err := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{
		Subject: pkix.Name{CommonName: "system:node:" + name, Organization: []string{"system:nodes"}}}, key)
	if err != nil {
		t.Fatal(err)
	}
	csr := &certv1.CertificateSigningRequest{
		ObjectMeta: metav1.ObjectMeta{GenerateName: "node-csr-"},
		Spec: certv1.CertificateSigningRequestSpec{
			Request:    pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE REQUEST", Bytes: der}),
			SignerName: certv1.KubeAPIServerClientKubeletSignerName,
			Usages:     []certv1.KeyUsage{certv1.UsageDigitalSignature, certv1.UsageClientAuth},
		},
	}
	csr, err = boot.CertificatesV1().CertificateSigningRequests().Create(ctx, csr, metav1.CreateOptions{})
	if err != nil {
		t.Fatalf("CSR with the bootstrap token: %v", err)
	}
	var certPEM []byte
	err = wait.PollUntilContextTimeout(ctx, 250*time.Millisecond, time.Minute, true, func(ctx context.Context) (bool, error) {
		got, err := boot.CertificatesV1().CertificateSigningRequests().Get(ctx, csr.Name, metav1.GetOptions{})
		if err != nil {
			return false, err
		}
		certPEM = got.Status.Certificate
		return len(certPEM) > 0, nil
	})
	if err != nil {
		t.Fatalf("CSR %s was not approved and signed: %v", csr.Name, err)
	}
	kder, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	cfg := rest.AnonymousClientConfig(c.RESTConfig())
	cfg.CertData, cfg.KeyData = certPEM, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: kder})
	cs, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return cs
}

// fakeKubelet serves the kubelet API's healthz over TLS to clients with a certificate of the
// cluster CA, answering with the client's name, and returns its address.
func fakeKubelet(t *testing.T, c *Cluster) string {
	t.Helper()
	serving, err := ClientCert(c.PKI.CA, "fake-kubelet", "", time.Now())
	if err != nil {
		t.Fatal(err)
	}
	pair, err := tls.X509KeyPair(serving.CertPEM, serving.KeyPEM)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AddCert(c.PKI.CA.Cert)
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/healthz" || r.TLS == nil || len(r.TLS.PeerCertificates) == 0 {
			http.Error(w, "no", http.StatusNotFound)
			return
		}
		fmt.Fprintf(w, "ok from %s", r.TLS.PeerCertificates[0].Subject.CommonName)
	}))
	// The apiserver does not check a kubelet's serving certificate unless told a CA for it; the
	// fake kubelet checks the apiserver's client certificate as a kubelet does.
	srv.TLS = &tls.Config{Certificates: []tls.Certificate{pair}, ClientAuth: tls.RequireAndVerifyClientCert, ClientCAs: pool}
	srv.Listener, err = net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv.StartTLS()
	t.Cleanup(srv.Close)
	return srv.Listener.Addr().String()
}
