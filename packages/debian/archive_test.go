package debian

import (
	"bytes"
	"compress/gzip"
	"context"
	"crypto/sha256"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ProtonMail/go-crypto/openpgp"
)

const (
	mainPackages = "/debian/dists/bookworm/main/binary-amd64/Packages.xz"
	mainRelease  = "/debian/dists/bookworm/InRelease"
	secPackages  = "/debian-security/dists/bookworm-security/main/binary-amd64/Packages.gz"
	secRelease   = "/debian-security/dists/bookworm-security/InRelease"
)

// fixtureArchive is a two-source archive as URL path → content: bookworm with Packages.xz and
// bookworm-security with only Packages.gz and a Valid-Until, both signed by key.
func fixtureArchive(t *testing.T, key *openpgp.Entity) map[string][]byte {
	t.Helper()
	main := fixtureStanza("app", "1.0-1", "amd64", "Depends: libc6 (>= 2.36), awk") +
		fixtureStanza("libc6", "2.36-9", "amd64") +
		fixtureStanza("mawk", "1.3.4", "amd64", "Provides: awk") +
		fixtureStanza("broken", "1", "amd64", "Depends: libgone1")
	sec := fixtureStanza("libc6", "2.36-9+deb12u10", "amd64")
	var gz bytes.Buffer
	w := gzip.NewWriter(&gz)
	w.Write([]byte(sec))
	w.Close()
	files := map[string][]byte{
		mainPackages: xzBytes(t, []byte(main)),
		secPackages:  gz.Bytes(),
	}
	files[mainRelease] = clearsigned(t, releaseText("bookworm", time.Time{}, map[string][]byte{
		"main/binary-amd64/Packages.xz": files[mainPackages],
		"main/binary-amd64/Packages":    []byte(main),
		"main/binary-arm64/Packages.xz": []byte("other arch"),
	}), key)
	files[secRelease] = clearsigned(t, releaseText("bookworm-security", time.Now().Add(7*24*time.Hour), map[string][]byte{
		"main/binary-amd64/Packages.gz": files[secPackages],
	}), key)
	return files
}

func serve(t *testing.T, files map[string][]byte) *httptest.Server {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, ok := files[r.URL.Path]
		if !ok {
			http.NotFound(w, r)
			return
		}
		w.Write(b)
	}))
	t.Cleanup(srv.Close)
	return srv
}

func fixtureSources(url string) []Source {
	return []Source{
		{Name: "bookworm", URL: url + "/debian", Suite: "bookworm", Component: "main"},
		{Name: "bookworm-security", URL: url + "/debian-security/", Suite: "bookworm-security", Component: "main"},
	}
}

