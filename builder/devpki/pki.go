// Package devpki makes the development PKI of dev variants' remote API: a CA, a server certificate
// and a client certificate, all ECDSA P-256. The builder makes one per machine and variant (ForVariant),
// bakes the server side into the image's defaults (RemoteAPIDefaults) and copies the client side to
// build/<variant>/pki (CopyClient) for `apiclient --pki`. Production variants carry none: their
// PKI is the operator's and comes in through settings.
package devpki

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"time"

	"github.com/ballast-os/ballast/contract"

	"github.com/BurntSushi/toml"
)

// Validity of generated certificates. Development certificates outlive the images they are baked
// into; a production PKI is the operator's and comes in through settings.
const (
	caValidity   = 10 * 365 * 24 * time.Hour
	leafValidity = 5 * 365 * 24 * time.Hour
)

// CA is a certificate authority that can issue certificates.
type CA struct {
	cert *x509.Certificate
	key  *ecdsa.PrivateKey
	// CertPEM and KeyPEM are the CA's certificate and key.
	CertPEM, KeyPEM []byte
}

// NewCA makes a self-signed CA named name.
func NewCA(name string) (*CA, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, err
	}
	tmpl, err := template(name, caValidity)
	if err != nil {
		return nil, err
	}
	tmpl.IsCA, tmpl.BasicConstraintsValid, tmpl.MaxPathLenZero = true, true, true
	tmpl.KeyUsage = x509.KeyUsageCertSign | x509.KeyUsageCRLSign
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return nil, fmt.Errorf("create CA certificate: %w", err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, err
	}
	keyPEM, err := encodeKey(key)
	if err != nil {
		return nil, err
	}
	return &CA{cert: cert, key: key, CertPEM: encodeCert(der), KeyPEM: keyPEM}, nil
}

// Server issues a server certificate for hosts: IP addresses and DNS names.
func (ca *CA) Server(hosts []string) (certPEM, keyPEM []byte, err error) {
	if len(hosts) == 0 {
		return nil, nil, errors.New("server certificate: no hosts")
	}
	return ca.issue(hosts[0], func(t *x509.Certificate) {
		t.ExtKeyUsage = []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}
		for _, h := range hosts {
			if ip := net.ParseIP(h); ip != nil {
				t.IPAddresses = append(t.IPAddresses, ip)
			} else {
				t.DNSNames = append(t.DNSNames, h)
			}
		}
	})
}

// Client issues a client certificate named name.
func (ca *CA) Client(name string) (certPEM, keyPEM []byte, err error) {
	return ca.issue(name, func(t *x509.Certificate) {
		t.ExtKeyUsage = []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}
	})
}

func (ca *CA) issue(name string, customize func(*x509.Certificate)) (certPEM, keyPEM []byte, err error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, nil, err
	}
	tmpl, err := template(name, leafValidity)
	if err != nil {
		return nil, nil, err
	}
	tmpl.KeyUsage = x509.KeyUsageDigitalSignature
	customize(tmpl)
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.cert, &key.PublicKey, ca.key)
	if err != nil {
		return nil, nil, fmt.Errorf("issue certificate for %s: %w", name, err)
	}
	keyPEM, err = encodeKey(key)
	if err != nil {
		return nil, nil, err
	}
	return encodeCert(der), keyPEM, nil
}

func template(name string, validity time.Duration) (*x509.Certificate, error) {
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127))
	if err != nil {
		return nil, err
	}
	now := time.Now()
	return &x509.Certificate{
		SerialNumber: serial,
		Subject:      pkix.Name{CommonName: name, Organization: []string{"Ballast development"}},
		// An hour of slack for hosts whose clock starts a little behind.
		NotBefore: now.Add(-time.Hour),
		NotAfter:  now.Add(validity),
	}, nil
}

func encodeCert(der []byte) []byte {
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
}

func encodeKey(key *ecdsa.PrivateKey) ([]byte, error) {
	der, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return nil, err
	}
	return pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}), nil
}

