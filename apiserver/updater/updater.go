// Package updater puts the update agent (updates/agent) behind the API: the repository it asks is
// the signed TUF repository of the settings of the moment (updates/tufclient, updates/manifest),
// its status is the API's UpdateStatus, and its errors map to the API's error kinds.
package updater

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/ballast-os/ballast/apiserver/api"
	"github.com/ballast-os/ballast/apiserver/apitypes"
	"github.com/ballast-os/ballast/apiserver/daemon"
	"github.com/ballast-os/ballast/apiserver/updateconfig"
	"github.com/ballast-os/ballast/contract"
	"github.com/ballast-os/ballast/updates/agent"
	"github.com/ballast-os/ballast/updates/manifest"
	"github.com/ballast-os/ballast/updates/tufclient"
)

// Paths are where the agent finds the host; a running host uses DefaultPaths.
type Paths struct {
	Root        string // the root file system ("/"): image.json and the trusted root.json
	Cmdline     string // /proc/cmdline
	StateDir    string
	ESP         string
	EFIVars     string
	BootHistory string
	Disk        string // empty: the disk holding the running root
}

// DefaultPaths are a running host's.
func DefaultPaths() Paths {
	return Paths{Root: "/", Cmdline: "/proc/cmdline", StateDir: contract.UpdatesDir, ESP: contract.ESPMount,
		EFIVars: contract.EFIVarsMount, BootHistory: contract.BootHistoryPath}
}

// maxMetadataBytes bounds each metadata file the client downloads.
const maxMetadataBytes = 4 << 20

// New builds the agent for the apiserver (daemon.Options.NewUpdater).
func New(p Paths) func(env daemon.UpdaterEnv) (api.Updater, error) {
	return func(env daemon.UpdaterEnv) (api.Updater, error) {
		img, err := contract.ReadImage(p.Root)
		if err != nil {
			return nil, err
		}
		line, err := os.ReadFile(p.Cmdline)
		if err != nil {
			return nil, fmt.Errorf("updates: %w", err)
		}
		booted, err := contract.ParseBoot(contract.ParseCmdline(string(line)))
		if err != nil {
			return nil, fmt.Errorf("updates: %w", err)
		}
		u := &updater{env: env, paths: p}
		if img.Updates.HasRoot {
			if u.root, err = os.ReadFile(filepath.Join(p.Root, contract.TUFRootPath)); err != nil {
				return nil, fmt.Errorf("updates: trusted root: %w", err)
			}
		}
		u.agent, err = agent.New(agent.Config{
			StateDir: p.StateDir, ESP: p.ESP, EFIVars: p.EFIVars, Disk: p.Disk,
			Image: img, Booted: booted, Settings: u.settings, Repo: u.repo,
			BootHistory: p.BootHistory, Now: time.Now,
		})
		if err != nil {
			return nil, err
		}
		return u, nil
	}
}

type updater struct {
	env   daemon.UpdaterEnv
	paths Paths
	root  []byte // the image's trusted root.json; nil when the image has none
	agent *agent.Agent

	mu  sync.Mutex
	cfg updateconfig.Config // of the action in progress (settings)
	err error               // why cfg could not be made
}

// settings reads the configuration of the moment; the agent calls it once per action, before
// repo, which uses what it read.
func (u *updater) settings() agent.Settings {
	cfg, err := u.env.Config()
	u.mu.Lock()
	u.cfg, u.err = cfg, err
	u.mu.Unlock()
	if err != nil {
		return agent.Settings{}
	}
	return agent.Settings{MetadataBaseURL: cfg.MetadataBaseURL, TargetsBaseURL: cfg.TargetsBaseURL,
		VersionLock: cfg.VersionLock, IgnoreWaves: cfg.IgnoreWaves, Seed: cfg.Seed}
}

func (u *updater) repo(agent.Settings) (agent.Repo, error) {
	u.mu.Lock()
	cfg, err := u.cfg, u.err
	u.mu.Unlock()
	if err != nil {
		return nil, err
	}
	if u.root == nil {
		return nil, fmt.Errorf("%w: the image carries no trusted root.json", apitypes.ErrUpdatesNotConfigured)
	}
	c, err := tufclient.New(tufclient.Config{
		MetadataURL: cfg.MetadataBaseURL, TargetsURL: cfg.TargetsBaseURL, TrustedRoot: u.root,
		CacheDir: filepath.Join(u.paths.StateDir, "tuf"), DownloadDir: filepath.Join(u.paths.StateDir, "downloads"),
		HTTPClient: cfg.Client, MaxMetadataBytes: maxMetadataBytes,
	})
	if err != nil {
		return nil, err
	}
	return &repo{c: c}, nil
}

