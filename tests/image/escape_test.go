package image

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/ballast-os/ballast/tests/escape"
	"github.com/ballast-os/ballast/tests/ociimage"
)

// The limits are lowered from the defaults through settings.oci-defaults: three probes exhaust
// memory at once, and the guest has 1 GiB. probe and peer share the host's network namespace to
// reach the superpowered probe's fd broker (an abstract socket); they keep CAP_DAC_OVERRIDE
// (runtime/spec.DefaultCapabilities, settings.oci-defaults.capabilities.dac-override), so for
// probe, root outside a user namespace, SELinux alone keeps the broker's descriptors from use.
const escapeUserData = `[settings.oci-defaults]
memory-limit = 201326592
pids-limit = 256

[settings.host-containers.probe]
source = "oci-archive:/run/cidata/probe.tar"
enabled = true
host-network = true

[settings.host-containers.peer]
source = "oci-archive:/run/cidata/probe.tar"
enabled = true
user-namespace = true
host-network = true

[settings.host-containers.super]
source = "oci-archive:/run/cidata/super.tar"
enabled = true
superpowered = true
`

// TestEscapeSuite runs the escape probe in two default host containers (one of them in a user
// namespace) and one superpowered one, which serves the others host descriptors (the fd broker).
// In the default ones every vector must be blocked; in the superpowered one every privileged
// vector must be allowed, which shows that each check can go red, and the vectors no container
// may take (SELinux off) blocked. The host keeps serving the API while the probes exhaust their
// memory and pids.
func TestEscapeSuite(t *testing.T) {
	t.Parallel() // boots QEMU: see main_test.go
	probe := goProgram(t, "./tests/escape/cmd/probe")
	bin, err := ociimage.Program(probe, "/probe")
	if err != nil {
		t.Fatal(err)
	}
	suid := bin
	suid.Path, suid.Mode = "/probe-suid", 0o4755
	files := []ociimage.File{bin, suid}
	// One image for probe and peer: each leaves its own name (its host name) out of --peer.
	peers := "probe,peer"
	def := imageArchive(t, ociimage.Image{Ref: "ballast.test/probe:1", Files: files,
		Entrypoint: []string{"/probe", "--sleep", "--peer-wait", "20s", "--peer", peers}}, false)
	super := imageArchive(t, ociimage.Image{Ref: "ballast.test/probe:1", Files: files,
		Entrypoint: []string{"/probe", "--sleep", "--peer-wait", "60s", "--peer", peers, "--broker", escape.HostRootfs}}, true)
	seed := makeSeed(t, escapeUserData, map[string]string{"probe.tar": def, "super.tar": super})
	vm, endpoint := bootVM(t, copyDisk(t, 2<<30), []string{seed})
	expect(t, vm, readyRE.String())
	c := devClient(t, endpoint)

	reports := map[string]map[string]escape.Result{}
	for _, name := range []string{"probe", "peer", "super"} {
		waitLog(t, c, name, `ballast-probe: done \d+ vectors`, 5*time.Minute)
		r, err := escape.ParseReport(logOf(t, c, name))
		if err != nil {
			t.Fatalf("%s's report: %v\n%s", name, err, logOf(t, c, name))
		}
		reports[name] = r
	}
	for _, name := range []string{"probe", "peer"} {
		for _, v := range escape.Vectors() {
			r, ok := reports[name][v]
			switch {
			case !ok:
				t.Errorf("%s: vector %s not reported", name, v)
			case r.Allowed:
				t.Errorf("%s (default container): %s ALLOWED: %s", name, v, r.Detail)
			default:
				t.Logf("%s: %s blocked: %s", name, v, r.Detail)
			}
		}
	}
	for _, v := range escape.PrivilegedVectors() {
		r, ok := reports["super"][v]
		switch {
		case !ok:
			t.Errorf("super: vector %s not reported", v)
		case !r.Allowed:
			t.Errorf("super (superpowered): %s BLOCKED, so the suite could not see it allowed: %s", v, r.Detail)
		}
	}
	for _, v := range escape.AlwaysBlocked() {
		r, ok := reports["super"][v]
		switch {
		case !ok:
			t.Errorf("super: vector %s not reported", v)
		case r.Allowed:
			t.Errorf("super (superpowered): %s ALLOWED, which no container may do: %s", v, r.Detail)
		default:
			t.Logf("super: %s blocked: %s", v, r.Detail)
		}
	}
	// The limits held inside the containers: the host still answers.
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	if _, err := c.OS(ctx); err != nil {
		t.Errorf("the API after the probes: %v", err)
	}
	if out := shell(t, vm, 1, "dmesg | grep -c 'Out of memory: Killed process' ; apiclient services | grep -c running"); !strings.HasSuffix(out, " 3") {
		t.Logf("after the probes: %q", out)
	}
}
