// Package harden puts Ballast's kernel policy (contract.KernelPolicy) into the running kernel: the
// hardened sysctls with the operator's overrides, the lockdown level and the module blocks. The
// system init applies it at boot, before the first service starts; the API server applies it
// again when settings.kernel changes. Both run as root in the same mount namespace, so both go
// through these functions and cannot disagree on how the policy is applied.
package harden

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"golang.org/x/sys/unix"

	"github.com/ballast-os/ballast/contract"
	"github.com/ballast-os/ballast/init/kmod"
)

// ErrNoSysctl is in the error of a write to a sysctl the kernel does not have (yet: a module's
// sysctls appear when it is loaded).
var ErrNoSysctl = errors.New("the kernel has no such sysctl")

// ErrNextBoot is in the error of a change the running kernel refuses to make and that the system
// init makes at the next boot instead: lowering the lockdown level, undoing a one-way sysctl.
var ErrNextBoot = errors.New("takes effect at the next boot")

// Kernel is the running kernel, as root sees it.
type Kernel struct {
	// Root is where the running system's files are ["/"]; tests point it at a directory.
	Root string
	// Proc stands for /proc [Root/proc].
	Proc string
	// Kver is the release whose modules are in /lib/modules/<Kver> [uname -r].
	Kver string
	// Mount is mount(2) [unix.Mount]; tests record the calls.
	Mount func(source, target, fstype string, flags uintptr, data string) error
	// DeleteModule is delete_module(2) [unix.DeleteModule]; tests replace it.
	DeleteModule func(name string, flags int) error
	// Finit inserts one module file [finit_module(2)]; tests replace it.
	Finit func(f *os.File) error
}

// ModulesDir is the running kernel's module tree, /lib/modules/<release>.
func (k Kernel) ModulesDir() string {
	kver := k.Kver
	if kver == "" {
		var u unix.Utsname
		if err := unix.Uname(&u); err == nil {
			kver = unix.ByteSliceToString(u.Release[:])
		}
	}
	return filepath.Join(contract.KernelModules, kver)
}

// LoadModules loads modules and their dependencies from the running kernel's tree, refusing any
// whose dependency closure the policy blocks.
func (k Kernel) LoadModules(p contract.KernelPolicy, names ...string) error {
	l, err := kmod.NewDir(k.path(k.ModulesDir()))
	if err != nil {
		return err
	}
	l.Blocked = p.Blocks
	if k.Finit != nil {
		l.Finit = k.Finit
	}
	return l.Load(names...)
}

func (k Kernel) path(p string) string {
	if k.Root == "" {
		return p
	}
	return filepath.Join(k.Root, p)
}

func (k Kernel) sysctlFile(key string) string {
	proc := k.Proc
	if proc == "" {
		proc = k.path("/proc")
	}
	return filepath.Join(proc, "sys", contract.SysctlPath(key))
}

func (k Kernel) mount(source, target, fstype string, flags uintptr, data string) error {
	if k.Mount != nil {
		return k.Mount(source, target, fstype, flags, data)
	}
	return unix.Mount(source, target, fstype, flags, data)
}

// ReadSysctl returns a sysctl's value with the final newline removed.
func (k Kernel) ReadSysctl(key string) (string, error) {
	b, err := os.ReadFile(k.sysctlFile(key))
	if errors.Is(err, fs.ErrNotExist) {
		return "", fmt.Errorf("sysctl %s: %w", key, ErrNoSysctl)
	}
	if err != nil {
		return "", fmt.Errorf("sysctl %s: %w", key, err)
	}
	return strings.TrimRight(string(b), "\n"), nil
}

