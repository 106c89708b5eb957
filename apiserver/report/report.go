// Package report computes the hardening report (GET /report/hardening) and the boot report (GET
// /report/boot, the boot's trust: Secure Boot, the TPM, /local's encryption and its recovery
// key). Each hardening check is one small
// function that reads the running system (the mount table, /proc/sys, securityfs, the
// device-mapper table, the listening sockets, the remote API's own listener) and compares what it
// finds with what Ballast promises and what settings ask for. Configuration alone never makes a
// check pass.
package report

import (
	"context"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"

	"github.com/ballast-os/ballast/apiserver/apitypes"
	"github.com/ballast-os/ballast/apiserver/settings"
	"github.com/ballast-os/ballast/contract"
	"github.com/ballast-os/ballast/init/harden"
	"github.com/ballast-os/ballast/init/initramfs/dm"
	"github.com/ballast-os/ballast/init/system/mountinfo"
)

// Sources are where the checks look; zero fields take the defaults in brackets.
type Sources struct {
	// Root is where the running system's files are ["/"]; tests point it at a directory.
	Root string
	// EFIVars is where efivarfs is mounted [Root + contract.EFIVarsMount].
	EFIVars string
	// Settings returns the live settings [none].
	Settings func() settings.Settings
	// RemoteAddr returns the address the remote API listens on, nil while it is off [off].
	RemoteAddr func() net.Addr
	// DMTable returns a device-mapper device's live table [DM_TABLE_STATUS on /dev/mapper/control].
	DMTable func(name string) ([]dm.Target, error)
	// Listeners are declared besides contract.DeclaredListeners: the image's own services' (a
	// Kubernetes node's kubelet and CRI) [none].
	Listeners []contract.Listener
}

// Reporter computes reports. The root is read-only and verified, so what is on it is looked for
// once per process.
type Reporter struct {
	src Sources

	interpOnce sync.Once
	interp     []string
	interpErr  error
}

// New returns a Reporter.
func New(src Sources) *Reporter {
	if src.Root == "" {
		src.Root = "/"
	}
	if src.EFIVars == "" {
		src.EFIVars = filepath.Join(src.Root, contract.EFIVarsMount)
	}
	if src.Settings == nil {
		src.Settings = func() settings.Settings { return settings.Settings{} }
	}
	if src.RemoteAddr == nil {
		src.RemoteAddr = func() net.Addr { return nil }
	}
	if src.DMTable == nil {
		src.DMTable = func(name string) ([]dm.Target, error) {
			c, err := dm.Open()
			if err != nil {
				return nil, err
			}
			defer c.Close()
			return c.Table(name)
		}
	}
	return &Reporter{src: src}
}

// check is a HardeningCheck under construction.
type check = apitypes.HardeningCheck

func pass(c check, observed string) check {
	c.Status, c.Observed = apitypes.CheckPass, observed
	return c
}

func fail(c check, observed, reason string) check {
	c.Status, c.Observed, c.Reason = apitypes.CheckFail, observed, reason
	return c
}

func expectedFail(c check, observed, reason string) check {
	c.Status, c.Observed, c.Reason = apitypes.CheckExpectedFail, observed, reason
	return c
}

func (r *Reporter) path(p string) string { return filepath.Join(r.src.Root, p) }

