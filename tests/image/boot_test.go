package image

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/ballast-os/ballast/builder/pipeline"
	"github.com/ballast-os/ballast/tests/qemu"
)

var readyRE = regexp.MustCompile(`ballast: ready version=(\S+) variant=(\S+) slot=(\S+) roothash=([0-9a-f]{64})`)

// makeCidata writes a NoCloud seed volume: FAT labelled CIDATA holding user-data, as cloud-localds does.
func makeCidata(t *testing.T, userData string) string {
	t.Helper()
	dir := t.TempDir()
	img := filepath.Join(dir, "cidata.img")
	ud := filepath.Join(dir, "user-data")
	os.WriteFile(ud, []byte(userData), 0o644)
	if out, err := exec.Command(tool(t, "mkfs.fat", "dosfstools"), "-C", "-n", "CIDATA", img, "2048").CombinedOutput(); err != nil {
		t.Fatalf("mkfs.fat: %v %s", err, out)
	}
	if out, err := exec.Command(tool(t, "mcopy", "mtools"), "-i", img, ud, "::user-data").CombinedOutput(); err != nil {
		t.Fatalf("mcopy: %v %s", err, out)
	}
	return img
}

func boot(t *testing.T, disk string, extra ...string) *qemu.VM {
	t.Helper()
	if err := qemu.Available(); err != nil {
		t.Fatalf("QEMU is needed for image tests: %v", err)
	}
	log := filepath.Join(t.TempDir(), "console.log")
	vm, err := startVM(t, qemu.Config{Disk: disk, ExtraDisks: extra, LogFile: log, Timeout: 5 * time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		vm.Kill()
		if t.Failed() {
			b, _ := os.ReadFile(log)
			t.Logf("console log %s:\n%s", log, b)
		}
	})
	return vm
}

func expect(t testing.TB, vm *qemu.VM, re string) []string {
	t.Helper()
	m, err := vm.Expect(regexp.MustCompile(re), 0)
	if err != nil {
		t.Fatalf("waiting for %q: %v", re, err)
	}
	return m
}

// shell runs a command on the dev console shell and returns what it printed after a marker, so the
// echo of the typed command never matches.
func shell(t *testing.T, vm *qemu.VM, n int, cmd string) string {
	t.Helper()
	vm.Send(fmt.Sprintf("echo OUT%d-$(%s 2>&1 | tr '\\n' ' ')-END\r", n, cmd))
	m := expect(t, vm, fmt.Sprintf(`^OUT%d-(.*)-END$`, n))
	return strings.TrimSpace(m[1])
}

func powerdown(t testing.TB, vm *qemu.VM) {
	t.Helper()
	if err := vm.Powerdown(); err != nil {
		t.Fatal(err)
	}
	expect(t, vm, `ballast: power off`)
	if err := vm.WaitExit(60 * time.Second); err != nil {
		t.Fatalf("after power off: %v", err)
	}
	if r := vm.ShutdownReason(); r != "guest-shutdown" {
		t.Fatalf("QEMU stopped for %q, want guest-shutdown", r)
	}
}

