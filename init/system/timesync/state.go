package timesync

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"

	"github.com/ballast-os/ballast/contract"
)

// WriteState replaces the state file through a rename, so the apiserver never reads half of it.
// No fsync: it lives on /run, gone at the next boot anyway.
func WriteState(path string, st contract.TimeStatus) (err error) {
	b, err := json.MarshalIndent(st, "", "  ")
	if err != nil {
		return fmt.Errorf("time state %s: %w", path, err)
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return fmt.Errorf("time state: %w", err)
	}
	f, err := os.CreateTemp(filepath.Dir(path), ".tmp-"+filepath.Base(path)+"-")
	if err != nil {
		return fmt.Errorf("time state: %w", err)
	}
	defer func() {
		if err != nil {
			f.Close()
			os.Remove(f.Name())
		}
	}()
	if _, err := f.Write(append(b, '\n')); err != nil {
		return fmt.Errorf("time state %s: %w", path, err)
	}
	// Readable by all, like the time itself: the apiserver may not run as root one day.
	if err := f.Chmod(0o644); err != nil {
		return fmt.Errorf("time state %s: %w", path, err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("time state %s: %w", path, err)
	}
	if err := os.Rename(f.Name(), path); err != nil {
		return fmt.Errorf("time state %s: %w", path, err)
	}
	return nil
}
