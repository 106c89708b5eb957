package client

import (
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"os"
	"path/filepath"

	"github.com/ballast-os/ballast/contract"
)

// LoadPKI loads a client's TLS configuration from a PKI directory: the CA that signed the
// server (ca.pem) and the client's certificate and key (client.pem, client-key.pem). TLS 1.3 only.
func LoadPKI(dir string) (*tls.Config, error) {
	caPEM, err := os.ReadFile(filepath.Join(dir, contract.PKICACert))
	if err != nil {
		return nil, fmt.Errorf("pki: %w", err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(caPEM) {
		return nil, fmt.Errorf("pki: %s: no certificate", filepath.Join(dir, contract.PKICACert))
	}
	cert, err := tls.LoadX509KeyPair(filepath.Join(dir, contract.PKIClientCert), filepath.Join(dir, contract.PKIClientKey))
	if err != nil {
		return nil, fmt.Errorf("pki %s: client certificate: %w", dir, err)
	}
	return &tls.Config{
		MinVersion:   tls.VersionTLS13,
		RootCAs:      pool,
		Certificates: []tls.Certificate{cert},
	}, nil
}
