// Package spec makes the OCI runtime spec of a Ballast container: containerd's defaults made
// stricter for every container that is not superpowered, and the privileges an operator needs for
// one that is. It is the one place the container security defaults are decided.
package spec

import (
	"context"
	"fmt"
	"slices"
	"sort"
	"strings"

	"github.com/containerd/containerd/v2/contrib/seccomp"
	"github.com/containerd/containerd/v2/core/containers"
	"github.com/containerd/containerd/v2/pkg/oci"
	"github.com/opencontainers/runtime-spec/specs-go"

	"github.com/ballast-os/ballast/contract"
	"github.com/ballast-os/ballast/runtime/mcs"
)

// DefaultCapabilities is what a container that is not superpowered keeps: containerd's defaults
// without CAP_MKNOD (no device nodes) and CAP_NET_RAW (no raw sockets: ARP and ICMP spoofing).
func DefaultCapabilities() []string {
	return []string{
		"CAP_AUDIT_WRITE", "CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_FOWNER", "CAP_FSETID", "CAP_KILL",
		"CAP_NET_BIND_SERVICE", "CAP_SETFCAP", "CAP_SETGID", "CAP_SETPCAP", "CAP_SETUID", "CAP_SYS_CHROOT",
	}
}

// ForbiddenCapabilities are never given to a container that is not superpowered, whatever
// settings.oci-defaults.capabilities says (contract.ForbiddenCapabilities).
func ForbiddenCapabilities() []string { return contract.ForbiddenCapabilities() }

// DeniedSyscalls are refused by the seccomp filter of a container that is not superpowered,
// beyond what containerd's default profile refuses without the matching capability: ptrace and
// the cross-process memory calls (containerd allows them on kernels from 4.8), and io_uring,
// whose submissions bypass seccomp altogether.
func DeniedSyscalls() []string {
	return []string{
		"io_uring_enter", "io_uring_register", "io_uring_setup",
		"process_vm_readv", "process_vm_writev", "ptrace",
	}
}

// Defaults for the resource limits of a container that does not set its own.
const (
	DefaultMemory    = 512 << 20 // bytes
	DefaultPids      = 1024
	DefaultCPUWeight = 100 // cgroup v2 cpu.weight, the kernel's default share
	DefaultTmpSize   = 64 << 20
	DefaultNoFile    = 65536
)

// SELinux labels. The policy that enforces them is loaded by the system init; the runtime
// assigns them.
const (
	ContainerType = "container_t"      // processes of a default container
	ControlType   = "control_t"        // processes of a container with api-access, not superpowered
	ContainerFile = "container_file_t" // the files and mounts of every container
	SuperType     = "super_t"          // processes of a superpowered container
	// PodType and PodFile are a Kubernetes pod's processes and files (CRISELinuxContexts).
	PodType = "pod_t"
	PodFile = "pod_file_t"
)

// Container is what the spec is made from.
type Container struct {
	// ID names the container; its cgroup is /ballast/<ID>.
	ID string
	// Superpowered gives the container what an administrator needs: every capability, no
	// seccomp filter, the host's devices, process and network namespaces, and the host's root at
	// HostRootfs.
	Superpowered bool
	// APIAccess bind-mounts the API socket and apiclient into the container.
	APIAccess bool
	// HostNetwork shares the host's network namespace.
	HostNetwork bool
	// Capabilities adjusts DefaultCapabilities (settings.oci-defaults.capabilities): true adds
	// one, false drops one. Names are CAP_ names.
	Capabilities map[string]bool
	// Rlimits replaces the default limits by type (RLIMIT_NOFILE, ...).
	Rlimits []specs.POSIXRlimit
	// Memory (bytes), Pids and CPUWeight are cgroup v2 limits; zero takes the default.
	Memory    int64
	Pids      int64
	CPUWeight uint64
	// UserNamespace maps the container's uid and gid 0..Size-1 to the host's From.. range, so
	// root in the container is no one on the host. Nil shares the host's user namespace.
	UserNamespace *IDRange
	// Level is the container's MCS category pair (ignored when superpowered).
	Level mcs.Pair
	// NoLabels leaves the SELinux labels out of the spec: a kernel without a loaded policy
	// refuses them (the overlay mount's context= option, the process's exec label).
	NoLabels bool
}

// IDRange is a range of host uids and gids.
type IDRange struct{ From, Size uint32 }

// Paths the host shares with containers.
const (
	HostRootfs   = "/.ballast/rootfs" // the host's root, in a superpowered container
	APISocket    = "/run/api.sock"
	APIClient    = "/usr/local/bin/apiclient"
	hostAPIClnt  = "/usr/bin/apiclient"
	cgroupParent = "/ballast"
)