// repo is the agent's view of the signed repository.
type repo struct{ c *tufclient.Client }

func (r *repo) Choose(ctx context.Context, q agent.Query) (agent.Choice, error) {
	if err := r.c.Refresh(ctx); err != nil {
		return agent.Choice{}, err
	}
	m, err := r.c.Manifest(ctx, q.Variant, q.Arch)
	if err != nil {
		return agent.Choice{}, err
	}
	ch, err := m.Choose(q.Current, q.Lock, q.Seed, q.IgnoreWaves, q.Now)
	if err != nil {
		return agent.Choice{}, err
	}
	out := agent.Choice{Available: ch.Available, WaveOpensAt: ch.WaveOpens}
	release := func(rel *manifest.Release) *agent.Release {
		return &agent.Release{Version: rel.Version, Notes: rel.Notes, Payload: rel.Payload}
	}
	if ch.Update != nil {
		out.Release = release(ch.Update)
	}
	if ch.Waiting != "" {
		if rel := m.Release(ch.Waiting); rel != nil {
			out.Waiting = release(rel)
		}
	}
	return out, nil
}

func (r *repo) Fetch(ctx context.Context, name string, progress func(done, total int64)) (string, error) {
	return r.c.Fetch(ctx, name, progress)
}

func (r *repo) BytesDownloaded() int64 { return r.c.Stats().Total() }

func (u *updater) Status() apitypes.UpdateStatus { return convert(u.agent.Status()) }

func (u *updater) Check(ctx context.Context) (apitypes.UpdateStatus, error) {
	return u.do(u.agent.Check(ctx))
}

func (u *updater) Apply(ctx context.Context) (apitypes.UpdateStatus, error) {
	return u.do(u.agent.Apply(ctx))
}

func (u *updater) Activate(ctx context.Context) (apitypes.UpdateStatus, error) {
	return u.do(u.agent.Activate(ctx))
}

func (u *updater) Cancel(ctx context.Context) (apitypes.UpdateStatus, error) {
	return u.do(u.agent.Cancel(ctx))
}

func (u *updater) do(st agent.Status, err error) (apitypes.UpdateStatus, error) {
	return convert(st), classify(err)
}

// kinded is an agent error that also is one of the API's error kinds.
type kinded struct{ err, kind error }

func (k kinded) Error() string   { return k.err.Error() }
func (k kinded) Unwrap() []error { return []error{k.err, k.kind} }

func classify(err error) error {
	if err == nil {
		return nil
	}
	for _, m := range []struct{ from, to error }{
		{apitypes.ErrUpdatesNotConfigured, nil},
		{agent.ErrBusy, apitypes.ErrUpdateBusy},
		{agent.ErrRefused, apitypes.ErrUpdateRefused},
		{agent.ErrRepository, apitypes.ErrUpdateRepository},
	} {
		if errors.Is(err, m.from) {
			if m.to == nil {
				return err
			}
			return kinded{err, m.to}
		}
	}
	return err
}

func convert(s agent.Status) apitypes.UpdateStatus {
	out := apitypes.UpdateStatus{
		State: s.State,
		Running: apitypes.UpdateRunning{Version: s.Running.Version, Slot: s.Running.Slot,
			Entry: s.Running.Entry, OnTrial: s.Running.OnTrial},
		Available:       s.Available,
		BytesDownloaded: s.BytesDownloaded,
		Busy:            s.Busy,
		Error:           s.Error,
	}
	if out.Available == nil {
		out.Available = []string{}
	}
	if c := s.Chosen; c != nil {
		out.Chosen = &apitypes.UpdateChosen{Version: c.Version, Notes: c.Notes}
		if c.WaveOpensAt != nil {
			out.Chosen.WaveOpensAt = *c.WaveOpensAt
		}
	}
	slot := func(v *agent.SlotVersion) *apitypes.UpdateSlot {
		if v == nil {
			return nil
		}
		return &apitypes.UpdateSlot{Version: v.Version, Slot: v.Slot}
	}
	out.Staged, out.Activated = slot(s.Staged), slot(s.Activated)
	if a := s.LastAttempt; a != nil {
		out.LastAttempt = &apitypes.UpdateAttempt{Action: a.Action, Time: a.Time, Version: a.Version, Error: a.Error}
	}
	if r := s.Rollback; r != nil {
		out.Rollback = &apitypes.UpdateRollback{Version: r.Version, Slot: r.Slot, Time: r.Time, Reason: r.Reason}
	}
	return out
}
