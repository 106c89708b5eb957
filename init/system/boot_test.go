package system

import (
	"context"
	"errors"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/ballast-os/ballast/contract"
)

func TestBoot(t *testing.T) {
	i, k, out := testInit(t)
	machine(t, i, "testdata/mountinfo")
	write(t, i, contract.ImageInfoPath, `{"variant":"qemu","version":"0.1.0","services":[],"modules":["button","evdev","nope"]}`)
	write(t, i, contract.OSReleasePath, "VERSION_ID=0.1.0\nVARIANT_ID=qemu\n")
	write(t, i, "/proc/cmdline", "roothash=ab ballast.slot=b\n")
	var loaded []string
	i.loadModules = func(names ...string) error {
		loaded = names
		return errors.Join(errors.New("kmod: module nope is not in modules.dep"))
	}
	var plugs int
	i.coldplug = func() ([]string, error) {
		plugs++
		return []string{"e1000e", "sd_mod"}, errors.New("kmod: coldplug: kernel/drivers/net/tg3.ko: finit_module: no such device")
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	i.boot(ctx)
	// The modules load beside the services: the boot is over once both are done.
	for _, c := range []chan struct{}{i.announced, i.bootDone} {
		select {
		case <-c:
		case <-time.After(5 * time.Second):
			t.Fatal("boot never ended")
		}
	}

	if !slices.Equal(loaded, []string{"button", "evdev", "nope"}) {
		t.Errorf("modules loaded: %q", loaded)
	}
	// Announced even though a module failed: waiting longer would not bring it.
	if b, err := os.ReadFile(i.path(contract.BootModules)); err != nil || string(b) != "button\nevdev\nnope\n" {
		t.Errorf("%s = %q, %v", contract.BootModules, b, err)
	}
	if plugs != 1 {
		t.Errorf("coldplugged %d times, want once", plugs)
	}
	log := k.log()
	if log[0] != "cad off" || !slices.Contains(log, "hostname ballast") {
		t.Errorf("kernel calls %q", log)
	}
	for _, want := range []string{
		"ballast: init variant=qemu version=0.1.0 services=\n",
		"ballast: error: modules: kmod: module nope is not in modules.dep\n",
		"ballast: modules loaded 2 on demand (e1000e,sd_mod)\n",
		"ballast: error: modules: kmod: coldplug: kernel/drivers/net/tg3.ko: finit_module: no such device\n",
		"ballast: error: no service serves the API: no ready line\n",
	} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("console lacks %q:\n%s", want, out)
		}
	}
	if i.identity.Slot != "b" || i.identity.Variant != "qemu" {
		t.Errorf("identity: %+v", i.identity)
	}
}

func TestBootWithoutImageJSON(t *testing.T) {
	i, _, out := testInit(t)
	i.readIdentity()
	if !slices.Equal(i.image.Services, []string{"apiserver"}) {
		t.Errorf("fallback services = %q", i.image.Services)
	}
	if !strings.Contains(out.String(), "running the apiserver only") {
		t.Errorf("console:\n%s", out)
	}
}