// TestBootUserDataAndPersistence boots the image twice: the first boot grows the data partition,
// applies user data and changes settings through the API socket; the second shows they survived.
func TestBootUserDataAndPersistence(t *testing.T) {
	t.Parallel() // boots QEMU: see main_test.go
	m := loadManifest(t)
	const diskSize = 2 << 30
	disk := copyDisk(t, diskSize)
	cidata := makeCidata(t, "[settings]\nmotd = \"hello from user data\"\n")
	caSum, caFiles := mozillaBundle(t)

	// The data partition must grow from its built size to fill the disk up to the backup GPT.
	dataOff, dataSize := partition(t, m, "data")
	img, err := os.Open(filepath.Join(buildDir, "disk.raw"))
	if err != nil {
		t.Fatal(err)
	}
	hdr := readGPTHeader(t, img)
	img.Close()
	dataEnd := grownDataEnd(hdr, diskSize)
	wantGrown := fmt.Sprintf("ballast: data grown from %d MiB to %d MiB", dataSize/mib, (dataEnd-dataOff)/mib)

	start := time.Now()
	vm := boot(t, disk, cidata)
	if grown := expect(t, vm, `ballast: data grown from \d+ MiB to \d+ MiB`); grown[0] != wantGrown {
		t.Errorf("console says %q, want %q (a %d MiB disk, data at %d MiB)", grown[0], wantGrown, diskSize/mib, dataOff/mib)
	}
	r := expect(t, vm, readyRE.String())
	t.Logf("first boot: QEMU start → ready line in %.1fs", time.Since(start).Seconds())
	if r[1] != m.Version || r[2] != "qemu" || r[3] != "a" || r[4] != m.RootHash {
		t.Errorf("ready line %q does not match the manifest (version %s, roothash %s)", r[0], m.Version, m.RootHash)
	}
	expect(t, vm, `^hello from user data$`)

	expect(t, vm, `service console-shell ready`) // not the prompt: a milestone may share its line
	if out := shell(t, vm, 1, "apiclient set motd=set-through-the-api network.hostname=ballast-test && echo ok"); !strings.HasSuffix(out, "ok") {
		t.Fatalf("apiclient set: %s", out)
	}
	if out := shell(t, vm, 2, "hostname"); out != "ballast-test" {
		t.Errorf("hostname after set: %q", out)
	}
	if out := shell(t, vm, 3, "mount | grep -c ' / type erofs (ro'"); out != "1" {
		t.Errorf("root is not a read-only EROFS mount: %q", out)
	}
	// Debian packages from the lock run in the image (dynamic linking, merged /usr, maintainer work).
	for i, c := range []struct{ cmd, want string }{
		{"nft --version", "nftables v1.0.6"},
		{"iptables --version", "iptables v1.8.9 (nf_tables)"},
		{"/usr/sbin/mke2fs -V", "mke2fs 1.47.0"},
		// The runtime built from pinned sources: static binaries, seccomp linked into runc.
		{"runc --version", "libseccomp: 2.5.4"},
		{"containerd --version", "v2.4.2"},
		{"/usr/libexec/cni/bridge --version", "v1.10.0"},
	} {
		out := shell(t, vm, 10+i, c.cmd)
		if !strings.Contains(out, c.want) || strings.Contains(out, "not found") || out == "0" {
			t.Errorf("%s: %q, want %q", c.cmd, out, c.want)
		}
	}
	// The CA bundle TLS clients read is the one mozillaBundle checked, from the package in this root.
	if out := shell(t, vm, 30, "sha256sum /etc/ssl/certs/ca-certificates.crt"); !strings.HasPrefix(out, caSum+" ") {
		t.Errorf("CA bundle in the guest: %q, want sha256 %s", out, caSum)
	}
	if out := shell(t, vm, 31, "ls /usr/share/ca-certificates/mozilla | grep -c '[.]crt$'"); out != fmt.Sprint(caFiles) {
		t.Errorf("ca-certificates .crt files in the guest: %q, want %d", out, caFiles)
	}
	powerdown(t, vm)
	checkGrownDisk(t, disk, diskSize, dataOff, dataEnd)

	start = time.Now()
	vm = boot(t, disk, cidata)
	wantKept := fmt.Sprintf("ballast: data partition kept at %d MiB", (dataEnd-dataOff)/mib)
	if kept := expect(t, vm, `ballast: data partition kept at \d+ MiB`); kept[0] != wantKept {
		t.Errorf("console says %q, want %q", kept[0], wantKept)
	}
	expect(t, vm, readyRE.String())
	t.Logf("second boot: QEMU start → ready line in %.1fs", time.Since(start).Seconds())
	// First-boot user data must not override what was set through the API afterwards.
	expect(t, vm, `^set-through-the-api$`)
	// Not the prompt itself: a milestone printed right after it shares its console line. What is
	// typed once the shell runs waits in the terminal for it.
	expect(t, vm, `service console-shell ready`)
	if out := shell(t, vm, 4, "hostname"); out != "ballast-test" {
		t.Errorf("hostname after reboot: %q", out)
	}
	powerdown(t, vm)
}