// WriteSysctl writes one sysctl. When the kernel refuses to lower a one-way default
// (contract.SysctlDefault.OneWay), the error holds ErrNextBoot.
func (k Kernel) WriteSysctl(key, value string) error {
	f, err := os.OpenFile(k.sysctlFile(key), os.O_WRONLY|os.O_TRUNC, 0)
	if errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("sysctl %s: %w", key, ErrNoSysctl)
	}
	if err != nil {
		return fmt.Errorf("sysctl %s: %w", key, err)
	}
	_, err = f.WriteString(value)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		return nil
	}
	if (errors.Is(err, unix.EPERM) || errors.Is(err, unix.EINVAL)) && oneWay(key) {
		return fmt.Errorf("sysctl %s = %q: the kernel does not undo this setting while it runs; it %w", key, value, ErrNextBoot)
	}
	return fmt.Errorf("sysctl %s = %q: %w", key, value, err)
}

func oneWay(key string) bool {
	for _, d := range contract.HardenedSysctls() {
		if d.OneWay && contract.SysctlPath(d.Key) == contract.SysctlPath(key) {
			return true
		}
	}
	return false
}

// ApplySysctls writes the policy's sysctls (the hardened defaults with the overrides in place)
// and points kernel.modprobe at Ballast's module loader. It carries on past a failing key and
// returns every failure; it returns how many it wrote. With only set, it writes only those keys
// (a retry).
func (k Kernel) ApplySysctls(p contract.KernelPolicy, only ...string) (int, error) {
	var errs []error
	n := 0
	for _, kv := range p.Sysctls() {
		if contract.SysctlPath(kv[0]) == contract.SysctlPath(contract.ModprobeSysctl) {
			continue // not the operator's to change: see contract.ModprobeSysctl
		}
		if only != nil && !slices.Contains(only, kv[0]) {
			continue
		}
		if err := k.WriteSysctl(kv[0], kv[1]); err != nil {
			errs = append(errs, &SysctlError{Key: kv[0], Err: err})
			continue
		}
		n++
	}
	if only == nil {
		if err := k.WriteSysctl(contract.ModprobeSysctl, contract.ModprobePath); err != nil {
			errs = append(errs, &SysctlError{Key: contract.ModprobeSysctl, Err: err})
		}
	}
	return n, errors.Join(errs...)
}

// SysctlError is one key's failure in ApplySysctls.
type SysctlError struct {
	Key string
	Err error
}

func (e *SysctlError) Error() string { return e.Err.Error() }
func (e *SysctlError) Unwrap() error { return e.Err }

// Missing returns the keys ApplySysctls found missing (ErrNoSysctl) and the rest of its error.
func Missing(err error) (keys []string, rest error) {
	if err == nil {
		return nil, nil
	}
	list := []error{err}
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		list = j.Unwrap()
	}
	var errs []error
	for _, e := range list {
		var se *SysctlError
		if errors.As(e, &se) && errors.Is(se, ErrNoSysctl) {
			keys = append(keys, se.Key)
			continue
		}
		errs = append(errs, e)
	}
	return keys, errors.Join(errs...)
}

// Lockdown returns the kernel's lockdown level; securityfs must be mounted.
func (k Kernel) Lockdown() (contract.Lockdown, error) {
	b, err := os.ReadFile(k.path(contract.LockdownFile))
	if err != nil {
		return "", fmt.Errorf("lockdown: %w (is the lockdown LSM in lsm= and securityfs mounted?)", err)
	}
	return contract.ParseLockdown(string(b))
}

// SetLockdown raises the kernel's lockdown level to want and returns the level it is at. The
// kernel never lowers it: asking for a lower level changes nothing and returns an error holding
// ErrNextBoot.
func (k Kernel) SetLockdown(want contract.Lockdown) (contract.Lockdown, error) {
	if want.Rank() < 0 {
		return "", fmt.Errorf("lockdown: unknown level %q", want)
	}
	cur, err := k.Lockdown()
	if err != nil {
		return "", err
	}
	switch {
	case want.Rank() == cur.Rank():
		return cur, nil
	case want.Rank() < cur.Rank():
		return cur, fmt.Errorf("lockdown: the kernel stays at %s until it restarts; %s %w", cur, want, ErrNextBoot)
	}
	if err := os.WriteFile(k.path(contract.LockdownFile), []byte(want), 0); err != nil {
		return cur, fmt.Errorf("lockdown: raise from %s to %s: %w", cur, want, err)
	}
	return want, nil
}

