package contract

import "strings"

// ModulesOnDemand is the file beside modules.dep that lists, one canonical name a line, the
// modules loaded only when a device asks for them (a variant's kernel.hardware-modules and the
// dependencies no boot module shares). The initramfs loads every other module of its tree at
// boot; both inits load these by matching the devices' modaliases against modules.alias.
const ModulesOnDemand = "modules.ondemand"

// ModuleName returns the kernel's name for a module file or name ("dm-verity.ko" → "dm_verity"),
// the form in which the builder, modules.dep readers and /sys/module compare module names.
func ModuleName(name string) string {
	return strings.ReplaceAll(strings.TrimSuffix(name, ".ko"), "-", "_")
}
