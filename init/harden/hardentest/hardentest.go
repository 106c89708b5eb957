// Package hardentest lays out the kernel interfaces package harden works on in a directory: /proc/sys
// with every hardened sysctl, securityfs's lockdown file, and a module tree with an empty file to
// cover blocked modules. Tests of harden and of its users (the system init, the API server's
// render actions) share it.
package hardentest

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/ballast-os/ballast/contract"
)

// Kver is the kernel release of the module tree.
const Kver = "6.1.0-test"

// Root makes the directory tree: every hardened sysctl at "0" (and kernel.modprobe), the lockdown
// file at none, and modules a, b (needs a) and c in /lib/modules/Kver. It returns the root.
func Root(t *testing.T) string {
	t.Helper()
	root := t.TempDir()
	write := func(p, content string) {
		t.Helper()
		full := filepath.Join(root, p)
		if err := os.MkdirAll(filepath.Dir(full), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(full, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	for _, d := range contract.HardenedSysctls() {
		write(filepath.Join("proc/sys", contract.SysctlPath(d.Key)), "0\n")
	}
	write(filepath.Join("proc/sys", contract.SysctlPath(contract.ModprobeSysctl)), "/sbin/modprobe\n")
	write(contract.LockdownFile, "[none] integrity confidentiality\n")
	mods := filepath.Join(contract.KernelModules, Kver)
	write(filepath.Join(mods, "modules.dep"), "kernel/a.ko:\nkernel/b-mod.ko: kernel/a.ko\nkernel/c.ko:\n")
	write(filepath.Join(mods, "modules.alias"), "alias fs-bee b_mod\nalias char-major-10-* c\n")
	for _, m := range []string{"a", "b-mod", "c"} {
		write(filepath.Join(mods, "kernel", m+".ko"), "module "+m)
	}
	write(contract.EmptyFile, "")
	return root
}

// Read returns a file's content under root, or "<absent>".
func Read(t *testing.T, root, p string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(root, p))
	if err != nil {
		return "<absent>"
	}
	return string(b)
}
