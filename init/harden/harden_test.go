package harden

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"

	"github.com/ballast-os/ballast/contract"
	"github.com/ballast-os/ballast/init/harden/hardentest"
)

// recorder stands in for mount(2), delete_module(2) and finit_module(2).
type recorder struct {
	calls    []string
	deleteTo error
}

func (r *recorder) kernel(root string) Kernel {
	return Kernel{
		Root: root, Kver: hardentest.Kver,
		Mount: func(source, target, fstype string, flags uintptr, data string) error {
			r.calls = append(r.calls, fmt.Sprintf("mount %s %s %#x", source, target, flags))
			return nil
		},
		DeleteModule: func(name string, flags int) error {
			r.calls = append(r.calls, "delete "+name)
			return r.deleteTo
		},
		Finit: func(f *os.File) error {
			b, _ := os.ReadFile(f.Name())
			n := len(b)
			r.calls = append(r.calls, "finit "+string(b[:n]))
			return nil
		},
	}
}

func TestApplySysctls(t *testing.T) {
	root := hardentest.Root(t)
	k := Kernel{Root: root}
	// The slashed spelling overrides the dotted default; kernel.modprobe is not the operator's.
	p := contract.KernelPolicy{Sysctl: map[string]string{"kernel/kptr_restrict": "2", "kernel.modprobe": "/bin/evil", "vm.nope": "1"}}
	n, err := k.ApplySysctls(p)
	if err == nil || !strings.Contains(err.Error(), "sysctl vm.nope: the kernel has no such sysctl") {
		t.Errorf("ApplySysctls = %v, want the missing vm.nope named", err)
	}
	if n != len(contract.HardenedSysctls()) {
		t.Errorf("wrote %d sysctls, want %d", n, len(contract.HardenedSysctls()))
	}
	if keys, rest := Missing(err); !slices.Equal(keys, []string{"vm.nope"}) || rest != nil {
		t.Errorf("Missing = %q, %v; want vm.nope alone", keys, rest)
	}

	for _, tt := range []struct{ key, want string }{
		{"kernel.kptr_restrict", "2"},
		{"kernel.dmesg_restrict", "1"},
		{"net.ipv4.conf.all.rp_filter", "2"},
		{"fs.suid_dumpable", "0"},
		{"kernel.modprobe", contract.ModprobePath},
	} {
		if got, err := k.ReadSysctl(tt.key); err != nil || got != tt.want {
			t.Errorf("%s = %q, %v; want %q", tt.key, got, err, tt.want)
		}
	}
	// Once a module made it, a retry writes that key and no other.
	os.WriteFile(filepath.Join(root, "proc/sys/vm/nope"), []byte("0\n"), 0o644)
	os.WriteFile(filepath.Join(root, "proc/sys/kernel/dmesg_restrict"), []byte("0\n"), 0o644)
	if n, err := k.ApplySysctls(p, "vm.nope"); n != 1 || err != nil {
		t.Errorf("retry = %d, %v", n, err)
	}
	if got, _ := k.ReadSysctl("vm.nope"); got != "1" {
		t.Errorf("vm.nope = %q after the retry", got)
	}
	if got, _ := k.ReadSysctl("kernel.dmesg_restrict"); got != "0" {
		t.Errorf("the retry wrote kernel.dmesg_restrict too")
	}
}

func TestWriteSysctlOneWay(t *testing.T) {
	// /proc/self/oom_score_adj refuses a value that is not a number with EINVAL, as the kernel
	// refuses to lower a one-way sysctl: the error says "next boot" for one-way keys only.
	root := hardentest.Root(t)
	k := Kernel{Root: root}
	for _, key := range []string{"kernel.kexec_load_disabled", "kernel.kptr_restrict"} {
		p := filepath.Join(root, "proc/sys", contract.SysctlPath(key))
		os.Remove(p)
		if err := os.Symlink("/proc/self/oom_score_adj", p); err != nil {
			t.Fatal(err)
		}
	}
	if err := k.WriteSysctl("kernel/kexec_load_disabled", "zero"); !errors.Is(err, ErrNextBoot) {
		t.Errorf("a refused one-way sysctl: %v, want ErrNextBoot", err)
	}
	if err := k.WriteSysctl("kernel.kptr_restrict", "zero"); err == nil || errors.Is(err, ErrNextBoot) {
		t.Errorf("a refused ordinary sysctl: %v, want a plain error", err)
	}
}

