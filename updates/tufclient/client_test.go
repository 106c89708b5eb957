package tufclient

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/sigstore/sigstore/pkg/signature"
	"github.com/theupdateframework/go-tuf/v2/metadata"

	"github.com/ballast-os/ballast/contract"
	"github.com/ballast-os/ballast/updates/manifest"
	"github.com/ballast-os/ballast/updates/tufrepo"
	"github.com/ballast-os/ballast/updates/tufrepo/repotest"
)

// repoServer serves a repository's published tree and counts the bytes it sends. intercept, when
// set, may answer a request itself.
type repoServer struct {
	*httptest.Server
	dir    string
	served atomic.Int64

	mu        sync.Mutex
	intercept func(w http.ResponseWriter, r *http.Request) bool
	ranges    []string // Range headers of target requests
}

type countingWriter struct {
	http.ResponseWriter
	n *atomic.Int64
}

func (c countingWriter) Write(p []byte) (int, error) {
	n, err := c.ResponseWriter.Write(p)
	c.n.Add(int64(n))
	return n, err
}

func (c countingWriter) Unwrap() http.ResponseWriter { return c.ResponseWriter }

func serve(t *testing.T, dir string) *repoServer {
	s := &repoServer{dir: dir}
	files := http.FileServer(http.Dir(filepath.Join(dir, tufrepo.PublishedDir)))
	s.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.mu.Lock()
		icpt := s.intercept
		if strings.HasPrefix(r.URL.Path, "/targets/") {
			s.ranges = append(s.ranges, r.Header.Get("Range"))
		}
		s.mu.Unlock()
		cw := countingWriter{w, &s.served}
		if icpt != nil && icpt(cw, r) {
			return
		}
		files.ServeHTTP(cw, r)
	}))
	t.Cleanup(s.Close)
	return s
}

func (s *repoServer) setIntercept(f func(w http.ResponseWriter, r *http.Request) bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.intercept = f
}

