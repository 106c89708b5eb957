// Package kernel opens an unpacked Debian kernel package for the builder: its release, its
// bzImage, and the closure of the modules a variant asks for with their modules.dep. Pinned
// fetches and opens the kernel a variant pins, for the builder and for tests that boot it.
package kernel

import (
	"bufio"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/ballast-os/ballast/contract"

	"github.com/ballast-os/ballast/builder/kmod"
)

// Tree is an unpacked Debian kernel package.
type Tree struct {
	Version string // e.g. 6.1.0-50-cloud-amd64
	Vmlinuz string // host path
	ModDir  string // host path of lib/modules/<version>
	index   kmod.Index
	builtin map[string]bool
}

// Open reads the kernel package unpacked at dir.
func Open(dir string) (*Tree, error) {
	vm, err := filepath.Glob(filepath.Join(dir, "boot", "vmlinuz-*"))
	if err != nil {
		return nil, fmt.Errorf("kernel package: %w", err)
	}
	if len(vm) != 1 {
		return nil, fmt.Errorf("kernel package: want one boot/vmlinuz-*, found %d", len(vm))
	}
	k := &Tree{
		Version: strings.TrimPrefix(filepath.Base(vm[0]), "vmlinuz-"),
		Vmlinuz: vm[0],
		index:   kmod.Index{},
		builtin: map[string]bool{},
	}
	k.ModDir = filepath.Join(dir, "lib", "modules", k.Version)
	err = filepath.WalkDir(k.ModDir, func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() || !strings.HasSuffix(path, ".ko") {
			return err
		}
		rel, err := filepath.Rel(k.ModDir, path)
		if err != nil {
			return err
		}
		f, err := os.Open(path)
		if err != nil {
			return err
		}
		defer f.Close()
		return k.index.Add(filepath.ToSlash(rel), f)
	})
	if err != nil {
		return nil, fmt.Errorf("kernel package %s: %w", k.Version, err)
	}
	// modules.builtin lists what is compiled in: asking for one of those needs no file.
	f, err := os.Open(filepath.Join(k.ModDir, "modules.builtin"))
	if err != nil {
		return nil, fmt.Errorf("kernel package %s: %w", k.Version, err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		k.builtin[contract.ModuleName(filepath.Base(sc.Text()))] = true
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("kernel package %s: modules.builtin: %w", k.Version, err)
	}
	return k, nil
}

// Modules resolves wanted module names (built-in ones need nothing) to a closure and its modules.dep.
func (k *Tree) Modules(key string, wanted []string) ([]kmod.Module, []byte, error) {
	var loadable []string
	for _, w := range wanted {
		if !k.builtin[contract.ModuleName(w)] {
			loadable = append(loadable, w)
		}
	}
	mods, err := k.index.Closure(loadable)
	if err != nil {
		return nil, nil, fmt.Errorf("%s: %w", key, err)
	}
	dep, err := k.index.ModulesDep(mods)
	if err != nil {
		return nil, nil, fmt.Errorf("%s: %w", key, err)
	}
	return mods, dep, nil
}

// ModuleSet is what a module tree of an image holds: the modules with their dependencies, and
// its modules.dep, modules.alias and contract.ModulesOnDemand.
type ModuleSet struct {
	Modules  []kmod.Module // every module file, the boot ones first
	Dep      []byte
	Alias    []byte
	OnDemand []byte
	Softdep  []byte // modules.softdep
}

// ModuleSet resolves the modules a tree gets: boot (named under bootKey in messages: loaded at
// boot or on request) and hardware (kernel.hardware-modules: loaded when a device asks). A name
// neither built in nor in the package is an error naming its key.
func (k *Tree) ModuleSet(bootKey string, boot, hardware []string) (ModuleSet, error) {
	bootMods, _, err := k.Modules(bootKey, boot)
	if err != nil {
		return ModuleSet{}, err
	}
	hwMods, _, err := k.Modules("kernel.hardware-modules", hardware)
	if err != nil {
		return ModuleSet{}, err
	}
	all := slices.Clone(bootMods)
	for _, m := range hwMods {
		if !slices.ContainsFunc(all, func(b kmod.Module) bool { return b.Name == m.Name }) {
			all = append(all, m)
		}
	}
	dep, err := k.index.ModulesDep(all)
	if err != nil {
		return ModuleSet{}, fmt.Errorf("%s, kernel.hardware-modules: %w", bootKey, err)
	}
	return ModuleSet{Modules: all, Dep: dep, Alias: kmod.ModulesAlias(all), OnDemand: kmod.ModulesOnDemand(bootMods, hwMods),
		Softdep: k.index.ModulesSoftdep(all)}, nil
}
