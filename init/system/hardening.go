package system

import (
	"fmt"
	"slices"
	"strings"

	"github.com/ballast-os/ballast/contract"
	"github.com/ballast-os/ballast/init/harden"
)

// harden applies the kernel policy the API server left on the data partition (Ballast's defaults
// when there is none) before any module of the image is loaded and any service starts: the
// hardened sysctls with the operator's overrides, kernel.modprobe, the module blocks and the
// lockdown level. It returns the modules to load: the image's, but for blocked ones, and the ones
// the policy wants loaded at boot.
func (i *Init) harden() []string {
	policy, err := contract.ReadKernelPolicy(i.root)
	if err != nil {
		// A policy that cannot be read must not leave the kernel softer than the defaults.
		i.console.Errorf("%v; applying Ballast's defaults", err)
		policy = contract.KernelPolicy{}
	}
	i.policy = policy
	// Kver "" (no image.json) is uname -r.
	k := harden.Kernel{Root: i.root, Kver: i.image.Kernel, Mount: i.kernel.Mount}
	n, err := k.ApplySysctls(policy)
	// A module's sysctls (net.bridge.*, net.netfilter.*) appear once it is loaded: those are
	// written again after the modules.
	i.sysctlRetry, err = harden.Missing(err)
	i.report("hardening", err)

	blocked, err := k.BlockModules(policy.Blocked)
	i.report("hardening", err)

	level, err := k.SetLockdown(policy.Level())
	i.report("hardening", err)
	if level == "" {
		level = "unknown"
	}
	details := fmt.Sprintf("lockdown=%s sysctls=%d", level, n)
	if len(blocked) > 0 {
		details += " blocked-modules=" + strings.Join(blocked, ",")
	}
	i.console.Milestone("hardening", "%s", details)

	var load []string
	for _, m := range i.image.Modules {
		if !policy.Blocks(m) {
			load = append(load, m)
		}
	}
	for _, m := range policy.Autoload {
		if !slices.ContainsFunc(load, func(n string) bool { return contract.ModuleName(n) == m }) && !policy.Blocks(m) {
			load = append(load, m)
		}
	}
	return load
}

// retrySysctls writes the policy's sysctls that were missing before the modules were loaded.
func (i *Init) retrySysctls() {
	if len(i.sysctlRetry) == 0 {
		return
	}
	k := harden.Kernel{Root: i.root}
	_, err := k.ApplySysctls(i.policy, i.sysctlRetry...)
	i.report("hardening", err)
}
