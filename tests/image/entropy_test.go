package image

import (
	"context"
	"fmt"
	"os/exec"
	"path/filepath"
	"regexp"
	"testing"
	"time"

	"github.com/ballast-os/ballast/apiserver/client"
	"github.com/ballast-os/ballast/tests/qemu"
)

// starvedBoot boots disk on a CPU without RDRAND and without a virtio-rng device, where the kernel's
// random pool fills only from what the guest gathers itself, as the SMBIOS system uuid given.
func starvedBoot(t *testing.T, disk, uuid string) (*qemu.VM, string) {
	t.Helper()
	port := freePort(t)
	vm, err := startVM(t, qemu.Config{Disk: disk, LogFile: filepath.Join(t.TempDir(), "console.log"),
		CPU: "qemu64", NoRNG: true, ExtraArgs: []string{"-uuid", uuid},
		HostFwd: []string{fmt.Sprintf("tcp:127.0.0.1:%d-:50443", port)}, Timeout: 5 * time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		vm.Kill()
		if t.Failed() {
			t.Logf("console log: %s", vm.Console())
		}
	})
	return vm, fmt.Sprintf("https://127.0.0.1:%d", port)
}

// TestEntropyStarvedGuest: the ready line means what it says on an entropy-starved machine — within
// 10 s of it the remote API (a TLS handshake, which needs the pool) answers — and the seed kept on
// /local is credited on the next boot of the same machine, but only mixed in on another machine
// booting a copy of the disk.
func TestEntropyStarvedGuest(t *testing.T) {
	t.Parallel() // boots QEMU: see main_test.go
	cfg, err := client.LoadPKI(filepath.Join(buildDir, "pki"))
	if err != nil {
		t.Fatal(err)
	}
	const hostA, hostB = "5a1b7e0e-0000-4000-8000-00000000000a", "5a1b7e0e-0000-4000-8000-00000000000b"
	disk := copyDisk(t, 0)
	vm, endpoint := starvedBoot(t, disk, hostA)
	expect(t, vm, readyRE.String())
	ready := time.Now()
	c, err := client.NewRemote(endpoint, cfg)
	if err != nil {
		t.Fatal(err)
	}
	deadline := ready.Add(10 * time.Second)
	var lastErr error
	for time.Now().Before(deadline) {
		ctx, cancel := context.WithTimeout(t.Context(), time.Until(deadline))
		_, lastErr = c.OS(ctx)
		cancel()
		if lastErr == nil {
			break
		}
		time.Sleep(200 * time.Millisecond)
	}
	if lastErr != nil {
		t.Fatalf("the remote API did not answer within 10 s of the ready line: %v", lastErr)
	}
	t.Logf("remote API answered %.1f s after the ready line", time.Since(ready).Seconds())
	seedOf := func(vm *qemu.VM) string {
		t.Helper()
		m := regexp.MustCompile(`ballast: random pool ready after [0-9.]+s \(seed ([a-z]+); new seed saved\)`).FindStringSubmatch(vm.Console())
		if m == nil {
			t.Fatalf("no random milestone on the console")
		}
		t.Log(m[0])
		return m[1]
	}
	if s := seedOf(vm); s != "none" {
		t.Errorf("first boot: seed %s, want none", s)
	}
	powerdown(t, vm)

	// A copy of the disk as it is now, for another machine.
	other := filepath.Join(t.TempDir(), "other.raw")
	if out, err := exec.Command("cp", "--sparse=always", disk, other).CombinedOutput(); err != nil {
		t.Fatalf("cp: %v %s", err, out)
	}

	vm, _ = starvedBoot(t, disk, hostA)
	expect(t, vm, readyRE.String())
	if s := seedOf(vm); s != "credited" {
		t.Errorf("second boot of the same machine: seed %s, want credited", s)
	}
	vm.Kill()

	vm, _ = starvedBoot(t, other, hostB)
	expect(t, vm, readyRE.String())
	if s := seedOf(vm); s != "mixed" {
		t.Errorf("a copy of the disk on another machine: seed %s, want mixed (never credited)", s)
	}
}
