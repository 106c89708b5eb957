package spec

import (
	"context"
	"slices"
	"strings"
	"testing"

	"github.com/containerd/containerd/v2/core/containers"
	"github.com/containerd/containerd/v2/pkg/namespaces"
	"github.com/containerd/containerd/v2/pkg/oci"
	"github.com/opencontainers/runtime-spec/specs-go"

	"github.com/ballast-os/ballast/runtime/mcs"
)

func generate(t *testing.T, c Container) *specs.Spec {
	t.Helper()
	opts, err := Opts(c)
	if err != nil {
		t.Fatal(err)
	}
	ctx := namespaces.WithNamespace(context.Background(), "ballast")
	s, err := oci.GenerateSpec(ctx, nil, &containers.Container{ID: c.ID}, opts...)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// allowed reports whether the seccomp filter lets the syscall through (unconditionally or with
// arguments).
func allowed(s *specs.Spec, name string) bool {
	if s.Linux.Seccomp == nil {
		return true
	}
	for _, r := range s.Linux.Seccomp.Syscalls {
		if r.Action == specs.ActAllow && slices.Contains(r.Names, name) {
			return true
		}
	}
	return s.Linux.Seccomp.DefaultAction == specs.ActAllow
}

func hasNamespace(s *specs.Spec, typ specs.LinuxNamespaceType) bool {
	return slices.ContainsFunc(s.Linux.Namespaces, func(n specs.LinuxNamespace) bool { return n.Type == typ && n.Path == "" })
}

func mountAt(s *specs.Spec, dest string) *specs.Mount {
	for i := range s.Mounts {
		if s.Mounts[i].Destination == dest {
			return &s.Mounts[i]
		}
	}
	return nil
}

func TestDefaults(t *testing.T) {
	s := generate(t, Container{ID: "web", Level: mcs.Pair{Low: 3, High: 700}})
	p := s.Process

	if got := p.Capabilities.Bounding; !slices.Equal(got, DefaultCapabilities()) {
		t.Errorf("bounding capabilities %v, want %v", got, DefaultCapabilities())
	}
	for _, set := range [][]string{p.Capabilities.Bounding, p.Capabilities.Effective, p.Capabilities.Permitted, p.Capabilities.Ambient, p.Capabilities.Inheritable} {
		for _, c := range ForbiddenCapabilities() {
			if slices.Contains(set, c) {
				t.Errorf("%s granted", c)
			}
		}
	}
	if !p.NoNewPrivileges {
		t.Error("no_new_privs not set")
	}
	if !s.Root.Readonly {
		t.Error("root file system writable")
	}
	if m := mountAt(s, "/tmp"); m == nil || m.Type != "tmpfs" || !slices.Contains(m.Options, "noexec") {
		t.Errorf("/tmp: %+v, want a noexec tmpfs", m)
	}
	for _, path := range []string{"/proc/kcore", "/proc/keys", "/sys/firmware"} {
		if !slices.Contains(s.Linux.MaskedPaths, path) {
			t.Errorf("%s not masked: %v", path, s.Linux.MaskedPaths)
		}
	}
	if !slices.Contains(s.Linux.ReadonlyPaths, "/proc/sys") {
		t.Errorf("/proc/sys writable: %v", s.Linux.ReadonlyPaths)
	}
	if m := mountAt(s, "/sys"); m == nil || !slices.Contains(m.Options, "ro") {
		t.Errorf("/sys: %+v, want read-only", m)
	}
	// Its own cgroup, to read its limits, not to raise them.
	if m := mountAt(s, "/sys/fs/cgroup"); m == nil || m.Type != "cgroup" || !slices.Contains(m.Options, "ro") {
		t.Errorf("/sys/fs/cgroup: %+v, want the cgroup read-only", m)
	}
	for _, ns := range []specs.LinuxNamespaceType{specs.PIDNamespace, specs.NetworkNamespace, specs.IPCNamespace, specs.UTSNamespace, specs.MountNamespace, specs.CgroupNamespace} {
		if !hasNamespace(s, ns) {
			t.Errorf("no new %s namespace", ns)
		}
	}
	if hasNamespace(s, specs.UserNamespace) {
		t.Error("user namespace without asking for one")
	}
	// Device access: everything denied first; runc adds only its default devices.
	if d := s.Linux.Resources.Devices; len(d) != 1 || d[0].Allow || d[0].Access != "rwm" {
		t.Errorf("device cgroup rules %+v, want deny all", d)
	}
	if len(s.Linux.Devices) != 0 {
		t.Errorf("devices %+v, want none beyond runc's defaults", s.Linux.Devices)
	}
	r := s.Linux.Resources
	if *r.Memory.Limit != DefaultMemory || *r.Memory.Swap != DefaultMemory || *r.Pids.Limit != DefaultPids || r.Unified["cpu.weight"] != "100" {
		t.Errorf("resources %+v %+v %v", *r.Memory, *r.Pids, r.Unified)
	}
	if s.Linux.CgroupsPath != "/ballast/web" {
		t.Errorf("cgroup %q", s.Linux.CgroupsPath)
	}
	if p.SelinuxLabel != "system_u:system_r:container_t:s0:c3,c700" || s.Linux.MountLabel != "system_u:object_r:container_file_t:s0:c3,c700" {
		t.Errorf("SELinux labels %q, %q", p.SelinuxLabel, s.Linux.MountLabel)
	}
	if s.Linux.Seccomp == nil || s.Linux.Seccomp.DefaultAction != specs.ActErrno {
		t.Fatalf("seccomp %+v, want a filter refusing by default", s.Linux.Seccomp)
	}
	for _, sc := range []string{"mount", "umount2", "init_module", "finit_module", "delete_module", "kexec_load", "kexec_file_load",
		"keyctl", "add_key", "request_key", "bpf", "ptrace", "process_vm_readv", "userfaultfd", "perf_event_open",
		"open_by_handle_at", "io_uring_setup", "unshare", "setns", "pivot_root", "swapon", "reboot"} {
		if allowed(s, sc) {
			t.Errorf("seccomp allows %s", sc)
		}
	}
	for _, sc := range []string{"read", "write", "openat", "execve", "clone", "futex"} {
		if !allowed(s, sc) {
			t.Errorf("seccomp refuses %s, which every program needs", sc)
		}
	}
	if mountAt(s, APISocket) != nil || mountAt(s, HostRootfs) != nil {
		t.Error("the API socket or the host's root in a default container")
	}
	var nofile *specs.POSIXRlimit
	for i := range p.Rlimits {
		if p.Rlimits[i].Type == "RLIMIT_NOFILE" {
			nofile = &p.Rlimits[i]
		}
	}
	if nofile == nil || nofile.Hard != DefaultNoFile {
		t.Errorf("RLIMIT_NOFILE %+v", nofile)
	}
}

func TestSuperpowered(t *testing.T) {
	s := generate(t, Container{ID: "admin", Superpowered: true})
	if s.Process.NoNewPrivileges || s.Linux.Seccomp != nil || s.Root.Readonly {
		t.Errorf("superpowered: no_new_privs %v, seccomp %v, read-only root %v", s.Process.NoNewPrivileges, s.Linux.Seccomp != nil, s.Root.Readonly)
	}
	for _, c := range []string{"CAP_SYS_ADMIN", "CAP_NET_ADMIN", "CAP_SYS_PTRACE", "CAP_SYS_MODULE"} {
		if !slices.Contains(s.Process.Capabilities.Bounding, c) {
			t.Errorf("superpowered without %s", c)
		}
	}
	if hasNamespace(s, specs.PIDNamespace) || hasNamespace(s, specs.NetworkNamespace) {
		t.Error("superpowered in its own pid or network namespace")
	}
	if m := mountAt(s, HostRootfs); m == nil || m.Source != "/" {
		t.Errorf("host root: %+v", m)
	}
	if mountAt(s, APISocket) == nil || mountAt(s, APIClient) == nil {
		t.Error("superpowered without the API")
	}
	if !strings.Contains(s.Process.SelinuxLabel, ":super_t:") {
		t.Errorf("label %q", s.Process.SelinuxLabel)
	}
}

func TestOptions(t *testing.T) {
	lvl := mcs.Pair{Low: 1, High: 2}
	s := generate(t, Container{ID: "c", Level: lvl, APIAccess: true, HostNetwork: true,
		Capabilities: map[string]bool{"CAP_CHOWN": false, "CAP_IPC_LOCK": true},
		Memory:       1 << 30, Pids: 64, CPUWeight: 50,
		UserNamespace: &IDRange{From: 100000, Size: 65536},
		Rlimits:       []specs.POSIXRlimit{{Type: "RLIMIT_NOFILE", Hard: 4096, Soft: 1024}}})
	caps := s.Process.Capabilities.Bounding
	if slices.Contains(caps, "CAP_CHOWN") || !slices.Contains(caps, "CAP_IPC_LOCK") {
		t.Errorf("capabilities %v: want CHOWN dropped and IPC_LOCK added", caps)
	}
	if mountAt(s, APISocket) == nil || hasNamespace(s, specs.NetworkNamespace) {
		t.Error("api-access or host network not applied")
	}
	if !hasNamespace(s, specs.UserNamespace) || len(s.Linux.UIDMappings) != 1 || s.Linux.UIDMappings[0].HostID != 100000 {
		t.Errorf("user namespace: %+v", s.Linux.UIDMappings)
	}
	// The kernel mounts no sysfs for a user namespace that does not own the network namespace.
	if m := mountAt(s, "/sys"); m == nil || m.Type != "bind" || !slices.Contains(m.Options, "rro") {
		t.Errorf("/sys in a user namespace: %+v, want a recursive read-only bind", m)
	}
	r := s.Linux.Resources
	if *r.Memory.Limit != 1<<30 || *r.Pids.Limit != 64 || r.Unified["cpu.weight"] != "50" {
		t.Errorf("resources %+v %+v %v", *r.Memory, *r.Pids, r.Unified)
	}
	if i := slices.IndexFunc(s.Process.Rlimits, func(l specs.POSIXRlimit) bool { return l.Type == "RLIMIT_NOFILE" }); i < 0 || s.Process.Rlimits[i].Hard != 4096 {
		t.Errorf("rlimits %+v", s.Process.Rlimits)
	}
}

func TestRefused(t *testing.T) {
	ok := mcs.Pair{Low: 1, High: 2}
	tests := []struct {
		name string
		c    Container
		want string
	}{
		{"no id", Container{Level: ok}, "without an ID"},
		{"forbidden capability", Container{ID: "c", Level: ok, Capabilities: map[string]bool{"CAP_SYS_ADMIN": true}}, "CAP_SYS_ADMIN is only for superpowered"},
		{"raw sockets", Container{ID: "c", Level: ok, Capabilities: map[string]bool{"CAP_NET_RAW": true}}, "CAP_NET_RAW is only for superpowered"},
		{"capability name", Container{ID: "c", Level: ok, Capabilities: map[string]bool{"chown": true}}, "want a CAP_ name"},
		{"no level", Container{ID: "c"}, "level"},
		{"user namespace onto root", Container{ID: "c", Level: ok, UserNamespace: &IDRange{From: 0, Size: 65536}}, "range above 0"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Opts(tt.c)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("Opts = %v, want an error with %q", err, tt.want)
			}
		})
	}
	// A soft limit above the hard one is refused when the spec is made.
	opts, err := Opts(Container{ID: "c", Level: ok, Rlimits: []specs.POSIXRlimit{{Type: "RLIMIT_NOFILE", Hard: 10, Soft: 20}}})
	if err != nil {
		t.Fatal(err)
	}
	ctx := namespaces.WithNamespace(context.Background(), "ballast")
	if _, err := oci.GenerateSpec(ctx, nil, &containers.Container{ID: "c"}, opts...); err == nil || !strings.Contains(err.Error(), "above the hard limit") {
		t.Errorf("soft above hard: %v", err)
	}
}

