package gocomponents

import (
	"context"
	"debug/elf"
	"encoding/json"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/ballast-os/ballast/contract"
	"github.com/ballast-os/ballast/packages/debian"
	"github.com/ballast-os/ballast/tests/testutil"
)

// TestBuildPinnedComponents builds everything in packages/go-components.toml and runs the results.
// A cold build compiles containerd and fetches modules from the proxy (about 6 minutes on 2 cores),
// so go test ./... leaves it out unless asked:
//
//	BALLAST_BUILD_COMPONENTS=1 go test -run TestBuildPinnedComponents -v -timeout 60m ./packages/gocomponents
//
// make test asks, after the image build: the build has filled the same cache (the download cache,
// as the builder uses it), so the run checks that the image's build is a cache hit and that the
// cached binaries work, in seconds.
func TestBuildPinnedComponents(t *testing.T) {
	if os.Getenv("BALLAST_BUILD_COMPONENTS") != "1" {
		t.Skip("opt-in outside make test: set BALLAST_BUILD_COMPONENTS=1 to build containerd, runc and the CNI plugins")
	}
	pins, err := Load("../go-components.toml")
	if err != nil {
		t.Fatal(err)
	}
	pins = containerComponents(t, pins)
	cache := debian.CacheDir()
	o := Options{CacheDir: cache, Log: t.Logf}
	start := time.Now()
	built, err := pins.BuildAll(context.Background(), o)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("first BuildAll: %s", time.Since(start).Round(time.Millisecond))
	bins := map[string]Binary{}
	for _, b := range built {
		for _, bin := range b.Binaries {
			t.Logf("%-24s %-34s %9d bytes sha256 %s", bin.Name, bin.InstallPath, bin.Size, bin.SHA256)
			bins[bin.Name] = bin
		}
	}

	start = time.Now()
	again, err := pins.BuildAll(context.Background(), o)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("warm BuildAll: %s", time.Since(start).Round(time.Millisecond))
	for i, b := range again {
		if !b.Cached || b.Key != built[i].Key {
			t.Errorf("%s: second build was not a cache hit", b.Component.Name)
		}
	}

	for _, v := range [][]string{{"runc", "--version"}, {"containerd", "--version"}, {"ctr", "--version"}} {
		out, err := exec.Command(bins[v[0]].HostPath, v[1:]...).CombinedOutput()
		if err != nil {
			t.Fatalf("%v: %v\n%s", v, err, out)
		}
		t.Logf("%v:\n%s", v, out)
	}
	// A CNI plugin run without CNI_COMMAND prints its name and version.
	out, _ := exec.Command(bins["bridge"].HostPath).CombinedOutput()
	if !strings.Contains(string(out), "v1.") {
		t.Errorf("bridge plugin does not report its version: %s", out)
	}
	t.Logf("bridge: %s", out)

	checkRuncFeatures(t, exec.Command(bins["runc"].HostPath, "features"))
}

// containerComponents narrows pins to what the container-host variants install, which make test
// builds: the Kubernetes node's components take many minutes more and have their own test
// (TestBuildKubernetesComponents).
func containerComponents(t *testing.T, pins *Pins) *Pins {
	t.Helper()
	var out Pins
	for _, name := range []string{"containerd", "runc", "cni-plugins"} {
		c, err := pins.Find(name)
		if err != nil {
			t.Fatal(err)
		}
		out.Components = append(out.Components, c)
	}
	return &out
}

// checkRuncFeatures runs `runc features` and fails unless runc reports seccomp enabled, which
// needs libseccomp linked in.
func checkRuncFeatures(t *testing.T, cmd *exec.Cmd) {
	t.Helper()
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("runc features: %v", err)
	}
	var f struct {
		Linux struct {
			Seccomp struct{ Enabled *bool }
		}
		Annotations map[string]string
	}
	if err := json.Unmarshal(out, &f); err != nil {
		t.Fatalf("runc features: %v\n%s", err, out)
	}
	if f.Linux.Seccomp.Enabled == nil || !*f.Linux.Seccomp.Enabled {
		t.Fatalf("runc features: seccomp not enabled:\n%s", out)
	}
	t.Logf("runc features: seccomp enabled=%v, libseccomp %s", *f.Linux.Seccomp.Enabled, f.Annotations["io.github.seccomp.libseccomp.version"])
}

