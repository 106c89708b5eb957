package esp

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"testing/iotest"

	"github.com/ballast-os/ballast/contract"
)

// uki is the content the tests give the UKI of a slot at a version, so a test can tell a complete,
// right UKI from a wrong or half-written one.
func uki(slot contract.Slot, version string) string {
	return strings.Repeat(fmt.Sprintf("UKI slot=%s version=%s\n", slot, version), 100)
}

// newESP makes an ESP holding the named entries (with their UKIs), a loader.conf and a foreign
// entry another OS might have put there.
func newESP(t *testing.T, entries ...string) *ESP {
	t.Helper()
	root := t.TempDir()
	for path, body := range map[string]string{
		contract.ESPLoaderConf:         "timeout 0\n",
		contract.AMD64.ESPLoaderPath(): "systemd-boot",
		"EFI/Linux/other-os-6.1.efi":   "someone else's",
	} {
		writeFile(t, filepath.Join(root, path), body)
	}
	for _, name := range entries {
		en, err := contract.ParseEntry(name)
		if err != nil {
			t.Fatal(err)
		}
		writeFile(t, filepath.Join(root, contract.ESPEntries, name), uki(en.Slot, en.Version))
	}
	return New(root)
}

func writeFile(t *testing.T, path, body string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(body), 0o644); err != nil {
		t.Fatal(err)
	}
}

func names(files []File) []string {
	var out []string
	for _, f := range files {
		out = append(out, f.Name)
	}
	return out
}

func list(t *testing.T, e *ESP) Listing {
	t.Helper()
	l, err := e.List()
	if err != nil {
		t.Fatal(err)
	}
	return l
}

// wantBoots checks the entry systemd-boot would boot and that its UKI is whole and the one its
// name promises.
func wantBoots(t *testing.T, e *ESP, want string) {
	t.Helper()
	l := list(t, e)
	got, ok := l.Default()
	if !ok {
		t.Fatalf("no entry to boot; want %s", want)
	}
	if got.Name != want {
		t.Fatalf("systemd-boot would boot %s, want %s (menu: %v)", got.Name, want, names(l.Entries))
	}
	checkUKI(t, e, got)
}

func checkUKI(t *testing.T, e *ESP, f File) {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(e.Root(), contract.ESPEntries, f.Name))
	if err != nil {
		t.Fatal(err)
	}
	if string(b) != uki(f.Entry.Slot, f.Entry.Version) {
		t.Fatalf("%s holds %d bytes that are not the UKI of slot %s version %s", f.Name, len(b), f.Entry.Slot, f.Entry.Version)
	}
}

// loaderBoot does what systemd-boot does at boot: take the default entry and, if it counts
// boots, rename it with one try less and one more done. It returns the name the entry has for
// this boot (LoaderBootCountPath's), or the entry's name when it does not count.
func loaderBoot(t *testing.T, e *ESP) string {
	t.Helper()
	f, ok := list(t, e).Default()
	if !ok {
		t.Fatal("nothing to boot")
	}
	checkUKI(t, e, f)
	if !f.Entry.Counting || f.Entry.TriesLeft == 0 {
		return f.Name
	}
	next := f.Entry
	next.TriesLeft--
	next.TriesDone++
	dir := filepath.Join(e.Root(), contract.ESPEntries)
	if err := os.Rename(filepath.Join(dir, f.Name), filepath.Join(dir, next.FileName())); err != nil {
		t.Fatal(err)
	}
	return next.FileName()
}

func stage(t *testing.T, e *ESP, slot contract.Slot, version string) {
	t.Helper()
	if _, err := e.Stage(slot, version, strings.NewReader(uki(slot, version))); err != nil {
		t.Fatal(err)
	}
}

