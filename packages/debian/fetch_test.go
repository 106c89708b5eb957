package debian

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestFetchVerifiesAndCaches(t *testing.T) {
	body := []byte("pretend this is a .deb")
	sum := sha256.Sum256(body)
	hits := 0
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hits++
		if r.URL.Path == "/pool/good.deb" {
			w.Write(body)
			return
		}
		w.Write([]byte("something else"))
	}))
	defer srv.Close()
	cache := t.TempDir()
	f := &Fetcher{Mirror: srv.URL, CacheDir: cache}
	good := Package{Name: "good", Version: "1", Filename: "pool/good.deb", Size: int64(len(body)), SHA256: hex.EncodeToString(sum[:])}

	p, err := f.Path(context.Background(), good)
	if err != nil {
		t.Fatal(err)
	}
	if b, _ := os.ReadFile(p); string(b) != string(body) {
		t.Fatalf("cached content %q", b)
	}
	if _, err := f.Path(context.Background(), good); err != nil || hits != 1 {
		t.Fatalf("second fetch: err=%v hits=%d (want a cache hit)", err, hits)
	}

	// A damaged cache entry is refetched.
	os.WriteFile(p, []byte("rot"), 0o644)
	if _, err := f.Path(context.Background(), good); err != nil || hits != 2 {
		t.Fatalf("after cache damage: err=%v hits=%d", err, hits)
	}

	// The cache is content-addressed, so an altered mirror file is only seen on a cold cache.
	bad := good
	bad.Name, bad.Filename = "altered", "pool/altered.deb"
	cold := &Fetcher{Mirror: srv.URL, CacheDir: t.TempDir()}
	_, err = cold.Path(context.Background(), bad)
	if err == nil || !strings.Contains(err.Error(), "altered") || !strings.Contains(err.Error(), good.SHA256) {
		t.Fatalf("altered package: want error naming package and pinned hash, got %v", err)
	}
	if m, _ := filepath.Glob(filepath.Join(cold.CacheDir, "debs", "*")); len(m) != 0 {
		t.Fatalf("a rejected download must not stay in the cache: %v", m)
	}
}

func TestFetchFromSource(t *testing.T) {
	body := []byte("security fix")
	sum := sha256.Sum256(body)
	var paths []string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		paths = append(paths, r.URL.Path)
		w.Write(body)
	}))
	defer srv.Close()
	sources := []Source{
		{Name: "bookworm", URL: DefaultMirror, Suite: "bookworm", Component: "main"},
		{Name: "bookworm-security", URL: srv.URL + "/debian-security", Suite: "bookworm-security", Component: "main"},
	}
	p := Package{Name: "libc6", Version: "2", Source: "bookworm-security", Filename: "pool/libc6.deb", Size: int64(len(body)), SHA256: hex.EncodeToString(sum[:])}
	cases := []struct {
		name, mirror, source, want string
	}{
		// The mirror override is for the main archive; the security source keeps its URL.
		{"security", srv.URL + "/mirror", "bookworm-security", "/debian-security/pool/libc6.deb"},
		{"main via mirror", srv.URL + "/mirror", "bookworm", "/mirror/pool/libc6.deb"},
		{"legacy lock via mirror", srv.URL + "/mirror", "", "/mirror/pool/libc6.deb"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			paths = nil
			f := &Fetcher{Mirror: c.mirror, Sources: sources, CacheDir: t.TempDir()}
			q := p
			q.Source = c.source
			if _, err := f.Path(context.Background(), q); err != nil {
				t.Fatal(err)
			}
			if len(paths) != 1 || paths[0] != c.want {
				t.Fatalf("fetched %v, want %s", paths, c.want)
			}
		})
	}
	f := &Fetcher{CacheDir: t.TempDir()}
	if _, err := f.Path(context.Background(), p); err == nil || !strings.Contains(err.Error(), `source "bookworm-security" unknown`) {
		t.Fatalf("fetcher without sources: %v", err)
	}
}