// Opts returns the spec options for c, to follow the image's own configuration
// (oci.WithImageConfig) in the list given to containerd.
func Opts(c Container) ([]oci.SpecOpts, error) {
	if c.ID == "" {
		return nil, fmt.Errorf("spec: container without an ID")
	}
	opts := []oci.SpecOpts{
		// The container sees its own cgroup, read-only (writable when superpowered), so a
		// program can read its limits; containerd's default spec has no cgroup mount.
		oci.WithMounts([]specs.Mount{{Destination: "/sys/fs/cgroup", Type: "cgroup", Source: "cgroup",
			Options: []string{"nosuid", "noexec", "nodev", "relatime", "ro"}}}),
		oci.WithCgroup(cgroupParent + "/" + c.ID),
		withResources(c),
		withRlimits(c.Rlimits),
	}
	if c.APIAccess || c.Superpowered {
		opts = append(opts, oci.WithMounts([]specs.Mount{
			{Destination: APISocket, Type: "bind", Source: APISocket, Options: []string{"rbind", "nosuid", "nodev", "noexec"}},
			{Destination: APIClient, Type: "bind", Source: hostAPIClnt, Options: []string{"rbind", "ro", "nosuid", "nodev"}},
		}))
	}
	if c.Superpowered {
		return append(opts,
			// Every capability, no masked or read-only paths, writable sysfs and cgroupfs, no
			// seccomp filter; then the host's devices.
			oci.WithPrivileged,
			oci.WithHostDevices,
			oci.WithAllDevicesAllowed,
			oci.WithNewPrivileges,
			oci.WithHostNamespace(specs.PIDNamespace),
			oci.WithHostNamespace(specs.NetworkNamespace),
			oci.WithMounts([]specs.Mount{{Destination: HostRootfs, Type: "bind", Source: "/", Options: []string{"rbind", "rslave"}}}),
			withSELinux(!c.NoLabels, ProcessLabel(c), FileLabel(c)),
		), nil
	}
	caps, err := capabilities(c.Capabilities)
	if err != nil {
		return nil, err
	}
	if err := c.Level.Valid(); err != nil {
		return nil, fmt.Errorf("spec: container %s: level: %w", c.ID, err)
	}
	opts = append(opts,
		oci.WithCapabilities(caps),
		oci.WithAmbientCapabilities(nil),
		oci.WithNoNewPrivileges,
		oci.WithRootFSReadonly(),
		oci.WithMounts([]specs.Mount{{Destination: "/tmp", Type: "tmpfs", Source: "tmpfs",
			Options: []string{"nosuid", "nodev", "noexec", "mode=1777", fmt.Sprintf("size=%d", DefaultTmpSize)}}}),
		withStrictSeccomp,
		withSELinux(!c.NoLabels, ProcessLabel(c), FileLabel(c)),
		oci.WithLinuxNamespace(specs.LinuxNamespace{Type: specs.CgroupNamespace}),
	)
	if c.HostNetwork {
		opts = append(opts, oci.WithHostNamespace(specs.NetworkNamespace))
	}
	if u := c.UserNamespace; u != nil {
		if u.Size == 0 || u.From == 0 {
			return nil, fmt.Errorf("spec: container %s: user namespace maps %d ids from host id %d; want a range above 0", c.ID, u.Size, u.From)
		}
		m := []specs.LinuxIDMapping{{ContainerID: 0, HostID: u.From, Size: u.Size}}
		opts = append(opts, oci.WithUserNamespace(m, m), withSysfsBind)
	}
	return opts, nil
}

// capabilities is DefaultCapabilities adjusted by the settings, which may not add a forbidden one.
func capabilities(adjust map[string]bool) ([]string, error) {
	caps := DefaultCapabilities()
	names := make([]string, 0, len(adjust))
	for n := range adjust {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		if !strings.HasPrefix(n, "CAP_") {
			return nil, fmt.Errorf("spec: capability %q: want a CAP_ name", n)
		}
		switch {
		case !adjust[n]:
			caps = slices.DeleteFunc(caps, func(c string) bool { return c == n })
		case slices.Contains(ForbiddenCapabilities(), n):
			return nil, fmt.Errorf("spec: capability %s is only for superpowered containers", n)
		case !slices.Contains(caps, n):
			caps = append(caps, n)
		}
	}
	sort.Strings(caps)
	return caps, nil
}

func withResources(c Container) oci.SpecOpts {
	return func(_ context.Context, _ oci.Client, _ *containers.Container, s *specs.Spec) error {
		if s.Linux == nil {
			s.Linux = &specs.Linux{}
		}
		if s.Linux.Resources == nil {
			s.Linux.Resources = &specs.LinuxResources{}
		}
		r := s.Linux.Resources
		mem, pids, weight := c.Memory, c.Pids, c.CPUWeight
		if mem == 0 {
			mem = DefaultMemory
		}
		if pids == 0 {
			pids = DefaultPids
		}
		if weight == 0 {
			weight = DefaultCPUWeight
		}
		// Swap counts against the same limit: a container cannot swap its way past it.
		r.Memory = &specs.LinuxMemory{Limit: &mem, Swap: &mem}
		r.Pids = &specs.LinuxPids{Limit: &pids}
		// runc writes cpu.weight on cgroup v2 through the unified map.
		if r.Unified == nil {
			r.Unified = map[string]string{}
		}
		r.Unified["cpu.weight"] = fmt.Sprint(weight)
		return nil
	}
}

