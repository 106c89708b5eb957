package blockdev

import (
	"context"
	"path/filepath"
	"testing"
	"time"

	"github.com/ballast-os/ballast/tests/vmtest"
)

func TestMain(m *testing.M) { vmtest.Main(m) }

// TestVM scans in a QEMU guest, where the kernel's own GPT parser and devtmpfs create the
// partitions and nodes (the build host may lack the parser, and loop devices differ from virtio).
func TestVM(t *testing.T) {
	dir := t.TempDir()
	a, b := filepath.Join(dir, "a.img"), filepath.Join(dir, "b.img")
	makeImage(t, a, otherUUID, rootUUID, dataUUID)
	makeImage(t, b, verityUUID)
	vmtest.Run(t, vmtest.Options{Modules: []string{"virtio_pci", "virtio_blk"}, Disks: []string{a, b}})
}

func TestGuestWait(t *testing.T) {
	vmtest.GuestOnly(t)
	got, err := WaitPartUUIDs(context.Background(), map[string]string{"root": rootUUID, "verity": verityUUID, "data": dataUUID}, 10*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	for role, want := range map[string]string{"root": "/dev/vda2", "data": "/dev/vda3", "verity": "/dev/vdb1"} {
		if p := got[role]; p.Dev != want || p.Size != 4<<20 {
			t.Errorf("%s: %+v, want %s", role, p, want)
		}
	}
	_, err = WaitPartUUIDs(context.Background(), map[string]string{"data": "ffffffff-2222-4333-8444-555555555555"}, 200*time.Millisecond)
	if want := "data partition PARTUUID=ffffffff-2222-4333-8444-555555555555 not found after 200ms"; err == nil || err.Error() != want {
		t.Errorf("err = %v, want %q", err, want)
	}
}
