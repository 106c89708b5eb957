package settings

import (
	"fmt"
	"strings"

	"github.com/ballast-os/ballast/contract"
)

// sectionNotes is what a section of the reference says below its table, beyond the keys: for
// settings.kernel, what holds when nothing is set and how far the module policy reaches.
func sectionNotes(section string) string {
	if section != Prefix+".kernel" {
		return ""
	}
	var b strings.Builder
	b.WriteString(`### Hardened sysctl defaults

The system init writes these at every boot before the first service starts; the API server writes
them again, with ` + "`settings.kernel.sysctl`" + ` in place, whenever a sysctl setting changes. A setting
overrides a default key by key (dotted or slashed name). The hardening report
(` + "`GET /report/hardening`, `apiclient report`" + `) reads each value back from /proc/sys: a setting that
makes one weaker than the last column allows fails its check with "overridden by settings". One-way
defaults are not undone while the kernel runs; a weaker setting for them takes effect at the next
boot. ` + "`net.ipv4.ip_forward`" + ` and the bridge netfilter switches are left to container networking, which
sets them as it needs. ` + "`" + contract.ModprobeSysctl + "`" + ` is not a setting: it names Ballast's module loader,
` + "`" + contract.ModprobePath + "`" + `.

| sysctl | default | the report passes when it is | why |
|---|---|---|---|
`)
	for _, d := range contract.HardenedSysctls() {
		why := d.Why
		if d.OneWay {
			why += " (one-way)"
		}
		fmt.Fprintf(&b, "| `%s` | `%s` | %s | %s |\n", d.Key, d.Value, d.Rule(), mdEscape(why))
	}
	fmt.Fprintf(&b, `
### Lockdown

`+"`settings.kernel.lockdown`"+` is `+"`%s`"+` when unset. The lockdown LSM is on every image's command line
(`+"`lsm=%s`"+`); the system init raises the kernel to the level at boot, before the first service, and
the API server raises it at once when the setting goes up. The kernel never lowers it: a lower
level is stored, the apply's answer says in `+"`notes`"+` that it takes effect at the next boot, and the
hardening report shows the running level until then.

### Module policy

A blocked module (`+"`allowed = false`"+`) is kept out three ways, at boot before the first service and at
once when the setting changes: its file in the image is covered by an empty file (a read-only bind
mount of `+"`%s`"+`); Ballast's `+"`modprobe`"+`, which the kernel runs for its own module requests,
refuses it and logs `+"`ballast: modprobe: refused ...`"+` to the kernel log; the system init leaves it out
of the image's boot modules. A blocked module that is loaded is unloaded when nothing uses it, else
at the next boot. Modules the initramfs loads (disk, dm-verity, EROFS) are loaded before any policy
applies and cannot be blocked. `+"`autoload = true`"+` loads a module of the image's tree (the variant's
`+"`kernel.modules`"+` and `+"`kernel.optional-modules`"+`) at boot and at once.

What this does not stop: root with CAP_SYS_MODULE can still load a module from a file elsewhere
(/local, a tmpfs) or from memory, and root with CAP_SYS_ADMIN can unmount the cover. Under
lockdown only modules signed with the kernel's build key load, but every module of the Debian
kernel package is signed with it. Closing that takes a mandatory access control policy (SELinux,
a later issue) that keeps module loading and mounting to the system init.

`, contract.DefaultLockdown, contract.LSMs, contract.EmptyFile)
	return b.String()
}
