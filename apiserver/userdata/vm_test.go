package userdata

import (
	"context"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/ballast-os/ballast/tests/vmtest"
)

func TestMain(m *testing.M) { vmtest.Main(m) }

// TestVM mounts seed volumes in a QEMU guest with the image's kernel, which has the vfat and
// isofs modules the build host's kernel may lack (loop devices there prove the scan only): a FAT
// volume labelled CIDATA and an ISO 9660 one labelled SEED2, as virtio disks; then OVF
// environments, one as vSphere's (Rock Ridge and Joliet names, labelled OVF ENV) and one with
// ISO9660 names alone.
func TestVM(t *testing.T) {
	fat := fatImage(t, 2, "[settings]\nmotd = \"from vfat\"\n", "-F", "12", "-n", "CIDATA")
	iso := isoImage(t, "xorriso", "SEED2", "[settings]\nmotd = \"from iso\"\n")
	sample, err := os.ReadFile("testdata/ovf-env-vsphere.xml")
	if err != nil {
		t.Fatal(err)
	}
	ovfEnvISO := ovfISO(t, "xorriso", "OVF ENV", map[string]string{OVFEnvFile: string(sample)}, "-J", "-r")
	plain := ovfISO(t, "genisoimage", "CDROM", map[string]string{OVFEnvFile: ovfEnv(prop("user-data", "W3NldHRpbmdzXQ"))})
	vmtest.Run(t, vmtest.Options{
		// As variants/qemu.toml loads them for user data.
		Modules: []string{"virtio_pci", "virtio_blk", "vfat", "nls_cp437", "nls_ascii", "nls_iso8859-1", "nls_utf8", "isofs"},
		Disks:   []string{fat, iso, ovfEnvISO, plain},
	})
}

func TestGuestOVF(t *testing.T) {
	vmtest.GuestOnly(t)
	src := OVF{RunDir: t.TempDir()}
	data, origin, err := src.Fetch(context.Background())
	if err != nil || origin != "/dev/vdc:ovf-env.xml" || string(data) != vsphereUserData {
		t.Fatalf("Fetch = %q from %q, %v; want %q from /dev/vdc", data, origin, err, vsphereUserData)
	}
	// Without Rock Ridge or Joliet, isofs shows the file by its ISO9660 name.
	env, err := readMounted(Device{Path: "/dev/vdd", FSType: FSISO9660}, src.RunDir, "plain-", func(dir string) ([]byte, error) {
		return readOVFEnv(dir, "/dev/vdd")
	})
	if err != nil {
		t.Fatal(err)
	}
	if data, err := ovfUserData(env); err != nil || string(data) != "[settings]" {
		t.Fatalf("ovfUserData of /dev/vdd's = %q, %v", data, err)
	}
	if entries, _ := os.ReadDir(src.RunDir); len(entries) != 0 {
		t.Errorf("mount points left behind in %s", src.RunDir)
	}
}

func TestGuestNoCloudMount(t *testing.T) {
	vmtest.GuestOnly(t)
	for _, tc := range []struct{ label, dev, fsType, want string }{
		{"", "/dev/vda", FSVFAT, "from vfat"}, // the default label, cidata, in any case
		{"seed2", "/dev/vdb", FSISO9660, "from iso"},
	} {
		t.Run(tc.fsType, func(t *testing.T) {
			src := NoCloud{Label: tc.label, RunDir: t.TempDir(), Wait: 5 * time.Second}
			data, origin, err := src.Fetch(context.Background())
			if err != nil {
				t.Fatal(err)
			}
			if origin != tc.dev+":user-data" || !strings.Contains(string(data), tc.want) {
				t.Fatalf("Fetch = %q from %q, want %q from %s", data, origin, tc.want, tc.dev)
			}
			dev, err := src.Find(context.Background())
			if err != nil || dev.FSType != tc.fsType {
				t.Errorf("Find = %+v, %v; want %s", dev, err, tc.fsType)
			}
			if entries, _ := os.ReadDir(src.RunDir); len(entries) != 0 {
				t.Errorf("mount point left behind in %s", src.RunDir)
			}
			if mounts, _ := os.ReadFile("/proc/self/mounts"); strings.Contains(string(mounts), tc.dev+" ") {
				t.Errorf("%s still mounted:\n%s", tc.dev, mounts)
			}
		})
	}
}