// checkGrownDisk reads the disk after the first boot: the GPT must end at the disk's end, the data
// partition at dataEnd, and the ext4 filesystem on it must fill it.
func checkGrownDisk(t *testing.T, disk string, diskSize, dataOff, dataEnd int64) {
	t.Helper()
	if out, err := exec.Command(tool(t, "sgdisk", "gdisk"), "-v", disk).CombinedOutput(); err != nil || !strings.Contains(string(out), "No problems found") {
		t.Errorf("sgdisk -v on the grown disk: %v\n%s", err, out)
	}
	f, err := os.Open(disk)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	h := readGPTHeader(t, f)
	lastLBA := uint64(diskSize/sector - 1)
	entrySectors := uint64((h.entryBytes() + sector - 1) / sector)
	if h.alternateLBA != lastLBA || h.lastUsableLBA != lastLBA-entrySectors-1 {
		t.Errorf("GPT: backup header at LBA %d, last usable LBA %d; want %d and %d on a %d-sector disk",
			h.alternateLBA, h.lastUsableLBA, lastLBA, lastLBA-entrySectors-1, diskSize/sector)
	}
	if _, last := gptPartitionAt(t, f, h, dataOff); int64(last+1)*sector != dataEnd {
		t.Errorf("GPT: data partition ends at byte %d, want %d", int64(last+1)*sector, dataEnd)
	}
	if got := ext4Size(t, f, dataOff); got != dataEnd-dataOff {
		t.Errorf("ext4 on the data partition has %d bytes, the partition %d", got, dataEnd-dataOff)
	}
}

// TestTamperedRootFailsClosed flips one byte of a file's data in root-a; dm-verity must stop the
// boot before the system is up.
func TestTamperedRootFailsClosed(t *testing.T) {
	t.Parallel() // boots QEMU: see main_test.go
	m := loadManifest(t)
	disk := copyDisk(t, 0)
	flipRootByte(t, buildDir, m, disk)
	failsClosed(t, boot(t, disk))
}

// flipRootByte flips one bit of /usr/lib/os-release's data in root-a of disk, a copy of the
// image built in dir. The system init reads that file on every boot, so its block is always
// verified; small files are stored uncompressed in EROFS, so their bytes can be found.
func flipRootByte(t *testing.T, dir string, m *pipeline.Manifest, disk string) {
	t.Helper()
	want, err := os.ReadFile(filepath.Join(dir, "work", "rootfs", "usr", "lib", "os-release"))
	if err != nil {
		t.Fatal(err)
	}
	rootOff, _ := partition(t, m, "root-a")
	root, err := os.ReadFile(filepath.Join(dir, "work", "root.erofs"))
	if err != nil {
		t.Fatal(err)
	}
	at := bytes.Index(root, want)
	if at < 0 || bytes.Count(root, want) != 1 {
		t.Fatalf("os-release found %d times in root.erofs; the test needs exactly one plain copy", bytes.Count(root, want))
	}
	f, err := os.OpenFile(disk, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	pos := rootOff + int64(at) + int64(len(want)/2)
	b := make([]byte, 1)
	if _, err := f.ReadAt(b, pos); err != nil {
		t.Fatal(err)
	}
	b[0] ^= 0x01
	if _, err := f.WriteAt(b, pos); err != nil {
		t.Fatal(err)
	}
}

// failsClosed waits for dm-verity to report the corruption and the machine to reboot (QEMU exits
// with -no-reboot) without ever reaching the ready line.
func failsClosed(t *testing.T, vm *qemu.VM) {
	t.Helper()
	hit := expect(t, vm, `device-mapper: verity: .*(data|metadata) block \d+ is corrupted`)
	t.Logf("console: %s", hit[0])
	if err := vm.WaitExit(90 * time.Second); err != nil {
		t.Fatalf("a corrupted root must reboot the machine (QEMU exits with -no-reboot): %v", err)
	}
	if readyRE.MatchString(vm.Console()) {
		t.Fatal("the tampered image reached the ready line")
	}
}
