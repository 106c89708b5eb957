// Package esp changes the boot entries on a mounted EFI system partition: it lists Ballast's UKIs
// (entries in EFI/Linux, staged UKIs in EFI/ballast), stages a new UKI, activates it as the next
// boot with a boot counter, cancels that again, removes a slot's UKIs before the slot is
// rewritten, and blesses or gives up an entry after a trial boot.
//
// Every operation is ordered so that a power cut at any point leaves an ESP from which
// systemd-boot boots a good slot: files are written to a temporary name, synced and renamed, and
// every directory changed is synced before the next step depends on it. Order models how
// systemd-boot 252 picks the entry it boots, so callers and tests can say which entry that is.
package esp

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"

	"github.com/ballast-os/ballast/contract"
)

// stagedGeneration is the generation in a staged UKI's name: staged UKIs are named like entries
// (so ParseEntry reads them) but are not entries until Activate gives them a real generation.
const stagedGeneration = 0

// tempSuffix marks a UKI being written; List ignores such files, Stage and RemoveSlot remove them.
const tempSuffix = ".tmp"

// ESP is a mounted EFI system partition.
type ESP struct {
	root string
	// beforeChange, when set, is called before every change to the ESP and may fail it; tests use
	// it to cut the power between any two steps.
	beforeChange func(op, path string) error
}

func (e *ESP) change(op, path string) error {
	if e.beforeChange == nil {
		return nil
	}
	return e.beforeChange(op, path)
}

func (e *ESP) rename(from, to string) error {
	if err := e.change("rename", to); err != nil {
		return err
	}
	return os.Rename(from, to)
}

func (e *ESP) remove(path string) error {
	if err := e.change("remove", path); err != nil {
		return err
	}
	return os.Remove(path)
}

// New returns the ESP mounted at root (contract.ESPMount on a host).
func New(root string) *ESP { return &ESP{root: root} }

// Root is the directory the ESP is mounted at.
func (e *ESP) Root() string { return e.root }

// File is one Ballast UKI on the ESP.
type File struct {
	Name  string         // the file's name as it is on the ESP
	Entry contract.Entry // what the name says
}

// Listing is what the ESP holds.
type Listing struct {
	// Entries are the boot entries in EFI/Linux, in systemd-boot's menu order: the first is
	// the one it boots (see Order).
	Entries []File
	// Staged are the UKIs in EFI/ballast, written by an apply and not activated.
	Staged []File
}

// StagedName is the file name of the UKI staged for slot at version, in contract.ESPStaged.
func StagedName(slot contract.Slot, version string) string {
	return contract.Entry{Generation: stagedGeneration, Slot: slot, Version: version}.FileName()
}

func (e *ESP) entriesDir() string {
	return filepath.Join(e.root, filepath.FromSlash(contract.ESPEntries))
}
func (e *ESP) stagedDir() string {
	return filepath.Join(e.root, filepath.FromSlash(contract.ESPStaged))
}

// List reads both directories. Files that are not Ballast UKIs (another OS's entries, a
// half-written temporary file) are left out; a missing directory is an empty one.
func (e *ESP) List() (Listing, error) {
	var l Listing
	var err error
	// A Ballast ESP always has its entries directory, holding the running UKI at least. Without
	// it the ESP is not mounted (yet: its vfat module can load after the API server starts), and
	// an empty listing would read as every entry gone: an activation cancelled, a rollback never
	// seen.
	if _, err := os.Stat(e.entriesDir()); err != nil {
		return Listing{}, fmt.Errorf("esp: %w (is the ESP mounted at %s?)", err, e.root)
	}
	if l.Entries, err = readDir(e.entriesDir()); err != nil {
		return Listing{}, err
	}
	Order(l.Entries)
	if l.Staged, err = readDir(e.stagedDir()); err != nil {
		return Listing{}, err
	}
	return l, nil
}

func readDir(dir string) ([]File, error) {
	ents, err := os.ReadDir(dir)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("esp: %w", err)
	}
	var files []File
	for _, d := range ents {
		if !d.Type().IsRegular() {
			continue
		}
		en, err := contract.ParseEntry(d.Name())
		if err != nil {
			continue // not ours: leave other entries and stray files alone
		}
		files = append(files, File{Name: d.Name(), Entry: en})
	}
	return files, nil
}

