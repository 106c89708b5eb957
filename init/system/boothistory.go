package system

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"

	"github.com/ballast-os/ballast/contract"
	"github.com/ballast-os/ballast/init/system/mountinfo"
)

// recordBoot adds r to contract.BootHistory at contract.BootHistoryPath, keeping the latest
// contract.MaxBootRecords. The file is replaced atomically: a power cut leaves the old history or
// the new one. A history that cannot be read is kept beside it (.corrupt) and a new one begun.
func (i *Init) recordBoot(r contract.BootRecord) error {
	// On the root's /local directory the record would be lost, or refused by the read-only root.
	mounts, err := mountinfo.ReadFile(i.path(mountinfo.Self))
	if err != nil {
		return fmt.Errorf("boot history: %w", err)
	}
	if _, ok := mountinfo.At(mounts, contract.LocalDir); !ok {
		return fmt.Errorf("boot history %s: %s is not mounted", contract.BootHistoryPath, contract.LocalDir)
	}
	path := i.path(contract.BootHistoryPath)
	var h contract.BootHistory
	b, err := os.ReadFile(path)
	switch {
	case os.IsNotExist(err):
	case err != nil:
		return fmt.Errorf("boot history: %w", err)
	default:
		if jerr := json.Unmarshal(b, &h); jerr != nil {
			h = contract.BootHistory{}
			i.console.Errorf("boot history %s: %v; kept as %s.corrupt, starting a new one", contract.BootHistoryPath, jerr, contract.BootHistoryPath)
			if err := os.Rename(path, path+".corrupt"); err != nil {
				return fmt.Errorf("boot history: %w", err)
			}
		}
	}
	h.Boots = append(h.Boots, r)
	if n := len(h.Boots) - contract.MaxBootRecords; n > 0 {
		h.Boots = h.Boots[n:]
	}
	out, err := json.MarshalIndent(h, "", "  ")
	if err != nil {
		return fmt.Errorf("boot history: %w", err)
	}
	// Made by the init in /local/var/lib (local_t), the directory is state_t by the policy's
	// name transition, and the file takes the directory's type.
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return fmt.Errorf("boot history: %w", err)
	}
	if err := writeAtomic(path, append(out, '\n'), 0o644); err != nil {
		return fmt.Errorf("boot history: %w", err)
	}
	return nil
}

// writeAtomic replaces path by a file with content: written beside it, synced, renamed over it,
// and the directory synced, so the rename is on the disk before the caller goes on.
func writeAtomic(path string, content []byte, mode os.FileMode) error {
	tmp := path + ".new"
	f, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, mode)
	if err != nil {
		return err
	}
	_, err = f.Write(content)
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
		return err
	}
	return syncDir(filepath.Dir(path))
}

// syncDir makes a directory's entries (a rename in it) durable.
func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	err = d.Sync()
	if cerr := d.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("sync %s: %w", dir, err)
	}
	return nil
}
