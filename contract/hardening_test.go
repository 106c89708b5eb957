package contract

import (
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

func TestHardenedSysctls(t *testing.T) {
	seen := map[string]bool{}
	for _, d := range HardenedSysctls() {
		if seen[SysctlPath(d.Key)] || d.Why == "" || strings.Contains(d.Key, "/") || !d.Satisfied(d.Value) {
			t.Errorf("%+v: declared twice, without a reason, slashed, or not satisfied by its own value", d)
		}
		if SysctlPath(d.Key) == SysctlPath(ModprobeSysctl) || d.Key == "net.ipv4.ip_forward" {
			t.Errorf("%s is not a hardening default", d.Key)
		}
		seen[SysctlPath(d.Key)] = true
	}
}

func TestSatisfied(t *testing.T) {
	for _, tt := range []struct {
		holds    Holds
		value    string
		observed string
		want     bool
	}{
		{AtLeast, "1", "1", true},
		{AtLeast, "1", "2\n", true},
		{AtLeast, "1", "0", false},
		{AtLeast, "1", "x", false},
		{AtMost, "0", "0", true},
		{AtMost, "0", "1", false},
		{NonZero, "1", "2", true},
		{NonZero, "1", "-1", true},
		{NonZero, "1", "0", false},
		{NonZero, "1", "", false},
	} {
		d := SysctlDefault{Key: "k", Value: tt.value, Holds: tt.holds}
		if got := d.Satisfied(tt.observed); got != tt.want {
			t.Errorf("%s: Satisfied(%q) = %v", d.Rule(), tt.observed, got)
		}
	}
}

func TestParseLockdown(t *testing.T) {
	for _, tt := range []struct {
		in   string
		want Lockdown
		err  string
	}{
		{"none [integrity] confidentiality\n", LockdownIntegrity, ""},
		{"[none] integrity confidentiality", LockdownNone, ""},
		{"none integrity [confidentiality]", LockdownConfidentiality, ""},
		{"none integrity confidentiality", "", "no current level"},
		{"[max]", "", "unknown level"},
	} {
		got, err := ParseLockdown(tt.in)
		if got != tt.want || (err == nil) != (tt.err == "") || (err != nil && !strings.Contains(err.Error(), tt.err)) {
			t.Errorf("ParseLockdown(%q) = %q, %v; want %q, %q", tt.in, got, err, tt.want, tt.err)
		}
	}
	if LockdownNone.Rank() >= LockdownIntegrity.Rank() || LockdownIntegrity.Rank() >= LockdownConfidentiality.Rank() || Lockdown("x").Rank() != -1 {
		t.Error("Rank does not order the levels")
	}
}

func TestKernelPolicySysctls(t *testing.T) {
	p := KernelPolicy{Sysctl: map[string]string{"kernel/kptr_restrict": "2", "vm.swappiness": "10", "a.b": "1"}}
	got := p.Sysctls()
	if len(got) != len(HardenedSysctls())+2 {
		t.Fatalf("%d values, want the defaults and 2 more: %q", len(got), got)
	}
	if got[0] != [2]string{"kernel.kptr_restrict", "2"} || got[1] != [2]string{"kernel.dmesg_restrict", "1"} {
		t.Errorf("defaults with the override in place: %q", got[:2])
	}
	if tail := got[len(got)-2:]; !reflect.DeepEqual(tail, [][2]string{{"a.b", "1"}, {"vm.swappiness", "10"}}) {
		t.Errorf("other overrides, sorted: %q", tail)
	}
}

func TestReadKernelPolicy(t *testing.T) {
	root := t.TempDir()
	if p, err := ReadKernelPolicy(root); err != nil || !reflect.DeepEqual(p, KernelPolicy{}) || p.Level() != DefaultLockdown {
		t.Errorf("missing file = %+v, %v; want the empty policy", p, err)
	}
	want := KernelPolicy{Lockdown: LockdownNone, Sysctl: map[string]string{"kernel.panic": "0"}, Blocked: []string{"nls_iso8859_1"}, Autoload: []string{"tun"}}
	b, err := want.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(root, KernelPolicyPath)
	os.MkdirAll(filepath.Dir(path), 0o755)
	os.WriteFile(path, b, 0o600)
	if got, err := ReadKernelPolicy(root); err != nil || !reflect.DeepEqual(got, want) || !got.Blocks("nls_iso8859-1") || got.Blocks("tun") {
		t.Errorf("read back %+v, %v; want %+v blocking nls_iso8859-1 by either name", got, err, want)
	}
	for _, bad := range []string{`{"lockdown":"max"}`, `{"sysctl":`} {
		os.WriteFile(path, []byte(bad), 0o600)
		if _, err := ReadKernelPolicy(root); err == nil || !strings.Contains(err.Error(), path) {
			t.Errorf("%s: err %v, want one naming the file", bad, err)
		}
	}
}

func TestImageParams(t *testing.T) {
	line := ImageParams()
	if v, ok := line.Get("lsm"); !ok || !strings.Contains(","+v+",", ",lockdown,") {
		t.Errorf("lsm= %q lacks lockdown", v)
	}
	if v, ok := line.Get("lsm"); !ok || !strings.Contains(","+v+",", ",selinux,") {
		t.Errorf("lsm= %q lacks selinux", v)
	}
	if v, _ := line.Get("enforcing"); v != "1" {
		t.Errorf("enforcing=%q, want 1", v)
	}
}

func TestIsInterpreter(t *testing.T) {
	for name, want := range map[string]bool{"sh": true, "busybox": true, "python3.11": true, "perl": true,
		"awk": true, "modprobe": false, "shutdown": false, "apiclient": false, "bashful": false} {
		if IsInterpreter(name) != want {
			t.Errorf("IsInterpreter(%q) = %v", name, !want)
		}
	}
}
