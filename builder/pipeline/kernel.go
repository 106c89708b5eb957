package pipeline

import (
	"bufio"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"github.com/ballast-os/ballast/builder/kmod"
)

// kernelTree is an unpacked Debian kernel package.
type kernelTree struct {
	Version string // e.g. 6.1.0-50-cloud-amd64
	Vmlinuz string // host path
	ModDir  string // host path of lib/modules/<version>
	index   kmod.Index
	builtin map[string]bool
}

func openKernel(dir string) (*kernelTree, error) {
	vm, _ := filepath.Glob(filepath.Join(dir, "boot", "vmlinuz-*"))
	if len(vm) != 1 {
		return nil, fmt.Errorf("kernel package: want one boot/vmlinuz-*, found %d", len(vm))
	}
	k := &kernelTree{
		Version: strings.TrimPrefix(filepath.Base(vm[0]), "vmlinuz-"),
		Vmlinuz: vm[0],
		index:   kmod.Index{},
		builtin: map[string]bool{},
	}
	k.ModDir = filepath.Join(dir, "lib", "modules", k.Version)
	err := filepath.WalkDir(k.ModDir, func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() || !strings.HasSuffix(path, ".ko") {
			return err
		}
		rel, _ := filepath.Rel(k.ModDir, path)
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
	if f, err := os.Open(filepath.Join(k.ModDir, "modules.builtin")); err == nil {
		sc := bufio.NewScanner(f)
		for sc.Scan() {
			k.builtin[kmod.Canonical(filepath.Base(sc.Text()))] = true
		}
		f.Close()
	}
	return k, nil
}

// modules resolves wanted module names (built-in ones need nothing) to a closure and its modules.dep.
func (k *kernelTree) modules(key string, wanted []string) ([]kmod.Module, []byte, error) {
	var loadable []string
	for _, w := range wanted {
		if !k.builtin[kmod.Canonical(w)] {
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