// TestBuildPinnedComponentsARM64 cross-builds everything in packages/go-components.toml for arm64
// (runc's cgo with gcc-aarch64-linux-gnu and libseccomp-dev:arm64) and runs the results under
// qemu-user. Opt-in like the amd64 build, and not in make test's run of it (whose -run pattern is
// anchored): a cold build compiles everything again for arm64, about as long as the amd64 one.
//
//	BALLAST_BUILD_COMPONENTS=1 go test -run TestBuildPinnedComponentsARM64 -v -timeout 60m ./packages/gocomponents
func TestBuildPinnedComponentsARM64(t *testing.T) {
	if os.Getenv("BALLAST_BUILD_COMPONENTS") != "1" {
		t.Skip("opt-in: set BALLAST_BUILD_COMPONENTS=1 to cross-build containerd, runc and the CNI plugins for arm64")
	}
	testutil.Tool(t, "aarch64-linux-gnu-gcc", "gcc-aarch64-linux-gnu")
	qemu := testutil.Tool(t, "qemu-aarch64-static", "qemu-user-static")
	pins, err := Load("../go-components.toml")
	if err != nil {
		t.Fatal(err)
	}
	pins = containerComponents(t, pins)
	arm64 := contract.ARM64.Info()
	o := Options{CacheDir: debian.CacheDir(), GOARCH: arm64.GOARCH, Log: t.Logf}
	bins := map[string]Binary{}
	for _, c := range pins.Components {
		start := time.Now()
		b, err := Build(context.Background(), c, o)
		if err != nil {
			t.Fatal(err)
		}
		t.Logf("%s %s for arm64: %s (cached %v, key %s)", c.Name, c.Version, time.Since(start).Round(time.Second), b.Cached, b.Key[:12])
		for _, bin := range b.Binaries {
			t.Logf("%-24s %-34s %9d bytes sha256 %s", bin.Name, bin.InstallPath, bin.Size, bin.SHA256)
			bins[bin.Name] = bin
			f, err := elf.Open(bin.HostPath)
			if err != nil {
				t.Fatal(err)
			}
			if f.Machine != elf.Machine(arm64.ELFMachine) || f.Class != elf.ELFCLASS64 {
				t.Errorf("%s: %s %s, want 64-bit %s", bin.Name, f.Class, f.Machine, elf.Machine(arm64.ELFMachine))
			}
			for _, p := range f.Progs {
				if p.Type == elf.PT_INTERP {
					t.Errorf("%s: has a program interpreter: not static", bin.Name)
				}
			}
			// runc is static-pie (position independent, ET_DYN without interpreter).
			if c.CGO && f.Type != elf.ET_DYN {
				t.Errorf("%s: ELF type %s, want a static PIE (ET_DYN)", bin.Name, f.Type)
			}
			f.Close()
		}
	}

	for _, v := range [][]string{{"runc", "--version"}, {"containerd", "--version"}, {"ctr", "--version"}} {
		out, err := exec.Command(qemu, append([]string{bins[v[0]].HostPath}, v[1:]...)...).CombinedOutput()
		if err != nil {
			t.Fatalf("qemu-aarch64-static %v: %v\n%s", v, err, out)
		}
		t.Logf("%v under qemu-aarch64-static:\n%s", v, out)
	}
	out, _ := exec.Command(qemu, bins["bridge"].HostPath).CombinedOutput()
	if !strings.Contains(string(out), "v1.") {
		t.Errorf("arm64 bridge plugin does not report its version: %s", out)
	}
	checkRuncFeatures(t, exec.Command(qemu, bins["runc"].HostPath, "features"))
}