func withRlimits(limits []specs.POSIXRlimit) oci.SpecOpts {
	return func(_ context.Context, _ oci.Client, _ *containers.Container, s *specs.Spec) error {
		set := func(l specs.POSIXRlimit) {
			s.Process.Rlimits = slices.DeleteFunc(s.Process.Rlimits, func(r specs.POSIXRlimit) bool { return r.Type == l.Type })
			s.Process.Rlimits = append(s.Process.Rlimits, l)
		}
		set(specs.POSIXRlimit{Type: "RLIMIT_NOFILE", Hard: DefaultNoFile, Soft: DefaultNoFile})
		for _, l := range limits {
			if l.Soft > l.Hard {
				return fmt.Errorf("spec: %s: soft limit %d above the hard limit %d", l.Type, l.Soft, l.Hard)
			}
			set(l)
		}
		return nil
	}
}

// withSysfsBind replaces the /sys mount of a container in a user namespace with a read-only bind
// of the host's: the kernel mounts a sysfs only for a user namespace that owns the network
// namespace, and the container's is made by the runtime (for its CNI network) outside it. The
// masked paths still apply.
func withSysfsBind(_ context.Context, _ oci.Client, _ *containers.Container, s *specs.Spec) error {
	for i, m := range s.Mounts {
		if m.Destination == "/sys" {
			s.Mounts[i] = specs.Mount{Destination: "/sys", Type: "bind", Source: "/sys",
				Options: []string{"rbind", "rslave", "rro", "nosuid", "nodev", "noexec"}}
		}
	}
	return nil
}

// withStrictSeccomp is containerd's default profile for the spec's capabilities, without
// DeniedSyscalls. It must follow the capabilities.
func withStrictSeccomp(_ context.Context, _ oci.Client, _ *containers.Container, s *specs.Spec) error {
	p, err := strictSeccomp(s)
	if err != nil {
		return err
	}
	s.Linux.Seccomp = p
	return nil
}

// StrictSeccomp is the seccomp profile of a container that is not superpowered and has the
// capabilities caps (CAP_ names): containerd's default profile for them, without
// DeniedSyscalls. The profile is for the architecture the program runs on.
func StrictSeccomp(caps []string) (*specs.LinuxSeccomp, error) {
	return strictSeccomp(&specs.Spec{Process: &specs.Process{Capabilities: &specs.LinuxCapabilities{
		Bounding: caps, Effective: caps, Permitted: caps}}})
}

func strictSeccomp(s *specs.Spec) (*specs.LinuxSeccomp, error) {
	p := seccomp.DefaultProfile(s)
	if p.DefaultAction != specs.ActErrno {
		return nil, fmt.Errorf("spec: seccomp: default action %q, want %q", p.DefaultAction, specs.ActErrno)
	}
	denied := DeniedSyscalls()
	kept := p.Syscalls[:0]
	for _, rule := range p.Syscalls {
		if rule.Action == specs.ActAllow {
			rule.Names = slices.DeleteFunc(slices.Clone(rule.Names), func(n string) bool { return slices.Contains(denied, n) })
			if len(rule.Names) == 0 {
				continue
			}
		}
		kept = append(kept, rule)
	}
	p.Syscalls = kept
	return p, nil
}

// ProcessLabel is the SELinux label of c's processes: super_t at s0 when superpowered, else
// control_t (api-access: the one domain the policy lets reach the API socket) or container_t,
// with c's category pair.
func ProcessLabel(c Container) string {
	switch {
	case c.Superpowered:
		return contract.Context(SuperType, contract.SELinuxLevel, false)
	case c.APIAccess:
		return contract.Context(ControlType, c.Level.Level(), false)
	}
	return contract.Context(ContainerType, c.Level.Level(), false)
}

// FileLabel is the SELinux label of c's files (its rootfs, mounts, storage and user data):
// container_file_t at c's level, s0 when superpowered.
func FileLabel(c Container) string {
	if c.Superpowered {
		return contract.Context(ContainerFile, contract.SELinuxLevel, true)
	}
	return contract.Context(ContainerFile, c.Level.Level(), true)
}

// withSELinux labels the processes and the mounts. containerd's client also adds the mount
// label to the snapshot's rootfs mounts as a context= option when it creates the task, so the
// rootfs the shim mounts carries it too (runc labels only the mounts it makes).
func withSELinux(on bool, process, mount string) oci.SpecOpts {
	return func(_ context.Context, _ oci.Client, _ *containers.Container, s *specs.Spec) error {
		if !on {
			return nil
		}
		s.Process.SelinuxLabel = process
		s.Linux.MountLabel = mount
		return nil
	}
}