func TestListIgnoresForeignFiles(t *testing.T) {
	e := newESP(t, "ballast-1-a-1.0.efi", "ballast-2-b-2.0+0-3.efi")
	writeFile(t, filepath.Join(e.Root(), contract.ESPStaged, StagedName(contract.SlotB, "3.0")), uki(contract.SlotB, "3.0"))
	writeFile(t, filepath.Join(e.Root(), contract.ESPStaged, StagedName(contract.SlotA, "4.0")+tempSuffix), "half")
	writeFile(t, filepath.Join(e.Root(), contract.ESPStaged, "notes.txt"), "x")
	l := list(t, e)
	if got, want := names(l.Entries), []string{"ballast-1-a-1.0.efi", "ballast-2-b-2.0+0-3.efi"}; !slices.Equal(got, want) {
		t.Errorf("entries %v, want %v", got, want)
	}
	if got, want := names(l.Staged), []string{"ballast-0-b-3.0.efi"}; !slices.Equal(got, want) {
		t.Errorf("staged %v, want %v", got, want)
	}
	if _, ok := l.StagedFor(contract.SlotA); ok {
		t.Error("a temporary file counts as staged")
	}
	// An ESP with its entries directory and nothing in it lists nothing; a directory without
	// one is an ESP not mounted (yet), which must not read as one whose entries are all gone.
	empty := t.TempDir()
	if err := os.MkdirAll(filepath.Join(empty, contract.ESPEntries), 0o755); err != nil {
		t.Fatal(err)
	}
	if l, err := New(empty).List(); err != nil || len(l.Entries)+len(l.Staged) != 0 {
		t.Errorf("empty ESP: %+v, %v", l, err)
	}
	if l, err := New(t.TempDir()).List(); err == nil || !strings.Contains(err.Error(), "is the ESP mounted") {
		t.Errorf("unmounted ESP: %+v, %v; want an error", l, err)
	}
}

// TestOrder checks the menu order against what systemd-boot 252 does with these names.
func TestOrder(t *testing.T) {
	for _, tc := range []struct {
		name string
		in   []string
		want []string
	}{
		{"fresh", []string{"ballast-1-a-1.0.efi"}, []string{"ballast-1-a-1.0.efi"}},
		{"activated boots first", []string{"ballast-1-a-1.0.efi", "ballast-2-b-2.0+3.efi"},
			[]string{"ballast-2-b-2.0+3.efi", "ballast-1-a-1.0.efi"}},
		{"downgrade: the higher generation wins over the higher version", []string{"ballast-2-b-2.0.efi", "ballast-3-a-1.5+3.efi"},
			[]string{"ballast-3-a-1.5+3.efi", "ballast-2-b-2.0.efi"}},
		{"generations compare as numbers", []string{"ballast-9-a-1.0.efi", "ballast-10-b-1.1+1.efi"},
			[]string{"ballast-10-b-1.1+1.efi", "ballast-9-a-1.0.efi"}},
		{"exhausted last", []string{"ballast-2-b-2.0.efi", "ballast-3-a-3.0+0-3.efi"},
			[]string{"ballast-2-b-2.0.efi", "ballast-3-a-3.0+0-3.efi"}},
		{"trial keeps booting while tries are left", []string{"ballast-2-b-2.0.efi", "ballast-3-a-3.0+1-2.efi"},
			[]string{"ballast-3-a-3.0+1-2.efi", "ballast-2-b-2.0.efi"}},
		{"two exhausted: by name", []string{"ballast-2-b-2.0+0-3.efi", "ballast-3-a-3.0+0-1.efi"},
			[]string{"ballast-3-a-3.0+0-1.efi", "ballast-2-b-2.0+0-3.efi"}},
		{"upper case from FAT", []string{"BALLAST-1-A-1.0.EFI", "ballast-2-b-2.0+3.efi"},
			[]string{"ballast-2-b-2.0+3.efi", "BALLAST-1-A-1.0.EFI"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var files []File
			for i := len(tc.in) - 1; i >= 0; i-- {
				en, err := contract.ParseEntry(tc.in[i])
				if err != nil {
					t.Fatal(err)
				}
				files = append(files, File{Name: tc.in[i], Entry: en})
			}
			Order(files)
			if got := names(files); !slices.Equal(got, tc.want) {
				t.Errorf("order %v, want %v", got, tc.want)
			}
		})
	}
}

