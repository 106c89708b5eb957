package updateconfig

import (
	"encoding/base64"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/ballast-os/ballast/apiserver/apitypes"
	"github.com/ballast-os/ballast/apiserver/settings"
	"github.com/ballast-os/ballast/contract"
)

func decode(t *testing.T, body string) settings.Settings {
	t.Helper()
	s, err := settings.DecodeJSON(strings.NewReader(body))
	if err != nil {
		t.Fatalf("DecodeJSON(%s): %v", body, err)
	}
	return s
}

func TestFromSettings(t *testing.T) {
	img := contract.UpdatePolicy{MetadataBaseURL: "https://updates.example/meta/", TargetsBaseURL: "https://updates.example/targets/", HasRoot: true}
	tests := []struct {
		name     string
		settings string
		img      contract.UpdatePolicy
		want     Config // Client aside
		wantErr  string // the error wraps ErrUpdatesNotConfigured
	}{
		{name: "image defaults", settings: `{"updates":{"seed":7}}`, img: img,
			want: Config{MetadataBaseURL: "https://updates.example/meta/", TargetsBaseURL: "https://updates.example/targets/", VersionLock: "latest", Seed: 7}},
		{name: "settings win", img: img,
			settings: `{"updates":{"metadata-base-url":"http://10.0.2.100:8080/m","targets-base-url":"http://10.0.2.100:8080/t","version-lock":"1.0.0","ignore-waves":true,"seed":2047}}`,
			want:     Config{MetadataBaseURL: "http://10.0.2.100:8080/m", TargetsBaseURL: "http://10.0.2.100:8080/t", VersionLock: "1.0.0", IgnoreWaves: true, Seed: 2047}},
		{name: "one from each", settings: `{"updates":{"targets-base-url":"https://mirror.example/t","seed":0}}`, img: img,
			want: Config{MetadataBaseURL: "https://updates.example/meta/", TargetsBaseURL: "https://mirror.example/t", VersionLock: "latest", Seed: 0}},
		{name: "no metadata url", settings: `{"updates":{"targets-base-url":"https://mirror.example/t","seed":1}}`, img: contract.UpdatePolicy{HasRoot: true},
			wantErr: "settings.updates.metadata-base-url is not set and the image has no default"},
		{name: "no targets url", settings: `{"updates":{"seed":1}}`, img: contract.UpdatePolicy{MetadataBaseURL: "https://u.example/m", HasRoot: true},
			wantErr: "settings.updates.targets-base-url is not set and the image has no default"},
		{name: "bad image default", settings: `{"updates":{"seed":1}}`, img: contract.UpdatePolicy{MetadataBaseURL: "file:///srv/m", TargetsBaseURL: "https://u.example/t", HasRoot: true},
			wantErr: "settings.updates.metadata-base-url: the image's default: \"file:///srv/m\": want http(s)://host"},
		{name: "no root", settings: `{"updates":{"seed":1}}`, img: contract.UpdatePolicy{MetadataBaseURL: "https://u.example/m", TargetsBaseURL: "https://u.example/t"},
			wantErr: "the image carries no trusted root.json (/usr/lib/ballast/updates/root.json)"},
		{name: "no seed", settings: `{}`, img: img, wantErr: "settings.updates.seed is not set"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := FromSettings(decode(t, tt.settings), tt.img)
			if tt.wantErr != "" {
				if !errors.Is(err, apitypes.ErrUpdatesNotConfigured) || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v, want ErrUpdatesNotConfigured with %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got.Client == nil {
				t.Fatal("no HTTP client")
			}
			got.Client = nil
			if got != tt.want {
				t.Fatalf("FromSettings = %+v, want %+v", got, tt.want)
			}
		})
	}
}

// The client goes through the proxy of the settings, except to the hosts of no-proxy and to
// loopback.
func TestClientProxy(t *testing.T) {
	var proxied []string
	proxy := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		proxied = append(proxied, r.Method+" "+r.URL.String())
		fmt.Fprint(w, "via proxy")
	}))
	defer proxy.Close()
	direct := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { fmt.Fprint(w, "direct") }))
	defer direct.Close()
	get := func(c *http.Client, url string) string {
		t.Helper()
		resp, err := c.Get(url)
		if err != nil {
			t.Fatalf("GET %s: %v", url, err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return string(b)
	}

	// No proxy set: requests go straight to the host.
	c, err := HTTPClient(settings.Settings{})
	if err != nil {
		t.Fatal(err)
	}
	if got := get(c, direct.URL+"/1.root.json"); got != "direct" {
		t.Fatalf("without a proxy: %q", got)
	}

	hostPort := strings.TrimPrefix(proxy.URL, "http://")
	s := decode(t, `{"network":{"https-proxy":"`+hostPort+`","no-proxy":[".internal.example","10.1.0.0/16"]}}`)
	c, err = HTTPClient(s)
	if err != nil {
		t.Fatal(err)
	}
	if got := get(c, "http://updates.example/meta/timestamp.json"); got != "via proxy" {
		t.Fatalf("through the proxy: %q", got)
	}
	if len(proxied) != 1 || proxied[0] != "GET http://updates.example/meta/timestamp.json" {
		t.Fatalf("the proxy saw %q", proxied)
	}
	// Loopback is never proxied, whatever no-proxy says.
	if got := get(c, direct.URL+"/x"); got != "direct" {
		t.Fatalf("loopback: %q", got)
	}
	p, err := Proxy(s)
	if err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		url     string
		proxied bool
	}{
		{"https://updates.example/t/root.zst", true},
		{"https://repo.internal.example/m/1.root.json", false},
		{"http://10.1.2.3:8080/m", false},
		{"http://10.2.0.1/m", true},
		{"http://localhost:8080/m", false},
	} {
		req, _ := http.NewRequest("GET", tt.url, nil)
		u, err := p(req)
		if err != nil || (u != nil) != tt.proxied || u != nil && u.Host != hostPort {
			t.Errorf("%s: proxy %v, %v; want proxied %v", tt.url, u, err, tt.proxied)
		}
	}
}

// A repository with a certificate of a private CA is reached once the CA is a trusted bundle of
// settings.pki, and not before.
func TestClientTrustsPKIBundles(t *testing.T) {
	srv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { fmt.Fprint(w, "ok") }))
	defer srv.Close()
	ca := base64.StdEncoding.EncodeToString(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: srv.Certificate().Raw}))
	for _, tt := range []struct {
		trusted bool
		wantErr string
	}{{false, "certificate signed by unknown authority"}, {true, ""}} {
		c, err := HTTPClient(decode(t, fmt.Sprintf(`{"pki":{"repo":{"data":%q,"trusted":%v}}}`, ca, tt.trusted)))
		if err != nil {
			t.Fatal(err)
		}
		resp, err := c.Get(srv.URL + "/1.root.json")
		if tt.wantErr != "" {
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("untrusted bundle: %v, want %q", err, tt.wantErr)
			}
			continue
		}
		if err != nil {
			t.Fatalf("trusted bundle: %v", err)
		}
		resp.Body.Close()
	}
}
