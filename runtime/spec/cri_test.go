package spec

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/opencontainers/runtime-spec/specs-go"
)

// The base spec of pod containers is the host containers' capability set (no CAP_NET_RAW, no
// CAP_MKNOD, nothing beyond containerd's defaults) and open-file limit, and leaves out what CRI
// would keep for every pod although a pod must be able to choose it.
func TestCRIBaseSpec(t *testing.T) {
	path := filepath.Join(t.TempDir(), "usr/share/ballast/cri-base.json")
	if err := WriteCRIBaseSpec(path); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var s specs.Spec
	if err := json.Unmarshal(b, &s); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	again, err := CRIBaseSpecJSON()
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(b, again) {
		t.Error("two renderings differ")
	}

	want := slices.Sorted(slices.Values(DefaultCapabilities()))
	c := s.Process.Capabilities
	for name, set := range map[string][]string{"bounding": c.Bounding, "effective": c.Effective, "permitted": c.Permitted} {
		if !slices.Equal(set, want) {
			t.Errorf("%s capabilities %v, want %v", name, set, want)
		}
		for _, forbidden := range append([]string{"CAP_NET_RAW", "CAP_MKNOD"}, ForbiddenCapabilities()...) {
			if slices.Contains(set, forbidden) {
				t.Errorf("%s capabilities hold %s", name, forbidden)
			}
		}
	}
	if len(c.Ambient) != 0 || len(c.Inheritable) != 0 {
		t.Errorf("ambient %v, inheritable %v: want none", c.Ambient, c.Inheritable)
	}
	// Nothing beyond containerd's own default set.
	containerdDefaults := []string{"CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_FSETID", "CAP_FOWNER", "CAP_MKNOD",
		"CAP_NET_RAW", "CAP_SETGID", "CAP_SETUID", "CAP_SETFCAP", "CAP_SETPCAP", "CAP_NET_BIND_SERVICE",
		"CAP_SYS_CHROOT", "CAP_KILL", "CAP_AUDIT_WRITE"}
	for _, cp := range c.Bounding {
		if !slices.Contains(containerdDefaults, cp) {
			t.Errorf("%s is beyond containerd's defaults", cp)
		}
	}
	if !s.Process.NoNewPrivileges {
		t.Error("noNewPrivileges is off")
	}
	if i := slices.IndexFunc(s.Process.Rlimits, func(r specs.POSIXRlimit) bool { return r.Type == "RLIMIT_NOFILE" }); i < 0 ||
		s.Process.Rlimits[i].Hard != DefaultNoFile || s.Process.Rlimits[i].Soft != DefaultNoFile {
		t.Errorf("rlimits %+v, want RLIMIT_NOFILE %d", s.Process.Rlimits, DefaultNoFile)
	}
	// CRI keeps a base spec's seccomp profile for Unconfined pods and its read-only root for
	// every pod: neither belongs here (the pod policy sets seccomp on the node).
	if s.Linux.Seccomp != nil {
		t.Error("the base spec carries a seccomp profile (one architecture's)")
	}
	if s.Root == nil || s.Root.Readonly {
		t.Errorf("root %+v: want a writable root the pod can make read-only", s.Root)
	}
	if s.Linux.CgroupsPath != "" {
		t.Errorf("cgroups path %q: CRI sets the pod's", s.Linux.CgroupsPath)
	}
	if len(s.Linux.MaskedPaths) == 0 {
		t.Error("no masked paths")
	}
	for _, ns := range []specs.LinuxNamespaceType{specs.PIDNamespace, specs.IPCNamespace, specs.MountNamespace, specs.NetworkNamespace, specs.UTSNamespace} {
		if !hasNamespace(&s, ns) {
			t.Errorf("no %s namespace", ns)
		}
	}
	if m := mountAt(&s, "/sys"); m == nil || !slices.Contains(m.Options, "ro") {
		t.Errorf("/sys mount %+v: want read-only", m)
	}
	if s.Process.SelinuxLabel != "" || s.Linux.MountLabel != "" {
		t.Error("the base spec carries SELinux labels: CRI allocates them per pod")
	}
}

// The strict profile the pod policy gives pods is the host containers' one: the denied calls
// refused, the calls of capabilities the container lacks too.
func TestStrictSeccomp(t *testing.T) {
	p, err := StrictSeccomp(DefaultCapabilities())
	if err != nil {
		t.Fatal(err)
	}
	s := &specs.Spec{Linux: &specs.Linux{Seccomp: p}}
	for _, call := range append(DeniedSyscalls(), "mount", "init_module", "bpf") {
		if allowed(s, call) {
			t.Errorf("%s allowed", call)
		}
	}
	for _, call := range []string{"read", "clone", "socket"} {
		if !allowed(s, call) {
			t.Errorf("%s refused", call)
		}
	}
	admin, err := StrictSeccomp(append(DefaultCapabilities(), "CAP_SYS_ADMIN"))
	if err != nil {
		t.Fatal(err)
	}
	if !allowed(&specs.Spec{Linux: &specs.Linux{Seccomp: admin}}, "mount") {
		t.Error("mount refused with CAP_SYS_ADMIN: the profile does not follow the capabilities")
	}
}
