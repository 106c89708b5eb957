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
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/ProtonMail/go-crypto/openpgp"

	"github.com/ballast-os/ballast/contract"
)

const (
	mainPackages = "/debian/dists/bookworm/main/binary-amd64/Packages.xz"
	mainArm64    = "/debian/dists/bookworm/main/binary-arm64/Packages.xz"
	mainRelease  = "/debian/dists/bookworm/InRelease"
	secPackages  = "/debian-security/dists/bookworm-security/main/binary-amd64/Packages.gz"
	secArm64     = "/debian-security/dists/bookworm-security/main/binary-arm64/Packages.gz"
	secRelease   = "/debian-security/dists/bookworm-security/InRelease"
)

// fixtureMain is bookworm main for one Debian architecture. The Architecture: all package "data"
// is needed by app on amd64 only, and by the arm64-only tool; each architecture has its kernel.
func fixtureMain(arch string) string {
	appDeps := "Depends: libc6 (>= 2.36), awk"
	if arch == "amd64" {
		appDeps += ", data"
	}
	return fixtureStanza("app", "1.0-1", arch, appDeps) +
		fixtureStanza("libc6", "2.36-9", arch) +
		fixtureStanza("mawk", "1.3.4", arch, "Provides: awk") +
		fixtureStanza("broken", "1", arch, "Depends: libgone1") +
		fixtureStanza("data", "1", "all") +
		fixtureStanza("tool", "1", arch, "Depends: data") +
		fixtureStanza("kernel-"+arch, "6.1", arch)
}

// fixtureArchive is a two-source archive as URL path → content: bookworm with Packages.xz and
// bookworm-security with only Packages.gz and a Valid-Until, both signed by key, each with the
// indexes of amd64 and arm64.
func fixtureArchive(t *testing.T, key *openpgp.Entity) map[string][]byte {
	t.Helper()
	files := map[string][]byte{}
	mainList, secList := map[string][]byte{}, map[string][]byte{}
	for _, arch := range []string{"amd64", "arm64"} {
		main := fixtureMain(arch)
		sec := fixtureStanza("libc6", "2.36-9+deb12u10", arch)
		var gz bytes.Buffer
		w := gzip.NewWriter(&gz)
		w.Write([]byte(sec))
		w.Close()
		files["/debian/dists/bookworm/main/binary-"+arch+"/Packages.xz"] = xzBytes(t, []byte(main))
		files["/debian-security/dists/bookworm-security/main/binary-"+arch+"/Packages.gz"] = gz.Bytes()
		mainList["main/binary-"+arch+"/Packages.xz"] = files["/debian/dists/bookworm/main/binary-"+arch+"/Packages.xz"]
		mainList["main/binary-"+arch+"/Packages"] = []byte(main)
		secList["main/binary-"+arch+"/Packages.gz"] = gz.Bytes()
	}
	files[mainRelease] = clearsigned(t, releaseText("bookworm", time.Time{}, mainList), key)
	files[secRelease] = clearsigned(t, releaseText("bookworm-security", time.Now().Add(7*24*time.Hour), secList), key)
	return files
}

