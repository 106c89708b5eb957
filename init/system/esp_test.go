package system

import (
	"encoding/binary"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"

	"github.com/ballast-os/ballast/contract"
	"github.com/ballast-os/ballast/init/efivar"
	"github.com/ballast-os/ballast/init/initramfs/blockdev"
	"github.com/ballast-os/ballast/tests/testutil"
)

const (
	testRootUUID = "11111111-2222-4333-8444-555555555555"
	testESPUUID  = "0b9a2f14-3c5d-4e6f-8a7b-9c0d1e2f3a4b"
)

// testDisks are two Ballast disks; vda holds the root the tests boot.
func testDisks() []blockdev.Partition {
	return []blockdev.Partition{
		{Disk: "/dev/vdb", Dev: "/dev/vdb1", Name: "esp", PartUUID: "99999999-0000-4000-8000-000000000001"},
		{Disk: "/dev/vdb", Dev: "/dev/vdb2", Name: "root-a", PartUUID: "99999999-0000-4000-8000-000000000002"},
		{Disk: "/dev/vda", Dev: "/dev/vda1", Name: "esp", PartUUID: testESPUUID},
		{Disk: "/dev/vda", Dev: "/dev/vda2", Name: "root-a", PartUUID: testRootUUID},
		{Disk: "/dev/vda", Dev: "/dev/vda6", Name: "data", PartUUID: "11111111-2222-4333-8444-666666666666"},
	}
}

func TestChooseESP(t *testing.T) {
	tests := []struct {
		name             string
		parts            []blockdev.Partition
		loader, root     string
		wantDev, wantErr string
	}{
		{"the loader's", testDisks(), "99999999-0000-4000-8000-000000000001", testRootUUID, "/dev/vdb1", ""},
		{"on the root's disk", testDisks(), "", testRootUUID, "/dev/vda1", ""},
		{"the other disk's root", testDisks(), "", "99999999-0000-4000-8000-000000000002", "/dev/vdb1", ""},
		{"loader's partition missing", testDisks(), "99999999-0000-4000-8000-00000000000f", testRootUUID, "", "loader's PARTUUID"},
		{"no root on the command line", testDisks(), "", "", "", "names no ballast.root"},
		{"root not found", testDisks(), "", "11111111-2222-4333-8444-000000000000", "", "root's PARTUUID"},
		{"no esp on the root's disk", testDisks()[2:][1:], "", testRootUUID, "", "no partition labelled esp on /dev/vda"},
		{"no disks", nil, "", testRootUUID, "", "root's PARTUUID"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p, err := chooseESP(tt.parts, tt.loader, tt.root)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) || !errors.Is(err, errNoESP) {
					t.Errorf("chooseESP = %+v, %v; want an errNoESP with %q", p, err, tt.wantErr)
				}
				return
			}
			if err != nil || p.Dev != tt.wantDev {
				t.Errorf("chooseESP = %s, %v; want %s", p.Dev, err, tt.wantDev)
			}
		})
	}
}

// setEFIVar writes a Boot Loader Interface variable as efivarfs shows it.
func setEFIVar(t *testing.T, i *Init, name string, value string) {
	t.Helper()
	b := binary.LittleEndian.AppendUint32(nil, 0x6)
	b = append(b, efivar.EncodeUTF16(value)...)
	write(t, i, filepath.Join(contract.EFIVarsMount, name+"-"+contract.LoaderGUID), string(b))
}

// uefiMachine is machine booted through UEFI from the disk testDisks calls vda.
func uefiMachine(t *testing.T, i *Init) {
	t.Helper()
	machine(t, i, "testdata/mountinfo")
	mkdirs(t, i, contract.EFIVarsMount)
	write(t, i, "/proc/cmdline", "ballast.slot=b "+contract.ParamRoot+"="+strings.ToUpper(testRootUUID)+"\n")
	i.partitions = func() ([]blockdev.Partition, error) { return testDisks(), nil }
}

