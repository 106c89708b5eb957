package k8scluster

import (
	"crypto/tls"
	"crypto/x509"
	"net"
	"os/exec"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/ballast-os/ballast/tests/testutil"
)

func TestServingCertNamesEveryAddress(t *testing.T) {
	p, err := NewPKI(net.ParseIP("10.96.0.1"), []string{"10.0.2.100", "api.ballast.test"}, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	roots := x509.NewCertPool()
	roots.AddCert(p.CA.Cert)
	for _, tc := range []struct {
		name string
		ok   bool
	}{
		{"127.0.0.1", true},
		{"::1", true},
		{"localhost", true},
		{"10.0.2.100", true}, // the guestfwd address
		{"api.ballast.test", true},
		{"10.96.0.1", true}, // the kubernetes service
		{"kubernetes.default.svc", true},
		{"kubernetes.default.svc.cluster.local", true},
		{"10.0.2.101", false},
		{"other.ballast.test", false},
	} {
		_, err := p.APIServer.Cert.Verify(x509.VerifyOptions{DNSName: tc.name, Roots: roots,
			KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}})
		if (err == nil) != tc.ok {
			t.Errorf("serving certificate for %s: verify error %v, want ok=%v", tc.name, err, tc.ok)
		}
	}
	// It is no client certificate, and the client certificates are no serving ones.
	if _, err := p.APIServer.Cert.Verify(x509.VerifyOptions{Roots: roots, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}}); err == nil {
		t.Error("the serving certificate verifies for client auth")
	}
	if _, err := tls.X509KeyPair(p.APIServer.CertPEM, p.APIServer.KeyPEM); err != nil {
		t.Errorf("serving key pair: %v", err)
	}
}

func TestClientCertsNameUsers(t *testing.T) {
	p, err := NewPKI(net.ParseIP("10.96.0.1"), nil, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	roots := x509.NewCertPool()
	roots.AddCert(p.CA.Cert)
	for _, tc := range []struct {
		kp        KeyPair
		cn, group string
	}{
		{p.Admin, userAdmin, groupMasters},
		{p.ControllerManager, "system:kube-controller-manager", ""},
		{p.Scheduler, "system:kube-scheduler", ""},
		{p.KubeletClient, "kube-apiserver-kubelet-client", ""},
	} {
		if _, err := tc.kp.Cert.Verify(x509.VerifyOptions{Roots: roots, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}}); err != nil {
			t.Errorf("%s: %v", tc.cn, err)
		}
		if got := tc.kp.Cert.Subject.CommonName; got != tc.cn {
			t.Errorf("CN %q, want %q", got, tc.cn)
		}
		var want []string
		if tc.group != "" {
			want = []string{tc.group}
		}
		if got := tc.kp.Cert.Subject.Organization; !slices.Equal(got, want) {
			t.Errorf("%s: O %v, want %v", tc.cn, got, want)
		}
		if _, err := tls.X509KeyPair(tc.kp.CertPEM, tc.kp.KeyPEM); err != nil {
			t.Errorf("%s: key pair: %v", tc.cn, err)
		}
	}
}

// TestPKIWithOpenSSL checks the files as openssl reads them: the chain, and the serving
// certificate's IP and host names.
func TestPKIWithOpenSSL(t *testing.T) {
	openssl := testutil.Tool(t, "openssl", "openssl")
	p, err := NewPKI(net.ParseIP("10.96.0.1"), []string{"10.0.2.100"}, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	f, err := p.WriteFiles(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	run := func(args ...string) (string, error) {
		out, err := exec.Command(openssl, args...).CombinedOutput()
		return string(out), err
	}
	if out, err := run("verify", "-CAfile", f.CACert, "-purpose", "sslserver", f.APIServerCert); err != nil || !strings.Contains(out, ": OK") {
		t.Errorf("openssl verify apiserver.crt: %v %s", err, out)
	}
	if out, err := run("verify", "-CAfile", f.CACert, "-purpose", "sslclient", f.KubeletClientCert); err != nil || !strings.Contains(out, ": OK") {
		t.Errorf("openssl verify apiserver-kubelet-client.crt: %v %s", err, out)
	}
	for _, tc := range []struct{ flag, name, want string }{
		{"-checkip", "10.0.2.100", "does match"},
		{"-checkip", "10.96.0.1", "does match"},
		{"-checkip", "10.0.2.15", "does NOT match"},
		{"-checkhost", "kubernetes.default.svc", "does match"},
	} {
		out, err := run("x509", "-noout", "-in", f.APIServerCert, tc.flag, tc.name)
		if err != nil || !strings.Contains(out, tc.want) {
			t.Errorf("openssl x509 %s %s: %v %q, want %q", tc.flag, tc.name, err, out, tc.want)
		}
	}
	if out, err := run("pkey", "-pubin", "-in", f.SAPub, "-noout"); err != nil {
		t.Errorf("openssl pkey sa.pub: %v %s", err, out)
	}
	if out, err := run("pkey", "-in", f.SAKey, "-noout"); err != nil {
		t.Errorf("openssl pkey sa.key: %v %s", err, out)
	}
}
