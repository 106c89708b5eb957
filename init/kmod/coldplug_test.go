package kmod

import (
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/ballast-os/ballast/contract"
)

// A tree with boot modules (dm-verity, virtio_net), an optional one (tun) and on-demand storage,
// USB and network drivers with their dependencies.
const (
	plugDep = `kernel/drivers/md/dm-verity.ko:
kernel/drivers/net/virtio_net.ko:
kernel/drivers/net/tun.ko:
kernel/drivers/ata/ahci.ko: kernel/drivers/ata/libahci.ko
kernel/drivers/ata/libahci.ko:
kernel/drivers/scsi/sd_mod.ko: kernel/drivers/scsi/scsi_mod.ko
kernel/drivers/scsi/scsi_mod.ko:
kernel/drivers/net/ethernet/intel/e1000e/e1000e.ko:
kernel/drivers/usb/host/xhci-pci.ko: kernel/drivers/usb/host/xhci-hcd.ko kernel/drivers/usb/core/usbcore.ko
kernel/drivers/usb/host/xhci-hcd.ko: kernel/drivers/usb/core/usbcore.ko
kernel/drivers/usb/core/usbcore.ko:
kernel/drivers/usb/storage/usb-storage.ko: kernel/drivers/usb/core/usbcore.ko kernel/drivers/scsi/scsi_mod.ko
kernel/drivers/acpi/button.ko:
`
	plugAlias = `alias pci:v00001AF4d00001041sv*sd*bc*sc*i* virtio_net
alias char-major-10-200 tun
alias pci:v*d*sv*sd*bc01sc06i01* ahci
alias scsi:t-0x00* sd_mod
alias pci:v00008086d000010D3sv*sd*bc*sc*i* e1000e
alias pci:v*d*sv*sd*bc0Csc03i30* xhci_pci
alias usb:v*p*d*dc*dsc*dp*ic08isc06ip50in* usb_storage
alias acpi*:PNP0C0C:* button
`
	plugOnDemand = "ahci\nlibahci\nsd_mod\nscsi_mod\ne1000e\nxhci_pci\nxhci_hcd\nusbcore\nusb_storage\nbutton\n"
)

// sysDevice writes a device's modalias under sys/bus/<bus>/devices/<name>.
func sysDevice(t *testing.T, sys, bus, name, modalias string) {
	t.Helper()
	dir := filepath.Join(sys, "bus", bus, "devices", name)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "modalias"), []byte(modalias+"\n"), 0o444); err != nil {
		t.Fatal(err)
	}
}

