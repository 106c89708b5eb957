// Package vmtest boots a package's own test binary as /init of a QEMU guest, so tests can use
// kernel features the build host lacks (device-mapper, CAP_SYS_RESOURCE, virtio disks).
//
// A package opts in with
//
//	func TestMain(m *testing.M) { vmtest.Main(m) }
//
// and a host-side test that calls Run with the guest tests' -test.run pattern; guest tests start
// with `if !vmtest.InGuest() { t.Skip(...) }`. Run is skipped unless BALLAST_VMTEST=1. The kernel
// comes from BALLAST_VMTEST_KERNEL (default: /tmp/k/x/boot/vmlinuz-*) and its modules from
// BALLAST_VMTEST_MODULES (default: /tmp/k/x/lib/modules/<version from the kernel's file name>).
package vmtest

import (
	"bufio"
	"bytes"
	"context"
	"debug/elf"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

const (
	// EnvEnable must be "1" for Run to boot anything.
	EnvEnable  = "BALLAST_VMTEST"
	envKernel  = "BALLAST_VMTEST_KERNEL"
	envModules = "BALLAST_VMTEST_MODULES"

	defaultKernelGlob = "/tmp/k/x/boot/vmlinuz-*"
	defaultModulesDir = "/tmp/k/x/lib/modules"

	modulesList = "/lib/modules/vmtest.load"
	exitMarker  = "vmtest: exit "
	paramPrefix = "vmtest."
)

// Options describe one guest boot.
type Options struct {
	Run     string            // -test.run pattern for the guest
	Modules []string          // modules to load, dependencies are added from each .ko's modinfo
	Disks   []string          // raw images, attached as virtio disks /dev/vda, /dev/vdb, ...
	Params  map[string]string // handed to the guest, read there with Param
	Memory  int               // MiB; 0 means 512
	Timeout time.Duration     // 0 means 3 minutes (TCG is slow, and the build comes first)
}

// InGuest reports whether this process is the guest's init.
func InGuest() bool { return os.Getpid() == 1 }

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
	list, err := os.ReadFile(modulesList)
	if err != nil {
		return err
	}
	for _, ko := range strings.Fields(string(list)) {
		if err := insmod(ko); err != nil {
			return err
		}
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

func insmod(path string) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	if err := unix.FinitModule(int(f.Fd()), "", 0); err != nil && !errors.Is(err, unix.EEXIST) {
		return fmt.Errorf("load %s: %w", path, err)
	}
	return nil
}

// SkipUnlessEnabled skips a host-side test that prepares a guest when BALLAST_VMTEST is not 1, so
// it can skip before building disk images.
func SkipUnlessEnabled(t testing.TB) {
	t.Helper()
	if os.Getenv(EnvEnable) != "1" {
		t.Skipf("set %s=1 to boot a QEMU guest", EnvEnable)
	}
}

// Run builds the calling package's test binary, boots it as /init and fails t unless every guest
// test passed. It returns the console output.
func Run(t *testing.T, o Options) string {
	t.Helper()
	SkipUnlessEnabled(t)
	qemu, err := exec.LookPath("qemu-system-x86_64")
	if err != nil {
		t.Skip("qemu-system-x86_64 not installed")
	}
	kernel, modDir, err := kernelAndModules()
	if err != nil {
		t.Fatal(err)
	}
	if o.Memory == 0 {
		o.Memory = 512
	}
	if o.Timeout == 0 {
		o.Timeout = 3 * time.Minute
	}
	ctx, cancel := context.WithTimeout(context.Background(), o.Timeout)
	defer cancel()

	dir := t.TempDir()
	initrd := filepath.Join(dir, "initrd.cpio")
	if err := buildInitramfs(ctx, dir, initrd, modDir, o.Modules); err != nil {
		t.Fatal(err)
	}
	cmdline := []string{"console=ttyS0", "panic=-1", "quiet", fmt.Sprintf("%sdisks=%d", paramPrefix, len(o.Disks))}
	for _, k := range sortedKeys(o.Params) {
		cmdline = append(cmdline, paramPrefix+k+"="+o.Params[k])
	}
	cmdline = append(cmdline, "--", "-test.v", "-test.run="+o.Run)
	args := []string{"-nographic", "-no-reboot", "-m", strconv.Itoa(o.Memory), "-cpu", "max",
		"-kernel", kernel, "-initrd", initrd, "-append", strings.Join(cmdline, " ")}
	for _, d := range o.Disks {
		args = append(args, "-drive", "file="+d+",if=virtio,format=raw")
	}
	start := time.Now()
	out, err := exec.CommandContext(ctx, qemu, args...).CombinedOutput()
	console := string(out)
	t.Logf("guest console (%s):\n%s", time.Since(start).Round(time.Millisecond), console)
	if err != nil {
		t.Fatalf("qemu: %v", err)
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
	if !strings.Contains(console, "--- PASS") {
		t.Fatalf("guest ran no test matching %q", o.Run)
	}
	return console
}

func kernelAndModules() (kernel, modDir string, err error) {
	kernel = os.Getenv(envKernel)
	if kernel == "" {
		ks, _ := filepath.Glob(defaultKernelGlob)
		if len(ks) == 0 {
			return "", "", fmt.Errorf("no guest kernel: set %s (nothing matches %s)", envKernel, defaultKernelGlob)
		}
		sort.Strings(ks)
		kernel = ks[len(ks)-1]
	}
	modDir = os.Getenv(envModules)
	if modDir == "" {
		ver := strings.TrimPrefix(filepath.Base(kernel), "vmlinuz-")
		modDir = filepath.Join(defaultModulesDir, ver)
	}
	if !exists(kernel) || !exists(modDir) {
		return "", "", fmt.Errorf("guest kernel %s or modules %s missing (set %s / %s)", kernel, modDir, envKernel, envModules)
	}
	return kernel, modDir, nil
}

// buildInitramfs compiles the current package's tests as a static /init and packs it with the
// modules into a newc cpio archive.
func buildInitramfs(ctx context.Context, dir, out, modDir string, modules []string) error {
	bin := filepath.Join(dir, "init")
	cmd := exec.CommandContext(ctx, "go", "test", "-c", "-o", bin, ".")
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOOS=linux", "GOARCH=amd64")
	if b, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("build guest test binary: %v\n%s", err, b)
	}
	kos, err := resolveModules(modDir, modules)
	if err != nil {
		return err
	}
	w := newCpio()
	for _, d := range []string{"dev", "proc", "sys", "tmp", "lib", "lib/modules"} {
		w.dir(d)
	}
	// The kernel opens /dev/console for init before anything is mounted; without it the Go
	// runtime finds fds 0-2 closed, fails to open /dev/null and aborts.
	w.charDev("dev/console", 5, 1)
	if err := w.file("init", bin, 0o755); err != nil {
		return err
	}
	var load []string
	for _, ko := range kos {
		name := "lib/modules/" + filepath.Base(ko)
		if err := w.file(name, ko, 0o644); err != nil {
			return err
		}
		load = append(load, "/"+name)
	}
	w.data(strings.TrimPrefix(modulesList, "/"), []byte(strings.Join(load, "\n")+"\n"), 0o644)
	return os.WriteFile(out, w.finish(), 0o644)
}

// resolveModules finds each module under modDir and returns it after its dependencies (read from
// the "depends=" entry of the .modinfo section), each once.
func resolveModules(modDir string, names []string) ([]string, error) {
	paths := map[string]string{}
	err := filepath.WalkDir(modDir, func(p string, d fs.DirEntry, err error) error {
		if err == nil && strings.HasSuffix(p, ".ko") {
			paths[canonical(strings.TrimSuffix(d.Name(), ".ko"))] = p
		}
		return err
	})
	if err != nil {
		return nil, err
	}
	var order []string
	seen := map[string]bool{}
	var visit func(name string, chain []string) error
	visit = func(name string, chain []string) error {
		name = canonical(name)
		if seen[name] {
			return nil
		}
		p, ok := paths[name]
		if !ok {
			return fmt.Errorf("module %s (needed by %v) not found under %s", name, chain, modDir)
		}
		deps, err := moduleDepends(p)
		if err != nil {
			return err
		}
		seen[name] = true
		for _, d := range deps {
			if err := visit(d, append(chain, name)); err != nil {
				return err
			}
		}
		order = append(order, p)
		return nil
	}
	for _, n := range names {
		if err := visit(n, nil); err != nil {
			return nil, err
		}
	}
	return order, nil
}

func canonical(name string) string { return strings.ReplaceAll(name, "-", "_") }

func moduleDepends(ko string) ([]string, error) {
	f, err := elf.Open(ko)
	if err != nil {
		return nil, fmt.Errorf("module %s: %w", ko, err)
	}
	defer f.Close()
	sec := f.Section(".modinfo")
	if sec == nil {
		return nil, fmt.Errorf("module %s: no .modinfo section", ko)
	}
	b, err := sec.Data()
	if err != nil {
		return nil, fmt.Errorf("module %s: %w", ko, err)
	}
	for _, kv := range bytes.Split(b, []byte{0}) {
		if v, ok := bytes.CutPrefix(kv, []byte("depends=")); ok {
			if len(v) == 0 {
				return nil, nil
			}
			return strings.Split(string(v), ","), nil
		}
	}
	return nil, nil
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