// GenerateDev writes a development PKI to dir: a CA, a server certificate for hosts (names and
// addresses the remote API is reached by, e.g. "localhost", "127.0.0.1") and a client
// certificate, each with its key. Keys are written 0600.
func GenerateDev(dir string, hosts []string) error {
	ca, err := NewCA("Ballast development CA")
	if err != nil {
		return err
	}
	srvCert, srvKey, err := ca.Server(hosts)
	if err != nil {
		return err
	}
	cliCert, cliKey, err := ca.Client("ballast-admin")
	if err != nil {
		return err
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("pki %s: %w", dir, err)
	}
	for _, f := range []struct {
		name string
		data []byte
		mode os.FileMode
	}{
		{contract.PKICACert, ca.CertPEM, 0o644}, {contract.PKICAKey, ca.KeyPEM, 0o600},
		{contract.PKIServerCert, srvCert, 0o644}, {contract.PKIServerKey, srvKey, 0o600},
		{contract.PKIClientCert, cliCert, 0o644}, {contract.PKIClientKey, cliKey, 0o600},
	} {
		path := filepath.Join(dir, f.name)
		if err := os.WriteFile(path, f.data, f.mode); err != nil {
			return fmt.Errorf("pki: %w", err)
		}
		// WriteFile keeps the mode of a file that existed; a key must not stay readable.
		if err := os.Chmod(path, f.mode); err != nil {
			return fmt.Errorf("pki: %w", err)
		}
	}
	return nil
}

// RemoteAPIDefaults returns the [settings.api.remote] table of an image's defaults file that turns
// the remote API on at listen with the server side of the PKI in dir: its CA as the client CA, and
// the server certificate and key. The builder writes it into /usr/share/ballast/defaults.toml.
func RemoteAPIDefaults(dir, listen string) ([]byte, error) {
	read := func(name string) (string, error) {
		b, err := os.ReadFile(filepath.Join(dir, name))
		if err != nil {
			return "", fmt.Errorf("pki: %w", err)
		}
		return string(b), nil
	}
	ca, err := read(contract.PKICACert)
	if err != nil {
		return nil, err
	}
	cert, err := read(contract.PKIServerCert)
	if err != nil {
		return nil, err
	}
	key, err := read(contract.PKIServerKey)
	if err != nil {
		return nil, err
	}
	var b bytes.Buffer
	err = toml.NewEncoder(&b).Encode(map[string]any{"settings": map[string]any{"api": map[string]any{"remote": map[string]any{
		"enabled": true, "listen": listen, "client-ca": ca, "server-cert": cert, "server-key": key,
	}}}})
	if err != nil {
		return nil, fmt.Errorf("pki: encode defaults: %w", err)
	}
	return b.Bytes(), nil
}

// ForVariant returns the development PKI of a dev variant, made on first use under
// cacheDir/pki/<variant>. It is made once per machine and variant, not per build, so two builds of
// one commit stay byte-identical.
func ForVariant(cacheDir, variant string) (string, error) {
	dir := filepath.Join(cacheDir, "pki", variant)
	if _, err := os.Stat(filepath.Join(dir, contract.PKIClientKey)); err == nil {
		return dir, nil
	}
	tmp := dir + ".tmp"
	if err := os.RemoveAll(tmp); err != nil {
		return "", fmt.Errorf("dev pki: %w", err)
	}
	if err := GenerateDev(tmp, []string{"127.0.0.1", "localhost", "ballast"}); err != nil {
		return "", fmt.Errorf("dev pki: %w", err)
	}
	if err := os.Rename(tmp, dir); err != nil {
		return "", fmt.Errorf("dev pki: %w", err)
	}
	return dir, nil
}

// CopyClient puts the client side of the PKI in src (CA certificate, client certificate and key)
// into dst, where `apiclient --pki dst` finds it.
func CopyClient(src, dst string) error {
	if err := os.MkdirAll(dst, 0o700); err != nil {
		return fmt.Errorf("dev pki: %w", err)
	}
	for _, n := range []string{contract.PKICACert, contract.PKIClientCert, contract.PKIClientKey} {
		b, err := os.ReadFile(filepath.Join(src, n))
		if err != nil {
			return fmt.Errorf("dev pki: %w", err)
		}
		if err := os.WriteFile(filepath.Join(dst, n), b, 0o600); err != nil {
			return fmt.Errorf("dev pki: %w", err)
		}
	}
	return nil
}
