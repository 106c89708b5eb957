// Package apply makes the host match its settings. For now that is the host name and the motd;
// it is where rendering configuration files from settings will grow.
package apply

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/ballast-os/ballast/apiserver/settings"
)

// Applier writes settings into the running system. Keys that are not set are left alone, so the
// factory defaults in /etc stay until a setting replaces them.
type Applier struct {
	// EtcDir is where configuration files go: /etc, a tmpfs filled at boot.
	EtcDir string
	// SetHostname sets the kernel's host name. Nil skips it: tests, and a server that is not the
	// host's (not root, or in its own UTS namespace), must not rename the machine they run on.
	SetHostname func(name string) error
}

// Apply applies every set key, carrying on past failures so one bad file does not stop the rest,
// and returns them all.
func (a Applier) Apply(s settings.Settings) error {
	var errs []error
	if s.Network != nil && s.Network.Hostname != nil {
		errs = append(errs, a.hostname(*s.Network.Hostname))
	}
	if s.Motd != nil {
		errs = append(errs, a.writeEtc("motd", withNewline(*s.Motd)))
	}
	return errors.Join(errs...)
}

func (a Applier) hostname(name string) error {
	var errs []error
	if a.SetHostname != nil {
		if err := a.SetHostname(name); err != nil {
			errs = append(errs, fmt.Errorf("sethostname %q: %w", name, err))
		}
	}
	errs = append(errs, a.writeEtc("hostname", name+"\n"))
	return errors.Join(errs...)
}

func withNewline(s string) string {
	if s == "" || strings.HasSuffix(s, "\n") {
		return s
	}
	return s + "\n"
}

// writeEtc replaces a file in EtcDir through a rename, so a reader never sees it half written.
// No fsync: /etc is a tmpfs rebuilt from settings on every boot.
func (a Applier) writeEtc(name, content string) (err error) {
	path := filepath.Join(a.EtcDir, name)
	f, err := os.CreateTemp(a.EtcDir, ".tmp-"+name+"-")
	if err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	defer func() {
		if err != nil {
			f.Close()
			os.Remove(f.Name())
		}
	}()
	if _, err := f.WriteString(content); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err := f.Chmod(0o644); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err := os.Rename(f.Name(), path); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	return nil
}
