// Package kmod resolves kernel module dependencies at build time. Debian's kernel package ships no
// modules.dep (depmod runs in its maintainer script), so the builder reads each module's .modinfo
// "depends=" field itself and writes modules.dep for exactly the modules it includes.
package kmod

import (
	"bytes"
	"debug/elf"
	"fmt"
	"io"
	"slices"
	"sort"
	"strings"

	"github.com/ballast-os/ballast/contract"
)

// Module is one kernel module of a kernel tree.
type Module struct {
	Name    string   // canonical name: dashes turned into underscores, as the kernel names it
	Path    string   // relative to /lib/modules/<kver>, e.g. kernel/drivers/md/dm-verity.ko
	Depends []string // canonical names from .modinfo depends=
	Aliases []string // .modinfo alias= patterns, e.g. fs-vfat, char-major-10-200
	// SoftPre are the names or aliases of .modinfo "softdep=pre: ..." modules: ones the module
	// uses without linking to them, e.g. libcrc32c's crc32c, which it asks the crypto API for at
	// load time and fails without.
	SoftPre []string
}

// ReadModinfo returns the key=value pairs of a module's .modinfo section.
func ReadModinfo(r io.ReaderAt) (map[string][]string, error) {
	f, err := elf.NewFile(r)
	if err != nil {
		return nil, fmt.Errorf("not an ELF module: %w", err)
	}
	defer f.Close()
	s := f.Section(".modinfo")
	if s == nil {
		return nil, fmt.Errorf("no .modinfo section")
	}
	data, err := s.Data()
	if err != nil {
		return nil, fmt.Errorf(".modinfo: %w", err)
	}
	info := map[string][]string{}
	for _, kv := range bytes.Split(data, []byte{0}) {
		k, v, ok := strings.Cut(string(kv), "=")
		if ok {
			info[k] = append(info[k], v)
		}
	}
	return info, nil
}

// Index maps canonical names to the modules of one kernel tree.
type Index map[string]Module

// Add registers a module from its relative path and .modinfo content.
func (ix Index) Add(path string, r io.ReaderAt) error {
	info, err := ReadModinfo(r)
	if err != nil {
		return fmt.Errorf("kmod: %s: %w", path, err)
	}
	base := path[strings.LastIndex(path, "/")+1:]
	m := Module{Name: contract.ModuleName(base), Path: path}
	if n := info["name"]; len(n) > 0 && n[0] != "" {
		m.Name = contract.ModuleName(n[0])
	}
	for _, d := range info["depends"] {
		for _, dep := range strings.Split(d, ",") {
			if dep = strings.TrimSpace(dep); dep != "" {
				m.Depends = append(m.Depends, contract.ModuleName(dep))
			}
		}
	}
	m.Aliases = info["alias"]
	for _, sd := range info["softdep"] {
		pre := false
		for _, w := range strings.Fields(sd) {
			switch {
			case strings.HasSuffix(w, ":"):
				pre = w == "pre:"
			case pre:
				m.SoftPre = append(m.SoftPre, w)
			}
		}
	}
	ix[m.Name] = m
	return nil
}

// Closure returns the wanted modules and all they depend on, in a load order (dependencies first).
// Errors name the wanted module and the missing dependency.
func (ix Index) Closure(wanted []string) ([]Module, error) { return ix.closure(wanted, true) }

// closure is Closure; soft says whether soft dependencies come along. They go into the tree and
// load first where they can (modules.softdep), but a module does not need them: modules.dep is
// written without them.
func (ix Index) closure(wanted []string, soft bool) ([]Module, error) {
	var order []Module
	state := map[string]int{} // 1 visiting, 2 done
	var visit func(name, via string) error
	visit = func(name, via string) error {
		switch state[name] {
		case 2:
			return nil
		case 1:
			return fmt.Errorf("kmod: dependency cycle through %s", name)
		}
		m, ok := ix[name]
		if !ok {
			if via == "" {
				return fmt.Errorf("kmod: module %s not found in the kernel package", name)
			}
			return fmt.Errorf("kmod: module %s (needed by %s) not found in the kernel package", name, via)
		}
		state[name] = 1
		deps := slices.Clone(m.Depends)
		if soft {
			for _, d := range ix.SoftDeps(m) {
				if !slices.Contains(deps, d) {
					deps = append(deps, d)
				}
			}
		}
		sort.Strings(deps)
		for _, d := range deps {
			if err := visit(d, name); err != nil {
				return err
			}
		}
		state[name] = 2
		order = append(order, m)
		return nil
	}
	names := make([]string, len(wanted))
	for i, w := range wanted {
		names[i] = contract.ModuleName(w)
	}
	for _, n := range names {
		if err := visit(n, ""); err != nil {
			return nil, err
		}
	}
	return order, nil
}

