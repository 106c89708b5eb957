package installer

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ballast-os/ballast/images/disk"
)

// ataPage89 builds VPD page 0x89 around ATA IDENTIFY data with the model and serial in ATA's
// byte-swapped word order.
func ataPage89(model, serial string) string {
	b := make([]byte, 60+512)
	b[1] = 0x89
	put := func(off, n int, s string) {
		f := []byte(s + strings.Repeat(" ", n-len(s)))
		for i := 0; i < n; i += 2 {
			b[60+off+i], b[60+off+i+1] = f[i+1], f[i]
		}
	}
	put(20, 20, serial)
	put(54, 40, model)
	return string(b)
}

func TestIdentify(t *testing.T) {
	h := newHost(t)
	// A USB stick: the disk's device is a SCSI device below a USB device in the sysfs tree.
	usbDev := filepath.Join(h.sys, "devices", "pci0000:00", "usb1", "1-1")
	scsiDev := filepath.Join(usbDev, "1-1:1.0", "host6", "target6:0:0", "6:0:0:0")
	os.MkdirAll(scsiDev, 0o755)
	os.WriteFile(filepath.Join(usbDev, "idVendor"), []byte("0951\n"), 0o644)
	os.WriteFile(filepath.Join(usbDev, "serial"), []byte("001A4D5F1234\n"), 0o644)
	os.WriteFile(filepath.Join(scsiDev, "vendor"), []byte("Kingston\n"), 0o644)
	os.WriteFile(filepath.Join(scsiDev, "model"), []byte("DataTraveler 3.0\n"), 0o644)
	h.disk("sdc", 1<<20, nil)
	os.Symlink(scsiDev, filepath.Join(h.sys, "class", "block", "sdc", "device"))

	h.disk("nvme0n1", 1<<20, map[string]string{"device/model": "Samsung SSD 970 EVO Plus 1TB            \n", "device/serial": "  S4EWNX0N123456     \n", "wwid": "eui.0025385b71b0a123\n"})
	h.disk("vda", 1<<20, map[string]string{"serial": "ballast-disk\n"})
	h.disk("sda", 1<<20, map[string]string{"device/vendor": "ATA     \n", "device/model": "WDC WD10EZEX-00B\n",
		"device/vpd_pg89": ataPage89("WDC WD10EZEX-00BN5A0", "WD-WCC3F1234567"), "device/wwid": "naa.50014ee2b5a1c3d4\n"})
	h.disk("sdb", 1<<20, map[string]string{"device/vendor": "QEMU    \n", "device/model": "QEMU HARDDISK   \n", "device/wwid": "naa.6001405abcdef012\n"})
	disks, err := listDisks(h.sys, h.dev)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]string{
		"nvme0n1": "Samsung SSD 970 EVO Plus 1TB|nvme-Samsung_SSD_970_EVO_Plus_1TB_S4EWNX0N123456 nvme-eui.0025385b71b0a123",
		"vda":     "|virtio-ballast-disk",
		"sda":     "WDC WD10EZEX-00BN5A0|ata-WDC_WD10EZEX-00BN5A0_WD-WCC3F1234567 wwn-0x50014ee2b5a1c3d4",
		"sdb":     "QEMU QEMU HARDDISK|scsi-36001405abcdef012 wwn-0x6001405abcdef012",
		"sdc":     "Kingston DataTraveler 3.0|usb-Kingston_DataTraveler_3.0_001A4D5F1234-0:0",
	}
	if len(disks) != len(want) {
		t.Fatalf("listed %d disks, want %d: %+v", len(disks), len(want), disks)
	}
	for _, d := range disks {
		if got := d.Model + "|" + strings.Join(d.ByID, " "); got != want[d.Name] {
			t.Errorf("%s: %q, want %q", d.Name, got, want[d.Name])
		}
	}
}