// TestUpdateFlow walks an ESP through an update, a downgrade and two rollbacks, checking after
// every step which entry systemd-boot would boot.
func TestUpdateFlow(t *testing.T) {
	a, b := contract.SlotA, contract.SlotB
	e := newESP(t, "ballast-1-a-1.0.efi")
	wantBoots(t, e, "ballast-1-a-1.0.efi")

	// Update to 2.0 in slot b.
	if err := e.RemoveSlot(b); err != nil {
		t.Fatal(err)
	}
	stage(t, e, b, "2.0")
	wantBoots(t, e, "ballast-1-a-1.0.efi") // staged is not bootable
	if _, err := e.Activate(b, "2.0", 3); err != nil {
		t.Fatal(err)
	}
	wantBoots(t, e, "ballast-2-b-2.0+3.efi")
	booted := loaderBoot(t, e)
	if booted != "ballast-2-b-2.0+2-1.efi" {
		t.Fatalf("booted %s", booted)
	}
	if f, err := e.Bless(booted); err != nil || f.Name != "ballast-2-b-2.0.efi" {
		t.Fatalf("Bless = %+v, %v", f, err)
	}
	wantBoots(t, e, "ballast-2-b-2.0.efi")
	if f, err := e.Bless("ballast-2-b-2.0.efi"); err != nil || f.Name != "ballast-2-b-2.0.efi" {
		t.Fatalf("Bless of a blessed entry = %+v, %v", f, err)
	}

	// Downgrade to 1.5 in slot a: a lower version, yet the next boot.
	if err := e.RemoveSlot(a); err != nil {
		t.Fatal(err)
	}
	wantBoots(t, e, "ballast-2-b-2.0.efi")
	if got := names(list(t, e).SlotEntries(a)); len(got) != 0 {
		t.Fatalf("slot a still has entries %v", got)
	}
	stage(t, e, a, "1.5")
	if _, err := e.Activate(a, "1.5", 3); err != nil {
		t.Fatal(err)
	}
	wantBoots(t, e, "ballast-3-a-1.5+3.efi")
	if _, err := e.Bless(loaderBoot(t, e)); err != nil {
		t.Fatal(err)
	}
	wantBoots(t, e, "ballast-3-a-1.5.efi")

	// 3.0 in slot b never boots: the loader counts its tries down and falls back to slot a.
	if err := e.RemoveSlot(b); err != nil {
		t.Fatal(err)
	}
	stage(t, e, b, "3.0")
	if _, err := e.Activate(b, "3.0", 2); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"ballast-4-b-3.0+1-1.efi", "ballast-4-b-3.0+0-2.efi"} {
		if got := loaderBoot(t, e); got != want {
			t.Fatalf("boot %s, want %s", got, want)
		}
	}
	wantBoots(t, e, "ballast-3-a-1.5.efi")

	// 3.1 in slot b boots but its userspace is never healthy: the init gives it up. The slot's
	// exhausted entry went with RemoveSlot, so generation 4 is free again and still the highest.
	if err := e.RemoveSlot(b); err != nil {
		t.Fatal(err)
	}
	stage(t, e, b, "3.1")
	if _, err := e.Activate(b, "3.1", 3); err != nil {
		t.Fatal(err)
	}
	booted = loaderBoot(t, e)
	if f, err := e.GiveUp(booted); err != nil || f.Name != "ballast-4-b-3.1+0-3.efi" {
		t.Fatalf("GiveUp(%s) = %+v, %v", booted, f, err)
	}
	wantBoots(t, e, "ballast-3-a-1.5.efi")
	if got := loaderBoot(t, e); got != "ballast-3-a-1.5.efi" {
		t.Fatalf("after the rollback the loader boots %s", got)
	}
}