// Hardening runs every check.
func (r *Reporter) Hardening(ctx context.Context) apitypes.HardeningReport {
	s := r.src.Settings()
	policy := s.KernelPolicy()
	img, imgErr := contract.ReadImage(r.src.Root)
	k := harden.Kernel{Root: r.src.Root, Kver: img.Kernel}
	mounts, mountErr := mountinfo.ReadFile(r.path(mountinfo.Self))
	sb, sbErr := r.secureBoot()
	rec, recErr := r.bootSecurity()

	checks := []check{
		r.verityRoot(mounts, mountErr),
		rootReadOnly(mounts, mountErr),
		r.selinux(),
		lockdown(k, policy),
		secureBootCheck(sb, sbErr, img, imgErr),
		localEncryptionCheck(rec, recErr, img, imgErr),
	}
	checks = append(checks, sysctls(k, policy)...)
	checks = append(checks, mountOptions(mounts, mountErr)...)
	checks = append(checks,
		modulePolicy(k, policy),
		r.interpreters(mounts, img, imgErr),
		remoteAPI(ctx, r.src.RemoteAddr()),
		r.listeners(s),
	)
	rep := apitypes.HardeningReport{Checks: checks}
	for _, c := range checks {
		switch c.Status {
		case apitypes.CheckPass:
			rep.Passed++
		case apitypes.CheckFail:
			rep.Failed++
		default:
			rep.ExpectedFail++
		}
	}
	return rep
}

// verityRoot: / is mounted from a device-mapper device whose live table is one verity target
// carrying the root hash of the kernel command line, the one the UKI (and its signature) vouch for.
func (r *Reporter) verityRoot(mounts []mountinfo.Mount, err error) check {
	c := check{ID: "verity-root", Title: "the root filesystem is verified by dm-verity",
		Expected: "/ on a device-mapper device with one verity target whose root hash is roothash= of the kernel command line"}
	if err != nil {
		return fail(c, "", err.Error())
	}
	root, ok := mountinfo.At(mounts, "/")
	if !ok {
		return fail(c, "", "nothing is mounted on /")
	}
	dev := fmt.Sprintf("%d:%d", root.Major, root.Minor)
	name, err := os.ReadFile(r.path(filepath.Join("/sys/dev/block", dev, "dm/name")))
	if err != nil {
		return fail(c, fmt.Sprintf("/ on %s (%s)", root.Source, dev), "not a device-mapper device")
	}
	dmName := strings.TrimSpace(string(name))
	targets, err := r.src.DMTable(dmName)
	if err != nil {
		return fail(c, fmt.Sprintf("/ on %s (dm %s)", root.Source, dmName), err.Error())
	}
	cmdline, err := os.ReadFile(r.path("/proc/cmdline"))
	if err != nil {
		return fail(c, "", err.Error())
	}
	want := contract.ParseCmdline(string(cmdline)).Value(contract.ParamRootHash)
	var types []string
	hash := ""
	for _, t := range targets {
		types = append(types, t.Type)
		// <version> <data dev> <hash dev> <data bs> <hash bs> <blocks> <hash start> <alg> <digest> <salt> ...
		if f := strings.Fields(t.Params); t.Type == "verity" && len(f) > 8 {
			hash = f[8]
		}
	}
	observed := fmt.Sprintf("/ on %s (dm %s): targets %s, root hash %s", root.Source, dmName, strings.Join(types, ","), orNone(hash))
	switch {
	case len(targets) != 1 || targets[0].Type != "verity":
		return fail(c, observed, "the root device is not a single verity target")
	case want == "" || hash != strings.ToLower(want):
		return fail(c, observed, fmt.Sprintf("the root hash differs from the command line's %s", orNone(want)))
	}
	return pass(c, observed)
}

func orNone(s string) string {
	if s == "" {
		return "none"
	}
	return s
}

// rootReadOnly: both the mount of / and its filesystem are read-only.
func rootReadOnly(mounts []mountinfo.Mount, err error) check {
	c := check{ID: "root-read-only", Title: "the root filesystem is mounted read-only", Expected: "ro (mount and superblock)"}
	if err != nil {
		return fail(c, "", err.Error())
	}
	root, ok := mountinfo.At(mounts, "/")
	if !ok {
		return fail(c, "", "nothing is mounted on /")
	}
	observed := fmt.Sprintf("%s mount %s, superblock %s", root.FSType, strings.Join(root.Options, ","), strings.Join(root.SuperOptions, ","))
	if !root.ReadOnly() || !slices.Contains(root.SuperOptions, "ro") {
		return fail(c, observed, "/ is writable")
	}
	return pass(c, observed)
}

