package agent

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"time"

	"github.com/ballast-os/ballast/contract"
)

// StateFile is the agent's state in Config.StateDir.
const StateFile = "state.json"

// Chosen is the release a check found for this host.
type Chosen struct {
	Version string `json:"version"`
	Notes   string `json:"notes,omitempty"`
	// WaveOpensAt is set when the release waits for its wave to reach this host.
	WaveOpensAt *time.Time `json:"wave_opens_at,omitempty"`
}

// SlotVersion is a version in a slot.
type SlotVersion struct {
	Version string        `json:"version"`
	Slot    contract.Slot `json:"slot"`
}

// Attempt is the last action and how it ended.
type Attempt struct {
	Action  string    `json:"action"`
	Time    time.Time `json:"time"`
	Version string    `json:"version,omitempty"`
	Error   string    `json:"error,omitempty"`
}

// Rollback is an activated version the host came back from.
type Rollback struct {
	Version string        `json:"version"`
	Slot    contract.Slot `json:"slot"`
	Time    time.Time     `json:"time"`
	Reason  string        `json:"reason"`
}

// activation is what the agent remembers of an activation until it is blessed or rolled back.
type activation struct {
	Version string        `json:"version"`
	Slot    contract.Slot `json:"slot"`
	Entry   string        `json:"entry"` // the entry's file name when activated
	Time    time.Time     `json:"time"`
}

// state is state.json.
type state struct {
	Available       []string    `json:"available,omitempty"`
	Chosen          *Chosen     `json:"chosen,omitempty"`
	Staged          *stagedSlot `json:"staged,omitempty"`
	Activated       *activation `json:"activated,omitempty"`
	LastAttempt     *Attempt    `json:"last_attempt,omitempty"`
	Rollback        *Rollback   `json:"rollback,omitempty"`
	BytesDownloaded int64       `json:"bytes_downloaded"`
}

// stagedSlot is a slot an apply completed.
type stagedSlot struct {
	Version  string        `json:"version"`
	Slot     contract.Slot `json:"slot"`
	RootHash string        `json:"roothash"`
}

// loadState reads state.json. A missing file is a fresh state. A file that cannot be read as
// state is kept beside as state.json.bad, never overwritten, and the error says so.
func loadState(dir string) (state, error) {
	path := filepath.Join(dir, StateFile)
	b, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return state{}, nil
	}
	if err != nil {
		return state{}, fmt.Errorf("updates: %w", err)
	}
	var st state
	if err := json.Unmarshal(b, &st); err != nil {
		bad := path + ".bad"
		if rerr := os.Rename(path, bad); rerr != nil {
			return state{}, fmt.Errorf("updates: %s: %w (and keeping it aside: %v)", path, err, rerr)
		}
		return state{}, fmt.Errorf("updates: %s: %w; kept as %s, starting afresh", path, err, bad)
	}
	return st, nil
}

// save writes state.json atomically: a synced temporary file renamed over the old one, and the
// directory synced.
func (st state) save(dir string) error {
	b, err := json.MarshalIndent(st, "", "  ")
	if err != nil {
		return fmt.Errorf("updates: state: %w", err)
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("updates: %w", err)
	}
	path := filepath.Join(dir, StateFile)
	tmp := path + ".tmp"
	f, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return fmt.Errorf("updates: %w", err)
	}
	_, err = f.Write(append(b, '\n'))
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp, path)
	}
	if err != nil {
		os.Remove(tmp)
		return fmt.Errorf("updates: save %s: %w", path, err)
	}
	d, err := os.Open(dir)
	if err != nil {
		return fmt.Errorf("updates: %w", err)
	}
	defer d.Close()
	if err := d.Sync(); err != nil {
		return fmt.Errorf("updates: sync %s: %w", dir, err)
	}
	return nil
}

// readBootHistory reads the system init's boot history; a missing file has no boots.
func readBootHistory(path string) (contract.BootHistory, error) {
	var h contract.BootHistory
	if path == "" {
		return h, nil
	}
	b, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return h, nil
	}
	if err != nil {
		return h, fmt.Errorf("updates: boot history: %w", err)
	}
	if err := json.Unmarshal(b, &h); err != nil {
		return h, fmt.Errorf("updates: boot history %s: %w", path, err)
	}
	return h, nil
}
