package image

import (
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/ballast-os/ballast/contract"
)

const bootstrapUserData = `[settings.bootstrap-containers.prep]
source = "oci-archive:/run/cidata/ok.tar"
mode = "once"
essential = true
user-data = "cHJlcA=="

[settings.bootstrap-containers.every]
source = "oci-archive:/run/cidata/fail.tar"
mode = "always"

[settings.host-containers.web]
source = "oci-archive:/run/cidata/web.tar"
enabled = true
`

// TestBootstrapContainers: bootstrap containers run to completion before the host containers
// start and before the ready line; a failing one that is not essential is reported and the boot
// goes on; mode once runs on one boot only. An essential one that fails stops the next boot
// before the ready line, with a console error naming it, while the API still answers.
func TestBootstrapContainers(t *testing.T) {
	t.Parallel() // boots QEMU: see main_test.go
	hello := goProgram(t, "./tests/image/hello")
	seed := makeSeed(t, bootstrapUserData, map[string]string{
		"ok.tar":   imageArchive(t, helloImage(t, hello, "exit", "0"), false),
		"fail.tar": imageArchive(t, helloImage(t, hello, "exit", "4"), true),
		"web.tar":  imageArchive(t, helloImage(t, hello), false),
	})
	disk := copyDisk(t, 2<<30)
	vm, endpoint := bootVM(t, disk, []string{seed})
	// In name order, before the ready line.
	expect(t, vm, `ballast: bootstrap container every: starting`)
	expect(t, vm, `ballast: bootstrap container every failed: exit status 4; the boot goes on \(not essential\)`)
	expect(t, vm, `ballast: bootstrap container prep: starting`)
	expect(t, vm, `ballast: bootstrap container prep: finished`)
	expect(t, vm, readyRE.String())
	c := devClient(t, endpoint)
	for name, want := range map[string]string{"prep": "finished", "every": "failed"} {
		st := waitContainer(t, c, name, want, 10*time.Second, func(s contract.ServiceStatus) bool { return s.State == want })
		if st.Kind != contract.KindBootstrapContainer {
			t.Errorf("%s: kind %q", name, st.Kind)
		}
	}
	if m := waitLog(t, c, "prep", `user-data=(\S+)`, 10*time.Second); m[1] != `"prep"` {
		t.Errorf("prep's user data: %s", m[1])
	}
	web := waitContainer(t, c, "web", "running", 2*time.Minute, running)
	_ = web

	// An essential container that fails, for the next boot.
	if _, err := c.Apply(t.Context(), mustSettings(t, `{"bootstrap-containers":{"gate":{"source":"oci-archive:/run/cidata/fail.tar","mode":"always","essential":true}}}`)); err != nil {
		t.Fatal(err)
	}
	powerdown(t, vm)
	vm.Kill()
	vm2, endpoint2 := bootVM(t, disk, []string{seed})
	expect(t, vm2, `ballast: bootstrap container every: starting`)
	expect(t, vm2, `ballast: bootstrap container gate \(essential\) failed: exit status 4`)
	expect(t, vm2, `ballast: boot stopped: essential bootstrap container gate failed`)
	if err := vm2.ExpectNot(regexp.MustCompile(readyRE.String()), 10*time.Second); err != nil {
		t.Errorf("a ready line after an essential bootstrap container failed: %v", err)
	}
	// The boot is stopped, not the host: the API says why.
	c2 := devClient(t, endpoint2)
	st := waitContainer(t, c2, "gate", "failed", 10*time.Second, func(s contract.ServiceStatus) bool { return s.State == "failed" })
	if st.LastExit != "exit status 4" {
		t.Errorf("gate: %+v", st)
	}
	if strings.Contains(vm2.Console(), "bootstrap container prep: starting") {
		t.Errorf("prep (mode once) ran again on the second boot")
	}
	waitContainer(t, c2, "web", "not started", time.Second, func(s contract.ServiceStatus) bool { return s.State == "absent" })
}