func TestMountEFI(t *testing.T) {
	tests := []struct {
		name      string
		setup     func(t *testing.T, i *Init, k *fakeKernel)
		mounts    []string
		loaded    []string
		console   string
		noConsole string
	}{
		{
			name: "UEFI, the loader's ESP",
			setup: func(t *testing.T, i *Init, k *fakeKernel) {
				setEFIVar(t, i, efivar.LoaderDevicePartUUID, "99999999-0000-4000-8000-000000000001")
			},
			mounts: []string{
				"mount efivarfs /sys/firmware/efi/efivars efivarfs 0xe ",
				"mount /dev/vdb1 /run/ballast/esp vfat 0x1e umask=0077", // nosuid,nodev,noexec,sync
			},
			console: "ballast: esp /dev/vdb1 mounted on /run/ballast/esp",
		},
		{
			name:  "UEFI without the loader's variable, labelled",
			setup: func(t *testing.T, i *Init, k *fakeKernel) { write(t, i, contract.SELinuxEnforce, "1") },
			mounts: []string{
				"mount efivarfs /sys/firmware/efi/efivars efivarfs 0xe ",
				"mount /dev/vda1 /run/ballast/esp vfat 0x1e umask=0077,context=system_u:object_r:esp_t:s0",
			},
		},
		{
			name: "filesystems not in the kernel yet",
			setup: func(t *testing.T, i *Init, k *fakeKernel) {
				k.failOnce[contract.EFIVarsMount] = syscall.ENODEV
				k.failOnce[contract.ESPMount] = syscall.ENODEV
			},
			mounts: []string{
				"mount efivarfs /sys/firmware/efi/efivars efivarfs 0xe ",
				"mount efivarfs /sys/firmware/efi/efivars efivarfs 0xe ",
				"mount /dev/vda1 /run/ballast/esp vfat 0x1e umask=0077",
				"mount /dev/vda1 /run/ballast/esp vfat 0x1e umask=0077",
			},
			loaded:  []string{"efivarfs", "vfat,nls_cp437,nls_ascii"},
			console: "ballast: esp /dev/vda1 mounted",
		},
		{
			name: "mounted already",
			setup: func(t *testing.T, i *Init, k *fakeKernel) {
				b, _ := os.ReadFile("testdata/mountinfo")
				write(t, i, "/proc/self/mountinfo", string(b)+
					"50 23 0:50 / /sys/firmware/efi/efivars rw - efivarfs efivarfs rw\n"+
					"51 24 254:1 / /run/ballast/esp rw - vfat /dev/vda1 rw\n")
			},
		},
		{
			name: "not UEFI, no ESP: a note",
			setup: func(t *testing.T, i *Init, k *fakeKernel) {
				os.RemoveAll(i.path(efiDir))
				i.partitions = func() ([]blockdev.Partition, error) { return nil, errors.New("no disks") }
			},
			console:   "ballast: esp not mounted: not booted through UEFI (no ESP: no partition has the root's PARTUUID " + testRootUUID + "; scan: no disks)",
			noConsole: "error",
		},
		{
			name: "UEFI, no ESP: an error",
			setup: func(t *testing.T, i *Init, k *fakeKernel) {
				i.partitions = func() ([]blockdev.Partition, error) { return testDisks()[3:], nil }
			},
			mounts:  []string{"mount efivarfs /sys/firmware/efi/efivars efivarfs 0xe "},
			console: "ballast: error: esp: no ESP: no partition labelled esp on /dev/vda",
		},
		{
			name: "the mount fails",
			setup: func(t *testing.T, i *Init, k *fakeKernel) {
				k.fail[contract.ESPMount] = syscall.EINVAL
			},
			mounts: []string{
				"mount efivarfs /sys/firmware/efi/efivars efivarfs 0xe ",
				"mount /dev/vda1 /run/ballast/esp vfat 0x1e umask=0077",
			},
			console: "ballast: error: esp: /dev/vda1 (PARTUUID=" + testESPUUID + "): mount /run/ballast/esp (vfat): invalid argument",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			i, k, out := testInit(t)
			uefiMachine(t, i)
			var loaded []string
			i.loadModules = func(names ...string) error {
				loaded = append(loaded, strings.Join(names, ","))
				return nil
			}
			tt.setup(t, i, k)
			i.mountEFI()
			if got := k.log(); !slices.Equal(got, tt.mounts) {
				t.Errorf("kernel calls:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(tt.mounts, "\n"))
			}
			if !slices.Equal(loaded, tt.loaded) {
				t.Errorf("modules loaded %q, want %q", loaded, tt.loaded)
			}
			if !strings.Contains(out.String(), tt.console) {
				t.Errorf("console lacks %q:\n%s", tt.console, out)
			}
			if tt.noConsole != "" && strings.Contains(out.String(), tt.noConsole) {
				t.Errorf("console has %q:\n%s", tt.noConsole, out)
			}
		})
	}
}

// The ESP is unmounted at shutdown like the data partition: FAT marks itself dirty while mounted.
func TestShutdownUnmountsESP(t *testing.T) {
	i, k, _ := testInit(t)
	machine(t, i, "testdata/mountinfo")
	b, _ := os.ReadFile("testdata/mountinfo")
	write(t, i, "/proc/self/mountinfo", string(b)+"51 24 254:1 / /run/ballast/esp rw - vfat /dev/vda1 rw\n")
	i.unmountData()
	if got := k.log(); !slices.Contains(got, "umount /run/ballast/esp") {
		t.Errorf("kernel calls %q: the ESP stays mounted", got)
	}
}

// The label the ESP is mounted with is a type of the policy: a context= the policy lacks fails
// the mount.
func TestESPTypeInPolicy(t *testing.T) {
	srcs, err := filepath.Glob(filepath.Join(testutil.RepoRoot(t), "selinux", "policy", "*.cil"))
	if err != nil || len(srcs) == 0 {
		t.Fatalf("policy sources: %v", err)
	}
	found := false
	for _, s := range srcs {
		b, err := os.ReadFile(s)
		if err != nil {
			t.Fatal(err)
		}
		found = found || strings.Contains(string(b), "(type "+espType+")")
	}
	if !found {
		t.Errorf("no (type %s) in selinux/policy", espType)
	}
}