// selinux: enforcing, from selinuxfs; the policy version, how it treats classes and permissions
// it does not know, and this boot's denial count are what an operator checks next. Permissive or
// disabled fails: the initramfs loads the policy enforcing or does not boot.
func (r *Reporter) selinux() check {
	c := check{ID: "selinux", Title: "SELinux is enforcing", Expected: "enforcing"}
	b, err := os.ReadFile(r.path(contract.SELinuxEnforce))
	if err != nil {
		lsms, _ := os.ReadFile(r.path(contract.LSMFile))
		if slices.Contains(strings.Split(strings.TrimSpace(string(lsms)), ","), "selinux") {
			return fail(c, "disabled (selinuxfs not mounted; SELinux is an active LSM without a policy)", "no SELinux policy is loaded")
		}
		return fail(c, "disabled (SELinux is not an active LSM)", "the kernel runs without SELinux")
	}
	mode := "permissive"
	if strings.TrimSpace(string(b)) == "1" {
		mode = "enforcing"
	}
	read := func(p string) string {
		b, err := os.ReadFile(r.path(p))
		if err != nil {
			return "unknown"
		}
		return strings.TrimSpace(string(b))
	}
	observed := fmt.Sprintf("%s; policy version %s; deny_unknown %s, reject_unknown %s; %s denials this boot",
		mode, read(contract.SELinuxPolicyVers), read(contract.SELinuxFS+"/deny_unknown"),
		read(contract.SELinuxFS+"/reject_unknown"), read(contract.SELinuxDenials))
	if mode != "enforcing" {
		return fail(c, observed, "SELinux is permissive: denials are logged, not enforced")
	}
	return pass(c, observed)
}

// lockdown: the kernel's level is at least integrity and at least what settings ask for. A lower
// level in settings waits for the next boot; once in effect, it fails as overridden.
func lockdown(k harden.Kernel, p contract.KernelPolicy) check {
	want, floor := p.Level(), contract.DefaultLockdown
	need := floor
	if want.Rank() > need.Rank() {
		need = want
	}
	c := check{ID: "lockdown", Title: "the kernel is locked down: root cannot change the running kernel", Expected: "at least " + string(need)}
	cur, err := k.Lockdown()
	if err != nil {
		return fail(c, "", err.Error())
	}
	observed := string(cur)
	if want.Rank() < cur.Rank() {
		observed += fmt.Sprintf(" (settings ask for %s from the next boot)", want)
	}
	switch {
	case cur.Rank() >= floor.Rank() && cur.Rank() >= want.Rank():
		return pass(c, observed)
	case want.Rank() < floor.Rank():
		return fail(c, observed, fmt.Sprintf("overridden by settings: settings.kernel.lockdown = %q", want))
	}
	return fail(c, observed, "below the level settings ask for")
}

// sysctls: each hardened sysctl's value in /proc/sys, against Ballast's default and the
// operator's override of it.
func sysctls(k harden.Kernel, p contract.KernelPolicy) []check {
	var out []check
	for _, d := range contract.HardenedSysctls() {
		out = append(out, sysctlCheck(k, d, override(p, d.Key)))
	}
	return out
}

// override returns settings' value for a sysctl under any spelling of its name, "" if none.
func override(p contract.KernelPolicy, key string) string {
	for k, v := range p.Sysctl {
		if contract.SysctlPath(k) == contract.SysctlPath(key) {
			return v
		}
	}
	return ""
}

