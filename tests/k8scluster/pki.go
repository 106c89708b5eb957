package k8scluster

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"time"
)

// KeyPair is a certificate with its private key, both PEM.
type KeyPair struct {
	CertPEM, KeyPEM []byte
	Cert            *x509.Certificate
	key             crypto.Signer
}

// PKI is what a control plane needs: one CA for everything (clients, the apiserver's serving
// certificate, the kubelets' certificates signed by the controller-manager), the service-account
// signing key, and the client certificates of the components and of the test.
type PKI struct {
	CA        KeyPair
	APIServer KeyPair // serving certificate, SANs from the Options
	// KubeletClient is the apiserver's client certificate towards the kubelets (logs, exec), for
	// the user kube-apiserver-kubelet-client, bound to system:kubelet-api-admin.
	KubeletClient     KeyPair
	ControllerManager KeyPair // system:kube-controller-manager
	Scheduler         KeyPair // system:kube-scheduler
	Admin             KeyPair // the test's identity, in system:masters
	ServiceAccountKey []byte  // PKCS#8 PEM private key; the apiserver verifies with its public half
	ServiceAccountPub []byte  // PKIX PEM public key
}

// User names the control plane's certificates carry (CN, and O for groups).
const (
	userKubeletClient     = "kube-apiserver-kubelet-client"
	userControllerManager = "system:kube-controller-manager"
	userScheduler         = "system:kube-scheduler"
	userAdmin             = "ballast-test-admin"
	groupMasters          = "system:masters"
)

// ServingNames are the apiserver's subject alternative names: the in-cluster names of the
// "kubernetes" service, its cluster IP, loopback, and every address a client dials (hosts).
func ServingNames(serviceIP net.IP, hosts []string) (dns []string, ips []net.IP) {
	dns = []string{"localhost", "kubernetes", "kubernetes.default", "kubernetes.default.svc", "kubernetes.default.svc.cluster.local"}
	ips = []net.IP{net.IPv4(127, 0, 0, 1), net.IPv6loopback, serviceIP}
	for _, h := range hosts {
		if ip := net.ParseIP(h); ip != nil {
			ips = append(ips, ip)
		} else {
			dns = append(dns, h)
		}
	}
	return dns, ips
}

// NewPKI makes a fresh PKI. serviceIP is the first address of the service range (the
// "kubernetes" service); hosts are further names or IPs clients use to reach the apiserver.
func NewPKI(serviceIP net.IP, hosts []string, now time.Time) (*PKI, error) {
	ca, err := newKeyPair(&x509.Certificate{
		Subject:               pkix.Name{CommonName: "ballast-test-kubernetes-ca"},
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature | x509.KeyUsageKeyEncipherment,
		BasicConstraintsValid: true, IsCA: true,
	}, nil, now)
	if err != nil {
		return nil, fmt.Errorf("CA: %w", err)
	}
	p := &PKI{CA: ca}
	dns, ips := ServingNames(serviceIP, hosts)
	if p.APIServer, err = newKeyPair(&x509.Certificate{
		Subject:     pkix.Name{CommonName: "kube-apiserver"},
		DNSNames:    dns,
		IPAddresses: ips,
		KeyUsage:    x509.KeyUsageDigitalSignature | x509.KeyUsageKeyEncipherment,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}, &ca, now); err != nil {
		return nil, fmt.Errorf("apiserver serving certificate: %w", err)
	}
	clients := []struct {
		dst     *KeyPair
		cn, grp string
	}{
		{&p.KubeletClient, userKubeletClient, ""},
		{&p.ControllerManager, userControllerManager, ""},
		{&p.Scheduler, userScheduler, ""},
		{&p.Admin, userAdmin, groupMasters},
	}
	for _, c := range clients {
		if *c.dst, err = ClientCert(ca, c.cn, c.grp, now); err != nil {
			return nil, err
		}
	}
	sa, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("service-account key: %w", err)
	}
	der, err := x509.MarshalPKCS8PrivateKey(sa)
	if err != nil {
		return nil, fmt.Errorf("service-account key: %w", err)
	}
	pub, err := x509.MarshalPKIXPublicKey(&sa.PublicKey)
	if err != nil {
		return nil, fmt.Errorf("service-account public key: %w", err)
	}
	p.ServiceAccountKey = pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der})
	p.ServiceAccountPub = pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: pub})
	return p, nil
}

// ClientCert is a client certificate signed by ca for user cn in group (none if empty): the way
// the apiserver's x509 authenticator names users.
func ClientCert(ca KeyPair, cn, group string, now time.Time) (KeyPair, error) {
	subj := pkix.Name{CommonName: cn}
	if group != "" {
		subj.Organization = []string{group}
	}
	kp, err := newKeyPair(&x509.Certificate{
		Subject:     subj,
		KeyUsage:    x509.KeyUsageDigitalSignature | x509.KeyUsageKeyEncipherment,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
	}, &ca, now)
	if err != nil {
		return KeyPair{}, fmt.Errorf("client certificate %s: %w", cn, err)
	}
	return kp, nil
}

// newKeyPair signs tmpl with parent's key (self-signed when parent is nil), valid a day around now.
func newKeyPair(tmpl *x509.Certificate, parent *KeyPair, now time.Time) (KeyPair, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return KeyPair{}, err
	}
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127))
	if err != nil {
		return KeyPair{}, err
	}
	tmpl.SerialNumber = serial
	tmpl.NotBefore, tmpl.NotAfter = now.Add(-time.Hour), now.Add(24*time.Hour)
	signer, issuer := crypto.Signer(key), tmpl
	if parent != nil {
		signer, issuer = parent.key, parent.Cert
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, issuer, &key.PublicKey, signer)
	if err != nil {
		return KeyPair{}, err
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return KeyPair{}, err
	}
	kder, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return KeyPair{}, err
	}
	return KeyPair{
		CertPEM: pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}),
		KeyPEM:  pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: kder}),
		Cert:    cert, key: key,
	}, nil
}

// Files are where WriteFiles put the PKI, the paths the components' flags name.
type Files struct {
	CACert, CAKey                 string
	APIServerCert, APIServerKey   string
	KubeletClientCert, KubeletKey string
	SAKey, SAPub                  string
}

// WriteFiles writes the files the components read (private keys 0600) into dir.
func (p *PKI) WriteFiles(dir string) (Files, error) {
	f := Files{
		CACert: filepath.Join(dir, "ca.crt"), CAKey: filepath.Join(dir, "ca.key"),
		APIServerCert: filepath.Join(dir, "apiserver.crt"), APIServerKey: filepath.Join(dir, "apiserver.key"),
		KubeletClientCert: filepath.Join(dir, "apiserver-kubelet-client.crt"), KubeletKey: filepath.Join(dir, "apiserver-kubelet-client.key"),
		SAKey: filepath.Join(dir, "sa.key"), SAPub: filepath.Join(dir, "sa.pub"),
	}
	for path, data := range map[string][]byte{
		f.CACert: p.CA.CertPEM, f.CAKey: p.CA.KeyPEM,
		f.APIServerCert: p.APIServer.CertPEM, f.APIServerKey: p.APIServer.KeyPEM,
		f.KubeletClientCert: p.KubeletClient.CertPEM, f.KubeletKey: p.KubeletClient.KeyPEM,
		f.SAKey: p.ServiceAccountKey, f.SAPub: p.ServiceAccountPub,
	} {
		if err := os.WriteFile(path, data, 0o600); err != nil {
			return Files{}, fmt.Errorf("PKI: %w", err)
		}
	}
	return f, nil
}
