// Package kmod loads kernel modules at boot from the modules.dep the builder wrote, with
// finit_module(2); there is no modprobe in a Ballast image.
package kmod

import (
	"bufio"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/ballast-os/ballast/contract"

	"golang.org/x/sys/unix"
)

// Loader loads modules of one kernel tree.
type Loader struct {
	Dir  string            // /lib/modules/<kver>
	deps map[string]string // canonical name → path relative to Dir
	line map[string][]string
	done map[string]bool
}

// New reads Dir/modules.dep. root is "/" on a running system; kver is uname -r when empty.
func New(root, kver string) (*Loader, error) {
	if kver == "" {
		var u unix.Utsname
		if err := unix.Uname(&u); err != nil {
			return nil, fmt.Errorf("kmod: uname: %w", err)
		}
		kver = unix.ByteSliceToString(u.Release[:])
	}
	dir := filepath.Join(root, contract.KernelModules, kver)
	f, err := os.Open(filepath.Join(dir, "modules.dep"))
	if err != nil {
		return nil, fmt.Errorf("kmod: %w", err)
	}
	defer f.Close()
	l := &Loader{Dir: dir, deps: map[string]string{}, line: map[string][]string{}, done: map[string]bool{}}
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		mod, rest, ok := strings.Cut(sc.Text(), ":")
		if !ok {
			continue
		}
		name := contract.ModuleName(filepath.Base(mod))
		l.deps[name] = mod
		l.line[name] = strings.Fields(rest)
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("kmod: %s/modules.dep: %w", dir, err)
	}
	return l, nil
}

// Load loads each named module after its dependencies. A module that is already loaded or built
// into the kernel is not an error.
func (l *Loader) Load(names ...string) error {
	var errs []error
	for _, n := range names {
		c := contract.ModuleName(n)
		path, ok := l.deps[c]
		if !ok {
			if builtin(c) {
				continue
			}
			errs = append(errs, fmt.Errorf("kmod: module %s is not in %s/modules.dep", n, l.Dir))
			continue
		}
		deps := l.line[c]
		// modules.dep lists the deepest dependency last, so load from the end.
		for i := len(deps) - 1; i >= 0; i-- {
			if err := l.insert(deps[i]); err != nil {
				errs = append(errs, fmt.Errorf("kmod: %s (needed by %s): %w", deps[i], n, err))
			}
		}
		if err := l.insert(path); err != nil {
			errs = append(errs, fmt.Errorf("kmod: %s: %w", n, err))
		}
	}
	return errors.Join(errs...)
}

func (l *Loader) insert(rel string) error {
	if l.done[rel] {
		return nil
	}
	f, err := os.Open(filepath.Join(l.Dir, rel))
	if err != nil {
		return err
	}
	defer f.Close()
	if err := unix.FinitModule(int(f.Fd()), "", 0); err != nil && !errors.Is(err, unix.EEXIST) {
		return fmt.Errorf("finit_module: %w", err)
	}
	l.done[rel] = true
	return nil
}

func builtin(name string) bool {
	_, err := os.Stat(filepath.Join("/sys/module", name))
	return err == nil
}

// Load is New("/", "") followed by Load(names...).
func Load(root string, names ...string) error {
	l, err := New(root, "")
	if err != nil {
		return err
	}
	return l.Load(names...)
}

// LoadAll loads every module listed in modules.dep — what the initramfs does, since the builder
// put exactly the boot modules there.
func (l *Loader) LoadAll() error {
	names := make([]string, 0, len(l.deps))
	for n := range l.deps {
		names = append(names, n)
	}
	sort.Strings(names)
	return l.Load(names...)
}

// Count returns how many module files were inserted (or found loaded) so far.
func (l *Loader) Count() int { return len(l.done) }
