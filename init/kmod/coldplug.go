package kmod

import (
	"bufio"
	"errors"
	"fmt"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strings"

	"github.com/ballast-os/ballast/contract"
)

// readOnDemand reads contract.ModulesOnDemand, which is optional: a tree without it has no module
// loaded on demand.
func (l *Loader) readOnDemand() error {
	f, err := os.Open(filepath.Join(l.Dir, contract.ModulesOnDemand))
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("kmod: %w", err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if name := strings.TrimSpace(sc.Text()); name != "" {
			l.onDemand[contract.ModuleName(name)] = true
		}
	}
	if err := sc.Err(); err != nil {
		return fmt.Errorf("kmod: %s/%s: %w", l.Dir, contract.ModulesOnDemand, err)
	}
	return nil
}

// OnDemand reports whether a module, by any spelling of its name, is loaded only on demand.
func (l *Loader) OnDemand(name string) bool { return l.onDemand[contract.ModuleName(name)] }

// coldplug is what Coldplug keeps between calls: the aliases of the on-demand modules by the bus
// their patterns name, and the modules that failed, which are not tried again.
type coldplug struct {
	byBus  map[string][][2]string
	failed map[string]bool
}

// Coldplug loads the on-demand modules that the devices present ask for, as udev would: it reads
// every device's modalias under Sys/bus/*/devices (PCI functions, USB interfaces, SCSI devices,
// virtio, ACPI, platform and Xen devices alike) and loads, with their dependencies, the on-demand
// modules one of whose aliases matches. Only on-demand modules are matched: boot modules are
// loaded anyway, and optional ones only when asked for. It returns the canonical names of the
// modules it loaded, sorted. Call it again when a driver it loaded may have made new devices (a USB
// host controller's disks, a SCSI host bus adapter's); a module loaded already (found under
// Sys/module), blocked, or that failed before is not tried again.
func (l *Loader) Coldplug() ([]string, error) {
	sys := l.Sys
	if sys == "" {
		sys = "/sys"
	}
	l.mu.Lock()
	if l.plug == nil {
		l.plug = &coldplug{byBus: map[string][][2]string{}, failed: map[string]bool{}}
		for _, a := range l.aliases {
			if l.onDemand[a[1]] {
				bus := busOf(a[0])
				l.plug.byBus[bus] = append(l.plug.byBus[bus], a)
			}
		}
	}
	p := l.plug
	l.mu.Unlock()
	if len(p.byBus) == 0 {
		return nil, nil
	}
	files, err := filepath.Glob(filepath.Join(sys, "bus", "*", "devices", "*", "modalias"))
	if err != nil {
		return nil, fmt.Errorf("kmod: coldplug: %w", err)
	}
	var want []string
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			// A device that went away while it was looked at needs no driver.
			continue
		}
		alias := strings.TrimSpace(string(b))
		for _, a := range slices.Concat(p.byBus[busOf(alias)], p.byBus[anyBus]) {
			if ok, _ := path.Match(a[0], alias); ok && !slices.Contains(want, a[1]) {
				want = append(want, a[1])
			}
		}
	}
	slices.Sort(want)
	var load []string
	for _, m := range want {
		if p.failed[m] || l.loaded(sys, m) {
			continue
		}
		if l.Blocked != nil && slices.ContainsFunc(l.Closure(m), l.Blocked) {
			continue
		}
		load = append(load, m)
	}
	if len(load) == 0 {
		return nil, nil
	}
	err = l.Load(load...)
	var done []string
	for _, m := range load {
		if l.loaded(sys, m) {
			done = append(done, m)
		} else {
			p.failed[m] = true
		}
	}
	if err != nil {
		return done, fmt.Errorf("kmod: coldplug: %w", err)
	}
	return done, nil
}

// loaded reports whether a module is in: inserted by this loader, or known to the kernel (loaded
// before, say by the initramfs, or built in).
func (l *Loader) loaded(sys, name string) bool {
	l.mu.Lock()
	done := l.done[l.deps[name]]
	l.mu.Unlock()
	if done {
		return true
	}
	_, err := os.Stat(filepath.Join(sys, "module", name))
	return err == nil
}

// anyBus is the key of the patterns whose bus is a glob itself (ACPI drivers' "acpi*:PNP0C0C:*"):
// those are matched against every device.
const anyBus = "*"

// busOf is the part of a modalias or alias pattern before its first ':' ("pci", "usb", "scsi",
// "virtio", "acpi"), anyBus for a pattern whose bus part is a glob.
func busOf(s string) string {
	bus, _, _ := strings.Cut(s, ":")
	if strings.ContainsAny(bus, "*?[") {
		return anyBus
	}
	return bus
}

// Coldplug is New("/", "") followed by Coldplug: the on-demand modules the devices present ask for.
func Coldplug() ([]string, error) {
	l, err := New("/", "")
	if err != nil {
		return nil, err
	}
	return l.Coldplug()
}