// Order sorts entries the way systemd-boot 252 sorts Type #2 entries whose .osrel has no sort
// key: exhausted entries (no tries left) last, then by ID (the lower-case file name) in
// descending version order (CompareVersions), then more tries left first, then fewer tries done
// first. With no default set in loader.conf the first entry is the one booted.
func Order(files []File) {
	slices.SortStableFunc(files, func(a, b File) int {
		if ea, eb := a.Entry.Exhausted(), b.Entry.Exhausted(); ea != eb {
			if ea {
				return 1
			}
			return -1
		}
		if r := CompareVersions(strings.ToLower(a.Name), strings.ToLower(b.Name)); r != 0 {
			return -r
		}
		if !a.Entry.Counting || !b.Entry.Counting {
			return 0
		}
		if a.Entry.TriesLeft != b.Entry.TriesLeft {
			return b.Entry.TriesLeft - a.Entry.TriesLeft
		}
		return a.Entry.TriesDone - b.Entry.TriesDone
	})
}

// Default is the entry systemd-boot boots next, if there is any entry.
func (l Listing) Default() (File, bool) {
	if len(l.Entries) == 0 {
		return File{}, false
	}
	return l.Entries[0], true
}

// Find returns the entry with the generation, slot and version of en, whatever its boot counter
// says now: the loader renames an entry at every counted boot, and the init when it blesses or
// gives up one.
func (l Listing) Find(en contract.Entry) (File, bool) {
	for _, f := range l.Entries {
		if sameEntry(f.Entry, en) {
			return f, true
		}
	}
	return File{}, false
}

func sameEntry(a, b contract.Entry) bool {
	return a.Generation == b.Generation && a.Slot == b.Slot && strings.EqualFold(a.Version, b.Version)
}

// SlotEntries returns the entries of slot, in menu order.
func (l Listing) SlotEntries(slot contract.Slot) []File {
	var out []File
	for _, f := range l.Entries {
		if f.Entry.Slot == slot {
			out = append(out, f)
		}
	}
	return out
}

// StagedFor returns the UKI staged for slot. There is at most one after Stage; should a crash
// have left more, the one with the highest version is returned.
func (l Listing) StagedFor(slot contract.Slot) (File, bool) {
	var best File
	found := false
	for _, f := range l.Staged {
		if f.Entry.Slot == slot && (!found || CompareVersions(f.Entry.Version, best.Entry.Version) > 0) {
			best, found = f, true
		}
	}
	return best, found
}

// Running finds the entry this boot came from. booted is the entry file name the loader reported
// (BootedEntry; empty when unknown); it is matched by generation, slot and version because the
// file may have been renamed since. Without it, the entry of slot with version that boots first
// is taken: the loader only reports entries with a boot counter, and a blessed boot is the only
// entry of its slot.
func (l Listing) Running(booted string, slot contract.Slot, version string) (File, bool) {
	if booted != "" {
		if en, err := contract.ParseEntry(booted); err == nil {
			return l.Find(en)
		}
	}
	for _, f := range l.Entries {
		if f.Entry.Slot == slot && strings.EqualFold(f.Entry.Version, version) {
			return f, true
		}
	}
	return File{}, false
}

// Stage writes the UKI for slot at version from r into EFI/ballast, replacing any UKI staged for
// the slot before. The UKI is complete on the ESP before it has its name: a read error from r
// (such as a failed hash check) leaves nothing staged.
func (e *ESP) Stage(slot contract.Slot, version string, r io.Reader) (File, error) {
	if err := slot.Validate(); err != nil {
		return File{}, fmt.Errorf("esp: stage: %w", err)
	}
	if err := contract.ValidateVersion(version); err != nil {
		return File{}, fmt.Errorf("esp: stage: %w", err)
	}
	name := StagedName(slot, version)
	dir := e.stagedDir()
	if err := e.mkdirSynced(dir); err != nil {
		return File{}, err
	}
	final := filepath.Join(dir, name)
	if err := e.writeSynced(final, r); err != nil {
		return File{}, fmt.Errorf("esp: stage %s: %w", name, err)
	}
	staged, err := readDir(dir)
	if err != nil {
		return File{}, err
	}
	for _, f := range staged {
		if f.Entry.Slot == slot && f.Name != name {
			if err := e.remove(filepath.Join(dir, f.Name)); err != nil {
				return File{}, fmt.Errorf("esp: stage %s: remove the UKI staged before: %w", name, err)
			}
		}
	}
	if err := syncDir(dir); err != nil {
		return File{}, err
	}
	return File{Name: name, Entry: contract.Entry{Generation: stagedGeneration, Slot: slot, Version: version}}, nil
}

