// Package agent is the host's update state machine, behind the API's update actions: check (the
// release this host may take now), apply (download it through the repository and write the
// inactive slot and its UKI), activate (make it the next boot, with a boot counter) and cancel,
// and the status GET /updates/status reports, rollbacks included.
//
// One action runs at a time; another one asked for meanwhile fails at once with ErrBusy. What
// the agent must remember across boots is in state.json in Config.StateDir, written atomically;
// what is staged or activated is read from the ESP itself, the truth the boot loader acts on.
package agent

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"strings"
	"sync"
	"time"

	"github.com/ballast-os/ballast/contract"
	"github.com/ballast-os/ballast/init/efivar"
	"github.com/ballast-os/ballast/init/initramfs/blockdev"
	"github.com/ballast-os/ballast/updates/esp"
	"github.com/ballast-os/ballast/updates/install"
)

// Errors an action's error wraps, so the API can tell a client what to do about it.
var (
	// ErrBusy is the error of an action asked for while another one runs.
	ErrBusy = errors.New("updates: busy")
	// ErrRefused: the action does not fit the host's state (nothing to apply, nothing staged,
	// the running boot still on trial, a wave not open yet).
	ErrRefused = errors.New("updates: refused")
	// ErrRepository: the repository could not be asked, or what it served failed verification.
	ErrRepository = errors.New("updates: repository")
)

// The states Status reports.
const (
	StateIdle      = "idle"      // nothing to do: up to date, or not checked
	StateAvailable = "available" // a check found a release this host may take now
	StateStaged    = "staged"    // a release is written to the inactive slot
	StateReady     = "ready"     // a release is activated: the next boot
	StateError     = "error"     // the last action failed (last_attempt says how)
)

// The actions.
const (
	ActionCheck    = "check"
	ActionApply    = "apply"
	ActionActivate = "activate"
	ActionCancel   = "cancel"
)

// Config is what the agent works on.
type Config struct {
	StateDir string // contract.UpdatesDir
	ESP      string // the mounted ESP, contract.ESPMount
	EFIVars  string // efivarfs, contract.EFIVarsMount: which entry the loader booted
	// Disk is the whole disk holding both slots; empty means the disk holding Booted.Root,
	// found through /sys/class/block (FindDisk).
	Disk   string
	Image  contract.Image // the running image
	Booted contract.Boot  // the running boot, from /proc/cmdline
	// Settings returns the current settings.updates.
	Settings func() Settings
	// Repo makes the repository client for the settings of one action.
	Repo        func(Settings) (Repo, error)
	BootHistory string // contract.BootHistoryPath
	Now         func() time.Time
}

// Running is the boot in progress.
type Running struct {
	Version string        `json:"version"`
	Slot    contract.Slot `json:"slot"`
	Entry   string        `json:"entry,omitempty"` // its ESP entry's file name now
	OnTrial bool          `json:"on_trial"`        // the entry still counts boots: not blessed yet
}

// Status is GET /updates/status.
type Status struct {
	State     string       `json:"state"`
	Running   Running      `json:"running"`
	Available []string     `json:"available_versions"`
	Chosen    *Chosen      `json:"chosen,omitempty"`
	Staged    *SlotVersion `json:"staged,omitempty"`
	Activated *SlotVersion `json:"activated,omitempty"`
	// Busy names the action in progress.
	Busy        string    `json:"busy,omitempty"`
	LastAttempt *Attempt  `json:"last_attempt,omitempty"`
	Rollback    *Rollback `json:"rollback,omitempty"`
	// BytesDownloaded is what the last apply downloaded, metadata included (live while it runs).
	BytesDownloaded int64 `json:"bytes_downloaded"`
	// Error is a problem outside any action: the ESP or the state file could not be read.
	Error string `json:"error,omitempty"`
}

// Agent runs the actions. Its methods are safe to call from many goroutines.
type Agent struct {
	cfg Config
	esp *esp.ESP

	action sync.Mutex // held by the action in progress

	mu       sync.Mutex // guards what follows
	st       state
	busy     string
	problem  error // from loading the state file
	bytesNow func() int64
}

