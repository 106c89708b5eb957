package agent

import (
	"bytes"
	"context"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ballast-os/ballast/contract"
	"github.com/ballast-os/ballast/images/gpt"
	"github.com/ballast-os/ballast/init/efivar"
	"github.com/ballast-os/ballast/tests/testutil"
	"github.com/ballast-os/ballast/updates/esp"
	"github.com/ballast-os/ballast/updates/install"
	"github.com/ballast-os/ballast/updates/install/installtest"
)

// fakeRepo serves real payloads built by the test, the way the TUF client would once it has
// verified them: Choose picks the newest release above the running one (or the locked one),
// respecting waves; Fetch copies a file into a download directory and counts its bytes.
type fakeRepo struct {
	releases  []Release // oldest first
	files     map[string]string
	waveOpens map[string]time.Time
	dlDir     string

	mu       sync.Mutex
	corrupt  map[string]bool // names whose download comes with a flipped byte
	gate     chan struct{}   // when set, Fetch waits for it to close
	entered  chan string     // when set, Fetch announces each name before it waits
	fetched  []string
	chooseQ  []Query
	download atomic.Int64
}

func (r *fakeRepo) Choose(ctx context.Context, q Query) (Choice, error) {
	r.mu.Lock()
	r.chooseQ = append(r.chooseQ, q)
	r.mu.Unlock()
	c := Choice{}
	var pick *Release
	for i := range r.releases {
		rel := &r.releases[i]
		c.Available = append(c.Available, rel.Version)
		switch {
		case q.Lock != "latest":
			if rel.Version == q.Lock {
				pick = rel
			}
		case esp.CompareVersions(rel.Version, q.Current) > 0:
			pick = rel
		}
	}
	if pick == nil {
		return c, nil
	}
	if at, ok := r.waveOpens[pick.Version]; ok && at.After(q.Now) && !q.IgnoreWaves {
		c.Waiting, c.WaveOpensAt = pick, at
		return c, nil
	}
	c.Release = pick
	return c, nil
}

func (r *fakeRepo) Fetch(ctx context.Context, name string, progress func(done, total int64)) (string, error) {
	r.mu.Lock()
	gate, entered, corrupt := r.gate, r.entered, r.corrupt[name]
	r.fetched = append(r.fetched, name)
	r.mu.Unlock()
	if entered != nil {
		entered <- name
	}
	if gate != nil {
		select {
		case <-gate:
		case <-ctx.Done():
			return "", ctx.Err()
		}
	}
	src, ok := r.files[name]
	if !ok {
		return "", fmt.Errorf("target %s: not in the repository", name)
	}
	b, err := os.ReadFile(src)
	if err != nil {
		return "", err
	}
	if corrupt {
		b = bytes.Clone(b)
		b[len(b)/2] ^= 1
	}
	r.download.Add(int64(len(b)))
	dst := filepath.Join(r.dlDir, name)
	return dst, os.WriteFile(dst, b, 0o600)
}

func (r *fakeRepo) BytesDownloaded() int64 { return r.download.Load() }

// host is a host on version 1.0 in slot a: its disk image, ESP, efivarfs and data directories,
// and a repository offering 2.0.
type host struct {
	t        *testing.T
	dir      string
	disk     *installtest.Disk
	espDir   string
	efivars  string
	stateDir string
	history  string
	payload  *installtest.Payload
	repo     *fakeRepo
	settings Settings
	now      time.Time
	tries    int
}

const variant = "qemu"

func newHost(t *testing.T) *host {
	t.Helper()
	dir := t.TempDir()
	h := &host{
		t: t, dir: dir,
		disk:     installtest.MakeDisk(t, dir, installtest.Root(1, 200)),
		espDir:   filepath.Join(dir, "esp"),
		efivars:  filepath.Join(dir, "efivars"),
		stateDir: filepath.Join(dir, "local/var/lib/ballast/updates"),
		history:  filepath.Join(dir, "boot-history.json"),
		settings: Settings{MetadataBaseURL: "http://127.0.0.1:1/metadata", TargetsBaseURL: "http://127.0.0.1:1/targets", Seed: 1000},
		now:      time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC),
	}
	os.MkdirAll(h.efivars, 0o755)
	os.MkdirAll(filepath.Join(dir, "repo"), 0o755)
	os.MkdirAll(filepath.Join(dir, "downloads"), 0o755)
	h.payload = installtest.MakePayload(t, filepath.Join(dir, "repo"), variant, "2.0", installtest.Root(2, 256))
	h.repo = &fakeRepo{
		releases: []Release{
			{Version: "1.0", Notes: "first", Payload: contract.Payload{Variant: variant, Version: "1.0", RootHash: h.disk.Running.RootHash}},
			{Version: "2.0", Notes: "better", Payload: h.payload.Payload},
		},
		files: h.payload.Files, waveOpens: map[string]time.Time{}, corrupt: map[string]bool{},
		dlDir: filepath.Join(dir, "downloads"),
	}
	h.writeESP(contract.ESPEntries+"/ballast-1-a-1.0.efi", installtest.UKI("1.0", contract.SlotA, h.disk.Running.RootHash))
	return h
}