// writeSynced writes r to path through a temporary file that is synced and renamed, and syncs the
// directory, so path is either absent, the old file or the whole new one.
func (e *ESP) writeSynced(path string, r io.Reader) (err error) {
	tmp := path + tempSuffix
	if err := e.change("create", tmp); err != nil {
		return err
	}
	f, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o644)
	if err != nil {
		return err
	}
	defer func() {
		if err != nil {
			f.Close()
			os.Remove(tmp)
		}
	}()
	if _, err = io.Copy(f, r); err != nil {
		return err
	}
	if err = f.Sync(); err != nil {
		return err
	}
	if err = f.Close(); err != nil {
		return err
	}
	if err = e.rename(tmp, path); err != nil {
		return err
	}
	return syncDir(filepath.Dir(path))
}

// Activate makes the UKI staged for slot at version the next boot: it becomes the entry with the
// highest generation, counting tries boots. Entries left of the slot from before are removed
// first: they describe what the slot held before it was rewritten, so they could not boot.
func (e *ESP) Activate(slot contract.Slot, version string, tries int) (File, error) {
	if tries < 1 || tries > 9999 {
		return File{}, fmt.Errorf("esp: activate: %d tries: want 1 to 9999", tries)
	}
	l, err := e.List()
	if err != nil {
		return File{}, err
	}
	staged, ok := l.StagedFor(slot)
	if !ok || !strings.EqualFold(staged.Entry.Version, version) {
		return File{}, fmt.Errorf("esp: activate: no UKI staged for slot %s at version %s in %s", slot, version, contract.ESPStaged)
	}
	var gen uint64
	for _, f := range l.Entries {
		gen = max(gen, f.Entry.Generation)
	}
	if err := e.removeEntries(l.SlotEntries(slot)); err != nil {
		return File{}, fmt.Errorf("esp: activate slot %s: %w", slot, err)
	}
	en := contract.Entry{Generation: gen + 1, Slot: slot, Version: staged.Entry.Version, Counting: true, TriesLeft: tries}
	dst := filepath.Join(e.entriesDir(), en.FileName())
	if err := e.mkdirSynced(e.entriesDir()); err != nil {
		return File{}, err
	}
	if err := e.rename(filepath.Join(e.stagedDir(), staged.Name), dst); err != nil {
		return File{}, fmt.Errorf("esp: activate: %w", err)
	}
	if err := syncDirs(e.entriesDir(), e.stagedDir()); err != nil {
		return File{}, err
	}
	return File{Name: en.FileName(), Entry: en}, nil
}

// CancelResult says what Cancel did.
type CancelResult string

// What Cancel can do.
const (
	Deactivated CancelResult = "deactivated" // an activated entry went back to staged
	Unstaged    CancelResult = "unstaged"    // a staged UKI was removed
	Nothing     CancelResult = "nothing"     // nothing was activated or staged for the slot
)

// Cancel undoes the last step taken for slot: an entry that was activated and never booted (a
// boot counter with no tries done) goes back to EFI/ballast as the staged UKI; otherwise the UKI
// staged for the slot is removed. Entries that have booted (blessed ones, a trial in progress,
// exhausted ones) are never touched.
func (e *ESP) Cancel(slot contract.Slot) (CancelResult, error) {
	l, err := e.List()
	if err != nil {
		return Nothing, err
	}
	for _, f := range l.SlotEntries(slot) {
		if !f.Entry.Counting || f.Entry.TriesDone > 0 || f.Entry.TriesLeft == 0 {
			continue
		}
		if err := e.mkdirSynced(e.stagedDir()); err != nil {
			return Nothing, err
		}
		dst := filepath.Join(e.stagedDir(), StagedName(slot, f.Entry.Version))
		if err := e.rename(filepath.Join(e.entriesDir(), f.Name), dst); err != nil {
			return Nothing, fmt.Errorf("esp: cancel %s: %w", f.Name, err)
		}
		if err := syncDirs(e.entriesDir(), e.stagedDir()); err != nil {
			return Nothing, err
		}
		return Deactivated, nil
	}
	if f, ok := l.StagedFor(slot); ok {
		if err := e.remove(filepath.Join(e.stagedDir(), f.Name)); err != nil {
			return Nothing, fmt.Errorf("esp: cancel: %w", err)
		}
		if err := syncDir(e.stagedDir()); err != nil {
			return Nothing, err
		}
		return Unstaged, nil
	}
	return Nothing, nil
}

