package system

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/ballast-os/ballast/contract"
	"github.com/ballast-os/ballast/init/harden/hardentest"
)

// bootHardened boots an Init on hardentest's tree with the given kernel policy file ("" for none)
// and returns the modules it loaded.
func bootHardened(t *testing.T, policy string) (*Init, *fakeKernel, string, []string) {
	t.Helper()
	i, k, out := testInit(t)
	i.root = hardentest.Root(t)
	machine(t, i, "testdata/mountinfo")
	write(t, i, contract.ImageInfoPath, `{"variant":"qemu","version":"0.1.0","services":[],"modules":["b-mod","c"],"kernel":"`+hardentest.Kver+`"}`)
	write(t, i, contract.OSReleasePath, "VERSION_ID=0.1.0\nVARIANT_ID=qemu\n")
	write(t, i, "/proc/cmdline", "roothash=ab ballast.slot=a\n")
	if policy != "" {
		write(t, i, contract.KernelPolicyPath, policy)
	}
	var loaded []string
	i.loadModules = func(names ...string) error {
		loaded = names
		// As br_netfilter does: its sysctls appear when it is loaded.
		write(t, i, "/proc/sys/net/bridge/bridge-nf-call-iptables", "0\n")
		return nil
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	i.boot(ctx)
	for _, c := range []chan struct{}{i.announced, i.bootDone} {
		select {
		case <-c:
		case <-time.After(5 * time.Second):
			t.Fatal("boot never ended")
		}
	}
	return i, k, out.String(), loaded
}

func TestBootHardening(t *testing.T) {
	i, k, out, loaded := bootHardened(t, `{"lockdown":"confidentiality","sysctl":{"kernel.kptr_restrict":"2","vm.swappiness":"10","net.bridge.bridge-nf-call-iptables":"1"},
		"blocked_modules":["c"],"autoload_modules":["a","c"]}`)
	// The blocked module is left out even where the image and the policy's autoload list name it.
	if !slices.Equal(loaded, []string{"b-mod", "a"}) {
		t.Errorf("modules loaded %q, want b-mod and the autoloaded a", loaded)
	}
	for key, want := range map[string]string{"kernel.kptr_restrict": "2", "kernel.dmesg_restrict": "1", "vm.swappiness": "<absent>",
		"fs.protected_regular": "2", "kernel.modprobe": contract.ModprobePath, "net.bridge.bridge-nf-call-iptables": "1"} {
		if got := hardentest.Read(t, i.root, "/proc/sys/"+contract.SysctlPath(key)); got != want {
			t.Errorf("%s = %q, want %q", key, got, want)
		}
	}
	if got := hardentest.Read(t, i.root, contract.LockdownFile); got != "confidentiality" {
		t.Errorf("lockdown = %q, want confidentiality written", got)
	}
	cover := fmt.Sprintf("mount %s %s/%s/kernel/c.ko  0x1000 ", contract.EmptyFile, contract.KernelModules, hardentest.Kver)
	if !slices.Contains(k.log(), cover) {
		t.Errorf("kernel calls lack %q:\n%s", cover, strings.Join(k.log(), "\n"))
	}
	// vm.swappiness is not in this fake /proc, not even after the modules: reported once, and
	// the rest still written.
	for _, want := range []string{
		"ballast: error: hardening: sysctl vm.swappiness: the kernel has no such sysctl\n",
		"ballast: hardening lockdown=confidentiality sysctls=28 blocked-modules=c\n",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("console lacks %q:\n%s", want, out)
		}
	}
	if strings.Count(out, "vm.swappiness") != 1 || strings.Contains(out, "bridge-nf-call-iptables") {
		t.Errorf("console must report the missing sysctl once, and not the module's:\n%s", out)
	}
	if h, m := strings.Index(out, "ballast: hardening"), strings.Index(out, "ballast: modules"); h < 0 || m < h {
		t.Errorf("the hardening line must come before the modules are loaded:\n%s", out)
	}
}

func TestBootHardeningDefaults(t *testing.T) {
	for _, tt := range []struct{ name, policy, console string }{
		{"no policy file", "", ""},
		{"unreadable policy", `{"lockdown":`, "applying Ballast's defaults"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			i, _, out, loaded := bootHardened(t, tt.policy)
			if !slices.Equal(loaded, []string{"b-mod", "c"}) {
				t.Errorf("modules loaded %q, want the image's", loaded)
			}
			if got := hardentest.Read(t, i.root, contract.LockdownFile); got != string(contract.DefaultLockdown) {
				t.Errorf("lockdown = %q, want %s", got, contract.DefaultLockdown)
			}
			if got := hardentest.Read(t, i.root, "/proc/sys/kernel/kptr_restrict"); got != "1" {
				t.Errorf("kptr_restrict = %q", got)
			}
			if !strings.Contains(out, tt.console) || !strings.Contains(out, "ballast: hardening lockdown=integrity sysctls=28\n") {
				t.Errorf("console:\n%s", out)
			}
		})
	}
}