func TestPickTarget(t *testing.T) {
	const need = 8 << 20
	type disk struct {
		name  string
		size  int64
		data  bool
		attrs map[string]string
	}
	nvme := disk{"nvme0n1", 16 << 20, false, map[string]string{"device/model": "Test NVMe", "device/serial": "N1"}}
	ata := disk{"sda", 16 << 20, true, map[string]string{"device/vendor": "ATA", "device/model": "Disk", "device/vpd_pg89": ataPage89("Big Disk", "A1")}}
	small := disk{"vda", 4 << 20, false, map[string]string{"serial": "small"}}
	medium := disk{"sdb", 16 << 20, false, nil}
	other := disk{"vdb", 16 << 20, false, map[string]string{"serial": "other"}}
	dm := disk{"dm-0", 16 << 20, false, nil}
	cd := disk{"sr0", 16 << 20, false, nil}
	sector4k := disk{"vdc", 16 << 20, false, map[string]string{"queue/logical_block_size": "4096"}}
	ro := disk{"vdd", 16 << 20, false, map[string]string{"ro": "1"}}
	used := disk{"vde", 16 << 20, true, map[string]string{"serial": "used"}}
	for _, tc := range []struct {
		name  string
		disks []disk
		spec  string
		wipe  bool
		want  string // the target's name, or a substring of the error
		err   bool
	}{
		{"auto: the only empty disk", []disk{nvme, ata, small, medium, dm, cd, sector4k, ro}, "auto", false, "nvme0n1", false},
		{"absent is auto", []disk{nvme, ata}, "", false, "nvme0n1", false},
		{"auto: two empty disks", []disk{nvme, other, ata}, "auto", false, "2 empty disks", true},
		{"auto: the only disk holds data", []disk{ata, small, medium}, "auto", false, "holds data: non-zero bytes at offset 0; add ballast.install.wipe", true},
		{"auto: the only disk holds data, wipe", []disk{ata, small, medium}, "auto", true, "sda", false},
		{"auto: two disks hold data, wipe", []disk{ata, used}, "auto", true, "no empty disk", true},
		{"auto: the medium is never picked", []disk{medium}, "auto", false, "sdb (16 MiB): the installer medium", true},
		{"auto lists every disk and why", []disk{ata, used, small, dm, cd, sector4k, ro}, "auto", false,
			"sda (Big Disk, 16 MiB) by-id ata-Big_Disk_A1: holds data: non-zero bytes at offset 0\n" +
				"  /dev/sr0 (16 MiB): an optical drive\n" +
				"  /dev/vda (4 MiB) by-id virtio-small: too small: the image needs 8 MiB\n" +
				"  /dev/vdc (16 MiB): logical sector size 4096, the image is laid out for 512\n" +
				"  /dev/vdd (16 MiB): read-only\n" +
				"  /dev/vde (16 MiB) by-id virtio-used: holds data: non-zero bytes at offset 0", true},
		{"by path", []disk{nvme, other}, "/dev/vdb", false, "vdb", false},
		{"by-id with directory", []disk{nvme, other}, "/dev/disk/by-id/nvme-Test_NVMe_N1", false, "nvme0n1", false},
		{"by-id bare", []disk{nvme, other}, "virtio-other", false, "vdb", false},
		{"kernel name", []disk{nvme, other}, "vdb", false, "vdb", false},
		{"named disk with data", []disk{nvme, ata}, "ata-Big_Disk_A1", false, "holds data: non-zero bytes at offset 0; add ballast.install.wipe", true},
		{"named disk with data, wipe", []disk{nvme, ata}, "ata-Big_Disk_A1", true, "sda", false},
		{"named too small", []disk{small}, "/dev/vda", false, "too small", true},
		{"named medium", []disk{nvme, medium}, "/dev/sdb", false, "the installer medium", true},
		{"named device-mapper", []disk{nvme, dm}, "/dev/dm-0", false, "a device-mapper device", true},
		{"unknown", []disk{nvme}, "/dev/disk/by-id/nvme-nope", false, "no such disk", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := newHost(t)
			for _, d := range tc.disks {
				node := h.disk(d.name, d.size, d.attrs)
				if d.data {
					writeAt(t, node, 0, "x")
				}
			}
			h.partition("sda", "sda1", 1<<20) // partitions are never listed
			disks, err := listDisks(h.sys, h.dev)
			if err != nil {
				t.Fatal(err)
			}
			v, err := pickTarget(judge(disks, need, filepath.Join(h.dev, "sdb")), tc.spec, h.dev, tc.wipe)
			switch {
			case tc.err && (err == nil || !strings.Contains(strings.ReplaceAll(err.Error(), h.dev, "/dev"), tc.want)):
				t.Errorf("error %v, want one with %q", err, tc.want)
			case !tc.err && (err != nil || v.Name != tc.want):
				t.Errorf("target %q, %v; want %s", v.Name, err, tc.want)
			}
			var de *DataError
			if errors.As(err, &de) != strings.Contains(tc.want, "holds data:") && !strings.Contains(tc.name, "auto") {
				t.Errorf("DataError %v for %v", de, err)
			}
		})
	}
}

func TestSeedType(t *testing.T) {
	if typeLinuxGeneric != disk.TypeLinuxGeneric {
		t.Errorf("seed type %s, images/disk says %s", typeLinuxGeneric, disk.TypeLinuxGeneric)
	}
}

// TestWaitTarget: disks appear as their drivers load, so the target is picked only once the
// list has settled: a disk that a rescan brings (the SCSI disk driver loaded on demand) is found,
// and a second one that comes later still makes "auto" ambiguous rather than being missed.
func TestWaitTarget(t *testing.T) {
	for _, tc := range []struct {
		name    string
		appear  map[int]string // rescan number -> disk that appears then
		want    string         // target name, or a substring of the error
		wantErr bool
	}{
		{"a disk behind a driver loaded on demand", map[int]string{3: "sda"}, "sda", false},
		{"a second disk after the first", map[int]string{1: "sda", 3: "sdb"}, "2 empty disks", true},
		{"no disk ever", nil, "no empty disk", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := newHost(t)
			cfg := h.config(nil, "")
			cfg.DiskWait = 2 * time.Second
			rescans := 0
			cfg.Rescan = func() {
				rescans++
				if name, ok := tc.appear[rescans]; ok {
					h.disk(name, 16<<20, nil)
				}
			}
			v, err := waitTarget(context.Background(), &cfg, 8<<20, "")
			if tc.wantErr {
				if err == nil || !strings.Contains(err.Error(), tc.want) {
					t.Fatalf("target %v, err %v; want an error with %q", v.Name, err, tc.want)
				}
				return
			}
			if err != nil || v.Name != tc.want {
				t.Fatalf("target %q, err %v; want %s", v.Name, err, tc.want)
			}
		})
	}
}