// New loads the state and derives what happened since it was saved: a rollback from an
// activated version, or the activated version running. A state file that cannot be read is kept
// aside and reported in Status; New fails only for a config it cannot work with.
func New(cfg Config) (*Agent, error) {
	if cfg.StateDir == "" || cfg.ESP == "" {
		return nil, errors.New("updates: agent: StateDir and ESP must be set")
	}
	if cfg.Settings == nil || cfg.Repo == nil {
		return nil, errors.New("updates: agent: Settings and Repo must be set")
	}
	if err := cfg.Booted.Slot.Validate(); err != nil {
		return nil, fmt.Errorf("updates: agent: booted: %w", err)
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	a := &Agent{cfg: cfg, esp: esp.New(cfg.ESP)}
	a.st, a.problem = loadState(cfg.StateDir)
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.st.Chosen != nil && a.st.Chosen.Version == cfg.Image.Version {
		a.st.Chosen = nil // what was chosen is running now
	}
	// An ESP that cannot be read yet (not mounted) is no lasting problem: each Status reconciles
	// again and reports what it finds then.
	a.reconcile()
	return a, nil
}

// Status reports the state; it never waits for an action.
func (a *Agent) Status() Status {
	a.mu.Lock()
	defer a.mu.Unlock()
	l, err := a.reconcile()
	return a.status(l, err)
}

// reconcile compares the remembered activation with the ESP and the running boot, saving what
// changed: a blessed boot of the activated version ends the activation, an activated entry
// exhausted while the host runs the other slot is a rollback. Called with mu held.
func (a *Agent) reconcile() (esp.Listing, error) {
	l, err := a.esp.List()
	if err != nil {
		return l, err
	}
	act := a.st.Activated
	if act == nil {
		return l, nil
	}
	want, perr := contract.ParseEntry(act.Entry)
	f, found := l.Find(want)
	switch {
	case perr != nil || !found:
		// Cancelled, or the slot is being rewritten: nothing activated any more.
		a.st.Activated = nil
	case act.Slot == a.cfg.Booted.Slot:
		if f.Entry.Counting {
			return l, nil // running on trial: it may still be given up
		}
		a.st.Activated, a.st.Staged = nil, nil // running and blessed: the update is done
	case f.Entry.Exhausted():
		a.st.Rollback = &Rollback{Version: act.Version, Slot: act.Slot, Time: a.cfg.Now().UTC(), Reason: a.rollbackReason(act, f)}
		a.st.Activated = nil
	default:
		return l, nil // activated, not booted yet
	}
	return l, a.st.save(a.cfg.StateDir)
}

// rollbackReason says why the activated entry f was given up: the system init's verdict on one
// of its boots if it wrote one, else the boots the loader counted.
func (a *Agent) rollbackReason(act *activation, f esp.File) string {
	h, err := readBootHistory(a.cfg.BootHistory)
	if err != nil {
		return fmt.Sprintf("did not boot (%d tries); %v", f.Entry.TriesDone, err)
	}
	for i := len(h.Boots) - 1; i >= 0; i-- {
		b := h.Boots[i]
		en, err := contract.ParseEntry(b.Entry)
		// A generation can come back after its slot was rewritten; only boots since this
		// activation are about it.
		if err != nil || b.Time.Before(act.Time) || en.Generation != f.Entry.Generation || en.Slot != f.Entry.Slot ||
			!strings.EqualFold(en.Version, f.Entry.Version) {
			continue
		}
		if b.Result == "unhealthy" {
			return "unhealthy: " + b.Reason
		}
	}
	return fmt.Sprintf("did not boot (%d tries)", f.Entry.TriesDone)
}

// status builds Status from the state and the ESP listing l (err when it could not be read).
// Called with mu held.
func (a *Agent) status(l esp.Listing, lerr error) Status {
	s := Status{
		Running:     a.running(l),
		Available:   append([]string{}, a.st.Available...),
		Chosen:      a.st.Chosen,
		Busy:        a.busy,
		LastAttempt: a.st.LastAttempt,
		Rollback:    a.st.Rollback,
	}
	s.BytesDownloaded = a.st.BytesDownloaded
	if a.bytesNow != nil {
		s.BytesDownloaded = a.bytesNow()
	}
	target := a.cfg.Booted.Slot.Other()
	for _, f := range l.SlotEntries(target) {
		if f.Entry.Counting && f.Entry.TriesDone == 0 && f.Entry.TriesLeft > 0 {
			s.Activated = &SlotVersion{Version: f.Entry.Version, Slot: target}
			break
		}
	}
	if f, ok := l.StagedFor(target); ok {
		s.Staged = &SlotVersion{Version: f.Entry.Version, Slot: target}
	}
	switch {
	case lerr != nil:
		s.Error = lerr.Error()
	case a.problem != nil:
		s.Error = a.problem.Error()
	}
	switch {
	case s.Error != "" || (s.LastAttempt != nil && s.LastAttempt.Error != ""):
		s.State = StateError
	case s.Activated != nil:
		s.State = StateReady
	case s.Staged != nil:
		s.State = StateStaged
	case s.Chosen != nil && s.Chosen.WaveOpensAt == nil && s.Chosen.Version != a.cfg.Image.Version:
		s.State = StateAvailable
	default:
		s.State = StateIdle
	}
	return s
}

// running identifies the boot in progress on the ESP.
func (a *Agent) running(l esp.Listing) Running {
	r := Running{Version: a.cfg.Image.Version, Slot: a.cfg.Booted.Slot}
	booted := ""
	if a.cfg.EFIVars != "" {
		if name, err := (efivar.Loader{Vars: efivar.Vars{Dir: a.cfg.EFIVars}}).BootedEntry(); err == nil {
			booted = name
		}
	}
	if f, ok := l.Running(booted, r.Slot, r.Version); ok {
		r.Entry, r.OnTrial = f.Name, f.Entry.Counting
	}
	return r
}

// run runs one action unless another one is running, and records how it ended.
func (a *Agent) run(ctx context.Context, action string, fn func(ctx context.Context) (version string, err error)) (Status, error) {
	// busy is set and cleared together with the action lock, under mu, so a refused caller
	// always learns which action holds it.
	a.mu.Lock()
	if !a.action.TryLock() {
		busy := a.busy
		a.mu.Unlock()
		return a.Status(), fmt.Errorf("%w: %s in progress", ErrBusy, busy)
	}
	a.busy = action
	a.mu.Unlock()
	start := a.cfg.Now().UTC()
	version, err := fn(ctx)

	a.mu.Lock()
	defer a.mu.Unlock()
	defer a.action.Unlock()
	a.busy = ""
	a.st.LastAttempt = &Attempt{Action: action, Time: start, Version: version}
	if err != nil {
		a.st.LastAttempt.Error = err.Error()
	}
	if serr := a.st.save(a.cfg.StateDir); serr != nil {
		err = errors.Join(err, serr)
	} else {
		a.problem = nil // the state file is whole again
	}
	l, lerr := a.reconcile()
	return a.status(l, lerr), err
}

// update changes the state under mu and saves it.
func (a *Agent) update(fn func(st *state)) error {
	a.mu.Lock()
	defer a.mu.Unlock()
	fn(&a.st)
	return a.st.save(a.cfg.StateDir)
}

// refuseTrial fails while the running boot is on trial: until it is blessed, its fate (and so
// which slot is the inactive one) is not settled.
func (a *Agent) refuseTrial() error {
	a.mu.Lock()
	defer a.mu.Unlock()
	l, err := a.esp.List()
	if err != nil {
		return err
	}
	if r := a.running(l); r.OnTrial {
		return fmt.Errorf("%w: the running boot (%s) is on trial: it must be blessed first", ErrRefused, r.Entry)
	}
	return nil
}

// Check asks the repository for the release this host may take now.
func (a *Agent) Check(ctx context.Context) (Status, error) {
	return a.run(ctx, ActionCheck, func(ctx context.Context) (string, error) {
		_, choice, err := a.choose(ctx)
		if err != nil {
			return "", err
		}
		if choice.Release != nil {
			return choice.Release.Version, nil
		}
		if choice.Waiting != nil {
			return choice.Waiting.Version, nil
		}
		return "", nil
	})
}

// choose makes the repository client for the current settings, asks it, and keeps the answer.
func (a *Agent) choose(ctx context.Context) (Repo, Choice, error) {
	set := a.cfg.Settings()
	repo, err := a.cfg.Repo(set)
	if err != nil {
		return nil, Choice{}, fmt.Errorf("%w: %w", ErrRepository, err)
	}
	lock := set.VersionLock
	if lock == "" {
		lock = "latest"
	}
	q := Query{
		Variant: a.cfg.Image.Variant, Arch: a.cfg.Image.Arch, Current: a.cfg.Image.Version,
		Lock: lock, Seed: set.Seed, IgnoreWaves: set.IgnoreWaves, Now: a.cfg.Now(),
	}
	choice, err := repo.Choose(ctx, q)
	if err != nil {
		return nil, Choice{}, fmt.Errorf("updates: check: %w", err)
	}
	var chosen *Chosen
	switch {
	case choice.Release != nil:
		chosen = &Chosen{Version: choice.Release.Version, Notes: choice.Release.Notes}
	case choice.Waiting != nil:
		at := choice.WaveOpensAt.UTC()
		chosen = &Chosen{Version: choice.Waiting.Version, Notes: choice.Waiting.Notes, WaveOpensAt: &at}
	}
	err = a.update(func(st *state) {
		st.Available = append([]string{}, choice.Available...)
		st.Chosen = chosen
	})
	return repo, choice, err
}

// Apply downloads the chosen release and writes it into the inactive slot and its UKI onto the
// ESP as staged. The slot's boot entries go first, so nothing boots it half written; the running
// slot is never written. Run again after a failure, it starts over, and the repository resumes
// the downloads.
func (a *Agent) Apply(ctx context.Context) (Status, error) {
	return a.run(ctx, ActionApply, a.apply)
}

func (a *Agent) apply(ctx context.Context) (string, error) {
	if err := a.refuseTrial(); err != nil {
		return "", err
	}
	repo, choice, err := a.choose(ctx)
	if err != nil {
		return "", err
	}
	rel := choice.Release
	if rel == nil {
		if choice.Waiting != nil {
			return choice.Waiting.Version, fmt.Errorf("%w: %s waits for its wave, which reaches this host at %s",
				ErrRefused, choice.Waiting.Version, choice.WaveOpensAt.UTC().Format(time.RFC3339))
		}
		return "", fmt.Errorf("%w: nothing to apply: %s is the newest version this host may take", ErrRefused, a.cfg.Image.Version)
	}
	target := a.cfg.Booted.Slot.Other()
	if err := a.checkRelease(rel, target); err != nil {
		return rel.Version, err
	}
	p := rel.Payload

	a.mu.Lock()
	a.bytesNow = repo.BytesDownloaded
	a.mu.Unlock()
	defer func() {
		a.mu.Lock()
		a.bytesNow = nil
		a.st.BytesDownloaded = repo.BytesDownloaded()
		a.mu.Unlock()
	}()
	if err := a.update(func(st *state) { st.Staged, st.Activated, st.Rollback = nil, nil, nil }); err != nil {
		return rel.Version, err
	}
	if err := a.esp.RemoveSlot(target); err != nil {
		return rel.Version, fmt.Errorf("updates: apply %s: %w", rel.Version, err)
	}
	paths := map[string]string{}
	for _, f := range []contract.PayloadFile{p.Root, p.Verity, p.UKI[target]} {
		path, err := repo.Fetch(ctx, f.Name, nil)
		if err != nil {
			return rel.Version, fmt.Errorf("%w: apply %s: download %s: %w", ErrRepository, rel.Version, f.Name, err)
		}
		paths[f.Name] = path
	}
	disk := a.cfg.Disk
	if disk == "" {
		if disk, err = FindDisk(a.cfg.Booted.Root); err != nil {
			return rel.Version, fmt.Errorf("updates: apply %s: %w", rel.Version, err)
		}
	}
	_, err = install.Install(ctx, install.Request{
		Disk: disk, Slot: target, Running: a.cfg.Booted, Payload: p,
		Root: paths[p.Root.Name], Verity: paths[p.Verity.Name],
	})
	if err != nil {
		return rel.Version, fmt.Errorf("updates: apply %s: %w", rel.Version, err)
	}
	uki, err := install.Decompress(paths[p.UKI[target].Name], p.UKI[target])
	if err != nil {
		return rel.Version, fmt.Errorf("updates: apply %s: UKI: %w", rel.Version, err)
	}
	defer uki.Close()
	if _, err := a.esp.Stage(target, rel.Version, uki); err != nil {
		return rel.Version, fmt.Errorf("updates: apply %s: UKI: %w", rel.Version, err)
	}
	err = a.update(func(st *state) {
		st.Staged = &stagedSlot{Version: rel.Version, Slot: target, RootHash: p.RootHash}
	})
	return rel.Version, err
}

// checkRelease refuses a release this host must not write: the running version, another
// variant or architecture, a payload for the running root or without a UKI for the slot.
func (a *Agent) checkRelease(rel *Release, target contract.Slot) error {
	p, img := rel.Payload, a.cfg.Image
	switch {
	case strings.EqualFold(rel.Version, img.Version):
		return fmt.Errorf("%w: %s is the running version", ErrRefused, rel.Version)
	case p.Version != rel.Version:
		return fmt.Errorf("updates: release %s: its payload is version %q", rel.Version, p.Version)
	case p.Variant != img.Variant:
		return fmt.Errorf("updates: release %s: its payload is for variant %q, this host runs %q", rel.Version, p.Variant, img.Variant)
	case img.Arch != "" && p.Arch != img.Arch:
		return fmt.Errorf("updates: release %s: its payload is for %q, this host is %q", rel.Version, p.Arch, img.Arch)
	case p.RootHash == a.cfg.Booted.RootHash:
		return fmt.Errorf("updates: release %s has the running root hash %s", rel.Version, p.RootHash)
	}
	if err := contract.ValidateVersion(rel.Version); err != nil {
		return fmt.Errorf("updates: release: %w", err)
	}
	if _, ok := p.UKI[target]; !ok {
		return fmt.Errorf("updates: release %s: its payload has no UKI for slot %s", rel.Version, target)
	}
	return nil
}

// Activate makes the staged release the next boot, with Image.Updates.Tries boots (or
// contract.DefaultTries) to become healthy.
func (a *Agent) Activate(ctx context.Context) (Status, error) {
	return a.run(ctx, ActionActivate, func(ctx context.Context) (string, error) {
		if err := a.refuseTrial(); err != nil {
			return "", err
		}
		target := a.cfg.Booted.Slot.Other()
		l, err := a.esp.List()
		if err != nil {
			return "", err
		}
		staged, ok := l.StagedFor(target)
		if !ok {
			return "", fmt.Errorf("%w: nothing staged for slot %s: apply first", ErrRefused, target)
		}
		tries := a.cfg.Image.Updates.Tries
		if tries <= 0 {
			tries = contract.DefaultTries
		}
		f, err := a.esp.Activate(target, staged.Entry.Version, tries)
		if err != nil {
			return staged.Entry.Version, err
		}
		return f.Entry.Version, a.update(func(st *state) {
			st.Activated = &activation{Version: f.Entry.Version, Slot: target, Entry: f.Name, Time: a.cfg.Now().UTC()}
			st.Rollback = nil
		})
	})
}

// Cancel takes back the last step: an activated release goes back to staged, a staged one is
// removed from the ESP (the slot's partitions keep what was written). Nothing to cancel is not
// an error.
func (a *Agent) Cancel(ctx context.Context) (Status, error) {
	return a.run(ctx, ActionCancel, func(ctx context.Context) (string, error) {
		target := a.cfg.Booted.Slot.Other()
		l, err := a.esp.List()
		if err != nil {
			return "", err
		}
		version := ""
		if f, ok := l.StagedFor(target); ok {
			version = f.Entry.Version
		}
		for _, f := range l.SlotEntries(target) {
			if f.Entry.Counting && f.Entry.TriesDone == 0 && f.Entry.TriesLeft > 0 {
				version = f.Entry.Version
			}
		}
		r, err := a.esp.Cancel(target)
		if err != nil {
			return version, err
		}
		return version, a.update(func(st *state) {
			switch r {
			case esp.Deactivated:
				st.Activated = nil
			case esp.Unstaged:
				st.Staged = nil
			}
		})
	})
}

// FindDisk returns the whole disk holding the partition with PARTUUID root (the running root,
// from the kernel command line), reading the partition tables of the disks in /sys/class/block.
func FindDisk(root contract.UUID) (string, error) {
	parts, scanErr := blockdev.Scanner{}.Scan()
	var disks []string
	for _, p := range parts {
		if p.PartUUID == root.String() {
			disks = append(disks, p.Disk)
		}
	}
	switch len(disks) {
	case 1:
		return disks[0], nil
	case 0:
		if scanErr != nil {
			return "", fmt.Errorf("updates: no disk has the running root PARTUUID=%s (%v)", root, scanErr)
		}
		return "", fmt.Errorf("updates: no disk has the running root PARTUUID=%s: %w", root, fs.ErrNotExist)
	}
	return "", fmt.Errorf("updates: the running root PARTUUID=%s is on %d disks (%s)", root, len(disks), strings.Join(disks, ", "))
}
