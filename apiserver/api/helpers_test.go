package api

import (
	"crypto/x509"
	"testing"

	"github.com/ballast-os/ballast/builder/devpki"
)

func testCA(t *testing.T, host string) (*devpki.CA, []byte, []byte) {
	t.Helper()
	ca, err := devpki.NewCA("test CA")
	if err != nil {
		t.Fatal(err)
	}
	cert, key, err := ca.Server([]string{host})
	if err != nil {
		t.Fatal(err)
	}
	return ca, cert, key
}

func poolOf(t *testing.T, pemCerts []byte) *x509.CertPool {
	t.Helper()
	p := x509.NewCertPool()
	if !p.AppendCertsFromPEM(pemCerts) {
		t.Fatal("no certificate")
	}
	return p
}