func (h *host) writeESP(path string, body []byte) {
	h.t.Helper()
	full := filepath.Join(h.espDir, path)
	if err := os.MkdirAll(filepath.Dir(full), 0o755); err != nil {
		h.t.Fatal(err)
	}
	if err := os.WriteFile(full, body, 0o644); err != nil {
		h.t.Fatal(err)
	}
}

// agent starts the agent as the host's API server would after a boot of version in booted's slot.
func (h *host) agent(booted contract.Boot, version string) *Agent {
	h.t.Helper()
	a, err := New(Config{
		StateDir: h.stateDir, ESP: h.espDir, EFIVars: h.efivars, Disk: h.disk.Path,
		Image:    contract.Image{Variant: variant, Version: version, Arch: "x86_64", Updates: contract.UpdatePolicy{Tries: h.tries}},
		Booted:   booted,
		Settings: func() Settings { return h.settings },
		Repo: func(s Settings) (Repo, error) {
			if s.MetadataBaseURL == "" {
				return nil, errors.New("no metadata URL")
			}
			return h.repo, nil
		},
		BootHistory: h.history,
		Now:         func() time.Time { return h.now },
	})
	if err != nil {
		h.t.Fatal(err)
	}
	return a
}

// bootB is the boot of 2.0 from slot b, as its UKI's command line gives it.
func (h *host) bootB() contract.Boot {
	hash, _ := hex.DecodeString(h.payload.RootHash)
	root, ver, err := install.SlotUUIDs(hash)
	if err != nil {
		h.t.Fatal(err)
	}
	return contract.Boot{
		RootHash: h.payload.RootHash, Slot: contract.SlotB, Root: root, Verity: ver, Data: h.disk.Running.Data,
		VerityBlocks: h.payload.VerityBlocks, VeritySalt: h.payload.Salt,
	}
}