// BlockModules makes the files of the blocked modules in the running kernel's tree unloadable:
// the verified root's empty file is bind-mounted read-only over each, so neither Ballast's
// modprobe nor anyone's finit_module(2) on that path gets a module. A module the tree does not
// have needs nothing. It returns the modules it blocked now.
func (k Kernel) BlockModules(blocked []string) ([]string, error) {
	if len(blocked) == 0 {
		return nil, nil
	}
	modDir := k.ModulesDir()
	l, err := kmod.NewDir(k.path(modDir))
	if err != nil {
		return nil, err
	}
	empty, err := os.Stat(k.path(contract.EmptyFile))
	if err != nil {
		return nil, fmt.Errorf("block modules: %w", err)
	}
	var errs []error
	var done []string
	for _, name := range blocked {
		file, ok := l.Path(name)
		if !ok {
			continue
		}
		if st, err := os.Stat(file); err == nil && os.SameFile(st, empty) {
			continue // blocked already
		}
		target := filepath.Join(modDir, strings.TrimPrefix(file, k.path(modDir)))
		if err := k.mount(contract.EmptyFile, target, "", unix.MS_BIND, ""); err != nil {
			errs = append(errs, fmt.Errorf("block module %s: bind %s over %s: %w", name, contract.EmptyFile, target, err))
			continue
		}
		// A bind mount takes the read-only flag only from a remount.
		flags := uintptr(unix.MS_REMOUNT | unix.MS_BIND | unix.MS_RDONLY | unix.MS_NOSUID | unix.MS_NODEV | unix.MS_NOEXEC)
		if err := k.mount("", target, "", flags, ""); err != nil {
			errs = append(errs, fmt.Errorf("block module %s: remount %s read-only: %w", name, target, err))
			continue
		}
		done = append(done, contract.ModuleName(name))
	}
	return done, errors.Join(errs...)
}

// ModuleFile returns a module's file in the running kernel's tree, if the tree has the module.
func (k Kernel) ModuleFile(name string) (string, bool) {
	l, err := kmod.NewDir(k.path(k.ModulesDir()))
	if err != nil {
		return "", false
	}
	return l.Path(name)
}

// Covered reports whether a module's file in the running kernel's tree is the empty file
// BlockModules puts over blocked modules.
func (k Kernel) Covered(name string) bool {
	file, ok := k.ModuleFile(name)
	if !ok {
		return false
	}
	st, err1 := os.Stat(file)
	empty, err2 := os.Stat(k.path(contract.EmptyFile))
	return err1 == nil && err2 == nil && os.SameFile(st, empty)
}

// Loaded reports whether a module is loaded (built-in modules count as loaded).
func (k Kernel) Loaded(name string) bool {
	_, err := os.Stat(k.path(filepath.Join("/sys/module", contract.ModuleName(name))))
	return err == nil
}

// Unload removes a loaded module that nothing uses; a module in use stays, with an error saying so
// (the block holds from the next boot on). A module that is not loaded needs nothing.
func (k Kernel) Unload(name string) error {
	c := contract.ModuleName(name)
	if !k.Loaded(c) {
		return nil
	}
	if _, err := os.Stat(k.path(filepath.Join("/sys/module", c, "initstate"))); err != nil {
		return fmt.Errorf("module %s is built into the kernel and cannot be blocked", c)
	}
	del := k.DeleteModule
	if del == nil {
		del = unix.DeleteModule
	}
	err := del(c, unix.O_NONBLOCK)
	switch {
	case err == nil, errors.Is(err, unix.ENOENT):
		return nil
	case errors.Is(err, unix.EWOULDBLOCK), errors.Is(err, unix.EBUSY):
		return fmt.Errorf("module %s is in use, so it stays loaded; the block %w (%v)", c, ErrNextBoot, err)
	}
	return fmt.Errorf("unload module %s: %w", c, err)
}
