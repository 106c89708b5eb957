package images

import (
	"net/http"
	"net/url"
	"testing"

	"github.com/ballast-os/ballast/contract"
)

func TestHosts(t *testing.T) {
	g := &Getter{Registry: contract.RegistryConfig{
		Mirrors:     map[string][]string{"docker.io": {"https://mirror.example.com", "http://10.0.0.1:5000/base/"}, "*": {"https://all.example"}},
		Credentials: map[string]contract.RegistryCredential{"docker.io": {Username: "u", Password: "p"}},
	}}
	hosts, err := g.Hosts()
	if err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		ref  string
		want []string // scheme://host+path, in order
	}{
		{"docker.io", []string{"https://mirror.example.com/v2", "http://10.0.0.1:5000/base/v2", "https://registry-1.docker.io/v2"}},
		{"r.example:5000", []string{"https://all.example/v2", "https://r.example:5000/v2"}},
	} {
		hs, err := hosts(tt.ref)
		if err != nil {
			t.Fatal(err)
		}
		var got []string
		for _, h := range hs {
			got = append(got, h.Scheme+"://"+h.Host+h.Path)
		}
		if len(got) != len(tt.want) {
			t.Fatalf("%s: hosts %v, want %v", tt.ref, got, tt.want)
		}
		for i := range got {
			if got[i] != tt.want[i] {
				t.Errorf("%s: host %d = %s, want %s", tt.ref, i, got[i], tt.want[i])
			}
		}
		// Only the registry itself may be pushed to; mirrors pull and resolve.
		if last := hs[len(hs)-1]; last.Capabilities&0x4 == 0 {
			t.Errorf("%s: the registry itself cannot push: %v", tt.ref, last.Capabilities)
		}
	}
	g.Registry.CAs = []string{"not a certificate"}
	if _, err := g.Hosts(); err == nil {
		t.Error("a CA that is not PEM was accepted")
	}
}

func TestProxy(t *testing.T) {
	g := &Getter{Proxy: "http://proxy.example:3128", NoProxy: []string{"localhost", ".internal", "10.0.0.0/8"}}
	f, err := g.proxyFunc()
	if err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		url, want string
	}{
		{"https://registry.example.com/v2/", "http://proxy.example:3128"},
		{"https://r.internal/v2/", ""},
		{"https://10.1.2.3:5000/v2/", ""},
	} {
		u, _ := url.Parse(tt.url)
		p, err := f(&http.Request{URL: u})
		got := ""
		if p != nil {
			got = p.String()
		}
		if err != nil || got != tt.want {
			t.Errorf("proxy for %s = %q, %v; want %q", tt.url, got, err, tt.want)
		}
	}
	if f, _ := (&Getter{}).proxyFunc(); f != nil {
		t.Error("a proxy without settings")
	}
}

func TestArchiveImageName(t *testing.T) {
	a, b := ArchiveImageName("/run/cidata/a.tar"), ArchiveImageName("/run/cidata/b.tar")
	if a == b || a != ArchiveImageName("/run/cidata/a.tar") {
		t.Errorf("archive names %q %q: want distinct, stable names", a, b)
	}
}
