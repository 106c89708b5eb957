package datastore

import (
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"sync"
	"testing"

	"github.com/ballast-os/ballast/apiserver/settings"
)

func ptr[T any](v T) *T { return &v }

func open(t *testing.T, dir string) (*Store, bool) {
	t.Helper()
	s, created, err := New(dir)
	if err != nil {
		t.Fatalf("New(%s): %v", dir, err)
	}
	t.Cleanup(func() { s.Close() })
	return s, created
}

func TestNewThenReopen(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "datastore")
	s, created := open(t, dir)
	if !created {
		t.Fatal("first New: created = false")
	}
	if !s.Live().IsEmpty() {
		t.Fatalf("new datastore has live settings %+v", s.Live())
	}
	if err := s.Stage(DefaultTx, settings.Settings{Motd: ptr("hi")}); err != nil {
		t.Fatal(err)
	}
	if err := s.Stage(DefaultTx, settings.Settings{Network: &settings.Network{Hostname: ptr("h1")}}); err != nil {
		t.Fatal(err)
	}
	if !s.Live().IsEmpty() {
		t.Fatal("staging changed the live settings")
	}
	changed, live, err := s.Commit(DefaultTx)
	if err != nil {
		t.Fatal(err)
	}
	want := settings.Settings{Motd: ptr("hi"), Network: &settings.Network{Hostname: ptr("h1")}}
	if !reflect.DeepEqual(live, want) || !reflect.DeepEqual(s.Live(), want) {
		t.Fatalf("live = %+v, want %+v", live, want)
	}
	if !reflect.DeepEqual(changed, []string{"settings.motd", "settings.network.hostname"}) {
		t.Fatalf("changed = %v", changed)
	}
	if _, ok := s.Pending(DefaultTx); ok {
		t.Fatal("pending left after commit")
	}
	// Left pending across the reopen: a second transaction must survive too.
	if err := s.Stage("other", settings.Settings{Motd: ptr("later")}); err != nil {
		t.Fatal(err)
	}
	if _, _, err := New(dir); err == nil || !strings.Contains(err.Error(), "in use") {
		t.Fatalf("second New while open: err = %v, want in use", err)
	}
	s.Close()
	if err := s.Stage(DefaultTx, settings.Settings{}); err != ErrClosed {
		t.Fatalf("Stage after Close = %v, want ErrClosed", err)
	}

	s2, created := open(t, dir)
	if created {
		t.Fatal("reopen: created = true")
	}
	if !reflect.DeepEqual(s2.Live(), want) {
		t.Fatalf("reopened live = %+v, want %+v", s2.Live(), want)
	}
	if p, ok := s2.Pending("other"); !ok || *p.Motd != "later" {
		t.Fatalf("reopened pending other = %+v, %v", p, ok)
	}
	if err := s2.Discard("other"); err != nil {
		t.Fatal(err)
	}
	if _, ok := s2.Pending("other"); ok {
		t.Fatal("Discard left the transaction")
	}
}

func TestCommitNothingPending(t *testing.T) {
	s, _ := open(t, t.TempDir())
	changed, live, err := s.Commit(DefaultTx)
	if err != nil || changed != nil || !live.IsEmpty() {
		t.Fatalf("Commit with nothing pending = %v, %+v, %v", changed, live, err)
	}
}

