// Package kmod loads kernel modules at boot from the modules.dep the builder wrote, with
// finit_module(2); there is no modprobe in a Ballast image.
package kmod

import (
	"bufio"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"sort"
	"strings"
	"sync"

	"github.com/ballast-os/ballast/contract"

	"golang.org/x/sys/unix"
)

// Loader loads modules of one kernel tree.
type Loader struct {
	Dir  string            // /lib/modules/<kver>
	deps map[string]string // canonical name → path relative to Dir
	line map[string][]string
	mu   sync.Mutex
	done map[string]bool
	// finit inserts one module file; finit_module(2) but in tests.
	finit func(f *os.File) error
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
	l := &Loader{Dir: dir, deps: map[string]string{}, line: map[string][]string{}, done: map[string]bool{}, finit: finitModule}
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
// into the kernel is not an error. Modules whose dependencies are in load at once, as many as
// there are CPUs: loading is the kernel relocating and initialising each module, work that keeps a
// CPU busy, and a boot spends that time waiting.
func (l *Loader) Load(names ...string) error {
	var errs []error
	// Every file to insert, with the files it needs first.
	needs := map[string][]string{}
	var order []string
	var add func(rel string)
	add = func(rel string) {
		if _, ok := needs[rel]; ok {
			return
		}
		deps := l.line[contract.ModuleName(filepath.Base(rel))]
		needs[rel] = deps
		for _, d := range deps {
			add(d)
		}
		order = append(order, rel)
	}
	for _, n := range names {
		c := contract.ModuleName(n)
		path, ok := l.deps[c]
		if !ok {
			if !builtin(c) {
				errs = append(errs, fmt.Errorf("kmod: module %s is not in %s/modules.dep", n, l.Dir))
			}
			continue
		}
		add(path)
	}
	type result struct {
		done chan struct{}
		err  error
	}
	res := map[string]*result{}
	for _, rel := range order {
		res[rel] = &result{done: make(chan struct{})}
	}
	slots := make(chan struct{}, max(runtime.NumCPU(), 1))
	var wg sync.WaitGroup
	for _, rel := range order {
		wg.Go(func() {
			r := res[rel]
			defer close(r.done)
			for _, d := range needs[rel] {
				<-res[d].done
				if res[d].err != nil {
					r.err = fmt.Errorf("needs %s, which did not load", d)
					return
				}
			}
			slots <- struct{}{}
			r.err = l.insert(rel)
			<-slots
		})
	}
	wg.Wait()
	for _, rel := range order {
		if err := res[rel].err; err != nil {
			errs = append(errs, fmt.Errorf("kmod: %s: %w", rel, err))
		}
	}
	return errors.Join(errs...)
}

func (l *Loader) insert(rel string) error {
	l.mu.Lock()
	done := l.done[rel]
	l.mu.Unlock()
	if done {
		return nil
	}
	f, err := os.Open(filepath.Join(l.Dir, rel))
	if err != nil {
		return err
	}
	defer f.Close()
	if err := l.finit(f); err != nil {
		return err
	}
	l.mu.Lock()
	l.done[rel] = true
	l.mu.Unlock()
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
func (l *Loader) Count() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.done)
}

func finitModule(f *os.File) error {
	if err := unix.FinitModule(int(f.Fd()), "", 0); err != nil && !errors.Is(err, unix.EEXIST) {
		return fmt.Errorf("finit_module: %w", err)
	}
	return nil
}