// secReleaseOnly re-signs bookworm-security's InRelease listing only the given files.
func secReleaseOnly(t *testing.T, f map[string][]byte, key *openpgp.Entity, validUntil time.Time) []byte {
	return clearsigned(t, releaseText("bookworm-security", validUntil, map[string][]byte{
		"main/binary-amd64/Packages.gz": f[secPackages],
		"main/binary-arm64/Packages.gz": f[secArm64],
	}), key)
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

// lockListing shows a lock's packages one per line: name arch version source <- required_by.
func lockListing(pkgs []Package) string {
	var lines []string
	for _, p := range pkgs {
		l := fmt.Sprintf("%s %s %s %s", p.Name, p.Arch, p.Version, p.Source)
		if len(p.RequiredBy) > 0 {
			l += " <- " + strings.Join(p.RequiredBy, ",")
		}
		lines = append(lines, l)
	}
	return strings.Join(lines, "\n")
}

func TestRefresh(t *testing.T) {
	key, stranger := testKey(t, "archive"), testKey(t, "stranger")
	keys := testKeyring(t, key)
	tampered := []byte("tampered")
	tamperedSum := fmt.Sprintf("%x", sha256.Sum256(tampered))
	both := map[contract.Arch][]string{contract.AMD64: {"app"}, contract.ARM64: {"app", "tool"}}
	bothListing := strings.Join([]string{
		"app amd64 1.0-1 bookworm",
		"app arm64 1.0-1 bookworm",
		// app needs data on amd64 only; tool, pinned only for arm64, needs it there.
		"data all 1 bookworm <- app:amd64,tool",
		"libc6 amd64 2.36-9+deb12u10 bookworm-security <- app",
		"libc6 arm64 2.36-9+deb12u10 bookworm-security <- app",
		"mawk amd64 1.3.4 bookworm <- app",
		"mawk arm64 1.3.4 bookworm <- app",
		"tool arm64 1 bookworm",
	}, "\n")
	cases := []struct {
		name    string
		change  func(files map[string][]byte)
		wanted  map[contract.Arch][]string // both when nil
		listing string                     // the packages on success
		archs   string
		want    []string // error texts; none means success
	}{
		{name: "ok", listing: bothListing, archs: "amd64 arm64"},
		{
			name:    "amd64 only",
			change:  func(f map[string][]byte) { delete(f, mainArm64); delete(f, secArm64) }, // never fetched
			wanted:  map[contract.Arch][]string{contract.AMD64: {"app", "app"}},
			listing: "app amd64 1.0-1 bookworm\ndata all 1 bookworm <- app\nlibc6 amd64 2.36-9+deb12u10 bookworm-security <- app\nmawk amd64 1.3.4 bookworm <- app",
			archs:   "amd64",
		},
		{
			name:    "arm64 only",
			wanted:  map[contract.Arch][]string{contract.ARM64: {"kernel-arm64", "tool"}},
			listing: "data all 1 bookworm <- tool\nkernel-arm64 arm64 6.1 bookworm\ntool arm64 1 bookworm",
			archs:   "arm64",
		},
		{
			name:   "tampered Packages",
			change: func(f map[string][]byte) { f[mainPackages] = tampered },
			want:   []string{"dists/bookworm/main/binary-amd64/Packages.xz", "sha256 " + tamperedSum, "InRelease lists"},
		},
		{
			name:   "tampered arm64 Packages",
			change: func(f map[string][]byte) { f[mainArm64] = tampered },
			want:   []string{"dists/bookworm/main/binary-arm64/Packages.xz", "sha256 " + tamperedSum, "InRelease lists"},
		},
		{
			name:   "longer Packages",
			change: func(f map[string][]byte) { f[mainPackages] = append(f[mainPackages], make([]byte, 4096)...) },
			want:   []string{"Packages.xz: got more than"},
		},
		{
			name:   "signed by another key",
			change: func(f map[string][]byte) { f[secRelease] = secReleaseOnly(t, f, stranger, time.Time{}) },
			want:   []string{"source bookworm-security", "signed only by key " + keyID(stranger.PrimaryKey.KeyId)},
		},
		{
			name:   "expired Valid-Until",
			change: func(f map[string][]byte) { f[secRelease] = secReleaseOnly(t, f, key, time.Now().Add(-time.Hour)) },
			want:   []string{"bookworm-security/InRelease: expired: Valid-Until"},
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
			name: "no arm64 Packages listed",
			change: func(f map[string][]byte) {
				f[secRelease] = clearsigned(t, releaseText("bookworm-security", time.Time{}, map[string][]byte{"main/binary-amd64/Packages.gz": f[secPackages]}), key)
			},
			want: []string{"source bookworm-security", "no main/binary-arm64/Packages{.gz,.xz,} in the SHA256 list"},
		},
		{
			name: "architecture not in the archive",
			change: func(f map[string][]byte) {
				text := strings.Replace(releaseText("bookworm-security", time.Time{}, map[string][]byte{"main/binary-amd64/Packages.gz": f[secPackages]}),
					"Architectures: all amd64 arm64", "Architectures: all amd64", 1)
				f[secRelease] = clearsigned(t, text, key)
			},
			want: []string{"source bookworm-security", "architecture arm64 not among [all amd64]"},
		},
		{
			name:   "mirror answers 404",
			change: func(f map[string][]byte) { delete(f, secArm64) },
			want:   []string{"binary-arm64/Packages.gz: 404"},
		},
		{
			name: "by hash",
			change: func(f map[string][]byte) {
				text := strings.Replace(string(releaseText("bookworm-security", time.Time{}, map[string][]byte{
					"main/binary-amd64/Packages.gz": f[secPackages], "main/binary-arm64/Packages.gz": f[secArm64]})),
					"Architectures:", "Acquire-By-Hash: yes\nArchitectures:", 1)
				f[secRelease] = clearsigned(t, text, key)
				for _, p := range []string{secPackages, secArm64} {
					f[strings.Replace(p, "Packages.gz", fmt.Sprintf("by-hash/SHA256/%x", sha256.Sum256(f[p])), 1)] = f[p]
					f[p] = tampered // a newer file at the plain path must not be read
				}
			},
			listing: bothListing, archs: "amd64 arm64",
		},
		{
			name:   "package not found",
			wanted: map[contract.Arch][]string{contract.AMD64: {"app"}, contract.ARM64: {"app", "broken"}},
			want:   []string{"arm64: resolve app broken", "package libgone1 not found (required by broken 1, Depends: libgone1)"},
		},
		{
			name:   "package of another architecture",
			wanted: map[contract.Arch][]string{contract.AMD64: {"kernel-amd64"}, contract.ARM64: {"kernel-amd64"}},
			want:   []string{"arm64: resolve kernel-amd64: package kernel-amd64 not found in the index"},
		},
		{
			name: "all package differs between architectures",
			change: func(f map[string][]byte) {
				arm := strings.Replace(fixtureMain("arm64"), "Version: 1\nArchitecture: all", "Version: 2\nArchitecture: all", 1)
				f[mainArm64] = xzBytes(t, []byte(arm))
				f[mainRelease] = clearsigned(t, releaseText("bookworm", time.Time{}, map[string][]byte{
					"main/binary-amd64/Packages.xz": f[mainPackages], "main/binary-arm64/Packages.xz": f[mainArm64]}), key)
			},
			want: []string{"package data (all): amd64 resolves to 1 pool/main/d/data/data_1_all.deb from bookworm, arm64 to 2"},
		},
		{
			name:   "unknown architecture",
			wanted: map[contract.Arch][]string{contract.AMD64: {"app"}, "riscv64": {"app"}},
			want:   []string{`wanted packages for "riscv64": not one of`},
		},
		{
			name:   "architecture without packages",
			wanted: map[contract.Arch][]string{contract.AMD64: {"app"}, contract.ARM64: nil},
			want:   []string{"no wanted packages for arm64"},
		},
		{
			name:   "nothing wanted",
			wanted: map[contract.Arch][]string{},
			want:   []string{"no wanted packages for any architecture"},
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
				wanted = both
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
			if got := lockListing(l.Packages); got != c.listing {
				t.Errorf("got\n%s\nwant\n%s", got, c.listing)
			}
			if got := fmt.Sprint(l.Architectures); got != "["+c.archs+"]" {
				t.Errorf("architectures %s, want [%s]", got, c.archs)
			}
			for a, w := range wanted {
				if !slices.Equal(l.Wanted[a], sortedUnique(w)) {
					t.Errorf("wanted for %s: %v", a, l.Wanted[a])
				}
			}
			if len(l.Sources) != 2 || strings.Join(l.Exclude, ",") != "dpkg" {
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
	// The existing lock is from before arm64 (no architectures, one wanted list, no arch per
	// package); it names the sources (here the test server) and pins an older libc6.
	var sources strings.Builder
	for _, s := range fixtureSources(srv.URL) {
		fmt.Fprintf(&sources, "[[source]]\nname = %q\nurl = %q\nsuite = %q\ncomponent = %q\n", s.Name, s.URL, s.Suite, s.Component)
	}
	zeros := strings.Repeat("00", 32)
	legacy := `wanted = ["app"]
exclude = ["dpkg"]
` + sources.String() + `
[[package]]
name = "libc6"
version = "2.36-9"
source = "bookworm"
filename = "pool/libc6.deb"
size = 1
sha256 = "` + zeros + `"

[[package]]
name = "gone"
version = "1"
source = "bookworm"
filename = "pool/gone.deb"
size = 1
sha256 = "` + zeros + `"
`
	if err := os.WriteFile(path, []byte(legacy), 0o644); err != nil {
		t.Fatal(err)
	}
	var log []string
	logf := func(f string, a ...any) { log = append(log, fmt.Sprintf(f, a...)) }
	wanted := map[contract.Arch][]string{contract.AMD64: {"app"}, contract.ARM64: {"app", "kernel-arm64"}}
	if err := LockCommand(context.Background(), path, wanted, []string{"dpkg"}, logf); err != nil {
		t.Fatal(err)
	}
	text := strings.Join(log, "\n")
	for _, w := range []string{
		"source bookworm: bookworm main of", "signed by " + keyID(key.PrimaryKey.KeyId), "packages: amd64 7, arm64 7",
		"lock: + app:amd64 1.0-1", "lock: + app:arm64 1.0-1", "lock: + kernel-arm64:arm64 6.1", "lock: + data:all 1",
		"lock: ~ libc6:amd64 2.36-9 -> 2.36-9+deb12u10", "lock: + libc6:arm64 2.36-9+deb12u10", "lock: - gone:amd64 1",
		"lock: wrote " + path + ": 8 packages",
	} {
		if !strings.Contains(text, w) {
			t.Errorf("log lacks %q:\n%s", w, text)
		}
	}
	first, _ := os.ReadFile(path)
	for _, w := range []string{
		"architectures = [\"amd64\", \"arm64\"]\nexclude = [\"dpkg\"]\n\n[wanted]\namd64 = [\"app\"]\narm64 = [\"app\", \"kernel-arm64\"]\n",
		"name = \"libc6\"\narch = \"arm64\"\nversion = \"2.36-9+deb12u10\"\nsource = \"bookworm-security\"\n",
	} {
		if !strings.Contains(string(first), w) {
			t.Errorf("lock file lacks %q:\n%s", w, first)
		}
	}
	l, err := LoadLock(path)
	if err != nil {
		t.Fatal(err)
	}
	for _, a := range []contract.Arch{contract.AMD64, contract.ARM64} {
		p, err := l.Find("libc6", a)
		if err != nil || p.Source != "bookworm-security" || p.Arch != a.Info().Debian || strings.Join(p.RequiredBy, ",") != "app" ||
			p.Filename != "pool/main/l/libc6/libc6_2.36-9+deb12u10_"+string(a)+".deb" {
			t.Errorf("libc6 pinned for %s as %+v, %v", a, p, err)
		}
	}
	// A second run with nothing changed upstream reports no changes and writes the same bytes.
	log = nil
	if err := LockCommand(context.Background(), path, wanted, []string{"dpkg"}, logf); err != nil {
		t.Fatal(err)
	}
	if again, _ := os.ReadFile(path); string(again) != string(first) {
		t.Errorf("second run changed the lock:\n%s\n---\n%s", first, again)
	}
	if text := strings.Join(log, "\n"); strings.Contains(text, "lock: +") || strings.Contains(text, "lock: -") {
		t.Errorf("second run reports changes: %v", log)
	}
	// A failed refresh names the lock file and leaves it alone.
	err = LockCommand(context.Background(), path, map[contract.Arch][]string{contract.ARM64: {"kernel-amd64"}}, nil, logf)
	if err == nil || !strings.Contains(err.Error(), "lock "+path+": lock refresh: arm64:") {
		t.Errorf("unresolvable arm64 package: %v", err)
	}
	if again, _ := os.ReadFile(path); string(again) != string(first) {
		t.Error("a failed refresh changed the lock")
	}
}
