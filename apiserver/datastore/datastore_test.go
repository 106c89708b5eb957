package datastore

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ballast-os/ballast/apiserver/settings"
)

func ptr[T any](v T) *T { return &v }

func open(t *testing.T, dir string, opts ...Option) (*Store, bool) {
	t.Helper()
	s, created, err := New(dir, opts...)
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
	if !s.Live().IsEmpty() || string(s.LiveJSON()) != "{}" {
		t.Fatalf("new datastore has live settings %+v", s.Live())
	}
	if err := s.Stage(DefaultTx, settings.Settings{Motd: ptr("hi")}); err != nil {
		t.Fatal(err)
	}
	if err := s.Stage(DefaultTx, settings.Settings{Network: &settings.Network{Hostname: ptr[settings.Hostname]("h1")}}); err != nil {
		t.Fatal(err)
	}
	if !s.Live().IsEmpty() {
		t.Fatal("staging changed the live settings")
	}
	changed, live, err := s.Commit(DefaultTx)
	if err != nil {
		t.Fatal(err)
	}
	want := settings.Settings{Motd: ptr("hi"), Network: &settings.Network{Hostname: ptr[settings.Hostname]("h1")}}
	if !reflect.DeepEqual(live, want) || !reflect.DeepEqual(s.Live(), want) {
		t.Fatalf("live = %+v, want %+v", live, want)
	}
	if got := string(s.LiveJSON()); got != `{"motd":"hi","network":{"hostname":"h1"}}` {
		t.Fatalf("LiveJSON = %s", got)
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
	if got := s.Transactions(); !reflect.DeepEqual(got, []string{"other"}) {
		t.Fatalf("Transactions = %q", got)
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

func TestCommit(t *testing.T) {
	s, _ := open(t, t.TempDir())
	changed, live, err := s.Commit(DefaultTx)
	if err != nil || changed != nil || !live.IsEmpty() {
		t.Fatalf("Commit with nothing pending = %v, %+v, %v", changed, live, err)
	}
	if err := s.Stage("a", settings.Settings{Motd: ptr("x")}); err != nil {
		t.Fatal(err)
	}
	if err := s.Stage("b", settings.Settings{Motd: ptr("x"), NTP: &settings.NTP{TimeServers: []settings.TimeServer{"pool.example"}}}); err != nil {
		t.Fatal(err)
	}
	if changed, _, err := s.Commit("a"); err != nil || !reflect.DeepEqual(changed, []string{"settings.motd"}) {
		t.Fatalf("Commit a = %v, %v", changed, err)
	}
	// Only what differs from live counts as changed.
	if changed, _, err := s.Commit("b"); err != nil || !reflect.DeepEqual(changed, []string{"settings.ntp.time-servers"}) {
		t.Fatalf("Commit b = %v, %v", changed, err)
	}
	// A commit that would leave live settings breaking a rule across keys is refused whole.
	if err := s.Stage(DefaultTx, settings.Settings{Motd: ptr("y"), HostContainers: map[settings.ContainerName]*settings.HostContainer{"admin": {Enabled: ptr(true)}}}); err != nil {
		t.Fatal(err)
	}
	var ke *settings.KeyError
	if _, _, err := s.Commit(DefaultTx); !errors.As(err, &ke) || ke.Key() != "settings.host-containers.admin.source" {
		t.Fatalf("Commit of an incomplete container = %v", err)
	}
	if *s.Live().Motd != "x" {
		t.Fatal("a refused commit changed live")
	}
	if _, ok := s.Pending(DefaultTx); !ok {
		t.Fatal("a refused commit dropped the transaction")
	}
}

func TestLimits(t *testing.T) {
	s, _ := open(t, t.TempDir())
	for _, tx := range []string{"", "../live", "A", strings.Repeat("a", 65), "-x"} {
		if err := s.Stage(tx, settings.Settings{}); err == nil {
			t.Errorf("Stage(%q) succeeded", tx)
		}
	}
	for i := range MaxTransactions {
		if err := s.Stage(fmt.Sprintf("tx%d", i), settings.Settings{Motd: ptr("m")}); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.Stage("one-more", settings.Settings{Motd: ptr("m")}); err == nil || !strings.Contains(err.Error(), "transactions are pending") {
		t.Fatalf("Stage past MaxTransactions = %v", err)
	}
	if err := s.Stage("tx0", settings.Settings{Motd: ptr("n")}); err != nil {
		t.Fatalf("Stage into an existing transaction at the limit: %v", err)
	}
}

var errCrash = errors.New("injected crash")

// crashAt returns a fault hook that crashes the first write reaching step.
func crashAt(step string) Option {
	return func(s *Store) {
		s.fault = func(got string) error {
			if got == step {
				return errCrash
			}
			return nil
		}
	}
}

// die simulates the process dying: the lock goes with the process, nothing is cleaned up.
func die(s *Store) { s.lock.Close() }

var steps = []string{stepCreate, stepWrite, stepSync, stepRename, stepDirSync}

// TestInterruptedCommit crashes a commit at every step of its write and checks that the reopened
// datastore holds either the state before the commit or the state after it, never a mix: the
// old live settings with the patch still pending, or the new live settings without it.
func TestInterruptedCommit(t *testing.T) {
	old := settings.Settings{Motd: ptr("old"), Kernel: &settings.Kernel{Sysctl: map[settings.SysctlKey]settings.SysctlValue{"vm.a": "1"}}}
	patch := settings.Settings{Motd: ptr("new"), Kernel: &settings.Kernel{Sysctl: map[settings.SysctlKey]settings.SysctlValue{"vm.b": "2"}}}
	newLive := settings.Merge(old, patch)
	for _, step := range steps {
		t.Run(step, func(t *testing.T) {
			dir := t.TempDir()
			s, _ := open(t, dir)
			if err := s.Stage("t", old); err != nil {
				t.Fatal(err)
			}
			if _, _, err := s.Commit("t"); err != nil {
				t.Fatal(err)
			}
			if err := s.Stage(DefaultTx, patch); err != nil {
				t.Fatal(err)
			}
			s.Close()

			s, _ = open(t, dir, crashAt(step))
			if _, _, err := s.Commit(DefaultTx); !errors.Is(err, errCrash) {
				t.Fatalf("Commit = %v, want the injected crash", err)
			}
			// Readers of the crashed process never saw the new state.
			if !reflect.DeepEqual(s.Live(), old) {
				t.Fatalf("live after a failed commit = %+v", s.Live())
			}
			die(s)

			s2, created := open(t, dir)
			if created {
				t.Fatal("reopen after a crash: created = true")
			}
			live := s2.Live()
			p, pending := s2.Pending(DefaultTx)
			switch {
			case reflect.DeepEqual(live, old) && pending && reflect.DeepEqual(p, patch):
				if step == stepDirSync {
					t.Fatal("the rename happened but the old state is back")
				}
			case reflect.DeepEqual(live, newLive) && !pending:
				if step != stepDirSync {
					t.Fatalf("crash before the rename (%s) but the new state is live", step)
				}
			default:
				t.Fatalf("mixed state after a crash at %s: live %+v, pending %+v (%v)", step, live, p, pending)
			}
			entries, _ := os.ReadDir(dir)
			for _, e := range entries {
				if strings.HasPrefix(e.Name(), tmpPrefix) {
					t.Errorf("unfinished write %s left after reopen", e.Name())
				}
			}
			// And the datastore works on: the commit can be made (again).
			if _, _, err := s2.Commit(DefaultTx); err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(s2.Live(), newLive) {
				t.Fatalf("live after recommit = %+v", s2.Live())
			}
		})
	}
}

// TestInterruptedStage does the same for staging: the patch is staged whole or not at all.
func TestInterruptedStage(t *testing.T) {
	for _, step := range steps {
		t.Run(step, func(t *testing.T) {
			dir := t.TempDir()
			s, _ := open(t, dir)
			if err := s.Stage(DefaultTx, settings.Settings{Motd: ptr("a")}); err != nil {
				t.Fatal(err)
			}
			s.Close()
			s, _ = open(t, dir, crashAt(step))
			if err := s.Stage(DefaultTx, settings.Settings{Network: &settings.Network{Hostname: ptr[settings.Hostname]("h")}}); !errors.Is(err, errCrash) {
				t.Fatalf("Stage = %v", err)
			}
			die(s)
			s2, _ := open(t, dir)
			p, _ := s2.Pending(DefaultTx)
			before := settings.Settings{Motd: ptr("a")}
			after := settings.Settings{Motd: ptr("a"), Network: &settings.Network{Hostname: ptr[settings.Hostname]("h")}}
			if !reflect.DeepEqual(p, before) && !reflect.DeepEqual(p, after) {
				t.Fatalf("pending after a crash at %s = %+v", step, p)
			}
		})
	}
}

// writeV1 lays out a format version 1 datastore.
func writeV1(t *testing.T, dir string, files map[string]string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Join(dir, v1PendingDir), 0o700); err != nil {
		t.Fatal(err)
	}
	for name, body := range files {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(body), 0o600); err != nil {
			t.Fatal(err)
		}
	}
}

func TestMigrateV1(t *testing.T) {
	v1 := map[string]string{
		v1VersionFile:                "1\n",
		v1LiveFile:                   `{"motd":"old live","network":{"hostname":"h"}}`,
		"pending/default.json":       `{"motd":"staged"}`,
		"pending/other.json":         `{"network":{"hostname":"o"}}`,
		"pending/.tmp-x.json-1":      `{`,
		"pending/Not-A-Tx-Name.json": `{}`,
	}
	check := func(t *testing.T, s *Store) {
		t.Helper()
		if got := string(s.LiveJSON()); got != `{"motd":"old live","network":{"hostname":"h"}}` {
			t.Fatalf("migrated live = %s", got)
		}
		if got := s.Transactions(); !reflect.DeepEqual(got, []string{"default", "other"}) {
			t.Fatalf("migrated transactions = %q", got)
		}
		for _, name := range []string{v1VersionFile, v1LiveFile, v1PendingDir} {
			if _, err := os.Stat(filepath.Join(s.dir, name)); !os.IsNotExist(err) {
				t.Errorf("version 1 file %s left after migration", name)
			}
		}
		var st map[string]any
		b, _ := os.ReadFile(filepath.Join(s.dir, stateFile))
		if err := json.Unmarshal(b, &st); err != nil || st["format"] != float64(FormatVersion) {
			t.Fatalf("state file %s: %v", b, err)
		}
	}
	t.Run("whole", func(t *testing.T) {
		dir := t.TempDir()
		writeV1(t, dir, v1)
		s, created := open(t, dir)
		if created {
			t.Fatal("a migrated datastore counts as created")
		}
		check(t, s)
	})
	for _, step := range steps {
		t.Run("crash at "+step, func(t *testing.T) {
			dir := t.TempDir()
			writeV1(t, dir, v1)
			if s, _, err := New(dir, crashAt(step)); !errors.Is(err, errCrash) {
				if err == nil {
					s.Close()
				}
				t.Fatalf("New = %v, want the injected crash", err)
			}
			s, created := open(t, dir)
			if created {
				t.Fatal("an interrupted migration counts as created")
			}
			check(t, s)
		})
	}
}

func TestNewRefuses(t *testing.T) {
	tests := []struct {
		name    string
		files   map[string]string
		wantErr string
	}{
		{"newer format", map[string]string{stateFile: `{"format":3,"live":{}}`}, "at format 3, written by a newer Ballast, and there is no state.2.json"},
		{"newer format, compat copy of another format", map[string]string{stateFile: `{"format":4,"live":{}}`, "state.2.json": `{"format":3,"live":{}}`}, "state.2.json holds format 3"},
		{"no format", map[string]string{stateFile: `{"live":{}}`}, "format <nil> is not a format version"},
		{"older format without a migration", map[string]string{stateFile: `{"format":1,"live":{}}`}, "format 1 is not a format version"},
		{"torn state", map[string]string{stateFile: `{"format":2,"live":{"motd":`}, "state.json: invalid JSON"},
		{"unknown field", map[string]string{stateFile: `{"format":2,"live":{},"extra":1}`}, `unknown field "extra"`},
		{"preserved not an object", map[string]string{stateFile: `{"format":2,"live":{},"preserved":[]}`}, "preserved: not a JSON object"},
		{"bad tx name", map[string]string{stateFile: `{"format":2,"live":{},"pending":{"../x":{}}}`}, `transaction name "../x"`},
		{"v1 newer version", map[string]string{v1VersionFile: "7\n"}, "format version 7"},
		{"v1 garbage version", map[string]string{v1VersionFile: "one\n"}, "not a version number"},
		{"v1 live without version", map[string]string{v1LiveFile: "{}\n"}, "version is missing"},
		{"v1 unknown key in live", map[string]string{v1VersionFile: "1\n", v1LiveFile: `{"motto":"x"}`}, "live.json: settings.motto: unknown key"},
		{"v1 bad pending", map[string]string{v1VersionFile: "1\n", "pending/default.json": `{"motd":1}`}, "default.json: settings.motd: expected string"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			writeV1(t, dir, tt.files)
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

// TestConcurrent is meant for -race: readers run while writers stage and commit, and never see
// a torn value.
func TestConcurrent(t *testing.T) {
	s, _ := open(t, t.TempDir())
	var wg sync.WaitGroup
	stop := make(chan struct{})
	for range 4 {
		wg.Go(func() {
			for {
				select {
				case <-stop:
					return
				default:
				}
				l := s.Live()
				if l.Motd != nil && !strings.HasPrefix(*l.Motd, "m") {
					t.Errorf("read torn motd %q", *l.Motd)
				}
				var m map[string]any
				if err := json.Unmarshal(s.LiveJSON(), &m); err != nil {
					t.Errorf("LiveJSON: %v", err)
				}
				s.Pending(DefaultTx)
				s.Transactions()
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
	close(stop)
	wg.Wait()
}

// TestGroupCommit commits from many goroutines at once: changes are batched into shared writes,
// each commit still reports exactly its own change, and one that breaks a rule fails alone.
func TestGroupCommit(t *testing.T) {
	dir := t.TempDir()
	writes := 0
	var mu sync.Mutex
	s, _ := open(t, dir, func(s *Store) {
		s.fault = func(step string) error {
			if step == stepRename {
				mu.Lock()
				writes++
				mu.Unlock()
			}
			return nil
		}
	})
	const n = 32
	var wg sync.WaitGroup
	errs := make([]error, n+1)
	changed := make([][]string, n+1)
	for i := range n {
		wg.Go(func() {
			tx := fmt.Sprintf("tx%d", i)
			key := settings.SysctlKey(fmt.Sprintf("vm.k%d", i))
			if errs[i] = s.Stage(tx, settings.Settings{Kernel: &settings.Kernel{Sysctl: map[settings.SysctlKey]settings.SysctlValue{key: "1"}}}); errs[i] == nil {
				changed[i], _, errs[i] = s.Commit(tx)
			}
		})
	}
	wg.Go(func() {
		bad := settings.Settings{HostContainers: map[settings.ContainerName]*settings.HostContainer{"x": {Enabled: ptr(true)}}}
		if errs[n] = s.Stage("bad", bad); errs[n] == nil {
			_, _, errs[n] = s.Commit("bad")
		}
	})
	wg.Wait()
	for i := range n {
		want := []string{fmt.Sprintf(`settings.kernel.sysctl."vm.k%d"`, i)}
		if errs[i] != nil || !reflect.DeepEqual(changed[i], want) {
			t.Errorf("commit %d = %q, %v; want %q", i, changed[i], errs[i], want)
		}
	}
	var ke *settings.KeyError
	if !errors.As(errs[n], &ke) {
		t.Errorf("bad commit = %v, want a key error", errs[n])
	}
	if got := len(s.Live().Kernel.Sysctl); got != n {
		t.Fatalf("%d sysctls live, want %d", got, n)
	}
	s.Close()
	s2, _ := open(t, dir)
	if got := len(s2.Live().Kernel.Sysctl); got != n {
		t.Fatalf("%d sysctls after reopen, want %d", got, n)
	}
	t.Logf("%d changes in %d writes", 2*n+1, writes)
}

// TestGroupCommitSharesWrites pins down what group commit buys: commits that arrive while a write
// is on its way to disk share the next fsync'd write instead of each paying for their own, and
// each of them still returns only once its change is on disk. The first commit's write is held
// at its fsync until every other commit has queued behind it, so the batching is deterministic:
// one write for the first commit, one for all the rest.
func TestGroupCommitSharesWrites(t *testing.T) {
	const n = 16
	dir := t.TempDir()
	var (
		armed   atomic.Bool
		syncs   atomic.Int32
		held    = make(chan struct{})
		release = make(chan struct{})
	)
	s, _ := open(t, dir, func(s *Store) {
		s.fault = func(step string) error {
			if step != stepSync || !armed.Load() {
				return nil
			}
			if syncs.Add(1) == 1 {
				close(held)
				<-release
			}
			return nil
		}
	})
	// A failing test must not leave the writer parked in the hook, or Close would wait for it.
	unblock := sync.OnceFunc(func() { close(release) })
	t.Cleanup(unblock)
	key := func(i int) settings.SysctlKey { return settings.SysctlKey(fmt.Sprintf("vm.k%d", i)) }
	// Staged one by one beforehand, so that only the commits are counted.
	for i := range n {
		patch := settings.Settings{Kernel: &settings.Kernel{Sysctl: map[settings.SysctlKey]settings.SysctlValue{key(i): "1"}}}
		if err := s.Stage(fmt.Sprintf("tx%d", i), patch); err != nil {
			t.Fatal(err)
		}
	}
	armed.Store(true)

	errs := make([]error, n)
	commit := func(i int) {
		changed, _, err := s.Commit(fmt.Sprintf("tx%d", i))
		if err != nil {
			errs[i] = err
			return
		}
		if want := []string{fmt.Sprintf(`settings.kernel.sysctl."vm.k%d"`, i)}; !reflect.DeepEqual(changed, want) {
			errs[i] = fmt.Errorf("changed %q, want %q", changed, want)
			return
		}
		// Acknowledged means on disk: the file a restarted server would read already has it.
		b, err := os.ReadFile(filepath.Join(dir, stateFile))
		if err != nil {
			errs[i] = err
			return
		}
		if !strings.Contains(string(b), fmt.Sprintf(`"vm.k%d": "1"`, i)) {
			errs[i] = fmt.Errorf("commit returned before its change reached %s:\n%s", stateFile, b)
		}
	}
	var wg sync.WaitGroup
	wg.Go(func() { commit(0) })
	select {
	case <-held:
	case <-time.After(10 * time.Second):
		t.Fatal("the first commit never reached its fsync")
	}
	for i := 1; i < n; i++ {
		wg.Go(func() { commit(i) })
	}
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(time.Millisecond) {
		s.qmu.Lock()
		queued := len(s.queue)
		s.qmu.Unlock()
		if queued == n-1 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d of %d commits queued behind the held write", queued, n-1)
		}
	}
	unblock()
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Errorf("commit %d: %v", i, err)
		}
	}
	writes := int(syncs.Load())
	t.Logf("%d concurrent commits in %d fsync'd writes", n, writes)
	if writes >= n {
		t.Fatalf("%d commits took %d fsync'd writes: no group commit", n, writes)
	}
	if writes != 2 {
		t.Fatalf("%d fsync'd writes, want 2: the held commit's, then one for the %d queued behind it", writes, n-1)
	}

	// All of them survive the process dying without a clean Close.
	die(s)
	s2, _ := open(t, dir)
	if got := len(s2.Live().Kernel.Sysctl); got != n {
		t.Fatalf("%d of %d committed sysctls after reopen", got, n)
	}
	if tx := s2.Transactions(); len(tx) != 0 {
		t.Fatalf("transactions still pending after reopen: %q", tx)
	}
}
