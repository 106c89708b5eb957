package kernel

import (
	"context"
	"slices"
	"strings"
	"testing"
)

// The cloud kernel of variants/qemu.toml, fetched through the shared download cache.
func TestModuleSet(t *testing.T) {
	k, err := Pinned(context.Background(), "../..", "qemu", "")
	if err != nil {
		t.Fatal(err)
	}
	// nvme is built into the cloud kernel: nothing to load, nothing on demand.
	set, err := k.ModuleSet("kernel.initramfs-modules", []string{"dm-verity", "virtio_blk"}, []string{"sd_mod", "vmw_pvscsi", "virtio_scsi", "nvme"})
	if err != nil {
		t.Fatal(err)
	}
	onDemand := strings.Fields(string(set.OnDemand))
	for _, m := range []string{"sd_mod", "vmw_pvscsi", "virtio_scsi", "scsi_mod"} {
		if !slices.Contains(onDemand, m) {
			t.Errorf("modules.ondemand %q lacks %s", onDemand, m)
		}
	}
	// virtio_blk's dependencies are boot modules' even though virtio_scsi shares them.
	for _, m := range []string{"dm_verity", "dm_mod", "virtio_blk", "virtio", "virtio_ring", "nvme"} {
		if slices.Contains(onDemand, m) {
			t.Errorf("modules.ondemand %q has %s, a boot module or built in", onDemand, m)
		}
	}
	for _, want := range []string{"alias scsi:t-0x00* sd_mod\n", "alias pci:v000015ADd000007C0sv*sd*bc*sc*i* vmw_pvscsi\n"} {
		if !strings.Contains(string(set.Alias), want) {
			t.Errorf("modules.alias lacks %q", want)
		}
	}
	for _, m := range set.Modules {
		if !strings.Contains(string(set.Dep), m.Path+":") {
			t.Errorf("modules.dep lacks %s", m.Path)
		}
	}
	if _, err := k.ModuleSet("kernel.initramfs-modules", []string{"dm-verity"}, []string{"sd_mod", "no_such_driver"}); err == nil ||
		!strings.Contains(err.Error(), "kernel.hardware-modules: kmod: module no_such_driver not found") {
		t.Errorf("missing hardware module: %v", err)
	}
	if _, err := k.ModuleSet("kernel.modules", []string{"no_such_fs"}, nil); err == nil || !strings.Contains(err.Error(), "kernel.modules: kmod: module no_such_fs") {
		t.Errorf("missing boot module: %v", err)
	}
}