func (s *repoServer) client(t *testing.T, cache string, root []byte, now func() time.Time) *Client {
	t.Helper()
	if root == nil {
		var err error
		if root, err = os.ReadFile(filepath.Join(s.dir, tufrepo.MetadataDir, "1.root.json")); err != nil {
			t.Fatal(err)
		}
	}
	c, err := New(Config{
		MetadataURL: s.URL + "/metadata", TargetsURL: s.URL + "/targets/", TrustedRoot: root,
		CacheDir: filepath.Join(cache, "cache"), DownloadDir: filepath.Join(cache, "downloads"),
		HTTPClient: s.Client(), Now: now,
	})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// newRepo makes a repository with one release of the qemu variant.
func newRepo(t *testing.T, spec repotest.Spec) (dir, build string, p *contract.Payload) {
	t.Helper()
	tmp := t.TempDir()
	dir, build = filepath.Join(tmp, "repo"), filepath.Join(tmp, "build")
	if err := tufrepo.Init(dir, tufrepo.Options{}); err != nil {
		t.Fatal(err)
	}
	p, err := repotest.Build(build, spec)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tufrepo.Add(dir, build, "notes", nil, ""); err != nil {
		t.Fatal(err)
	}
	return dir, build, p
}

func TestRefreshManifestFetch(t *testing.T) {
	dir, build, p := newRepo(t, repotest.Spec{Version: "1.0.0"})
	srv := serve(t, dir)
	host := t.TempDir()
	c := srv.client(t, host, nil, nil)
	ctx := context.Background()
	if err := c.Refresh(ctx); err != nil {
		t.Fatal(err)
	}
	m, err := c.Manifest(ctx, "qemu", "")
	if err != nil {
		t.Fatal(err)
	}
	if len(m.Releases) != 1 || m.Releases[0].Version != "1.0.0" || m.Releases[0].Payload.Root != p.Root {
		t.Fatalf("manifest: %+v", m)
	}
	if _, err := c.Manifest(ctx, "aws", ""); !errors.Is(err, ErrNotFound) {
		t.Errorf("manifest of an unknown variant: %v", err)
	}
	before := c.Stats().TargetBytes
	var payloadBytes int64
	for _, f := range []contract.PayloadFile{p.Root, p.Verity, p.UKI[contract.SlotA], p.UKI[contract.SlotB]} {
		var last int64
		path, err := c.Fetch(ctx, f.Name, func(done, total int64) {
			if total != f.Size || done < last || done > total {
				t.Errorf("progress %d/%d after %d", done, total, last)
			}
			last = done
		})
		if err != nil {
			t.Fatal(err)
		}
		got, _ := os.ReadFile(path)
		want, _ := os.ReadFile(filepath.Join(build, "update", f.Name))
		if !bytes.Equal(got, want) || last != f.Size {
			t.Errorf("%s: %d bytes fetched (progress %d), want the build's %d", f.Name, len(got), last, len(want))
		}
		payloadBytes += f.Size
	}
	if got := c.Stats().TargetBytes - before; got != payloadBytes {
		t.Errorf("transferred %d target bytes, the payload is %d", got, payloadBytes)
	}
	// Fetched again: nothing transferred.
	mid := c.Stats()
	if _, err := c.Fetch(ctx, p.Root.Name, nil); err != nil {
		t.Fatal(err)
	}
	if c.Stats() != mid {
		t.Errorf("a complete target was downloaded again: %+v -> %+v", mid, c.Stats())
	}
	if _, err := c.Fetch(ctx, "../escape", nil); err == nil {
		t.Error("a target name with .. accepted")
	}
}

func TestRootRotationIsCached(t *testing.T) {
	dir, _, _ := newRepo(t, repotest.Spec{Version: "1.0.0"})
	srv := serve(t, dir)
	host := t.TempDir()
	if err := tufrepo.Expire(dir, "root", time.Now().Add(48*time.Hour)); err != nil {
		t.Fatal(err)
	}
	c := srv.client(t, host, nil, nil)
	if err := c.Refresh(context.Background()); err != nil {
		t.Fatal(err)
	}
	// A restarted client with the image's version 1 root trusts the cached version 2.
	c2 := srv.client(t, host, nil, nil)
	r, err := metadata.Root().FromBytes(c2.trustedRoot())
	if err != nil || r.Signed.Version != 2 {
		t.Fatalf("trusted root after restart: version %v, %v", r, err)
	}
	// Root 2 expires before root 1 would: a client at that time must refuse.
	late := srv.client(t, host, nil, func() time.Time { return time.Now().Add(72 * time.Hour) })
	if err := late.Refresh(context.Background()); !errors.Is(err, ErrExpired) || !strings.Contains(err.Error(), "root.json version 2 expired") {
		t.Errorf("refresh after root 2 expired: %v", err)
	}
}

func TestTamperedTarget(t *testing.T) {
	dir, _, p := newRepo(t, repotest.Spec{Version: "1.0.0"})
	srv := serve(t, dir)
	published := filepath.Join(dir, tufrepo.TargetsDir, tufrepo.PublishedTargetName(p.Verity.Name, p.Verity.SHA256))
	data, err := os.ReadFile(published)
	if err != nil {
		t.Fatal(err)
	}
	data[len(data)/3] ^= 0x40
	if err := os.WriteFile(published, data, 0o644); err != nil {
		t.Fatal(err)
	}
	host := t.TempDir()
	c := srv.client(t, host, nil, nil)
	_, err = c.Fetch(context.Background(), p.Verity.Name, nil)
	if !errors.Is(err, ErrMismatch) || !strings.Contains(err.Error(), "sha256") || !strings.Contains(err.Error(), p.Verity.Name) {
		t.Fatalf("tampered target: %v", err)
	}
	t.Logf("tampered target: %v", err)
	left, _ := filepath.Glob(filepath.Join(host, "downloads", "*"))
	if len(left) != 0 {
		t.Errorf("files left after a tampered download: %v", left)
	}
}

func TestExpiredTimestamp(t *testing.T) {
	dir, _, _ := newRepo(t, repotest.Spec{Version: "1.0.0"})
	srv := serve(t, dir)
	at := time.Now().Add(-time.Hour).UTC().Truncate(time.Second)
	if err := tufrepo.Expire(dir, "timestamp", at); err != nil {
		t.Fatal(err)
	}
	c := srv.client(t, t.TempDir(), nil, nil)
	err := c.Refresh(context.Background())
	if !errors.Is(err, ErrExpired) || !strings.Contains(err.Error(), "timestamp.json version 3 expired at "+at.Format(time.RFC3339)) {
		t.Fatalf("expired timestamp: %v", err)
	}
	t.Logf("expired timestamp: %v", err)
	if _, err := c.Fetch(context.Background(), "manifests/qemu.json", nil); !errors.Is(err, ErrExpired) {
		t.Errorf("fetch without valid metadata: %v", err)
	}
	// A new timestamp heals the host that refused the expired one.
	if err := tufrepo.Refresh(dir, 72*time.Hour, 72*time.Hour); err != nil {
		t.Fatal(err)
	}
	if err := c.Refresh(context.Background()); err != nil {
		t.Fatalf("after the repository was refreshed: %v", err)
	}
	// Four days on, the served timestamp has expired again.
	late := srv.client(t, t.TempDir(), nil, func() time.Time { return time.Now().Add(96 * time.Hour) })
	if err := late.Refresh(context.Background()); !errors.Is(err, ErrExpired) {
		t.Errorf("four days later: %v", err)
	}
	// The same repository is good for a host whose clock is an hour and a half behind.
	early := srv.client(t, t.TempDir(), nil, func() time.Time { return time.Now().Add(-90 * time.Minute) })
	if err := early.Refresh(context.Background()); err != nil {
		t.Errorf("before the expiry: %v", err)
	}
}

func TestUnknownKey(t *testing.T) {
	dir, _, _ := newRepo(t, repotest.Spec{Version: "1.0.0"})
	other, _, _ := newRepo(t, repotest.Spec{Version: "1.0.0"})
	trusted, err := os.ReadFile(tufrepo.RootPath(dir))
	if err != nil {
		t.Fatal(err)
	}
	// A server with a repository of its own keys.
	srv := serve(t, other)
	err = srv.client(t, t.TempDir(), trusted, nil).Refresh(context.Background())
	if !errors.Is(err, ErrUnsigned) || !strings.Contains(err.Error(), "timestamp") {
		t.Fatalf("another repository's metadata: %v", err)
	}
	t.Logf("unknown key: %v", err)

	// The right repository, with a newer timestamp re-signed by a key the root does not list.
	real := serve(t, dir)
	host := t.TempDir()
	if err := real.client(t, host, nil, nil).Refresh(context.Background()); err != nil {
		t.Fatal(err)
	}
	ts, err := metadata.Timestamp().FromFile(filepath.Join(dir, tufrepo.MetadataDir, "timestamp.json"))
	if err != nil {
		t.Fatal(err)
	}
	_, priv, _ := ed25519.GenerateKey(rand.Reader)
	signer, _ := signature.LoadED25519Signer(priv)
	ts.Signed.Version++
	ts.ClearSignatures()
	if _, err := ts.Sign(signer); err != nil {
		t.Fatal(err)
	}
	if err := ts.ToFile(filepath.Join(dir, tufrepo.MetadataDir, "timestamp.json"), true); err != nil {
		t.Fatal(err)
	}
	err = real.client(t, host, nil, nil).Refresh(context.Background())
	if !errors.Is(err, ErrUnsigned) {
		t.Fatalf("timestamp signed by an unknown key: %v", err)
	}
}

func TestMetadataRollback(t *testing.T) {
	dir, _, _ := newRepo(t, repotest.Spec{Version: "1.0.0"})
	srv := serve(t, dir)
	host := t.TempDir()
	tsPath := filepath.Join(dir, tufrepo.MetadataDir, "timestamp.json")
	old, err := os.ReadFile(tsPath) // version 2, valid for a day
	if err != nil {
		t.Fatal(err)
	}
	if err := tufrepo.Refresh(dir, 0, 0); err != nil {
		t.Fatal(err)
	}
	if err := srv.client(t, host, nil, nil).Refresh(context.Background()); err != nil {
		t.Fatal(err)
	}
	// The server goes back to the older, validly signed timestamp; the host restarts.
	if err := os.WriteFile(tsPath, old, 0o644); err != nil {
		t.Fatal(err)
	}
	c := srv.client(t, host, nil, nil)
	err = c.Refresh(context.Background())
	if !errors.Is(err, ErrVersion) || !strings.Contains(err.Error(), "version 2 must be >= 3") {
		t.Fatalf("rolled back timestamp: %v", err)
	}
	t.Logf("rollback: %v", err)
	// A host that never saw version 3 accepts version 2: the check is the cache's doing.
	if err := srv.client(t, t.TempDir(), nil, nil).Refresh(context.Background()); err != nil {
		t.Errorf("fresh host: %v", err)
	}
}

func TestResume(t *testing.T) {
	root := make([]byte, 3<<20)
	rand.Read(root) // incompressible: the compressed file is as large
	dir, _, p := newRepo(t, repotest.Spec{Version: "1.0.0", Root: root})
	srv := serve(t, dir)
	host := t.TempDir()
	c := srv.client(t, host, nil, nil)
	ctx := context.Background()
	if err := c.Refresh(ctx); err != nil {
		t.Fatal(err)
	}
	const cut = 1 << 20
	srv.setIntercept(func(w http.ResponseWriter, r *http.Request) bool {
		if !strings.Contains(r.URL.Path, p.Root.Name) {
			return false
		}
		data, err := os.ReadFile(filepath.Join(dir, tufrepo.TargetsDir, tufrepo.PublishedTargetName(p.Root.Name, p.Root.SHA256)))
		if err != nil {
			t.Error(err)
			return false
		}
		w.Header().Set("Content-Length", fmt.Sprint(len(data)))
		w.WriteHeader(http.StatusOK)
		w.Write(data[:cut])
		if err := http.NewResponseController(w).Flush(); err != nil {
			t.Error(err)
		}
		panic(http.ErrAbortHandler) // the connection drops mid-file
	})
	_, err := c.Fetch(ctx, p.Root.Name, nil)
	if err == nil || !strings.Contains(err.Error(), "kept for resume") {
		t.Fatalf("interrupted download: %v", err)
	}
	partial, err := os.Stat(filepath.Join(host, "downloads", p.Root.SHA256+"."+p.Root.Name+".part"))
	if err != nil || partial.Size() == 0 || partial.Size() > cut {
		t.Fatalf("partial file: %v %v", partial, err)
	}
	srv.setIntercept(nil)
	servedBefore, statsBefore := srv.served.Load(), c.Stats().TargetBytes
	path, err := c.Fetch(ctx, p.Root.Name, nil)
	if err != nil {
		t.Fatal(err)
	}
	served, received := srv.served.Load()-servedBefore, c.Stats().TargetBytes-statsBefore
	if want := p.Root.Size - partial.Size(); served != want || received != want {
		t.Errorf("resume: served %d, received %d, want the missing %d bytes", served, received, want)
	}
	srv.mu.Lock()
	last := srv.ranges[len(srv.ranges)-1]
	srv.mu.Unlock()
	if last != fmt.Sprintf("bytes=%d-", partial.Size()) {
		t.Errorf("resumed with Range %q", last)
	}
	if ok, err := verifyFile(path, Target{Name: p.Root.Name, Length: p.Root.Size, hashes: mustTarget(t, c, p.Root.Name).hashes}); !ok || err != nil {
		t.Errorf("resumed file does not verify: %v", err)
	}
}

func mustTarget(t *testing.T, c *Client, name string) Target {
	t.Helper()
	tg, err := c.Target(context.Background(), name)
	if err != nil {
		t.Fatal(err)
	}
	return tg
}

func TestOversizedResponse(t *testing.T) {
	dir, _, p := newRepo(t, repotest.Spec{Version: "1.0.0"})
	srv := serve(t, dir)
	host := t.TempDir()
	c := srv.client(t, host, nil, nil)
	ctx := context.Background()
	if err := c.Refresh(ctx); err != nil {
		t.Fatal(err)
	}
	const endless = 256 << 20
	var stopped atomic.Int64
	srv.setIntercept(func(w http.ResponseWriter, r *http.Request) bool {
		if !strings.Contains(r.URL.Path, p.UKI[contract.SlotA].Name) {
			return false
		}
		// No Content-Length: the body goes on and on until the client hangs up.
		w.WriteHeader(http.StatusOK)
		chunk := bytes.Repeat([]byte("x"), 32<<10)
		var n int64
		for n < endless {
			m, err := w.Write(chunk)
			n += int64(m)
			if err != nil {
				break
			}
		}
		stopped.Store(n)
		return true
	})
	before := c.Stats().TargetBytes
	_, err := c.Fetch(ctx, p.UKI[contract.SlotA].Name, nil)
	if !errors.Is(err, ErrTooLarge) {
		t.Fatalf("endless response: %v", err)
	}
	if got := c.Stats().TargetBytes - before; got > p.UKI[contract.SlotA].Size+64<<10 {
		t.Errorf("read %d bytes of a %d-byte target", got, p.UKI[contract.SlotA].Size)
	}
	srv.Close() // waits for the handler
	if n := stopped.Load(); n >= endless {
		t.Errorf("the server wrote all %d bytes: the client did not hang up", n)
	}
	left, _ := filepath.Glob(filepath.Join(host, "downloads", "*"))
	if len(left) != 0 {
		t.Errorf("files left after an oversized response: %v", left)
	}
}

func TestAnnouncedTooLarge(t *testing.T) {
	dir, _, p := newRepo(t, repotest.Spec{Version: "1.0.0"})
	srv := serve(t, dir)
	c := srv.client(t, t.TempDir(), nil, nil)
	srv.setIntercept(func(w http.ResponseWriter, r *http.Request) bool {
		if !strings.Contains(r.URL.Path, p.Verity.Name) {
			return false
		}
		w.Header().Set("Content-Length", fmt.Sprint(p.Verity.Size+1))
		w.WriteHeader(http.StatusOK)
		w.Write(make([]byte, p.Verity.Size+1))
		return true
	})
	if _, err := c.Fetch(context.Background(), p.Verity.Name, nil); !errors.Is(err, ErrTooLarge) {
		t.Fatalf("announced too large: %v", err)
	}
	small, err := New(Config{MetadataURL: srv.URL + "/metadata", TargetsURL: srv.URL + "/targets", TrustedRoot: mustRead(t, filepath.Join(dir, tufrepo.MetadataDir, "1.root.json")),
		CacheDir: t.TempDir(), DownloadDir: t.TempDir(), HTTPClient: srv.Client(), MaxMetadataBytes: 300})
	if err != nil {
		t.Fatal(err)
	}
	if err := small.Refresh(context.Background()); !errors.Is(err, ErrTooLarge) {
		t.Errorf("metadata above MaxMetadataBytes: %v", err)
	}
}

func mustRead(t *testing.T, p string) []byte {
	t.Helper()
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestConfigErrors(t *testing.T) {
	dir := t.TempDir()
	if err := tufrepo.Init(dir, tufrepo.Options{}); err != nil {
		t.Fatal(err)
	}
	root := mustRead(t, tufrepo.RootPath(dir))
	good := Config{MetadataURL: "http://127.0.0.1/m", TargetsURL: "http://127.0.0.1/t", TrustedRoot: root, CacheDir: "/c", DownloadDir: "/d"}
	for _, tc := range []struct {
		name string
		edit func(*Config)
		want string
	}{
		{"metadata url", func(c *Config) { c.MetadataURL = "ftp://x" }, "metadata URL"},
		{"targets url", func(c *Config) { c.TargetsURL = "" }, "targets URL"},
		{"no root", func(c *Config) { c.TrustedRoot = nil }, "no trusted root"},
		{"bad root", func(c *Config) { c.TrustedRoot = []byte("{}") }, "trusted root.json"},
		{"no cache", func(c *Config) { c.CacheDir = "" }, "cache"},
	} {
		c := good
		tc.edit(&c)
		if _, err := New(c); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: %v", tc.name, err)
		}
	}
	if _, err := New(good); err != nil {
		t.Errorf("good config: %v", err)
	}
}

// TestWavesThroughRepository: two hosts with different seeds read the same signed manifest and
// take the new release at different times.
func TestWavesThroughRepository(t *testing.T) {
	tmp := t.TempDir()
	dir := filepath.Join(tmp, "repo")
	if err := tufrepo.Init(dir, tufrepo.Options{}); err != nil {
		t.Fatal(err)
	}
	t0 := time.Now().UTC().Truncate(time.Second)
	for _, v := range []string{"1.0.0", "2.0.0"} {
		b := filepath.Join(tmp, v)
		if _, err := repotest.Build(b, repotest.Spec{Version: v}); err != nil {
			t.Fatal(err)
		}
		var waves []manifest.Wave
		if v == "2.0.0" {
			var err error
			if waves, err = manifest.ParseWaves("1023@+1h,2047@+5h", t0); err != nil {
				t.Fatal(err)
			}
		}
		if _, err := tufrepo.Add(dir, b, "", waves, ""); err != nil {
			t.Fatal(err)
		}
	}
	srv := serve(t, dir)
	for _, tc := range []struct {
		seed  int
		after time.Duration
		want  string
	}{
		{100, 30 * time.Minute, ""}, {2000, 30 * time.Minute, ""},
		{100, time.Hour, "2.0.0"}, {2000, time.Hour, ""},
		{100, 5 * time.Hour, "2.0.0"}, {2000, 5 * time.Hour, "2.0.0"},
	} {
		c := srv.client(t, t.TempDir(), nil, nil)
		m, err := c.Manifest(context.Background(), "qemu", "")
		if err != nil {
			t.Fatal(err)
		}
		ch, err := m.Choose("1.0.0", manifest.LockLatest, tc.seed, false, t0.Add(tc.after))
		if err != nil {
			t.Fatal(err)
		}
		got := ""
		if ch.Update != nil {
			got = ch.Update.Version
		}
		if got != tc.want {
			t.Errorf("seed %d at +%v: %q (%s), want %q", tc.seed, tc.after, got, ch.Reason, tc.want)
		}
	}
}