// loaderBoot does what systemd-boot does at a boot: takes the first entry, counts a try if it
// has a counter, and tells the OS the name through LoaderBootCountPath (only then).
func (h *host) loaderBoot() esp.File {
	h.t.Helper()
	e := esp.New(h.espDir)
	l, err := e.List()
	if err != nil {
		h.t.Fatal(err)
	}
	f, ok := l.Default()
	if !ok {
		h.t.Fatal("nothing to boot")
	}
	os.Remove(filepath.Join(h.efivars, efivar.LoaderBootCountPath+"-"+contract.LoaderGUID))
	h.setVar(efivar.LoaderEntrySelected, f.Name)
	if !f.Entry.Counting || f.Entry.TriesLeft == 0 {
		return f
	}
	next := f.Entry
	next.TriesLeft--
	next.TriesDone++
	dir := filepath.Join(h.espDir, contract.ESPEntries)
	if err := os.Rename(filepath.Join(dir, f.Name), filepath.Join(dir, next.FileName())); err != nil {
		h.t.Fatal(err)
	}
	h.setVar(efivar.LoaderBootCountPath, `\EFI\Linux\`+next.FileName())
	return esp.File{Name: next.FileName(), Entry: next}
}

func (h *host) setVar(name, value string) {
	h.t.Helper()
	if err := os.WriteFile(filepath.Join(h.efivars, name+"-"+contract.LoaderGUID), efivar.EncodeString(value), 0o644); err != nil {
		h.t.Fatal(err)
	}
}

func (h *host) savedState() state {
	h.t.Helper()
	b, err := os.ReadFile(filepath.Join(h.stateDir, StateFile))
	if err != nil {
		h.t.Fatal(err)
	}
	var st state
	if err := json.Unmarshal(b, &st); err != nil {
		h.t.Fatal(err)
	}
	return st
}

// must fails the test when the action it is given the results of failed.
func must(t *testing.T) func(Status, error) Status {
	return func(s Status, err error) Status {
		t.Helper()
		if err != nil {
			t.Fatalf("%v (status %+v)", err, s)
		}
		return s
	}
}

func wantState(t *testing.T, s Status, want string) {
	t.Helper()
	if s.State != want {
		b, _ := json.MarshalIndent(s, "", "  ")
		t.Fatalf("state %s, want %s:\n%s", s.State, want, b)
	}
}

func TestUpdateFlow(t *testing.T) {
	h := newHost(t)
	ctx := context.Background()
	a := h.agent(h.disk.Running, "1.0")
	s := a.Status()
	wantState(t, s, StateIdle)
	if want := (Running{Version: "1.0", Slot: contract.SlotA, Entry: "ballast-1-a-1.0.efi"}); s.Running != want {
		t.Fatalf("running %+v, want %+v", s.Running, want)
	}
	untouched := h.disk.Snapshot(t, contract.SlotB, false)

	s = must(t)(a.Check(ctx))
	wantState(t, s, StateAvailable)
	if s.Chosen == nil || s.Chosen.Version != "2.0" || s.Chosen.Notes != "better" || s.Chosen.WaveOpensAt != nil {
		t.Fatalf("chosen %+v", s.Chosen)
	}
	if !slices.Equal(s.Available, []string{"1.0", "2.0"}) {
		t.Errorf("available %v", s.Available)
	}
	if q := h.repo.chooseQ[0]; q != (Query{Variant: variant, Arch: "x86_64", Current: "1.0", Lock: "latest", Seed: 1000, Now: h.now}) {
		t.Errorf("query %+v", q)
	}

	s = must(t)(a.Apply(ctx))
	wantState(t, s, StateStaged)
	if s.Staged == nil || *s.Staged != (SlotVersion{Version: "2.0", Slot: contract.SlotB}) {
		t.Fatalf("staged %+v", s.Staged)
	}
	p := h.payload
	if want := p.Root.Size + p.Verity.Size + p.UKI[contract.SlotB].Size; s.BytesDownloaded != want {
		t.Errorf("bytes downloaded %d, want %d", s.BytesDownloaded, want)
	}
	if slices.Contains(h.repo.fetched, p.UKI[contract.SlotA].Name) {
		t.Error("apply downloaded the UKI of the running slot")
	}
	if got := h.disk.Partition(t, contract.PartRootB)[:p.Root.RawSize]; !bytes.Equal(got, p.Raw[p.Root.Name]) {
		t.Error("root-b does not hold 2.0's root")
	}
	if after := h.disk.Snapshot(t, contract.SlotB, false); !maps.Equal(untouched, after) {
		t.Error("apply changed slot a, the ESP partition or the data partition")
	}
	f, _ := os.Open(h.disk.Path)
	tbl, err := gpt.ReadPrimary(f, 512)
	f.Close()
	if err != nil {
		t.Fatal(err)
	}
	for _, part := range tbl.Partitions() {
		if part.Name == string(contract.PartRootB) && part.ID.UUID() != h.bootB().Root {
			t.Errorf("root-b PARTUUID %s, the new UKI looks for %s", part.ID.UUID(), h.bootB().Root)
		}
	}
	staged, err := os.ReadFile(filepath.Join(h.espDir, contract.ESPStaged, "ballast-0-b-2.0.efi"))
	if err != nil || !bytes.Equal(staged, p.Raw[p.UKI[contract.SlotB].Name]) {
		t.Fatalf("staged UKI: %v", err)
	}

	s = must(t)(a.Activate(ctx))
	wantState(t, s, StateReady)
	if s.Activated == nil || *s.Activated != (SlotVersion{Version: "2.0", Slot: contract.SlotB}) || s.Staged != nil {
		t.Fatalf("activated %+v staged %+v", s.Activated, s.Staged)
	}
	l, _ := esp.New(h.espDir).List()
	if d, _ := l.Default(); d.Name != "ballast-2-b-2.0+3.efi" {
		t.Fatalf("the next boot is %s", d.Name)
	}

	// Cancel steps back: activated → staged → nothing; activate then has nothing to activate.
	s = must(t)(a.Cancel(ctx))
	wantState(t, s, StateStaged)
	s = must(t)(a.Cancel(ctx))
	wantState(t, s, StateAvailable)
	s, err = a.Activate(ctx)
	if err == nil || !strings.Contains(err.Error(), "nothing staged") {
		t.Fatalf("Activate with nothing staged: %v", err)
	}
	wantState(t, s, StateError)
	if s.LastAttempt == nil || s.LastAttempt.Action != ActionActivate || s.LastAttempt.Error == "" {
		t.Errorf("last attempt %+v", s.LastAttempt)
	}

	// Apply again (the downloads are the same targets) and activate with 2 tries.
	must(t)(a.Apply(ctx))
	h.tries = 2
	a = h.agent(h.disk.Running, "1.0") // the API server restarted: the state is read back
	wantState(t, a.Status(), StateStaged)
	s = must(t)(a.Activate(ctx))
	wantState(t, s, StateReady)
	if got := h.savedState().Activated; got == nil || got.Entry != "ballast-2-b-2.0+2.efi" {
		t.Fatalf("state.json activated %+v", got)
	}

	// The host reboots into 2.0: on trial, nothing can be applied until it is blessed.
	booted := h.loaderBoot()
	if booted.Name != "ballast-2-b-2.0+1-1.efi" {
		t.Fatalf("booted %s", booted.Name)
	}
	b := h.agent(h.bootB(), "2.0")
	s = b.Status()
	wantState(t, s, StateIdle)
	if want := (Running{Version: "2.0", Slot: contract.SlotB, Entry: "ballast-2-b-2.0+1-1.efi", OnTrial: true}); s.Running != want {
		t.Fatalf("running %+v, want %+v", s.Running, want)
	}
	s, err = b.Apply(ctx)
	if err == nil || !strings.Contains(err.Error(), "on trial") {
		t.Fatalf("Apply on trial: %v", err)
	}
	if _, err := esp.New(h.espDir).Bless(booted.Name); err != nil {
		t.Fatal(err)
	}
	s = b.Status()
	if want := (Running{Version: "2.0", Slot: contract.SlotB, Entry: "ballast-2-b-2.0.efi"}); s.Running != want {
		t.Fatalf("running after blessing %+v, want %+v", s.Running, want)
	}
	if st := h.savedState(); st.Activated != nil || st.Rollback != nil {
		t.Errorf("after the blessed boot state.json still has %+v / %+v", st.Activated, st.Rollback)
	}
	s = must(t)(b.Check(ctx))
	wantState(t, s, StateIdle) // 2.0 is the newest
	if s.Chosen != nil {
		t.Errorf("chosen %+v on the newest version", s.Chosen)
	}
}

// activated brings a host on 1.0 to 2.0 activated in slot b, and returns the agent.
func activated(t *testing.T, h *host) *Agent {
	t.Helper()
	a := h.agent(h.disk.Running, "1.0")
	must(t)(a.Apply(context.Background()))
	must(t)(a.Activate(context.Background()))
	return a
}

func TestRollback(t *testing.T) {
	for _, tc := range []struct {
		name    string
		boots   func(h *host)
		history []contract.BootRecord
		reason  string
	}{
		{
			name: "kernel panics at every try",
			boots: func(h *host) {
				for range 3 {
					h.loaderBoot()
				}
			},
			reason: "did not boot (3 tries)",
		},
		{
			name: "userspace never healthy, given up by the init",
			boots: func(h *host) {
				f := h.loaderBoot()
				if _, err := esp.New(h.espDir).GiveUp(f.Name); err != nil {
					h.t.Fatal(err)
				}
			},
			history: []contract.BootRecord{
				// Of an earlier activation that had the same name: not this one's.
				{Time: time.Date(2025, 2, 1, 0, 0, 0, 0, time.UTC), Entry: "ballast-2-b-2.0+2-1.efi", Slot: "b", Version: "2.0", Trial: true, Result: "unhealthy", Reason: "old news"},
				{Time: time.Date(2025, 3, 1, 12, 5, 0, 0, time.UTC), Entry: "ballast-2-b-2.0+2-1.efi", Slot: "b", Version: "2.0", Trial: true, Result: "unhealthy", Reason: "service containerd: crash loop"},
				{Time: time.Date(2025, 3, 1, 12, 6, 0, 0, time.UTC), Entry: "ballast-1-a-1.0.efi", Slot: "a", Version: "1.0", Result: "healthy"},
			},
			reason: "unhealthy: service containerd: crash loop",
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := newHost(t)
			activated(t, h)
			tc.boots(h)
			if tc.history != nil {
				b, _ := json.Marshal(contract.BootHistory{Boots: tc.history})
				os.WriteFile(h.history, b, 0o644)
			}
			if f := h.loaderBoot(); f.Name != "ballast-1-a-1.0.efi" {
				t.Fatalf("after the failed tries the loader boots %s", f.Name)
			}
			h.now = h.now.Add(10 * time.Minute)
			a := h.agent(h.disk.Running, "1.0")
			s := a.Status()
			want := Rollback{Version: "2.0", Slot: contract.SlotB, Time: h.now, Reason: tc.reason}
			if s.Rollback == nil || *s.Rollback != want {
				t.Fatalf("rollback %+v, want %+v", s.Rollback, want)
			}
			if s.Activated != nil || s.Running.Slot != contract.SlotA || s.Running.OnTrial {
				t.Errorf("status after the rollback %+v", s)
			}
			if st := h.savedState(); st.Rollback == nil || st.Activated != nil {
				t.Errorf("state.json after the rollback: %+v", st)
			}
			// The report survives restarts, and goes with the next apply.
			if s := h.agent(h.disk.Running, "1.0").Status(); s.Rollback == nil || *s.Rollback != want {
				t.Errorf("rollback after a restart %+v", s.Rollback)
			}
			s = must(t)(a.Apply(context.Background()))
			if s.Rollback != nil {
				t.Errorf("rollback still reported after a new apply: %+v", s.Rollback)
			}
		})
	}
}

// TestRollbackSeenOnceTheESPIsMounted: the API server can start before the ESP is mounted (its
// vfat module loads later). An empty mount point must not read as every entry gone, which
// dropped the activation and with it the rollback (the image test saw "rollback <nil>").
func TestRollbackSeenOnceTheESPIsMounted(t *testing.T) {
	h := newHost(t)
	activated(t, h)
	for range 3 {
		h.loaderBoot()
	}
	if f := h.loaderBoot(); f.Name != "ballast-1-a-1.0.efi" {
		t.Fatalf("after the failed tries the loader boots %s", f.Name)
	}
	mounted := h.espDir + ".mounted"
	if err := os.Rename(h.espDir, mounted); err != nil {
		t.Fatal(err)
	}
	if err := os.Mkdir(h.espDir, 0o755); err != nil {
		t.Fatal(err)
	}
	a := h.agent(h.disk.Running, "1.0")
	if s := a.Status(); s.Rollback != nil || !strings.Contains(s.Error, "is the ESP mounted") {
		t.Errorf("before the ESP is mounted: rollback %+v, error %q; want none and the ESP named", s.Rollback, s.Error)
	}
	if err := os.Remove(h.espDir); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(mounted, h.espDir); err != nil {
		t.Fatal(err)
	}
	s := a.Status()
	if s.Rollback == nil || s.Rollback.Version != "2.0" || s.Rollback.Reason != "did not boot (3 tries)" || s.Error != "" {
		t.Fatalf("once the ESP is mounted: rollback %+v, error %q", s.Rollback, s.Error)
	}
}

// TestNoRollbackBeforeReboot: an activated version the host has not booted yet is no rollback.
func TestNoRollbackBeforeReboot(t *testing.T) {
	h := newHost(t)
	activated(t, h)
	s := h.agent(h.disk.Running, "1.0").Status()
	wantState(t, s, StateReady)
	if s.Rollback != nil {
		t.Errorf("rollback %+v", s.Rollback)
	}
}

func TestBusy(t *testing.T) {
	h := newHost(t)
	h.repo.gate, h.repo.entered = make(chan struct{}), make(chan string, 3)
	a := h.agent(h.disk.Running, "1.0")
	done := make(chan error)
	go func() {
		_, err := a.Apply(context.Background())
		done <- err
	}()
	<-h.repo.entered // the apply is downloading
	for name, action := range map[string]func(context.Context) (Status, error){
		"check": a.Check, "apply": a.Apply, "activate": a.Activate, "cancel": a.Cancel,
	} {
		s, err := action(context.Background())
		if !errors.Is(err, ErrBusy) || !strings.Contains(err.Error(), "apply in progress") {
			t.Errorf("%s during an apply: %v", name, err)
		}
		if s.Busy != ActionApply {
			t.Errorf("%s during an apply: status busy %q", name, s.Busy)
		}
	}
	if s := a.Status(); s.Busy != ActionApply {
		t.Errorf("status busy %q", s.Busy)
	}
	close(h.repo.gate)
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	s := a.Status()
	wantState(t, s, StateStaged)
	if s.Busy != "" || s.LastAttempt.Action != ActionApply || s.LastAttempt.Error != "" {
		t.Errorf("after the apply: %+v", s)
	}
}

func TestApplyFailure(t *testing.T) {
	for _, tc := range []struct {
		name    string
		corrupt func(p *installtest.Payload) string
		want    string
	}{
		{"root", func(p *installtest.Payload) string { return p.Root.Name }, "partition root-b"},
		{"verity", func(p *installtest.Payload) string { return p.Verity.Name }, "partition verity-b"},
		{"uki", func(p *installtest.Payload) string { return p.UKI[contract.SlotB].Name }, "UKI"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := newHost(t)
			h.repo.corrupt[tc.corrupt(h.payload)] = true
			a := h.agent(h.disk.Running, "1.0")
			before := h.disk.Snapshot(t, contract.SlotB, false)
			rootA := h.disk.Partition(t, contract.PartRootA)
			s, err := a.Apply(context.Background())
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("Apply with a corrupt %s: %v", tc.name, err)
			}
			wantState(t, s, StateError)
			if s.LastAttempt == nil || s.LastAttempt.Action != ActionApply || s.LastAttempt.Version != "2.0" || s.LastAttempt.Error != err.Error() {
				t.Errorf("last attempt %+v", s.LastAttempt)
			}
			if s.Staged != nil || s.Activated != nil {
				t.Errorf("after a failed apply: staged %+v activated %+v", s.Staged, s.Activated)
			}
			if !bytes.Equal(rootA, h.disk.Partition(t, contract.PartRootA)) || !maps.Equal(before, h.disk.Snapshot(t, contract.SlotB, false)) {
				t.Error("a failed apply changed slot a or another partition")
			}
			if st := h.savedState(); st.LastAttempt == nil || st.LastAttempt.Error == "" {
				t.Errorf("state.json does not record the failure: %+v", st.LastAttempt)
			}
			l, _ := esp.New(h.espDir).List()
			if d, _ := l.Default(); d.Name != "ballast-1-a-1.0.efi" || len(l.Staged) != 0 {
				t.Errorf("ESP after a failed apply: %+v", l)
			}
			// A good download and the same apply again complete it.
			h.repo.corrupt = map[string]bool{}
			s = must(t)(a.Apply(context.Background()))
			wantState(t, s, StateStaged)
		})
	}
}

func TestRefusals(t *testing.T) {
	ctx := context.Background()
	t.Run("wave not open", func(t *testing.T) {
		h := newHost(t)
		opens := h.now.Add(36 * time.Hour)
		h.repo.waveOpens["2.0"] = opens
		a := h.agent(h.disk.Running, "1.0")
		s := must(t)(a.Check(ctx))
		wantState(t, s, StateIdle)
		if s.Chosen == nil || s.Chosen.Version != "2.0" || s.Chosen.WaveOpensAt == nil || !s.Chosen.WaveOpensAt.Equal(opens) {
			t.Fatalf("chosen %+v", s.Chosen)
		}
		if _, err := a.Apply(ctx); err == nil || !strings.Contains(err.Error(), "waits for its wave") {
			t.Fatalf("Apply before the wave: %v", err)
		}
		h.settings.IgnoreWaves = true
		s = must(t)(a.Apply(ctx))
		wantState(t, s, StateStaged)
	})
	t.Run("locked to the running version", func(t *testing.T) {
		h := newHost(t)
		h.settings.VersionLock = "1.0"
		a := h.agent(h.disk.Running, "1.0")
		if _, err := a.Apply(ctx); err == nil || !strings.Contains(err.Error(), "is the running version") {
			t.Fatalf("Apply of the running version: %v", err)
		}
	})
	t.Run("up to date", func(t *testing.T) {
		h := newHost(t)
		h.repo.releases = h.repo.releases[:1]
		a := h.agent(h.disk.Running, "1.0")
		s, err := a.Apply(ctx)
		if err == nil || !strings.Contains(err.Error(), "nothing to apply") {
			t.Fatalf("Apply when up to date: %v", err)
		}
		wantState(t, s, StateError)
		wantState(t, must(t)(a.Check(ctx)), StateIdle)
	})
	t.Run("another variant", func(t *testing.T) {
		h := newHost(t)
		h.repo.releases[1].Payload.Variant = "aws"
		if _, err := h.agent(h.disk.Running, "1.0").Apply(ctx); err == nil || !strings.Contains(err.Error(), "variant") {
			t.Fatalf("Apply of another variant's payload: %v", err)
		}
	})
	t.Run("no repository", func(t *testing.T) {
		h := newHost(t)
		h.settings.MetadataBaseURL = ""
		if _, err := h.agent(h.disk.Running, "1.0").Check(ctx); err == nil || !strings.Contains(err.Error(), "no metadata URL") {
			t.Fatalf("Check without a repository: %v", err)
		}
	})
}

func TestBrokenStateFile(t *testing.T) {
	h := newHost(t)
	os.MkdirAll(h.stateDir, 0o700)
	os.WriteFile(filepath.Join(h.stateDir, StateFile), []byte("{not json"), 0o600)
	a := h.agent(h.disk.Running, "1.0")
	s := a.Status()
	wantState(t, s, StateError)
	if !strings.Contains(s.Error, StateFile) || !strings.Contains(s.Error, ".bad") {
		t.Errorf("status error %q", s.Error)
	}
	if b, err := os.ReadFile(filepath.Join(h.stateDir, StateFile+".bad")); err != nil || string(b) != "{not json" {
		t.Errorf("the broken file was not kept: %q, %v", b, err)
	}
	s = must(t)(a.Check(context.Background()))
	wantState(t, s, StateAvailable)
}

func TestStatusJSON(t *testing.T) {
	h := newHost(t)
	a := activated(t, h)
	b, err := json.Marshal(a.Status())
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	json.Unmarshal(b, &m)
	want := []string{"state", "running", "available_versions", "chosen", "activated", "last_attempt", "bytes_downloaded"}
	for _, k := range want {
		if _, ok := m[k]; !ok {
			t.Errorf("status JSON has no %q: %s", k, b)
		}
	}
	running, _ := m["running"].(map[string]any)
	for _, k := range []string{"version", "slot", "entry", "on_trial"} {
		if _, ok := running[k]; !ok {
			t.Errorf("running has no %q: %s", k, b)
		}
	}
	if m["state"] != StateReady {
		t.Errorf("state %v", m["state"])
	}
}

func TestNewRefusesBadConfig(t *testing.T) {
	if _, err := New(Config{}); err == nil {
		t.Error("New with an empty config passed")
	}
	h := newHost(t)
	_, err := New(Config{StateDir: h.stateDir, ESP: h.espDir, Settings: func() Settings { return Settings{} },
		Repo: func(Settings) (Repo, error) { return nil, io.EOF }, Booted: contract.Boot{Slot: "x"}})
	if err == nil {
		t.Error("New with a bad booted slot passed")
	}
}

// TestFindDisk finds the disk of the running root among the kernel's block devices: a loop
// device with the test's disk image and its partitions.
func TestFindDisk(t *testing.T) {
	// A root of its own: another test's loop device with the same PARTUUIDs would make it
	// ambiguous.
	d := installtest.MakeDisk(t, t.TempDir(), installtest.Root(uint64(time.Now().UnixNano()), 16))
	loop := testutil.Loop(t, d.Path, "-P")
	if _, err := os.Stat(loop + "p1"); errors.Is(err, os.ErrNotExist) {
		// Kernels without the GPT parser leave the partitions out; partx adds them with BLKPG.
		testutil.Run(t, testutil.Tool(t, "partx", "util-linux"), "-a", loop)
	}
	got, err := FindDisk(d.Running.Root)
	if err != nil || got != loop {
		t.Fatalf("FindDisk = %q, %v; want %s", got, err, loop)
	}
	if got, err := FindDisk(contract.DerivedUUID("nowhere", "x")); err == nil {
		t.Errorf("FindDisk of a PARTUUID no disk has = %q", got)
	}
}
