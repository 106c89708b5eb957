// Package kmod loads kernel modules at boot from the modules.dep the builder wrote, with
// finit_module(2); there is no modprobe in a Ballast image.
package kmod

import (
	"bufio"
	"errors"
	"fmt"
	"os"
	"path"
	"path/filepath"
	"runtime"
	"slices"
	"sort"
	"strings"
	"sync"

	"github.com/ballast-os/ballast/contract"

	"golang.org/x/sys/unix"
)

// ErrBlocked is in the error of a load that the Blocked hook refused.
var ErrBlocked = errors.New("blocked by the kernel policy")

// Loader loads modules of one kernel tree.
type Loader struct {
	Dir string // /lib/modules/<kver>
	// Blocked, when set, refuses a module (by canonical name) before anything of it is loaded:
	// a wanted module one of whose dependencies it refuses is refused as a whole.
	Blocked func(name string) bool
	// Finit inserts one module file [finit_module(2), a module loaded already being no error];
	// tests replace it.
	Finit func(f *os.File) error
	// Sys is where sysfs is mounted, for Coldplug ["/sys"]; tests stage a tree.
	Sys string

	deps    map[string]string // canonical name → path relative to Dir
	line    map[string][]string
	aliases [][2]string // modules.alias: pattern, canonical name
	// soft holds modules.softdep: a module's soft dependencies (canonical names), loaded before
	// it where they can be. A module that is some module's soft dependency is optional: its
	// failure to load (crc32c_intel on a CPU without SSE4.2) is no error.
	soft     map[string][]string
	optional map[string]bool
	// onDemand holds the modules of contract.ModulesOnDemand: LoadAll leaves them to Coldplug.
	onDemand map[string]bool
	mu       sync.Mutex
	done     map[string]bool
	plug     *coldplug // built by the first Coldplug
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
	return NewDir(filepath.Join(root, contract.KernelModules, kver))
}

// NewDir reads dir/modules.dep (and modules.alias, when there is one) of a kernel tree.
func NewDir(dir string) (*Loader, error) {
	f, err := os.Open(filepath.Join(dir, "modules.dep"))
	if err != nil {
		return nil, fmt.Errorf("kmod: %w", err)
	}
	defer f.Close()
	l := &Loader{Dir: dir, deps: map[string]string{}, line: map[string][]string{}, done: map[string]bool{}, onDemand: map[string]bool{},
		Finit: finitModule}
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
	if err := l.readAliases(); err != nil {
		return nil, err
	}
	if err := l.readOnDemand(); err != nil {
		return nil, err
	}
	if err := l.readSoftdeps(); err != nil {
		return nil, err
	}
	return l, nil
}

// readSoftdeps reads modules.softdep ("softdep <module> pre: <modules>" lines), which is optional.
func (l *Loader) readSoftdeps() error {
	l.soft, l.optional = map[string][]string{}, map[string]bool{}
	b, err := os.ReadFile(filepath.Join(l.Dir, "modules.softdep"))
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("kmod: %w", err)
	}
	for _, line := range strings.Split(string(b), "\n") {
		w := strings.Fields(line)
		if len(w) < 3 || w[0] != "softdep" || w[2] != "pre:" {
			continue
		}
		name := contract.ModuleName(w[1])
		for _, d := range w[3:] {
			d = contract.ModuleName(d)
			l.soft[name] = append(l.soft[name], d)
			l.optional[d] = true
		}
	}
	return nil
}

// readAliases reads modules.alias ("alias <pattern> <module>" lines), which is optional: without
// it only module names resolve.
func (l *Loader) readAliases() error {
	f, err := os.Open(filepath.Join(l.Dir, "modules.alias"))
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("kmod: %w", err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		w := strings.Fields(sc.Text())
		if len(w) == 3 && w[0] == "alias" {
			l.aliases = append(l.aliases, [2]string{w[1], contract.ModuleName(w[2])})
		}
	}
	if err := sc.Err(); err != nil {
		return fmt.Errorf("kmod: %s/modules.alias: %w", l.Dir, err)
	}
	return nil
}

// Resolve returns the canonical names of the modules a request names: the module itself when
// modules.dep has it, else every module one of whose aliases matches (as modprobe does for the
// kernel's requests such as "fs-vfat" or "char-major-10-200"). None is not an error.
func (l *Loader) Resolve(request string) []string {
	if c := contract.ModuleName(request); l.deps[c] != "" {
		return []string{c}
	}
	var out []string
	for _, a := range l.aliases {
		// Alias patterns are fnmatch(3) globs; none holds a '/', so path.Match reads them alike.
		if ok, _ := path.Match(a[0], request); ok && !slices.Contains(out, a[1]) && l.deps[a[1]] != "" {
			out = append(out, a[1])
		}
	}
	return out
}

// Path returns the file of a module in this tree, by any spelling of its name.
func (l *Loader) Path(name string) (string, bool) {
	rel, ok := l.deps[contract.ModuleName(name)]
	if !ok {
		return "", false
	}
	return filepath.Join(l.Dir, rel), true
}

// Closure returns the canonical names of a module and of everything it depends on, the module
// itself first.
func (l *Loader) Closure(name string) []string {
	c := contract.ModuleName(name)
	out := []string{c}
	for _, d := range l.line[c] {
		out = append(out, contract.ModuleName(filepath.Base(d)))
	}
	return out
}

// Load loads each named module after its dependencies. A module that is already loaded or built
// into the kernel is not an error. Modules whose dependencies are in load at once, as many as
// there are CPUs: loading is the kernel relocating and initialising each module, work that keeps a
// CPU busy, and a boot spends that time waiting.
func (l *Loader) Load(names ...string) error {
	var errs []error
	// Every file to insert, with the files it needs first.
	needs := map[string][]string{}
	soft := map[string][]string{} // files loaded first if they can be
	var order []string
	var add func(rel string)
	add = func(rel string) {
		if _, ok := needs[rel]; ok {
			return
		}
		name := contract.ModuleName(filepath.Base(rel))
		deps := l.line[name]
		needs[rel] = deps
		for _, s := range l.soft[name] {
			if p, ok := l.deps[s]; ok {
				soft[rel] = append(soft[rel], p)
				add(p)
			}
		}
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
		if l.Blocked != nil {
			if b := slices.IndexFunc(l.Closure(c), l.Blocked); b >= 0 {
				if b == 0 {
					errs = append(errs, fmt.Errorf("kmod: %s: %w", n, ErrBlocked))
				} else {
					errs = append(errs, fmt.Errorf("kmod: %s: needs %s, %w", n, l.Closure(c)[b], ErrBlocked))
				}
				continue
			}
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
			for _, d := range soft[rel] {
				<-res[d].done // its failure is no reason not to try
			}
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
		if err := res[rel].err; err != nil && !l.optional[contract.ModuleName(filepath.Base(rel))] {
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
	if err := l.Finit(f); err != nil {
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

// LoadAll loads every module listed in modules.dep but those loaded on demand — what the
// initramfs does, since the builder put exactly the boot and the hardware modules there.
func (l *Loader) LoadAll() error {
	names := make([]string, 0, len(l.deps))
	for n := range l.deps {
		if !l.onDemand[n] {
			names = append(names, n)
		}
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
