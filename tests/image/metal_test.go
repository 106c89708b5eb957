package image

import (
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/ballast-os/ballast/apiserver/apitypes"
	"github.com/ballast-os/ballast/contract"
	"github.com/ballast-os/ballast/tests/qemu"
)

// TestMetalAHCIE1000e boots the metal image the way a plain PC has it: the disk on the chipset's
// AHCI controller, an Intel e1000e NIC, the user data on a second SATA disk, and nothing virtio at all
// (no virtio-rng either). Debian's generic kernel has none of these drivers built in: the host
// reaches ready only if the initramfs and the system init load them by the devices' modaliases.
func TestMetalAHCIE1000e(t *testing.T) {
	t.Parallel() // boots QEMU: see main_test.go
	dir := variantBuildDir(t, "metal")
	pki := newProdPKI(t)
	want := "metal on ahci"
	// A FAT volume on a second SATA disk (QEMU's AHCI disks cannot be read-only).
	cidata := makeSeed(t, pki.userData(t, fmt.Sprintf("[settings]\nmotd = %q\n", want)), nil)
	m := bootProd(t, "metal", qemu.Config{
		Disk: copyVariantDisk(t, dir, 2<<30), DiskBus: qemu.BusAHCI,
		Drives: []qemu.Drive{{Path: cidata, Bus: qemu.BusAHCI}},
		NIC:    qemu.NICE1000e, NoRNG: true,
	}, pki)

	m.checkOS(t, "metal")
	m.rootOn(t, "sd[a-z]")
	m.userDataFrom(t, contract.UserDataNoCloud)
	if got := motd(t, m.c); got != want {
		t.Errorf("motd %q, want %q from the user data", got, want)
	}
	// The e1000e NIC took its address from QEMU's DHCP server.
	m.network(t, "DHCPv4 address on eth0", func(st apitypes.Network) bool {
		return hasAddr(ifaceOf(st, "eth0"), "10.0.2.15/24", contract.SourceDHCP4)
	})

	mods := onDemandModules(t, m)
	for _, want := range []string{"ahci", "e1000e"} {
		if !slices.Contains(mods, want) {
			t.Errorf("modules loaded on demand %v: no %s", mods, want)
		}
	}
	for _, mod := range mods {
		if mod == "nvme" || strings.HasPrefix(mod, "virtio") || mod == "vmw_pvscsi" || mod == "vmxnet3" {
			t.Errorf("modules loaded on demand %v: %s, for a device this machine does not have", mods, mod)
		}
	}
}
