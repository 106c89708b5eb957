// Package vmtest boots a package's own test binary as /init of a QEMU guest, so tests can use
// kernel features the build host lacks (device-mapper, CAP_SYS_RESOURCE, virtio disks, vfat). The
// guest runs the kernel that variants/qemu.toml pins, the one images carry, with its modules
// resolved by builder/kmod and loaded by init/kmod as at boot.
//
// A package opts in with
//
//	func TestMain(m *testing.M) { vmtest.Main(m) }
//
// and a host-side test that calls Run with the modules and disks the guest needs. Guest tests are
// named TestGuest* and start with GuestOnly(t); Run fails unless every one of them passed in the
// guest.
//
// The kernel comes from kernel.Pinned through the download cache (fetched once, like the builder
// does); BALLAST_VMTEST_KERNEL may name another unpacked Debian kernel package instead. Booting
// takes a while under TCG, so go test -short leaves it out.
package vmtest

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/ballast-os/ballast/builder/kernel"
	"github.com/ballast-os/ballast/contract"
	"github.com/ballast-os/ballast/images/initrd"
	"github.com/ballast-os/ballast/init/kmod"
	"github.com/ballast-os/ballast/tests/testutil"
)

const (
	// EnvKernel names an unpacked Debian kernel package (boot/vmlinuz-*, lib/modules/*) to boot
	// instead of the one the qemu variant pins.
	EnvKernel = "BALLAST_VMTEST_KERNEL"

	exitMarker  = "vmtest: exit "
	paramPrefix = "vmtest."
)

// Options describe one guest boot.
type Options struct {
	Run     string            // -test.run pattern for the guest; "" means ^TestGuest
	Modules []string          // modules to load; their dependencies come along
	Disks   []string          // raw images, attached as virtio disks /dev/vda, /dev/vdb, ...
	Params  map[string]string // handed to the guest, read there with Param
	Memory  int               // MiB; 0 means 512
	Timeout time.Duration     // for the boot itself; 0 means 2 minutes (TCG on a busy host)
}

// InGuest reports whether this process is the guest's init.
func InGuest() bool { return os.Getpid() == 1 }

// GuestOnly skips a guest test on the host, where the test that boots the guest runs it instead.
func GuestOnly(t testing.TB) {
	t.Helper()
	if !InGuest() {
		t.Skip("runs only as the QEMU guest's init, booted by this package's TestVM")
	}
}

// Main is the package's TestMain: on the host it runs the tests normally; as the guest's init it
// mounts the pseudo filesystems, loads the modules, runs the tests and powers the guest off.
func Main(m *testing.M) {
	if !InGuest() {
		os.Exit(m.Run())
	}
	if err := guestSetup(); err != nil {
		fmt.Printf("vmtest: guest setup: %v\n", err)
		fmt.Println(exitMarker + "255")
		poweroff()
	}
	code := m.Run()
	fmt.Printf("%s%d\n", exitMarker, code)
	poweroff()
}

// Param returns a value the host passed in Options.Params.
func Param(name string) string {
	b, _ := os.ReadFile("/proc/cmdline")
	for _, w := range strings.Fields(string(b)) {
		if v, ok := strings.CutPrefix(w, paramPrefix+name+"="); ok {
			return v
		}
	}
	return ""
}

func poweroff() {
	unix.Sync()
	unix.Reboot(unix.LINUX_REBOOT_CMD_POWER_OFF)
	// Reboot only returns on error; exiting makes the kernel panic, and -no-reboot ends QEMU.
	os.Exit(1)
}

func guestSetup() error {
	for _, m := range []struct{ src, dir, typ string }{
		{"proc", "/proc", "proc"}, {"sysfs", "/sys", "sysfs"}, {"devtmpfs", "/dev", "devtmpfs"}, {"tmpfs", "/tmp", "tmpfs"},
	} {
		if err := os.MkdirAll(m.dir, 0o755); err != nil {
			return err
		}
		if err := unix.Mount(m.src, m.dir, m.typ, 0, ""); err != nil && !errors.Is(err, unix.EBUSY) {
			return fmt.Errorf("mount %s: %w", m.dir, err)
		}
	}
	l, err := kmod.New("/", "")
	if err != nil {
		return err
	}
	if err := l.LoadAll(); err != nil {
		return err
	}
	n, _ := strconv.Atoi(Param("disks"))
	deadline := time.Now().Add(10 * time.Second)
	for i := 0; i < n; i++ {
		for !exists(fmt.Sprintf("/sys/class/block/vd%c", 'a'+i)) {
			if time.Now().After(deadline) {
				return fmt.Errorf("virtio disk vd%c did not appear", 'a'+i)
			}
			time.Sleep(10 * time.Millisecond)
		}
	}
	return nil
}

