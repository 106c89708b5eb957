package devpki

import (
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"io"
	"os"
	"path/filepath"
	"testing"

	"github.com/ballast-os/ballast/apiserver/client"
	"github.com/ballast-os/ballast/contract"

	"github.com/ballast-os/ballast/apiserver/userdata"
)

func TestGenerateDev(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "pki")
	if err := GenerateDev(dir, []string{"localhost", "127.0.0.1", "::1"}); err != nil {
		t.Fatal(err)
	}
	for name, mode := range map[string]os.FileMode{contract.PKICACert: 0o644, contract.PKICAKey: 0o600, contract.PKIServerCert: 0o644, contract.PKIServerKey: 0o600, contract.PKIClientCert: 0o644, contract.PKIClientKey: 0o600} {
		st, err := os.Stat(filepath.Join(dir, name))
		if err != nil || st.Mode().Perm() != mode {
			t.Errorf("%s: %v, mode %v; want %v", name, err, st.Mode(), mode)
		}
	}
	read := func(name string) []byte {
		b, err := os.ReadFile(filepath.Join(dir, name))
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	roots := x509.NewCertPool()
	roots.AppendCertsFromPEM(read(contract.PKICACert))
	block, _ := pem.Decode(read(contract.PKIServerCert))
	srv, err := x509.ParseCertificate(block.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	for _, host := range []string{"localhost", "127.0.0.1", "::1"} {
		if _, err := srv.Verify(x509.VerifyOptions{DNSName: host, Roots: roots}); err != nil {
			t.Errorf("server certificate for %s: %v", host, err)
		}
	}
	if _, err := srv.Verify(x509.VerifyOptions{DNSName: "example.com", Roots: roots}); err == nil {
		t.Error("server certificate verifies for a host it was not made for")
	}

	// A TLS 1.3 handshake with both sides' certificates, each verified against the CA.
	serverCert, err := tls.X509KeyPair(read(contract.PKIServerCert), read(contract.PKIServerKey))
	if err != nil {
		t.Fatal(err)
	}
	ln, err := tls.Listen("tcp", "127.0.0.1:0", &tls.Config{
		MinVersion: tls.VersionTLS13, Certificates: []tls.Certificate{serverCert},
		ClientAuth: tls.RequireAndVerifyClientCert, ClientCAs: roots,
	})
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		io.WriteString(c, "hi")
		c.Close()
	}()
	cfg, err := client.LoadPKI(dir)
	if err != nil {
		t.Fatal(err)
	}
	cfg.ServerName = "localhost"
	conn, err := tls.Dial("tcp", ln.Addr().String(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if b, err := io.ReadAll(conn); err != nil || string(b) != "hi" {
		t.Fatalf("read %q, %v", b, err)
	}
	if v := conn.ConnectionState().Version; v != tls.VersionTLS13 {
		t.Fatalf("TLS version %x", v)
	}
}

func TestGenerateDevErrors(t *testing.T) {
	if err := GenerateDev(t.TempDir(), nil); err == nil {
		t.Fatal("GenerateDev without hosts succeeded")
	}
	file := filepath.Join(t.TempDir(), "file")
	os.WriteFile(file, nil, 0o600)
	if err := GenerateDev(filepath.Join(file, "pki"), []string{"h"}); err == nil {
		t.Fatal("GenerateDev under a file succeeded")
	}
	if _, err := client.LoadPKI(t.TempDir()); err == nil {
		t.Fatal("ClientTLSConfig of an empty directory succeeded")
	}
}

func TestRemoteAPIDefaults(t *testing.T) {
	dir := t.TempDir()
	if err := GenerateDev(dir, []string{"localhost"}); err != nil {
		t.Fatal(err)
	}
	b, err := RemoteAPIDefaults(dir, ":8443")
	if err != nil {
		t.Fatal(err)
	}
	s, err := userdata.Parse("defaults.toml", b)
	if err != nil {
		t.Fatalf("the defaults do not parse: %v\n%s", err, b)
	}
	if err := s.ValidateLive(); err != nil {
		t.Fatalf("the defaults are not complete: %v", err)
	}
	if !*s.API.Remote.Enabled || *s.API.Remote.Listen != ":8443" {
		t.Fatalf("remote = %+v", s.API.Remote)
	}
	if _, err := RemoteAPIDefaults(t.TempDir(), ":1"); err == nil {
		t.Fatal("RemoteAPIDefaults of an empty directory succeeded")
	}
}