func TestRefresh(t *testing.T) {
	key, stranger := testKey(t, "archive"), testKey(t, "stranger")
	keys := testKeyring(t, key)
	tampered := []byte("tampered")
	tamperedSum := fmt.Sprintf("%x", sha256.Sum256(tampered))
	cases := []struct {
		name   string
		change func(files map[string][]byte)
		wanted []string
		want   []string // error texts; none means success
	}{
		{name: "ok"},
		{
			name:   "tampered Packages",
			change: func(f map[string][]byte) { f[mainPackages] = tampered },
			want:   []string{"dists/bookworm/main/binary-amd64/Packages.xz", "sha256 " + tamperedSum, "InRelease lists"},
		},
		{
			name:   "longer Packages",
			change: func(f map[string][]byte) { f[mainPackages] = append(f[mainPackages], make([]byte, 4096)...) },
			want:   []string{"Packages.xz: got more than"},
		},
		{
			name: "signed by another key",
			change: func(f map[string][]byte) {
				f[secRelease] = clearsigned(t, releaseText("bookworm-security", time.Time{}, map[string][]byte{"main/binary-amd64/Packages.gz": f[secPackages]}), stranger)
			},
			want: []string{"source bookworm-security", "signed only by key " + keyID(stranger.PrimaryKey.KeyId)},
		},
		{
			name: "expired Valid-Until",
			change: func(f map[string][]byte) {
				f[secRelease] = clearsigned(t, releaseText("bookworm-security", time.Now().Add(-time.Hour), map[string][]byte{"main/binary-amd64/Packages.gz": f[secPackages]}), key)
			},
			want: []string{"bookworm-security/InRelease: expired: Valid-Until"},
		},
		{
			name:   "unsigned",
			change: func(f map[string][]byte) { f[mainRelease] = []byte(releaseText("bookworm", time.Time{}, nil)) },
			want:   []string{"bookworm/InRelease: not a clearsigned file"},
		},
		{
			name:   "another suite's InRelease",
			change: func(f map[string][]byte) { f[secRelease] = f[mainRelease] },
			want:   []string{`is for suite "oldbookworm" (codename "bookworm"), not "bookworm-security"`},
		},
		{
			name: "no Packages listed",
			change: func(f map[string][]byte) {
				f[secRelease] = clearsigned(t, releaseText("bookworm-security", time.Time{}, map[string][]byte{"main/i18n/Index": nil}), key)
			},
			want: []string{"no main/binary-amd64/Packages{.gz,.xz,} in the SHA256 list"},
		},
		{
			name:   "mirror answers 404",
			change: func(f map[string][]byte) { delete(f, secPackages) },
			want:   []string{"Packages.gz: 404"},
		},
		{
			name: "by hash",
			change: func(f map[string][]byte) {
				text := strings.Replace(releaseText("bookworm-security", time.Time{}, map[string][]byte{"main/binary-amd64/Packages.gz": f[secPackages]}),
					"Architectures:", "Acquire-By-Hash: yes\nArchitectures:", 1)
				f[secRelease] = clearsigned(t, text, key)
				f[strings.Replace(secPackages, "Packages.gz", fmt.Sprintf("by-hash/SHA256/%x", sha256.Sum256(f[secPackages])), 1)] = f[secPackages]
				f[secPackages] = tampered // a newer file at the plain path must not be read
			},
		},
		{
			name:   "package not found",
			wanted: []string{"app", "broken"},
			want:   []string{"package libgone1 not found (required by broken 1, Depends: libgone1)"},
		},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			files := fixtureArchive(t, key)
			if c.change != nil {
				c.change(files)
			}
			srv := serve(t, files)
			wanted := c.wanted
			if wanted == nil {
				wanted = []string{"app"}
			}
			l, err := Refresh(context.Background(), fixtureSources(srv.URL), keys, wanted, []string{"dpkg"})
			if len(c.want) > 0 {
				if err == nil {
					t.Fatalf("got %+v, want an error", l)
				}
				t.Log(err)
				for _, w := range c.want {
					if !strings.Contains(err.Error(), w) {
						t.Errorf("error %q lacks %q", err, w)
					}
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			var got []string
			for _, p := range l.Packages {
				got = append(got, p.Name+" "+p.Version+" "+p.Source)
			}
			want := "app 1.0-1 bookworm, libc6 2.36-9+deb12u10 bookworm-security, mawk 1.3.4 bookworm"
			if strings.Join(got, ", ") != want {
				t.Errorf("got %s, want %s", strings.Join(got, ", "), want)
			}
			if len(l.Sources) != 2 || strings.Join(l.Wanted, ",") != "app" || strings.Join(l.Exclude, ",") != "dpkg" {
				t.Errorf("lock header: %+v", l)
			}
		})
	}
}

func TestLockCommand(t *testing.T) {
	key := testKey(t, "archive")
	srv := serve(t, fixtureArchive(t, key))
	repo := t.TempDir()
	if err := os.Rename(keyDir(t, key), filepath.Join(repo, "keys")); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(repo, "debian.lock")
	// The existing lock names the sources (here the test server) and pins an older libc6.
	old := &Lock{
		Sources: fixtureSources(srv.URL),
		Packages: []Package{
			{Name: "libc6", Version: "2.36-9", Source: "bookworm", Filename: "pool/libc6.deb", Size: 1, SHA256: strings.Repeat("00", 32)},
			{Name: "gone", Version: "1", Source: "bookworm", Filename: "pool/gone.deb", Size: 1, SHA256: strings.Repeat("00", 32)},
		},
	}
	if err := WriteLock(path, old); err != nil {
		t.Fatal(err)
	}
	var log []string
	logf := func(f string, a ...any) { log = append(log, fmt.Sprintf(f, a...)) }
	if err := LockCommand(context.Background(), path, []string{"app"}, []string{"dpkg"}, logf); err != nil {
		t.Fatal(err)
	}
	text := strings.Join(log, "\n")
	for _, w := range []string{
		"source bookworm: bookworm main of", "signed by " + keyID(key.PrimaryKey.KeyId),
		"lock: + app 1.0-1", "lock: ~ libc6 2.36-9 -> 2.36-9+deb12u10", "lock: - gone 1", "lock: wrote " + path + ": 3 packages",
	} {
		if !strings.Contains(text, w) {
			t.Errorf("log lacks %q:\n%s", w, text)
		}
	}
	first, _ := os.ReadFile(path)
	l, err := LoadLock(path)
	if err != nil {
		t.Fatal(err)
	}
	if p, _ := l.Find("libc6"); p.Source != "bookworm-security" || strings.Join(p.RequiredBy, ",") != "app" {
		t.Errorf("libc6 pinned as %+v", p)
	}
	// A second run with nothing changed upstream reports no changes and writes the same bytes.
	log = nil
	if err := LockCommand(context.Background(), path, []string{"app"}, []string{"dpkg"}, logf); err != nil {
		t.Fatal(err)
	}
	if again, _ := os.ReadFile(path); string(again) != string(first) {
		t.Errorf("second run changed the lock:\n%s\n---\n%s", first, again)
	}
	if strings.Contains(strings.Join(log, "\n"), "lock: +") {
		t.Errorf("second run reports changes: %v", log)
	}
}
