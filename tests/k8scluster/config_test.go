package k8scluster

import (
	"crypto/tls"
	"encoding/csv"
	"net"
	"slices"
	"strings"
	"testing"
	"time"

	"k8s.io/client-go/tools/clientcmd"
)

func TestBootstrapTokens(t *testing.T) {
	seen := map[string]bool{}
	for range 20 {
		tok, err := NewBootstrapToken()
		if err != nil {
			t.Fatal(err)
		}
		if !bootstrapTokenRE.MatchString(tok) {
			t.Errorf("token %q is not [a-z0-9]{6}.[a-z0-9]{16}", tok)
		}
		if seen[tok] {
			t.Errorf("token %q made twice", tok)
		}
		seen[tok] = true
	}
}

func TestTokenFile(t *testing.T) {
	for _, tc := range []struct {
		token   string
		want    []string
		wantErr bool
	}{
		{token: "abcdef.0123456789abcdef", want: []string{"abcdef.0123456789abcdef", "system:bootstrap:abcdef", "system:bootstrap:abcdef", "system:bootstrappers"}},
		{token: "ABCDEF.0123456789abcdef", wantErr: true},
		{token: "abcdef0123456789abcdef", wantErr: true},
		{token: "abcdef.0123456789abcde", wantErr: true},
		{token: "abc,ef.0123456789abcdef", wantErr: true},
	} {
		b, err := TokenFile(tc.token)
		if (err != nil) != tc.wantErr {
			t.Errorf("TokenFile(%q): error %v, want error %v", tc.token, err, tc.wantErr)
			continue
		}
		if err != nil {
			continue
		}
		recs, err := csv.NewReader(strings.NewReader(string(b))).ReadAll()
		if err != nil || len(recs) != 1 {
			t.Fatalf("token file %q: %v %v", b, recs, err)
		}
		if !slices.Equal(recs[0], tc.want) {
			t.Errorf("token file record %q, want %q", recs[0], tc.want)
		}
	}
}

func TestKubeconfigs(t *testing.T) {
	p, err := NewPKI(net.ParseIP("10.96.0.1"), nil, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	const server = "https://127.0.0.1:6443"
	b, err := Kubeconfig(server, p.CA.CertPEM, p.Scheduler)
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := clientcmd.RESTConfigFromKubeConfig(b)
	if err != nil {
		t.Fatalf("kubeconfig does not load: %v\n%s", err, b)
	}
	if cfg.Host != server || string(cfg.CAData) != string(p.CA.CertPEM) {
		t.Errorf("kubeconfig: host %q, CA %d bytes", cfg.Host, len(cfg.CAData))
	}
	pair, err := tls.X509KeyPair(cfg.CertData, cfg.KeyData)
	if err != nil {
		t.Fatalf("kubeconfig's client key pair: %v", err)
	}
	if string(pair.Certificate[0]) != string(p.Scheduler.Cert.Raw) {
		t.Error("kubeconfig's client certificate is not the scheduler's")
	}

	b, err = BootstrapKubeconfig(server, p.CA.CertPEM, "abcdef.0123456789abcdef")
	if err != nil {
		t.Fatal(err)
	}
	cfg, err = clientcmd.RESTConfigFromKubeConfig(b)
	if err != nil {
		t.Fatalf("bootstrap kubeconfig does not load: %v\n%s", err, b)
	}
	if cfg.BearerToken != "abcdef.0123456789abcdef" || cfg.CertData != nil || cfg.Host != server {
		t.Errorf("bootstrap kubeconfig: token %q, host %q, client cert %d bytes", cfg.BearerToken, cfg.Host, len(cfg.CertData))
	}
}