// TestCrashLeftovers builds the states a crash can leave behind and checks a reopen reads the
// complete files only.
func TestCrashLeftovers(t *testing.T) {
	dir := t.TempDir()
	s, _ := open(t, dir)
	if err := s.Stage(DefaultTx, settings.Settings{Motd: ptr("old")}); err != nil {
		t.Fatal(err)
	}
	if _, _, err := s.Commit(DefaultTx); err != nil {
		t.Fatal(err)
	}
	if err := s.Stage(DefaultTx, settings.Settings{Motd: ptr("new")}); err != nil {
		t.Fatal(err)
	}
	s.Close()

	// A write that died before its rename: half a file under a temp name.
	torn := filepath.Join(dir, tmpPrefix+liveFile+"-123")
	if err := os.WriteFile(torn, []byte(`{"motd": "ne`), 0o600); err != nil {
		t.Fatal(err)
	}
	tornPending := filepath.Join(dir, pendingDir, tmpPrefix+"default.json-9")
	if err := os.WriteFile(tornPending, []byte(`{`), 0o600); err != nil {
		t.Fatal(err)
	}

	s2, _ := open(t, dir)
	if got := *s2.Live().Motd; got != "old" {
		t.Fatalf("live motd after crash = %q, want old", got)
	}
	if p, ok := s2.Pending(DefaultTx); !ok || *p.Motd != "new" {
		t.Fatalf("pending after crash = %+v, %v", p, ok)
	}
	for _, f := range []string{torn, tornPending} {
		if _, err := os.Stat(f); !os.IsNotExist(err) {
			t.Errorf("leftover %s not removed (stat: %v)", f, err)
		}
	}

	// A commit that died after replacing live but before removing pending: committing the same
	// patch again must leave the same live settings.
	if _, _, err := s2.Commit(DefaultTx); err != nil {
		t.Fatal(err)
	}
	if err := s2.Stage(DefaultTx, settings.Settings{Motd: ptr("new")}); err != nil {
		t.Fatal(err)
	}
	if _, live, err := s2.Commit(DefaultTx); err != nil || *live.Motd != "new" {
		t.Fatalf("recommit = %+v, %v", live, err)
	}
}

func TestNewRefuses(t *testing.T) {
	tests := []struct {
		name    string
		files   map[string]string
		wantErr string
	}{
		{"newer version", map[string]string{versionFile: "2\n"}, "format version 2"},
		{"garbage version", map[string]string{versionFile: "one\n"}, "not a version number"},
		{"live without version", map[string]string{liveFile: "{}\n"}, "version is missing"},
		{"unknown key in live", map[string]string{versionFile: "1\n", liveFile: `{"motto":"x"}`}, "live.json: settings.motto: unknown key"},
		{"torn live", map[string]string{versionFile: "1\n", liveFile: `{"motd":`}, "live.json: invalid JSON"},
		{"bad pending", map[string]string{versionFile: "1\n", "pending/default.json": `{"motd":1}`}, "default.json: settings.motd: expected string"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			if err := os.MkdirAll(filepath.Join(dir, pendingDir), 0o700); err != nil {
				t.Fatal(err)
			}
			for name, body := range tt.files {
				if err := os.WriteFile(filepath.Join(dir, name), []byte(body), 0o600); err != nil {
					t.Fatal(err)
				}
			}
			s, _, err := New(dir)
			if err == nil {
				s.Close()
			}
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("New error = %v, want %q", err, tt.wantErr)
			}
			// A refused open must release the lock.
			if _, _, err := New(dir); err != nil && strings.Contains(err.Error(), "in use") {
				t.Fatal("refused New kept the lock")
			}
		})
	}
}

func TestBadTxName(t *testing.T) {
	s, _ := open(t, t.TempDir())
	for _, tx := range []string{"", "../live", "A", strings.Repeat("a", 65)} {
		if err := s.Stage(tx, settings.Settings{}); err == nil {
			t.Errorf("Stage(%q) succeeded", tx)
		}
	}
}

// TestConcurrent is meant for -race: readers run while a writer stages and commits.
func TestConcurrent(t *testing.T) {
	s, _ := open(t, t.TempDir())
	var wg sync.WaitGroup
	for range 4 {
		wg.Go(func() {
			for range 50 {
				l := s.Live()
				if l.Motd != nil && !strings.HasPrefix(*l.Motd, "m") {
					t.Errorf("read torn motd %q", *l.Motd)
				}
				s.Pending(DefaultTx)
			}
		})
	}
	for i := range 20 {
		if err := s.Stage(DefaultTx, settings.Settings{Motd: ptr("m" + strings.Repeat("x", i))}); err != nil {
			t.Fatal(err)
		}
		if _, _, err := s.Commit(DefaultTx); err != nil {
			t.Fatal(err)
		}
	}
	wg.Wait()
}
