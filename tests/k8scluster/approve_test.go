package k8scluster

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"net"
	"testing"

	certv1 "k8s.io/api/certificates/v1"
)

func csrPEM(t *testing.T, cn string, orgs []string, ips []net.IP, dns []string) []byte {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	der, err := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{
		Subject: pkix.Name{CommonName: cn, Organization: orgs}, IPAddresses: ips, DNSNames: dns,
	}, key)
	if err != nil {
		t.Fatal(err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE REQUEST", Bytes: der})
}

func TestServingCSRAcceptable(t *testing.T) {
	node := "system:node:ballast"
	ip := []net.IP{net.ParseIP("10.0.2.15")}
	usages := []certv1.KeyUsage{certv1.UsageDigitalSignature, certv1.UsageServerAuth}
	for _, tc := range []struct {
		name   string
		user   string
		groups []string
		req    []byte
		usages []certv1.KeyUsage
		ok     bool
	}{
		{"the node's own", node, []string{"system:nodes", "system:authenticated"}, csrPEM(t, node, []string{"system:nodes"}, ip, []string{"ballast"}), usages, true},
		{"not a node", "mallory", []string{"system:nodes"}, csrPEM(t, "mallory", []string{"system:nodes"}, ip, nil), usages, false},
		{"not in system:nodes", node, []string{"system:authenticated"}, csrPEM(t, node, []string{"system:nodes"}, ip, nil), usages, false},
		{"for another node", node, []string{"system:nodes"}, csrPEM(t, "system:node:other", []string{"system:nodes"}, ip, nil), usages, false},
		{"admin group", node, []string{"system:nodes"}, csrPEM(t, node, []string{"system:masters"}, ip, nil), usages, false},
		{"no names", node, []string{"system:nodes"}, csrPEM(t, node, []string{"system:nodes"}, nil, nil), usages, false},
		{"client usage", node, []string{"system:nodes"}, csrPEM(t, node, []string{"system:nodes"}, ip, nil), []certv1.KeyUsage{certv1.UsageClientAuth}, false},
		{"garbage", node, []string{"system:nodes"}, []byte("not pem"), usages, false},
	} {
		csr := &certv1.CertificateSigningRequest{Spec: certv1.CertificateSigningRequestSpec{
			Username: tc.user, Groups: tc.groups, Request: tc.req, Usages: tc.usages, SignerName: certv1.KubeletServingSignerName,
		}}
		if err := ServingCSRAcceptable(csr); (err == nil) != tc.ok {
			t.Errorf("%s: %v, want ok=%v", tc.name, err, tc.ok)
		}
	}
}