// The policy tells containers apart by these labels: api-access gets control_t, the only domain
// allowed the API socket, and superpowered wins over it.
func TestLabels(t *testing.T) {
	lvl := mcs.Pair{Low: 4, High: 9}
	for _, tc := range []struct {
		name          string
		c             Container
		process, file string
	}{
		{"default", Container{ID: "c", Level: lvl}, "system_u:system_r:container_t:s0:c4,c9", "system_u:object_r:container_file_t:s0:c4,c9"},
		{"api access", Container{ID: "c", Level: lvl, APIAccess: true}, "system_u:system_r:control_t:s0:c4,c9", "system_u:object_r:container_file_t:s0:c4,c9"},
		{"superpowered", Container{ID: "c", Superpowered: true}, "system_u:system_r:super_t:s0", "system_u:object_r:container_file_t:s0"},
		{"superpowered with api access", Container{ID: "c", Superpowered: true, APIAccess: true}, "system_u:system_r:super_t:s0", "system_u:object_r:container_file_t:s0"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := ProcessLabel(tc.c); got != tc.process {
				t.Errorf("ProcessLabel = %q, want %q", got, tc.process)
			}
			if got := FileLabel(tc.c); got != tc.file {
				t.Errorf("FileLabel = %q, want %q", got, tc.file)
			}
			s := generate(t, tc.c)
			if s.Process.SelinuxLabel != tc.process || s.Linux.MountLabel != tc.file {
				t.Errorf("spec labels %q, %q; want %q, %q", s.Process.SelinuxLabel, s.Linux.MountLabel, tc.process, tc.file)
			}
			tc.c.NoLabels = true
			if s := generate(t, tc.c); s.Process.SelinuxLabel != "" || s.Linux.MountLabel != "" {
				t.Errorf("NoLabels: spec labels %q, %q", s.Process.SelinuxLabel, s.Linux.MountLabel)
			}
		})
	}
}