func TestStageReplacesAndFailsCleanly(t *testing.T) {
	b := contract.SlotB
	e := newESP(t, "ballast-1-a-1.0.efi")
	stage(t, e, b, "2.0")
	stage(t, e, b, "2.1")
	if got := names(list(t, e).Staged); !slices.Equal(got, []string{"ballast-0-b-2.1.efi"}) {
		t.Fatalf("staged %v, want only 2.1", got)
	}
	// A reader that fails half way (a hash mismatch, a cut download) leaves the old UKI staged
	// and no temporary file behind.
	bad := io.MultiReader(strings.NewReader("half a UKI"), iotest.ErrReader(errors.New("sha256 mismatch")))
	if _, err := e.Stage(b, "2.2", bad); err == nil || !strings.Contains(err.Error(), "sha256 mismatch") {
		t.Fatalf("Stage with a failing reader: %v", err)
	}
	ents, _ := os.ReadDir(filepath.Join(e.Root(), contract.ESPStaged))
	if len(ents) != 1 || ents[0].Name() != "ballast-0-b-2.1.efi" {
		t.Fatalf("after a failed stage %s holds %v", contract.ESPStaged, ents)
	}
	for _, tc := range []struct {
		slot    contract.Slot
		version string
	}{{"c", "1.0"}, {b, "1.0+1"}, {b, ""}} {
		if _, err := e.Stage(tc.slot, tc.version, strings.NewReader("x")); err == nil {
			t.Errorf("Stage(%q, %q) passed", tc.slot, tc.version)
		}
	}
}

func TestActivateErrors(t *testing.T) {
	e := newESP(t, "ballast-1-a-1.0.efi")
	if _, err := e.Activate(contract.SlotB, "2.0", 3); err == nil || !strings.Contains(err.Error(), "no UKI staged") {
		t.Errorf("Activate without a staged UKI: %v", err)
	}
	stage(t, e, contract.SlotB, "2.0")
	if _, err := e.Activate(contract.SlotB, "2.1", 3); err == nil {
		t.Error("Activate of another version than the staged one passed")
	}
	if _, err := e.Activate(contract.SlotB, "2.0", 0); err == nil {
		t.Error("Activate with 0 tries passed")
	}
	wantBoots(t, e, "ballast-1-a-1.0.efi")
}

// TestActivateRemovesStaleEntries: an entry of the slot from before it was rewritten (here one
// that exhausted its tries) goes when the new UKI is activated.
func TestActivateRemovesStaleEntries(t *testing.T) {
	e := newESP(t, "ballast-1-a-1.0.efi", "ballast-2-b-2.0+0-3.efi")
	stage(t, e, contract.SlotB, "2.1")
	f, err := e.Activate(contract.SlotB, "2.1", 3)
	if err != nil {
		t.Fatal(err)
	}
	if f.Name != "ballast-3-b-2.1+3.efi" {
		t.Errorf("activated as %s", f.Name)
	}
	if got, want := names(list(t, e).Entries), []string{"ballast-3-b-2.1+3.efi", "ballast-1-a-1.0.efi"}; !slices.Equal(got, want) {
		t.Errorf("entries %v, want %v", got, want)
	}
}

func TestCancel(t *testing.T) {
	b := contract.SlotB
	e := newESP(t, "ballast-1-a-1.0.efi")
	if r, err := e.Cancel(b); err != nil || r != Nothing {
		t.Fatalf("Cancel with nothing = %s, %v", r, err)
	}
	stage(t, e, b, "2.0")
	if _, err := e.Activate(b, "2.0", 3); err != nil {
		t.Fatal(err)
	}
	if r, err := e.Cancel(b); err != nil || r != Deactivated {
		t.Fatalf("Cancel of an activated entry = %s, %v", r, err)
	}
	wantBoots(t, e, "ballast-1-a-1.0.efi")
	l := list(t, e)
	st, ok := l.StagedFor(b)
	if !ok || st.Name != "ballast-0-b-2.0.efi" {
		t.Fatalf("after cancel staged = %v", names(l.Staged))
	}
	if body, _ := os.ReadFile(filepath.Join(e.Root(), contract.ESPStaged, st.Name)); string(body) != uki(b, "2.0") {
		t.Fatal("the staged UKI changed")
	}
	// Activating again takes the next generation.
	if f, err := e.Activate(b, "2.0", 3); err != nil || f.Name != "ballast-2-b-2.0+3.efi" {
		t.Fatalf("re-activate = %+v, %v", f, err)
	}
	e.Cancel(b)
	if r, err := e.Cancel(b); err != nil || r != Unstaged {
		t.Fatalf("Cancel of a staged UKI = %s, %v", r, err)
	}
	if l := list(t, e); len(l.Staged) != 0 || len(l.Entries) != 1 {
		t.Fatalf("after cancelling everything: %+v", l)
	}

	// Entries that booted are not Cancel's: a trial in progress, a blessed one, an exhausted one.
	for _, name := range []string{"ballast-2-b-2.0+2-1.efi", "ballast-2-b-2.0.efi", "ballast-2-b-2.0+0-3.efi"} {
		e := newESP(t, "ballast-1-a-1.0.efi", name)
		if r, err := e.Cancel(b); err != nil || r != Nothing {
			t.Errorf("Cancel with %s = %s, %v", name, r, err)
		}
		if got := names(list(t, e).SlotEntries(b)); !slices.Equal(got, []string{name}) {
			t.Errorf("Cancel changed %s: %v", name, got)
		}
	}
}