// plugLoader is a loader over the tree above and a staged sysfs with a SATA controller, an Intel
// NIC, a virtio NIC, an xHCI controller, the ACPI power button and a platform device. Inserting
// a module is recorded; inserting ahci makes a SCSI disk appear, xhci_pci a USB stick. Modules in
// fail do not load.
func plugLoader(t *testing.T, fail map[string]bool) (*Loader, string, func() []string) {
	t.Helper()
	root := t.TempDir()
	dir := filepath.Join(root, "lib/modules/6.1.0-test")
	for _, line := range strings.Split(strings.TrimSpace(plugDep), "\n") {
		mod, _, _ := strings.Cut(line, ":")
		os.MkdirAll(filepath.Join(dir, filepath.Dir(mod)), 0o755)
		os.WriteFile(filepath.Join(dir, mod), []byte(mod), 0o644)
	}
	for name, body := range map[string]string{"modules.dep": plugDep, "modules.alias": plugAlias, contract.ModulesOnDemand: plugOnDemand} {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	sys := filepath.Join(root, "sys")
	sysDevice(t, sys, "pci", "0000:00:1f.2", "pci:v00008086d00002922sv00001AF4sd00001100bc01sc06i01")
	sysDevice(t, sys, "pci", "0000:00:02.0", "pci:v00008086d000010D3sv00008086sd0000A01Fbc02sc00i00")
	sysDevice(t, sys, "pci", "0000:00:03.0", "pci:v00001AF4d00001041sv00001AF4sd00001100bc02sc00i00")
	sysDevice(t, sys, "pci", "0000:00:04.0", "pci:v00001B36d0000000Dsv00001AF4sd00001100bc0Csc03i30")
	sysDevice(t, sys, "acpi", "PNP0C0C:00", "acpi:PNP0C0C:")
	sysDevice(t, sys, "platform", "serial8250", "platform:serial8250")
	l, err := New(root, "6.1.0-test")
	if err != nil {
		t.Fatal(err)
	}
	l.Sys = sys
	var mu sync.Mutex
	var order []string
	l.Finit = func(f *os.File) error {
		b, _ := os.ReadFile(f.Name())
		name := contract.ModuleName(filepath.Base(string(b)))
		if fail[name] {
			return errors.New("finit_module: no such device")
		}
		switch name {
		case "ahci":
			sysDevice(t, sys, "scsi", "0:0:0:0", "scsi:t-0x00")
		case "xhci_pci":
			sysDevice(t, sys, "usb", "1-1:1.0", "usb:v0781p5567d0100dc00dsc00dp00ic08isc06ip50in00")
		}
		mu.Lock()
		defer mu.Unlock()
		order = append(order, name)
		return nil
	}
	return l, sys, func() []string { mu.Lock(); defer mu.Unlock(); return slices.Clone(order) }
}

func TestColdplug(t *testing.T) {
	l, _, order := plugLoader(t, nil)
	got, err := l.Coldplug()
	if err != nil {
		t.Fatal(err)
	}
	// virtio_net matches a device but is a boot module; nothing matches the platform device.
	if want := []string{"ahci", "button", "e1000e", "xhci_pci"}; !slices.Equal(got, want) {
		t.Fatalf("first pass loaded %q, want %q", got, want)
	}
	inserted := order()
	slices.Sort(inserted)
	if want := []string{"ahci", "button", "e1000e", "libahci", "usbcore", "xhci_hcd", "xhci_pci"}; !slices.Equal(inserted, want) {
		t.Fatalf("first pass inserted %q, want %q", inserted, want)
	}
	// The disk behind the SATA controller and the stick behind the USB controller appeared.
	got, err = l.Coldplug()
	if err != nil || !slices.Equal(got, []string{"sd_mod", "usb_storage"}) {
		t.Fatalf("second pass loaded %q (%v), want sd_mod and usb_storage", got, err)
	}
	if n := len(order()); n != 10 {
		t.Errorf("inserted %q: want 10 modules, each once", order())
	}
	got, err = l.Coldplug()
	if err != nil || len(got) != 0 || len(order()) != 10 {
		t.Errorf("third pass loaded %q (%v); %d inserts", got, err, len(order()))
	}
}

// What the kernel has already (the initramfs loaded it) or what the policy blocks is left alone;
// a module that failed is reported once and not tried again.
func TestColdplugSkips(t *testing.T) {
	l, sys, order := plugLoader(t, map[string]bool{"e1000e": true})
	os.MkdirAll(filepath.Join(sys, "module", "ahci"), 0o755)
	l.Blocked = func(name string) bool { return name == "usbcore" }
	got, err := l.Coldplug()
	if err == nil || !strings.Contains(err.Error(), "e1000e.ko: finit_module: no such device") {
		t.Errorf("error %v: want e1000e's failure", err)
	}
	if !slices.Equal(got, []string{"button"}) || !slices.Equal(order(), []string{"button"}) {
		t.Errorf("loaded %q, inserted %q: want button alone", got, order())
	}
	got, err = l.Coldplug()
	if err != nil || len(got) != 0 {
		t.Errorf("second pass: %q, %v; want nothing tried again", got, err)
	}
}

// Without a modules.ondemand nothing is matched, and LoadAll loads everything; with one it
// leaves the on-demand modules to Coldplug.
func TestLoadAllSkipsOnDemand(t *testing.T) {
	l, _, order := plugLoader(t, nil)
	if err := l.LoadAll(); err != nil {
		t.Fatal(err)
	}
	got := order()
	slices.Sort(got)
	if want := []string{"dm_verity", "tun", "virtio_net"}; !slices.Equal(got, want) {
		t.Errorf("LoadAll inserted %q, want %q", got, want)
	}
	if !l.OnDemand("usb-storage") || l.OnDemand("virtio_net") {
		t.Error("OnDemand")
	}

	l, sys, _ := plugLoader(t, nil)
	if err := os.Remove(filepath.Join(l.Dir, contract.ModulesOnDemand)); err != nil {
		t.Fatal(err)
	}
	l, err := NewDir(l.Dir)
	if err != nil {
		t.Fatal(err)
	}
	l.Sys = sys
	var n atomic.Int32
	l.Finit = func(*os.File) error { n.Add(1); return nil }
	if got, err := l.Coldplug(); err != nil || len(got) != 0 || n.Load() != 0 {
		t.Errorf("Coldplug without modules.ondemand: %q, %v, %d inserts", got, err, n.Load())
	}
	if err := l.LoadAll(); err != nil || n.Load() != 13 {
		t.Errorf("LoadAll without modules.ondemand: %v, %d inserts, want all 13", err, n.Load())
	}
}
