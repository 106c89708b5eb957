package image

import (
	"context"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/ballast-os/ballast/apiserver/apitypes"
	"github.com/ballast-os/ballast/apiserver/client"
	"github.com/ballast-os/ballast/contract"
)

// hardeningUserData weakens one hardened sysctl on purpose, blocks a module the image loads at boot
// (nls_iso8859-1) and one the kernel would load on request (dummy), and autoloads an optional one.
const hardeningUserData = `[settings.kernel.sysctl]
"kernel.kptr_restrict" = "0"

[settings.kernel.modules.nls_iso8859-1]
allowed = false

[settings.kernel.modules.dummy]
allowed = false

[settings.kernel.modules.tun]
autoload = true
`

// TestHardening boots with hardeningUserData: the report names the weakened sysctl and passes the
// rest (but for the two failures it explains); blocked modules cannot be loaded by root or by the
// kernel; putting the sysctl back passes the report; a lower lockdown level waits for the next
// boot, where the system init applies the stored policy before any service.
func TestHardening(t *testing.T) {
	t.Parallel() // boots QEMU: see main_test.go
	if m := loadManifest(t); !strings.Contains(m.Cmdline, "lsm="+contract.LSMs+" ") {
		t.Errorf("the UKI's command line %q lacks lsm=%s", m.Cmdline, contract.LSMs)
	}
	disk, cidata := copyDisk(t, 0), makeCidata(t, hardeningUserData)
	vm, endpoint := bootRemote(t, disk, cidata)
	cfg, err := client.LoadPKI(filepath.Join(buildDir, "pki"))
	if err != nil {
		t.Fatal(err)
	}
	c := remoteClient(t, endpoint, cfg)

	rep := checkReport(t, c, map[string]string{"sysctl.kernel.kptr_restrict": `overridden by settings: settings.kernel.sysctl."kernel.kptr_restrict" = "0"`})
	// /proc as the report read it.
	for id, want := range map[string]string{
		"sysctl.kernel.kptr_restrict": "0", "sysctl.kernel.dmesg_restrict": "1", "sysctl.kernel.yama.ptrace_scope": "1",
		"sysctl.net.core.bpf_jit_harden": "2", "sysctl.fs.protected_regular": "2", "lockdown": "integrity",
		"module-policy": "kernel.modprobe = /usr/sbin/modprobe; blocked dummy: not loaded, file covered; blocked nls_iso8859_1: not loaded, file covered",
	} {
		if got := find(t, rep, id).Observed; got != want {
			t.Errorf("report: %s observed %q, want %q", id, got, want)
		}
	}

	expect(t, vm, `service console-shell ready`) // not the prompt: a milestone may share its line
	for i, sc := range []struct{ cmd, want string }{
		// Loaded by the system init, unloaded when user data blocked it; tun autoloaded.
		{"grep -c '^nls_iso8859_1 ' /proc/modules", "^0$"},
		{"grep -c '^tun ' /proc/modules", "^1$"},
		// Root asks: Ballast's modprobe refuses, and the file itself is empty, for busybox's modprobe
		// (which the dev shell runs for a bare "modprobe") and insmod too.
		{"/usr/sbin/modprobe nls_iso8859-1 2>&1; echo rc=$?", "refused nls_iso8859_1 .*allowed = false.* rc=1$"},
		{"modprobe nls_iso8859-1 2>&1; echo rc=$?", "rc=1$"},
		// SELinux refuses first: a module loads only from a file labelled kernel_module_t, and the
		// empty file bound over a blocked one is not (EACCES, 13).
		{"busybox insmod /lib/modules/$(uname -r)/kernel/fs/nls/nls_iso8859-1.ko 2>&1; echo rc=$?", "rc=(1|13)$"},
		{"grep -c '^nls_iso8859_1 ' /proc/modules", "^0$"},
		// The kernel asks (rtnl-link-dummy): refused and logged.
		{"ip link add d0 type dummy 2>&1; echo rc=$?", "rc=[1-9]"},
		{"dmesg | grep -c 'ballast: modprobe: refused dummy (requested as rtnl-link-dummy)'", "^1$"},
		{"cat /sys/kernel/security/lockdown", `^none \[integrity\] confidentiality$`},
		// The CLI's view of the report, from the host's own shell.
		{"apiclient report | grep ^FAIL; echo rc=$?", `^FAIL +sysctl.kernel.kptr_restrict +0 — overridden by settings: .* rc=0$`},
	} {
		if out := shell(t, vm, 40+i, sc.cmd); !regexp.MustCompile(sc.want).MatchString(out) {
			t.Errorf("%s: %q, want %q", sc.cmd, out, sc.want)
		}
	}

	// Back to the default value: every check passes but the explained ones.
	ctx := context.Background()
	if err := c.Patch(ctx, []byte(`{"kernel":{"sysctl":{"kernel.kptr_restrict":"1"}}}`)); err != nil {
		t.Fatal(err)
	}
	if _, err := c.CommitAndApplyTx(ctx, ""); err != nil {
		t.Fatal(err)
	}
	checkReport(t, c, nil)

	// Lockdown cannot be lowered while the kernel runs, and the answer says so.
	if err := c.Patch(ctx, []byte(`{"kernel":{"lockdown":"none"}}`)); err != nil {
		t.Fatal(err)
	}
	res, err := c.CommitAndApplyTx(ctx, "")
	if err != nil || len(res.Notes) != 1 || !strings.Contains(res.Notes[0], "stays at integrity until it restarts; none takes effect at the next boot") {
		t.Errorf("lowering lockdown: %+v, %v", res, err)
	}
	rep = checkReport(t, c, nil)
	if got := find(t, rep, "lockdown").Observed; got != "integrity (settings ask for none from the next boot)" {
		t.Errorf("report: lockdown observed %q", got)
	}

	// The next boot: the system init applies the stored policy before any module and service.
	powerdown(t, vm)
	vm, endpoint = bootRemote(t, disk, cidata)
	con := vm.Console()
	if !strings.Contains(con, "ballast: hardening lockdown=none sysctls=28 blocked-modules=dummy,nls_iso8859_1\n") || strings.Contains(con, "ballast: error: hardening") {
		t.Errorf("console lacks the hardening line with the stored policy, or has a hardening error")
	}
	// The system init's modules line, not the initramfs's ("loaded 12 boot modules").
	if m := regexp.MustCompile(`ballast: modules loaded (\S+,\S+)`).FindStringSubmatch(con); m == nil || strings.Contains(m[1], "nls_iso8859") || !strings.HasSuffix(m[1], ",tun") {
		t.Errorf("boot modules %q: want tun autoloaded and nls_iso8859-1 left out", m)
	}
	c = remoteClient(t, endpoint, cfg)
	checkReport(t, c, map[string]string{"lockdown": `overridden by settings: settings.kernel.lockdown = "none"`})
}

