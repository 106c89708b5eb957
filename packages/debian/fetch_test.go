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

func TestLoadLock(t *testing.T) {
	good := `suite = "bookworm"
[[package]]
name = "a"
version = "1"
filename = "pool/a.deb"
size = 3
sha256 = "` + strings.Repeat("ab", 32) + `"
`
	cases := []struct {
		name, text, want string
	}{
		{"ok", good, ""},
		{"unknown key", good + "colour = \"red\"\n", `unknown key "package.colour"`},
		{"bad hash", strings.Replace(good, strings.Repeat("ab", 32), "xyz", 1), "package a: sha256"},
		{"twice", good + strings.SplitN(good, "\n", 2)[1], "package a listed twice"},
		{"syntax", "suite = \n", "line 1"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "x.lock")
			os.WriteFile(path, []byte(c.text), 0o644)
			l, err := LoadLock(path)
			if c.want == "" {
				if err != nil {
					t.Fatal(err)
				}
				if _, err := l.Find("a"); err != nil {
					t.Fatal(err)
				}
				if _, err := l.Find("nope"); err == nil || !strings.Contains(err.Error(), "nope is not pinned") {
					t.Fatalf("Find(nope) = %v", err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), c.want) || !strings.Contains(err.Error(), path) {
				t.Fatalf("got %v, want error with %q and the file name", err, c.want)
			}
		})
	}
}

func TestRealLockFileParses(t *testing.T) {
	l, err := LoadLock("../debian.lock")
	if err != nil {
		t.Fatal(err)
	}
	for _, n := range []string{"systemd-boot-efi", "busybox-static"} {
		if _, err := l.Find(n); err != nil {
			t.Error(err)
		}
	}
}