func TestRemoveSlot(t *testing.T) {
	e := newESP(t, "ballast-1-a-1.0.efi", "ballast-2-b-2.0+0-3.efi")
	writeFile(t, filepath.Join(e.Root(), contract.ESPStaged, StagedName(contract.SlotB, "3.0")+tempSuffix), "half")
	stage(t, e, contract.SlotB, "2.5")
	stage(t, e, contract.SlotA, "9.0")
	if err := e.RemoveSlot(contract.SlotB); err != nil {
		t.Fatal(err)
	}
	l := list(t, e)
	if got := names(l.Entries); !slices.Equal(got, []string{"ballast-1-a-1.0.efi"}) {
		t.Errorf("entries %v", got)
	}
	if got := names(l.Staged); !slices.Equal(got, []string{"ballast-0-a-9.0.efi"}) {
		t.Errorf("staged %v: slot a's must stay, slot b's go", got)
	}
	if _, err := os.Stat(filepath.Join(e.Root(), contract.ESPStaged, StagedName(contract.SlotB, "3.0")+tempSuffix)); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("slot b's temporary file is still there: %v", err)
	}
	if _, err := os.Stat(filepath.Join(e.Root(), "EFI/Linux/other-os-6.1.efi")); err != nil {
		t.Errorf("a foreign entry went: %v", err)
	}
	// Removing the only slot with entries would leave nothing to boot.
	if err := e.RemoveSlot(contract.SlotA); err == nil || !strings.Contains(err.Error(), "nothing would be left to boot") {
		t.Errorf("RemoveSlot of the last bootable slot: %v", err)
	}
	wantBoots(t, e, "ballast-1-a-1.0.efi")
}

func TestBlessAndGiveUpErrors(t *testing.T) {
	e := newESP(t, "ballast-1-a-1.0.efi")
	if _, err := e.Bless("ballast-7-b-2.0+2-1.efi"); err == nil {
		t.Error("Bless of a missing entry passed")
	}
	if _, err := e.GiveUp("linux.efi"); err == nil {
		t.Error("GiveUp of a foreign name passed")
	}
	// A blessed entry is never given up: it has no counter to exhaust.
	if f, err := e.GiveUp("ballast-1-a-1.0.efi"); err != nil || f.Name != "ballast-1-a-1.0.efi" {
		t.Errorf("GiveUp of a blessed entry = %+v, %v", f, err)
	}
}

var errPowerCut = errors.New("power cut")