// Run builds the calling package's test binary, boots it as /init and fails t unless every guest
// test passed. It returns the console output.
func Run(t *testing.T, o Options) string {
	t.Helper()
	if testing.Short() {
		t.Skip("boots a QEMU guest; skipped with -short")
	}
	qemu := testutil.Tool(t, "qemu-system-x86_64", "qemu-system-x86")
	if o.Run == "" {
		o.Run = "^TestGuest"
	}
	if o.Memory == 0 {
		o.Memory = 512
	}
	if o.Timeout == 0 {
		o.Timeout = 2 * time.Minute
	}
	k := Kernel(t)
	dir := t.TempDir()
	bin := buildTestBinary(t, dir)
	want := listTests(t, bin, o.Run)
	if len(want) == 0 {
		t.Fatalf("no test matches %q in this package: nothing to run in the guest", o.Run)
	}
	initBin, err := os.ReadFile(bin)
	if err != nil {
		t.Fatal(err)
	}
	files, err := Initramfs(k, initBin, o.Modules)
	if err != nil {
		t.Fatal(err)
	}
	var archive bytes.Buffer
	if err := initrd.Build(&archive, files); err != nil {
		t.Fatal(err)
	}
	initrdPath := filepath.Join(dir, "initrd")
	if err := os.WriteFile(initrdPath, archive.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}

	cmdline := []string{"console=ttyS0", "panic=-1", "quiet", fmt.Sprintf("%sdisks=%d", paramPrefix, len(o.Disks))}
	for _, k := range sortedKeys(o.Params) {
		cmdline = append(cmdline, paramPrefix+k+"="+o.Params[k])
	}
	// The guest's own deadline comes first, so a hung guest test dumps its goroutines on the
	// console instead of being killed without a word.
	guestTimeout := o.Timeout * 9 / 10
	cmdline = append(cmdline, "--", "-test.v", "-test.run="+o.Run, "-test.timeout="+guestTimeout.String())
	// -nodefaults: no VGA, no network card, no option ROMs to load, only what the guest uses.
	args := []string{"-nodefaults", "-no-user-config", "-display", "none", "-serial", "stdio", "-no-reboot",
		"-m", strconv.Itoa(o.Memory), "-cpu", "max",
		"-kernel", k.Vmlinuz, "-initrd", initrdPath, "-append", strings.Join(cmdline, " ")}
	for _, d := range o.Disks {
		args = append(args, "-drive", "file="+d+",if=virtio,format=raw")
	}
	ctx, cancel := context.WithTimeout(context.Background(), o.Timeout)
	defer cancel()
	start := time.Now()
	out, err := exec.CommandContext(ctx, qemu, args...).CombinedOutput()
	took := time.Since(start).Round(100 * time.Millisecond)
	console := string(out)
	t.Logf("guest console (kernel %s, booted and ran in %s):\n%s", k.Version, took, console)
	if err != nil {
		t.Fatalf("qemu after %s: %v", took, err)
	}
	code := -1
	sc := bufio.NewScanner(strings.NewReader(console))
	for sc.Scan() {
		if v, ok := strings.CutPrefix(strings.TrimSpace(sc.Text()), exitMarker); ok {
			code, _ = strconv.Atoi(v)
		}
	}
	if code != 0 {
		t.Fatalf("guest tests failed (exit %d)", code)
	}
	// Nothing may be skipped in the guest: it exists to have what the host lacks.
	if m := regexp.MustCompile(`--- SKIP: (\S+)`).FindAllStringSubmatch(console, -1); m != nil {
		t.Errorf("guest skipped %v", m)
	}
	for _, name := range want {
		if !strings.Contains(console, "--- PASS: "+name+" (") {
			t.Errorf("guest test %s did not pass", name)
		}
	}
	return console
}

// Initramfs lists the guest's files: the test binary as /init and the modules with the
// modules.dep that init/kmod loads them by.
func Initramfs(k *kernel.Tree, initBin []byte, modules []string) ([]initrd.File, error) {
	mods, dep, err := k.Modules("vmtest", modules)
	if err != nil {
		return nil, err
	}
	base := strings.TrimPrefix(filepath.Join(contract.KernelModules, k.Version), "/") + "/"
	files := []initrd.File{{Path: "init", Data: initBin, Mode: 0o755}}
	for _, m := range mods {
		b, err := os.ReadFile(filepath.Join(k.ModDir, m.Path))
		if err != nil {
			return nil, err
		}
		files = append(files, initrd.File{Path: base + m.Path, Data: b, Mode: 0o644})
	}
	return append(files, initrd.File{Path: base + "modules.dep", Data: dep, Mode: 0o644}), nil
}

var pinned struct {
	once sync.Once
	tree *kernel.Tree
	err  error
}

// Kernel returns the guest kernel: $BALLAST_VMTEST_KERNEL, or the one variants/qemu.toml pins,
// fetched into the download cache the first time.
func Kernel(t testing.TB) *kernel.Tree {
	t.Helper()
	pinned.once.Do(func() {
		if dir := os.Getenv(EnvKernel); dir != "" {
			pinned.tree, pinned.err = kernel.Open(dir)
			return
		}
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
		defer cancel()
		pinned.tree, pinned.err = kernel.Pinned(ctx, testutil.RepoRoot(t), "qemu", "")
	})
	if pinned.err != nil {
		t.Fatalf("guest kernel (%s may name an unpacked kernel package instead): %v", EnvKernel, pinned.err)
	}
	return pinned.tree
}

// buildTestBinary compiles the current package's tests as a static binary.
func buildTestBinary(t *testing.T, dir string) string {
	t.Helper()
	gobin := testutil.Tool(t, "go", "golang-go, or Go from https://go.dev/dl")
	bin := filepath.Join(dir, "init")
	cmd := exec.Command(gobin, "test", "-c", "-o", bin, ".")
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOOS=linux", "GOARCH=amd64")
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("build guest test binary: %v\n%s", err, b)
	}
	return bin
}

// listTests asks the binary which tests the guest is to run, so Run can tell that each one passed.
func listTests(t *testing.T, bin, pattern string) []string {
	t.Helper()
	out, err := exec.Command(bin, "-test.list", pattern).CombinedOutput()
	if err != nil {
		t.Fatalf("%s -test.list: %v\n%s", bin, err, out)
	}
	return strings.Fields(string(out))
}

func sortedKeys(m map[string]string) []string {
	ks := make([]string, 0, len(m))
	for k := range m {
		ks = append(ks, k)
	}
	sort.Strings(ks)
	return ks
}

func exists(p string) bool {
	_, err := os.Stat(p)
	return err == nil
}