// RemoveSlot removes every entry and staged UKI of slot: the first step of writing the slot, so
// that nothing boots it while it is half written. Entries go first, then staged UKIs. It refuses
// when no entry of the other slot would be left, since the ESP would then boot nothing.
func (e *ESP) RemoveSlot(slot contract.Slot) error {
	if err := slot.Validate(); err != nil {
		return fmt.Errorf("esp: remove slot: %w", err)
	}
	l, err := e.List()
	if err != nil {
		return err
	}
	if len(l.SlotEntries(slot.Other())) == 0 && len(l.SlotEntries(slot)) > 0 {
		return fmt.Errorf("esp: remove slot %s: slot %s has no boot entry in %s, so nothing would be left to boot", slot, slot.Other(), contract.ESPEntries)
	}
	if err := e.removeEntries(l.SlotEntries(slot)); err != nil {
		return fmt.Errorf("esp: remove slot %s: %w", slot, err)
	}
	dir := e.stagedDir()
	ents, err := os.ReadDir(dir)
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("esp: %w", err)
	}
	removed := false
	for _, d := range ents {
		en, err := contract.ParseEntry(strings.TrimSuffix(d.Name(), tempSuffix))
		if err != nil || en.Slot != slot {
			continue
		}
		if err := e.remove(filepath.Join(dir, d.Name())); err != nil {
			return fmt.Errorf("esp: remove slot %s: %w", slot, err)
		}
		removed = true
	}
	if removed {
		return syncDir(dir)
	}
	return nil
}

func (e *ESP) removeEntries(files []File) error {
	if len(files) == 0 {
		return nil
	}
	for _, f := range files {
		if err := e.remove(filepath.Join(e.entriesDir(), f.Name)); err != nil {
			return err
		}
	}
	return syncDir(e.entriesDir())
}

// Bless renames the entry the loader booted as name (its name then, perhaps renamed since) to
// the name without a boot counter: a good boot, never counted again. An entry without a counter
// is left as it is.
func (e *ESP) Bless(name string) (File, error) {
	return e.renameEntry(name, contract.Entry.Blessed)
}

// GiveUp renames the entry booted as name to one with no tries left, so the loader boots the
// entry with the next highest generation from now on.
func (e *ESP) GiveUp(name string) (File, error) {
	return e.renameEntry(name, contract.Entry.GiveUp)
}

func (e *ESP) renameEntry(name string, to func(contract.Entry) contract.Entry) (File, error) {
	en, err := contract.ParseEntry(name)
	if err != nil {
		return File{}, fmt.Errorf("esp: %w", err)
	}
	l, err := e.List()
	if err != nil {
		return File{}, err
	}
	cur, ok := l.Find(en)
	if !ok {
		return File{}, fmt.Errorf("esp: boot entry %s is not in %s", name, contract.ESPEntries)
	}
	next := to(cur.Entry)
	if next == cur.Entry {
		return cur, nil
	}
	dst := File{Name: next.FileName(), Entry: next}
	if err := e.rename(filepath.Join(e.entriesDir(), cur.Name), filepath.Join(e.entriesDir(), dst.Name)); err != nil {
		return File{}, fmt.Errorf("esp: rename boot entry %s: %w", cur.Name, err)
	}
	return dst, syncDir(e.entriesDir())
}

// mkdirSynced creates dir and its parents as needed, syncing each parent a new directory was
// made in, so the directory is still there after a power cut.
func (e *ESP) mkdirSynced(dir string) error {
	if _, err := os.Stat(dir); err == nil {
		return nil
	}
	parent := filepath.Dir(dir)
	if parent != dir {
		if err := e.mkdirSynced(parent); err != nil {
			return err
		}
	}
	if err := e.change("mkdir", dir); err != nil {
		return err
	}
	if err := os.Mkdir(dir, 0o755); err != nil && !errors.Is(err, fs.ErrExist) {
		return fmt.Errorf("esp: %w", err)
	}
	return syncDir(parent)
}

func syncDirs(dirs ...string) error {
	for _, d := range dirs {
		if err := syncDir(d); err != nil {
			return err
		}
	}
	return nil
}

// syncDir makes a directory's entries durable before the next step relies on them, whatever the
// mount options (the host mounts the ESP with "sync"; tests use a plain directory). A file system
// that cannot sync a directory (EINVAL) has nothing more to write for it.
func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return fmt.Errorf("esp: sync %s: %w", dir, err)
	}
	defer d.Close()
	if err := d.Sync(); err != nil && !errors.Is(err, syscall.EINVAL) {
		return fmt.Errorf("esp: sync %s: %w", dir, err)
	}
	return nil
}