// TestPowerCutAtEveryStep cuts the power before each change to the ESP, one run per change, in
// an update from slot a to b and in a rollback from b to a. After every cut the ESP must boot a
// whole UKI of a slot that holds a good system, and doing the interrupted work again must give
// the ESP the uninterrupted run gives.
func TestPowerCutAtEveryStep(t *testing.T) {
	a, b := contract.SlotA, contract.SlotB
	type scenario struct {
		name    string
		initial []string
		steps   func(e *ESP) error
		// good are the entries (slot/version) allowed to boot after a cut.
		good map[string]bool
		want string // the entry booted after the run, uninterrupted or redone
	}
	scenarios := []scenario{
		{
			name:    "update a to b",
			initial: []string{"ballast-1-a-1.0.efi", "ballast-7-b-0.9+0-3.efi"},
			steps: func(e *ESP) error {
				if err := e.RemoveSlot(b); err != nil {
					return err
				}
				if _, err := e.Stage(b, "2.0", strings.NewReader(uki(b, "2.0"))); err != nil {
					return err
				}
				_, err := e.Activate(b, "2.0", 3)
				return err
			},
			good: map[string]bool{"a/1.0": true, "b/2.0": true},
			want: "ballast-2-b-2.0+3.efi",
		},
		{
			name:    "give up a trial",
			initial: []string{"ballast-1-a-1.0.efi", "ballast-2-b-2.0+2-1.efi"},
			steps: func(e *ESP) error {
				_, err := e.GiveUp("ballast-2-b-2.0+2-1.efi")
				return err
			},
			good: map[string]bool{"a/1.0": true, "b/2.0": true},
			want: "ballast-1-a-1.0.efi",
		},
		{
			name:    "bless and cancel",
			initial: []string{"ballast-1-a-1.0.efi", "ballast-2-b-2.0+2-1.efi"},
			steps: func(e *ESP) error {
				if _, err := e.Bless("ballast-2-b-2.0+2-1.efi"); err != nil {
					return err
				}
				if err := e.RemoveSlot(a); err != nil {
					return err
				}
				if _, err := e.Stage(a, "3.0", strings.NewReader(uki(a, "3.0"))); err != nil {
					return err
				}
				if _, err := e.Activate(a, "3.0", 3); err != nil {
					return err
				}
				if _, err := e.Cancel(a); err != nil {
					return err
				}
				_, err := e.Cancel(a)
				return err
			},
			good: map[string]bool{"b/2.0": true, "a/3.0": true},
			want: "ballast-2-b-2.0.efi",
		},
	}
	for _, sc := range scenarios {
		t.Run(sc.name, func(t *testing.T) {
			for cut := 1; ; cut++ {
				e := newESP(t, sc.initial...)
				changes := 0
				e.beforeChange = func(op, path string) error {
					changes++
					if changes >= cut {
						return errPowerCut
					}
					return nil
				}
				err := sc.steps(e)
				e.beforeChange = nil
				if err == nil {
					if cut == 1 {
						t.Fatal("the scenario changes nothing")
					}
					wantBoots(t, e, sc.want)
					t.Logf("%d changes, the power cut before each", cut-1)
					return
				}
				if !errors.Is(err, errPowerCut) {
					t.Fatalf("cut before change %d: %v", cut, err)
				}
				l := list(t, e)
				f, ok := l.Default()
				if !ok {
					t.Fatalf("cut before change %d: nothing left to boot", cut)
				}
				checkUKI(t, e, f)
				if !sc.good[string(f.Entry.Slot)+"/"+f.Entry.Version] {
					t.Fatalf("cut before change %d: the loader would boot %s", cut, f.Name)
				}
				for _, s := range l.Staged {
					body, _ := os.ReadFile(filepath.Join(e.Root(), contract.ESPStaged, s.Name))
					if !bytes.Equal(body, []byte(uki(s.Entry.Slot, s.Entry.Version))) {
						t.Fatalf("cut before change %d: staged %s is not whole", cut, s.Name)
					}
				}
				// What was interrupted is done again from the start, as the agent does.
				if err := sc.steps(e); err != nil {
					t.Fatalf("cut before change %d, then again: %v", cut, err)
				}
				wantBoots(t, e, sc.want)
			}
		})
	}
}

func TestRunning(t *testing.T) {
	e := newESP(t, "ballast-1-a-1.0.efi", "ballast-2-b-2.0.efi")
	l := list(t, e)
	// The loader reported the name with its counter; the init blessed the entry since.
	if f, ok := l.Running("ballast-2-b-2.0+2-1.efi", contract.SlotB, "2.0"); !ok || f.Name != "ballast-2-b-2.0.efi" {
		t.Errorf("Running by loader name = %+v, %v", f, ok)
	}
	// No loader variable: the entry of the booted slot and version.
	if f, ok := l.Running("", contract.SlotA, "1.0"); !ok || f.Name != "ballast-1-a-1.0.efi" {
		t.Errorf("Running by slot = %+v, %v", f, ok)
	}
	if _, ok := l.Running("", contract.SlotA, "1.1"); ok {
		t.Error("Running found an entry of another version")
	}
}
