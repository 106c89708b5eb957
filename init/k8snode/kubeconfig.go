package k8snode

import (
	"bytes"
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"strconv"
	"strings"
)

// kubeconfig is what a kubelet's kubeconfig says about its one cluster and its one user.
type kubeconfig struct {
	path string // the file, a path of the machine

	Server, TLSServerName         string
	CA, CAData                    string // a file; base64 PEM
	ClientCert, ClientKey         string // files
	ClientCertData, ClientKeyData string // base64 PEM
	insecure                      bool
}

// kubeconfigKeys are the keys read, by their name in the file.
func (k *kubeconfig) keys() map[string]*string {
	return map[string]*string{
		"server":                     &k.Server,
		"tls-server-name":            &k.TLSServerName,
		"certificate-authority":      &k.CA,
		"certificate-authority-data": &k.CAData,
		"client-certificate":         &k.ClientCert,
		"client-key":                 &k.ClientKey,
		"client-certificate-data":    &k.ClientCertData,
		"client-key-data":            &k.ClientKeyData,
	}
}

// maxKubeconfigBytes bounds the file: the kubelet's is well under a KiB with paths, a few KiB
// with the CA inline.
const maxKubeconfigBytes = 1 << 20

// readKubeconfig reads the kubeconfig at file (a path of the machine) under root. The kubelet
// writes one cluster and one user, in YAML through JSON (clientcmd.WriteToFile): JSON is read as
// such; YAML as the block mappings and lists that writer makes, key by key, without a YAML
// library in PID 1. A key found twice (a second cluster or user) is refused rather than guessed.
func readKubeconfig(root, file string) (*kubeconfig, error) {
	b, err := os.ReadFile(under(root, file))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("%w (%s: not there)", ErrNoCredentials, file)
	}
	if err != nil {
		return nil, fmt.Errorf("kubeconfig: %w", err)
	}
	if len(b) > maxKubeconfigBytes {
		return nil, fmt.Errorf("%s: more than %d bytes", file, maxKubeconfigBytes)
	}
	k := &kubeconfig{path: file}
	if t := bytes.TrimSpace(b); len(t) > 0 && t[0] == '{' {
		err = k.parseJSON(t)
	} else {
		err = k.parseYAML(string(b))
	}
	if err != nil {
		return nil, fmt.Errorf("%s: %w", file, err)
	}
	switch {
	case k.insecure:
		return nil, fmt.Errorf("%s: insecure-skip-tls-verify: the API server's identity must be checked", file)
	case k.Server == "":
		return nil, fmt.Errorf("%s: no cluster server", file)
	case k.ClientCert == "" && k.ClientCertData == "":
		return nil, fmt.Errorf("%s: no client certificate", file)
	}
	return k, nil
}

func (k *kubeconfig) parseJSON(b []byte) error {
	var c struct {
		Clusters []struct {
			Cluster map[string]any `json:"cluster"`
		} `json:"clusters"`
		Users []struct {
			User map[string]any `json:"user"`
		} `json:"users"`
	}
	if err := json.Unmarshal(b, &c); err != nil {
		return err
	}
	if len(c.Clusters) != 1 || len(c.Users) != 1 {
		return fmt.Errorf("%d clusters and %d users, want one of each", len(c.Clusters), len(c.Users))
	}
	keys := k.keys()
	for _, m := range []map[string]any{c.Clusters[0].Cluster, c.Users[0].User} {
		for key, v := range m {
			if key == "insecure-skip-tls-verify" {
				k.insecure = v == true
				continue
			}
			p, ok := keys[key]
			if !ok {
				continue
			}
			s, ok := v.(string)
			if !ok {
				return fmt.Errorf("%s: not a string", key)
			}
			*p = s
		}
	}
	return nil
}

