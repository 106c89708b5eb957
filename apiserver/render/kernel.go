package render

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"

	"github.com/ballast-os/ballast/apiserver/settings"
	"github.com/ballast-os/ballast/contract"
	"github.com/ballast-os/ballast/init/harden"
)

// writeKernelPolicy is the kernel-policy action: it leaves settings.kernel on the data partition
// for the system init, which applies it at the next boot before any service starts. It runs
// before the actions on the running kernel, so the next boot is right even where the running
// kernel refuses a change.
func (r *Renderer) writeKernelPolicy(_ context.Context, s settings.Settings) error {
	if r.PolicyFile == "" {
		return nil
	}
	b, err := s.KernelPolicy().Marshal()
	if err != nil {
		return err
	}
	if old, err := os.ReadFile(r.PolicyFile); err == nil && slices.Equal(old, b) {
		return nil
	}
	if err := os.MkdirAll(filepath.Dir(r.PolicyFile), 0o700); err != nil {
		return fmt.Errorf("kernel policy: %w", err)
	}
	return writeDurable(r.PolicyFile, b)
}

// writeDurable replaces a file on the data partition so that after a power cut it holds either
// the old or the new content: written, synced, renamed, and the directory synced.
func writeDurable(path string, content []byte) (err error) {
	f, err := os.CreateTemp(filepath.Dir(path), ".tmp-"+filepath.Base(path)+"-")
	if err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	defer func() {
		if err != nil {
			f.Close()
			os.Remove(f.Name())
		}
	}()
	if _, err := f.Write(content); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err := f.Chmod(0o600); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err := f.Sync(); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err := os.Rename(f.Name(), path); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	d, err := os.Open(filepath.Dir(path))
	if err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	defer d.Close()
	if err := d.Sync(); err != nil {
		return fmt.Errorf("write %s: sync directory: %w", path, err)
	}
	return nil
}

// sysctl writes Ballast's hardened defaults with settings.kernel.sysctl in place to /proc/sys, so
// a removed override gives way to the default again. A key the kernel does not have is an error
// for that key only; the rest are still written.
func (r *Renderer) sysctl(ctx context.Context, s settings.Settings) error {
	if r.ProcDir == "" {
		return nil
	}
	k, p := harden.Kernel{Proc: r.ProcDir}, s.KernelPolicy()
	_, err := k.ApplySysctls(p)
	missing, rest := harden.Missing(err)
	if len(missing) == 0 || r.WaitBoot == nil {
		return err
	}
	if werr := r.WaitBoot(ctx); werr != nil {
		return errors.Join(err, werr)
	}
	_, err = k.ApplySysctls(p, missing...)
	return errors.Join(rest, err)
}

// lockdown raises the kernel's lockdown level to settings.kernel.lockdown (integrity when unset).
// A lower level is left to the next boot, and the apply says so.
func (r *Renderer) lockdown(_ context.Context, s settings.Settings) error {
	if r.Kernel == nil {
		return nil
	}
	_, err := r.Kernel.SetLockdown(s.KernelPolicy().Level())
	return err
}

// modules puts settings.kernel.modules into effect on the running kernel: blocked modules' files
// are covered and the modules unloaded when nothing uses them; autoload modules are loaded. A
// module allowed again stays covered until the next boot.
func (r *Renderer) modules(ctx context.Context, s settings.Settings) error {
	if r.Kernel == nil {
		return nil
	}
	p := s.KernelPolicy()
	if r.WaitBoot != nil && len(p.Blocked)+len(p.Autoload) > 0 {
		if err := r.WaitBoot(ctx); err != nil {
			return err
		}
	}
	var errs []error
	if _, err := r.Kernel.BlockModules(p.Blocked); err != nil {
		errs = append(errs, err)
	}
	for _, m := range p.Blocked {
		if err := r.Kernel.Unload(m); err != nil {
			errs = append(errs, err)
		}
	}
	if s.Kernel != nil {
		for name := range s.Kernel.Modules {
			if c := contract.ModuleName(string(name)); !p.Blocks(c) && r.Kernel.Covered(c) {
				errs = append(errs, fmt.Errorf("module %s: allowed again, but its file stays covered until the kernel restarts; loading it %w", c, harden.ErrNextBoot))
			}
		}
	}
	if len(p.Autoload) > 0 {
		if err := r.Kernel.LoadModules(p, p.Autoload...); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// splitNotes separates the changes the running kernel leaves to the next boot (harden.ErrNextBoot)
// from real failures.
func splitNotes(err error) (notes []string, rest error) {
	if err == nil {
		return nil, nil
	}
	var list []error
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		list = j.Unwrap()
	} else {
		list = []error{err}
	}
	var errs []error
	for _, e := range list {
		if errors.Is(e, harden.ErrNextBoot) {
			notes = append(notes, e.Error())
		} else {
			errs = append(errs, e)
		}
	}
	return notes, errors.Join(errs...)
}