func sysctlCheck(k harden.Kernel, d contract.SysctlDefault, over string) check {
	c := check{ID: "sysctl." + d.Key, Title: d.Key + ": " + d.Why, Expected: d.Rule()}
	if over != "" && d.Satisfied(over) {
		c.Expected = over + " (settings)"
	}
	got, err := k.ReadSysctl(d.Key)
	if err != nil {
		return fail(c, "", err.Error())
	}
	got = strings.TrimSpace(got)
	overridden := fmt.Sprintf("overridden by settings: settings.kernel.sysctl.%q = %q", d.Key, over)
	switch {
	case over != "" && !d.Satisfied(over) && d.Satisfied(got):
		// The kernel keeps a one-way value until it restarts.
		return pass(c, fmt.Sprintf("%s (settings ask for %s from the next boot)", got, over))
	case over != "" && !d.Satisfied(over):
		return fail(c, got, overridden)
	case !d.Satisfied(got):
		return fail(c, got, "weaker than Ballast's default, and no setting asks for it")
	case over != "" && got != strings.TrimSpace(over):
		return fail(c, got, fmt.Sprintf("differs from settings.kernel.sysctl.%q = %q", d.Key, over))
	}
	return pass(c, got)
}

// mountPolicy is the options each writable mount must have.
var mountPolicy = []struct {
	target string
	need   []string
	why    string
}{
	{"/tmp", []string{"nosuid", "nodev", "noexec"}, "world-writable: nothing dropped there may run"},
	{"/run", []string{"nosuid", "nodev", "noexec"}, "sockets, logs and state, never programs"},
	{"/dev/shm", []string{"nosuid", "nodev", "noexec"}, "world-writable shared memory"},
	{"/etc", []string{"nosuid", "nodev", "noexec"}, "configuration rendered from settings, never programs"},
	{"/local", []string{"nosuid", "nodev"}, "the data partition: container images run from it, so exec stays"},
}

// mountOptions: /tmp, /run, /dev/shm, /etc and /local carry their restricting options.
func mountOptions(mounts []mountinfo.Mount, err error) []check {
	var out []check
	for _, mp := range mountPolicy {
		c := check{ID: "mount" + strings.ReplaceAll(mp.target, "/", "-"), Title: mp.target + " is mounted " + strings.Join(mp.need, ",") + ": " + mp.why,
			Expected: strings.Join(mp.need, ",")}
		if err != nil {
			out = append(out, fail(c, "", err.Error()))
			continue
		}
		m, ok := mountinfo.At(mounts, mp.target)
		if !ok {
			out = append(out, fail(c, "not mounted", "nothing is mounted on "+mp.target))
			continue
		}
		var missing []string
		for _, n := range mp.need {
			if !slices.Contains(m.Options, n) {
				missing = append(missing, n)
			}
		}
		observed := m.FSType + " " + strings.Join(m.Options, ",")
		if len(missing) > 0 {
			out = append(out, fail(c, observed, "lacks "+strings.Join(missing, ",")))
			continue
		}
		out = append(out, pass(c, observed))
	}
	return out
}

// modulePolicy: the kernel's own module requests go to Ballast's modprobe, and every blocked
// module is unloaded and its file covered.
func modulePolicy(k harden.Kernel, p contract.KernelPolicy) check {
	c := check{ID: "module-policy", Title: "kernel module requests go through Ballast's modprobe; blocked modules are neither loaded nor loadable",
		Expected: "kernel.modprobe = " + contract.ModprobePath + "; blocked modules not loaded, their files covered"}
	helper, err := k.ReadSysctl(contract.ModprobeSysctl)
	if err != nil {
		return fail(c, "", err.Error())
	}
	observed := []string{"kernel.modprobe = " + helper}
	var problems []string
	if helper != contract.ModprobePath {
		problems = append(problems, "the kernel runs "+helper+" for its module requests")
	}
	for _, m := range p.Blocked {
		state := "not loaded"
		if k.Loaded(m) {
			state = "loaded"
			problems = append(problems, m+" is loaded")
		}
		if _, inTree := k.ModuleFile(m); inTree {
			if k.Covered(m) {
				state += ", file covered"
			} else {
				state += ", file loadable"
				problems = append(problems, m+"'s file is loadable")
			}
		}
		observed = append(observed, "blocked "+m+": "+state)
	}
	if len(problems) > 0 {
		return fail(c, strings.Join(observed, "; "), strings.Join(problems, "; "))
	}
	return pass(c, strings.Join(observed, "; "))
}