// SoftDeps are the modules m's soft dependencies name: a module of that name, else every module
// with that alias (crc32c: crc32c_generic and crc32c_intel, which needs SSE4.2), sorted. The
// loader tries each and goes on without those that fail. A soft dependency the kernel has built
// in, or not at all, resolves to nothing.
func (ix Index) SoftDeps(m Module) []string {
	var out []string
	for _, name := range m.SoftPre {
		if _, ok := ix[contract.ModuleName(name)]; ok {
			out = append(out, contract.ModuleName(name))
			continue
		}
		for n, dep := range ix {
			if slices.Contains(dep.Aliases, name) {
				out = append(out, n)
			}
		}
	}
	slices.Sort(out)
	return slices.Compact(out)
}

// ModulesSoftdep renders modules.softdep for mods: "softdep <name> pre: <names>" for each module
// with soft dependencies in mods, sorted.
func (ix Index) ModulesSoftdep(mods []Module) []byte {
	in := map[string]bool{}
	for _, m := range mods {
		in[m.Name] = true
	}
	var lines []string
	for _, m := range mods {
		var pre []string
		for _, d := range ix.SoftDeps(m) {
			if in[d] {
				pre = append(pre, d)
			}
		}
		if len(pre) > 0 {
			lines = append(lines, "softdep "+m.Name+" pre: "+strings.Join(pre, " ")+"\n")
		}
	}
	slices.Sort(lines)
	return []byte(strings.Join(slices.Compact(lines), ""))
}

// ModulesAlias renders modules.alias for mods: "alias <pattern> <name>" for each alias of each
// module, sorted, as depmod writes it. Module loaders resolve the kernel's requests with it.
func ModulesAlias(mods []Module) []byte {
	var lines []string
	for _, m := range mods {
		for _, a := range m.Aliases {
			lines = append(lines, "alias "+a+" "+m.Name+"\n")
		}
	}
	slices.Sort(lines)
	return []byte(strings.Join(slices.Compact(lines), ""))
}

// ModulesDep renders modules.dep for mods (as returned by Closure): one line per module, its whole
// dependency closure listed so that loading from the end of the list backwards is a valid order, as
// depmod does.
func (ix Index) ModulesDep(mods []Module) ([]byte, error) {
	var b bytes.Buffer
	sorted := slices.Clone(mods)
	sort.Slice(sorted, func(i, j int) bool { return sorted[i].Path < sorted[j].Path })
	for _, m := range sorted {
		deps, err := ix.closure([]string{m.Name}, false)
		if err != nil {
			return nil, err
		}
		deps = deps[:len(deps)-1] // the module itself is last
		slices.Reverse(deps)
		b.WriteString(m.Path + ":")
		for _, d := range deps {
			b.WriteString(" " + d.Path)
		}
		b.WriteByte('\n')
	}
	return b.Bytes(), nil
}

// ModulesOnDemand renders contract.ModulesOnDemand for a tree holding boot and hardware (as
// returned by Closure): the canonical names of the hardware modules and of those of their
// dependencies no boot module needs, sorted, one a line. Those are the modules loaded only when a
// device asks for them; a dependency a boot module shares is loaded at boot.
func ModulesOnDemand(boot, hardware []Module) []byte {
	atBoot := map[string]bool{}
	for _, m := range boot {
		atBoot[m.Name] = true
	}
	var names []string
	for _, m := range hardware {
		if !atBoot[m.Name] {
			names = append(names, m.Name+"\n")
		}
	}
	slices.Sort(names)
	return []byte(strings.Join(slices.Compact(names), ""))
}