func (k *kubeconfig) parseYAML(s string) error {
	keys := k.keys()
	seen := map[string]bool{}
	for n, line := range strings.Split(s, "\n") {
		t := strings.TrimSpace(line)
		for strings.HasPrefix(t, "- ") {
			t = strings.TrimSpace(t[2:])
		}
		if t == "" || t[0] == '#' {
			continue
		}
		key, val, ok := strings.Cut(t, ":")
		if !ok {
			continue
		}
		p, known := keys[key]
		if !known && key != "insecure-skip-tls-verify" {
			continue
		}
		if seen[key] {
			return fmt.Errorf("line %d: %s a second time: one cluster and one user only", n+1, key)
		}
		seen[key] = true
		v, err := yamlScalar(strings.TrimSpace(val))
		if err != nil {
			return fmt.Errorf("line %d: %s: %w", n+1, key, err)
		}
		if !known {
			k.insecure = v == "true"
			continue
		}
		*p = v
	}
	return nil
}

// yamlScalar is the value of a plain, single- or double-quoted YAML scalar on one line.
func yamlScalar(v string) (string, error) {
	switch {
	case v == "":
		return "", nil
	case v[0] == '"':
		return strconv.Unquote(v)
	case v[0] == '\'':
		if len(v) < 2 || v[len(v)-1] != '\'' {
			return "", fmt.Errorf("unterminated quote")
		}
		return strings.ReplaceAll(v[1:len(v)-1], "''", "'"), nil
	case strings.ContainsAny(v[:1], "|>&*!{["):
		return "", fmt.Errorf("%q: only one-line scalars are read", v)
	}
	if i := strings.Index(v, " #"); i >= 0 {
		v = strings.TrimSpace(v[:i])
	}
	return v, nil
}

// file resolves a path the kubeconfig names, relative to its directory as client-go does, and
// maps it under root.
func (k *kubeconfig) file(root, p string) string {
	if !path.IsAbs(p) {
		p = path.Join(path.Dir(k.path), p)
	}
	return under(root, p)
}

// clientCert loads the client certificate and key; the kubelet keeps both in one PEM file.
func (k *kubeconfig) clientCert(root string) (tls.Certificate, error) {
	certPEM, err := k.pem(root, "client-certificate", k.ClientCertData, k.ClientCert)
	if err != nil {
		return tls.Certificate{}, err
	}
	keyPEM, err := k.pem(root, "client-key", k.ClientKeyData, k.ClientKey)
	if err != nil {
		return tls.Certificate{}, err
	}
	c, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		return tls.Certificate{}, fmt.Errorf("%s: %w", k.certSource(), err)
	}
	return c, nil
}

// certSource names where the client certificate comes from, for errors.
func (k *kubeconfig) certSource() string {
	if k.ClientCertData != "" {
		return k.path + ": client-certificate-data"
	}
	return k.ClientCert
}

// rootCAs is the pool of the cluster's CA; nil (the system's roots) when the kubeconfig names none.
func (k *kubeconfig) rootCAs(root string) (*x509.CertPool, error) {
	if k.CAData == "" && k.CA == "" {
		return nil, nil
	}
	b, err := k.pem(root, "certificate-authority", k.CAData, k.CA)
	if err != nil {
		return nil, err
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(b) {
		return nil, fmt.Errorf("%s: certificate-authority: no PEM certificate", k.path)
	}
	return pool, nil
}

// pem returns the inline data (base64) when there is some, else the named file's content.
func (k *kubeconfig) pem(root, key, data, file string) ([]byte, error) {
	if data != "" {
		b, err := base64.StdEncoding.DecodeString(data)
		if err != nil {
			return nil, fmt.Errorf("%s: %s-data: %w", k.path, key, err)
		}
		return b, nil
	}
	if file == "" {
		return nil, fmt.Errorf("%s: no %s", k.path, key)
	}
	b, err := os.ReadFile(k.file(root, file))
	if errors.Is(err, fs.ErrNotExist) && key != "certificate-authority" {
		return nil, fmt.Errorf("%w (%s: not there)", ErrNoCredentials, file)
	}
	if err != nil {
		return nil, fmt.Errorf("%s: %w", key, err)
	}
	return b, nil
}

// under maps a path of the machine under root.
func under(root, p string) string {
	if root == "" {
		root = "/"
	}
	return filepath.Join(root, filepath.FromSlash(p))
}