// checkReport fetches the hardening report and checks that exactly the checks in failing fail,
// each with its reason; a dev image's shell, its missing signature (no Secure Boot) and its plain
// /local (no TPM here, and the qemu variant keeps /local plain without one) must be expected
// failures that say why; every other check passes, SELinux (enforcing) included.
func checkReport(t *testing.T, c *client.Client, failing map[string]string) apitypes.HardeningReport {
	t.Helper()
	rep, err := c.Hardening(context.Background())
	if err != nil {
		t.Fatalf("GET /report/hardening: %v", err)
	}
	expected := map[string]string{"no-interpreters": "dev variant", "secure-boot": "unsigned image (a dev build)",
		"local-encryption": "no TPM, and the image keeps /local plain without one"}
	for _, ch := range rep.Checks {
		status, reason := apitypes.CheckPass, ""
		if r, ok := failing[ch.ID]; ok {
			status, reason = apitypes.CheckFail, r
		} else if r, ok := expected[ch.ID]; ok {
			status, reason = apitypes.CheckExpectedFail, r
		}
		if ch.Status != status || !strings.Contains(ch.Reason, reason) {
			t.Errorf("report: %s is %s (%q: %s), want %s with %q", ch.ID, ch.Status, ch.Observed, ch.Reason, status, reason)
		}
	}
	if n := len(contract.HardenedSysctls()) + 15; len(rep.Checks) != n || rep.Failed != len(failing) || rep.ExpectedFail != len(expected) {
		t.Errorf("report: %d checks (want %d), %d failed, %d expected failures", len(rep.Checks), n, rep.Failed, rep.ExpectedFail)
	}
	return rep
}

func find(t *testing.T, rep apitypes.HardeningReport, id string) apitypes.HardeningCheck {
	t.Helper()
	for _, ch := range rep.Checks {
		if ch.ID == id {
			return ch
		}
	}
	t.Fatalf("report: no check %s", id)
	return apitypes.HardeningCheck{}
}
