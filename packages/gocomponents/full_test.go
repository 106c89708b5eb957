package gocomponents

import (
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/ballast-os/ballast/packages/debian"
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

	out, err = exec.Command(bins["runc"].HostPath, "features").Output()
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
		t.Errorf("runc features: seccomp not enabled:\n%s", out)
	}
	t.Logf("runc features: seccomp enabled=%v, libseccomp %s", *f.Linux.Seccomp.Enabled, f.Annotations["io.github.seccomp.libseccomp.version"])
}