func TestSetLockdown(t *testing.T) {
	for _, tt := range []struct {
		now, want, got contract.Lockdown
		written        string
		nextBoot       bool
	}{
		{"none", "integrity", "integrity", "integrity", false},
		{"integrity", "confidentiality", "confidentiality", "confidentiality", false},
		{"integrity", "integrity", "integrity", "", false},
		{"confidentiality", "none", "confidentiality", "", true},
		{"integrity", "none", "integrity", "", true},
	} {
		t.Run(fmt.Sprintf("%s→%s", tt.now, tt.want), func(t *testing.T) {
			root := hardentest.Root(t)
			text := strings.Replace("none integrity confidentiality", string(tt.now), "["+string(tt.now)+"]", 1)
			os.WriteFile(filepath.Join(root, contract.LockdownFile), []byte(text+"\n"), 0o644)
			got, err := Kernel{Root: root}.SetLockdown(tt.want)
			if got != tt.got || errors.Is(err, ErrNextBoot) != tt.nextBoot || (err != nil && !tt.nextBoot) {
				t.Errorf("SetLockdown = %q, %v; want %q, next boot %v", got, err, tt.got, tt.nextBoot)
			}
			after := hardentest.Read(t, root, contract.LockdownFile)
			if tt.written != "" && after != tt.written {
				t.Errorf("lockdown file holds %q, want %q written", after, tt.written)
			}
			if tt.written == "" && after != text+"\n" {
				t.Errorf("lockdown file written (%q) though the level stays", after)
			}
		})
	}
	if _, err := (Kernel{Root: t.TempDir()}).SetLockdown("integrity"); err == nil || !strings.Contains(err.Error(), "securityfs") {
		t.Errorf("without securityfs: %v", err)
	}
	if _, err := (Kernel{Root: t.TempDir()}).SetLockdown("max"); err == nil {
		t.Error("an unknown level was accepted")
	}
}

func TestBlockModules(t *testing.T) {
	root := hardentest.Root(t)
	var r recorder
	k := r.kernel(root)
	done, err := k.BlockModules([]string{"b_mod", "not-here"})
	if err != nil || !slices.Equal(done, []string{"b_mod"}) {
		t.Fatalf("BlockModules = %q, %v", done, err)
	}
	dir := filepath.Join(contract.KernelModules, hardentest.Kver, "kernel")
	want := []string{
		fmt.Sprintf("mount %s %s/b-mod.ko 0x1000", contract.EmptyFile, dir),
		fmt.Sprintf("mount  %s/b-mod.ko 0x102f", dir), // MS_REMOUNT|MS_BIND|MS_RDONLY|nosuid|nodev|noexec
	}
	if !slices.Equal(r.calls, want) {
		t.Errorf("calls:\n%s\nwant:\n%s", strings.Join(r.calls, "\n"), strings.Join(want, "\n"))
	}
	// Once the file is the empty one (here a hard link stands for the bind mount), nothing more.
	ko := filepath.Join(root, dir, "b-mod.ko")
	os.Remove(ko)
	if err := os.Link(filepath.Join(root, contract.EmptyFile), ko); err != nil {
		t.Fatal(err)
	}
	r.calls = nil
	if done, err := k.BlockModules([]string{"b-mod"}); err != nil || done != nil || r.calls != nil {
		t.Errorf("blocking a covered module again: %q, %v, calls %q", done, err, r.calls)
	}
	if !k.Covered("b-mod") || k.Covered("a") {
		t.Error("Covered does not tell the covered module from the others")
	}
}

func TestUnload(t *testing.T) {
	root := hardentest.Root(t)
	for _, m := range []string{"a", "c"} {
		os.MkdirAll(filepath.Join(root, "sys/module", m), 0o755)
	}
	os.WriteFile(filepath.Join(root, "sys/module/a/initstate"), []byte("live\n"), 0o444)
	var r recorder
	k := r.kernel(root)
	if err := k.Unload("b-mod"); err != nil || r.calls != nil {
		t.Errorf("a module that is not loaded: %v, calls %q", err, r.calls)
	}
	if err := k.Unload("c"); err == nil || !strings.Contains(err.Error(), "built into the kernel") {
		t.Errorf("a built-in module: %v", err)
	}
	if err := k.Unload("a"); err != nil || !slices.Equal(r.calls, []string{"delete a"}) {
		t.Errorf("an unused module: %v, calls %q", err, r.calls)
	}
	r.deleteTo = syscall.EWOULDBLOCK
	if err := k.Unload("a"); !errors.Is(err, ErrNextBoot) {
		t.Errorf("a module in use: %v, want ErrNextBoot", err)
	}
	r.deleteTo = syscall.EPERM
	if err := k.Unload("a"); err == nil || errors.Is(err, ErrNextBoot) {
		t.Errorf("delete_module refused: %v", err)
	}
}

func TestLoadModules(t *testing.T) {
	root := hardentest.Root(t)
	var r recorder
	k := r.kernel(root)
	err := k.LoadModules(contract.KernelPolicy{Blocked: []string{"a"}}, "b-mod", "c")
	if err == nil || !strings.Contains(err.Error(), "b-mod: needs a, blocked by the kernel policy") {
		t.Errorf("LoadModules = %v, want b-mod refused for its blocked dependency", err)
	}
	if !slices.Equal(r.calls, []string{"finit module c"}) {
		t.Errorf("calls %q, want only c loaded", r.calls)
	}
	r.calls = nil
	if err := k.LoadModules(contract.KernelPolicy{}, "b_mod"); err != nil || !slices.Equal(r.calls, []string{"finit module a", "finit module b-mod"}) {
		t.Errorf("LoadModules = %v, calls %q; want a then b-mod", err, r.calls)
	}
}
