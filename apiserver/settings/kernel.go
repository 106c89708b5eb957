package settings

import (
	"slices"

	"github.com/ballast-os/ballast/contract"
)

// KernelPolicy is settings.kernel as the system init applies it at boot (contract.KernelPolicy). A
// module that is both blocked and autoloaded is blocked.
func (s Settings) KernelPolicy() contract.KernelPolicy {
	var p contract.KernelPolicy
	if s.Kernel == nil {
		return p
	}
	if s.Kernel.Lockdown != nil {
		p.Lockdown = contract.Lockdown(*s.Kernel.Lockdown)
	}
	if len(s.Kernel.Sysctl) > 0 {
		p.Sysctl = map[string]string{}
		for k, v := range s.Kernel.Sysctl {
			p.Sysctl[string(k)] = string(v)
		}
	}
	for name, m := range s.Kernel.Modules {
		switch c := contract.ModuleName(string(name)); {
		case m == nil:
		case m.Allowed != nil && !*m.Allowed:
			p.Blocked = append(p.Blocked, c)
		case m.Autoload != nil && *m.Autoload:
			p.Autoload = append(p.Autoload, c)
		}
	}
	slices.Sort(p.Blocked)
	p.Blocked = slices.Compact(p.Blocked)
	p.Autoload = slices.DeleteFunc(slices.Compact(slices.Sorted(slices.Values(p.Autoload))), p.Blocks)
	return p
}
