package qemu

import (
	"regexp"
	"testing"
	"time"
)

func TestScratchKernel(t *testing.T) {
	begin := time.Now()
	vm := startVM(t, Config{Disk: emptyDisk(t), ExtraArgs: []string{"-kernel", "/tmp/k/x/boot/vmlinuz-6.1.0-50-cloud-amd64", "-append", "console=ttyS0 panic=-1"}})
	for _, re := range []string{`Linux version (\S+)`, `ACPI: button: Power Button \[(\w+)\]`, `VFS: Unable to mount root`} {
		sub, err := vm.Expect(regexp.MustCompile(re), 0)
		t.Logf("%6.1fs %q %v", time.Since(begin).Seconds(), sub, err)
	}
	err := vm.WaitExit(30 * time.Second)
	t.Logf("%6.1fs exit %v reason %q", time.Since(begin).Seconds(), err, vm.ShutdownReason())
}

func TestScratchKernelPowerdown(t *testing.T) {
	begin := time.Now()
	vm := startVM(t, Config{Disk: emptyDisk(t), ExtraArgs: []string{"-kernel", "/tmp/k/x/boot/vmlinuz-6.1.0-50-cloud-amd64", "-append", "console=ttyS0 panic=0"}})
	sub, err := vm.Expect(regexp.MustCompile(`end Kernel panic`), 0)
	t.Logf("%6.1fs %q %v", time.Since(begin).Seconds(), sub, err)
	t.Log(vm.Powerdown())
	err = vm.WaitExit(5 * time.Second)
	t.Logf("%6.1fs exit %v reason %q", time.Since(begin).Seconds(), err != nil, vm.ShutdownReason())
	t.Log(vm.Quit())
	err = vm.WaitExit(5 * time.Second)
	t.Logf("%6.1fs exit %v reason %q", time.Since(begin).Seconds(), err, vm.ShutdownReason())
}
