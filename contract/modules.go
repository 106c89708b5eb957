package contract

import "strings"

// ModuleName returns the kernel's name for a module file or name ("dm-verity.ko" → "dm_verity"),
// the form in which the builder, modules.dep readers and /sys/module compare module names.
func ModuleName(name string) string {
	return strings.ReplaceAll(strings.TrimSuffix(name, ".ko"), "-", "_")
}
