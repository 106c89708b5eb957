package k8scluster

import (
	"bytes"
	"crypto/rand"
	"encoding/csv"
	"fmt"
	"regexp"

	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"
)

// bootstrapTokenRE is the bootstrap token format (k8s.io/cluster-bootstrap): a public id and a
// secret, lower-case letters and digits.
var bootstrapTokenRE = regexp.MustCompile(`^([a-z0-9]{6})\.([a-z0-9]{16})$`)

// GroupBootstrappers is the group a bootstrap token authenticates as, the subject of the RBAC
// bindings that let a kubelet ask for its client certificate.
const GroupBootstrappers = "system:bootstrappers"

// NewBootstrapToken makes a random token in the id.secret form kubelets and kubeadm use.
func NewBootstrapToken() (string, error) {
	const alphabet = "abcdefghijklmnopqrstuvwxyz0123456789"
	b := make([]byte, 22)
	if _, err := rand.Read(b); err != nil {
		return "", fmt.Errorf("bootstrap token: %w", err)
	}
	for i := range b {
		// 256 is not a multiple of 36: the first 252 values map evenly, the bias is negligible
		// for a test token.
		b[i] = alphabet[int(b[i])%len(alphabet)]
	}
	return string(b[:6]) + "." + string(b[6:]), nil
}

// TokenFile is the apiserver's --token-auth-file content for a bootstrap token: the user
// system:bootstrap:<id> (what bootstrap-token authentication would name it) in
// GroupBootstrappers. The format is CSV: token,user,uid,"group1,group2".
func TokenFile(token string) ([]byte, error) {
	m := bootstrapTokenRE.FindStringSubmatch(token)
	if m == nil {
		return nil, fmt.Errorf("bootstrap token %q: want [a-z0-9]{6}.[a-z0-9]{16}", token)
	}
	user := "system:bootstrap:" + m[1]
	var b bytes.Buffer
	w := csv.NewWriter(&b)
	if err := w.Write([]string{token, user, user, GroupBootstrappers}); err != nil {
		return nil, err
	}
	w.Flush()
	return b.Bytes(), w.Error()
}

// Kubeconfig is a kubeconfig for one user with a client certificate against server, trusting caPEM.
func Kubeconfig(server string, caPEM []byte, user KeyPair) ([]byte, error) {
	name := "ballast-test"
	cfg := clientcmdapi.NewConfig()
	cfg.Clusters[name] = &clientcmdapi.Cluster{Server: server, CertificateAuthorityData: caPEM}
	cfg.AuthInfos[name] = &clientcmdapi.AuthInfo{ClientCertificateData: user.CertPEM, ClientKeyData: user.KeyPEM}
	cfg.Contexts[name] = &clientcmdapi.Context{Cluster: name, AuthInfo: name}
	cfg.CurrentContext = name
	b, err := clientcmd.Write(*cfg)
	if err != nil {
		return nil, fmt.Errorf("kubeconfig for %s: %w", user.Cert.Subject.CommonName, err)
	}
	return b, nil
}

// BootstrapKubeconfig is what a kubelet starts from: the cluster and a bootstrap token.
func BootstrapKubeconfig(server string, caPEM []byte, token string) ([]byte, error) {
	name := "bootstrap"
	cfg := clientcmdapi.NewConfig()
	cfg.Clusters[name] = &clientcmdapi.Cluster{Server: server, CertificateAuthorityData: caPEM}
	cfg.AuthInfos[name] = &clientcmdapi.AuthInfo{Token: token}
	cfg.Contexts[name] = &clientcmdapi.Context{Cluster: name, AuthInfo: name}
	cfg.CurrentContext = name
	return clientcmd.Write(*cfg)
}
