// Package nripolicy is the node's own pod policy: an NRI plugin containerd consults before it
// runs a pod sandbox or creates a pod container, so a node keeps Ballast's container hardening
// whatever the cluster's admission control lets through. It refuses what would hand a pod the
// host (privileged containers, the host's PID or IPC namespace) unless
// settings.kubernetes.allow-privileged-pods says otherwise, and tightens what NRI can adjust
// (the seccomp profile) to what Ballast's host containers get (runtime/spec).
//
// NRI shows a plugin the container's OCI spec only in part: no capabilities, no masked paths, no
// privileged flag. A privileged container is recognised by what CRI's privileged mode changes in
// the parts NRI does show: a writable sysfs, or every device allowed by the device cgroup.
// Capabilities a pod adds one by one cannot be seen; the base spec (runtime/spec.CRIBaseSpec)
// decides the ones it starts from, and the seccomp profile set here still refuses the calls
// those capabilities would open (mount, ptrace, module loading...) unless the pod names its own
// Localhost profile.
package nripolicy

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"slices"
	"strings"

	"github.com/containerd/nri/pkg/api"
	"github.com/opencontainers/runtime-spec/specs-go"

	"github.com/ballast-os/ballast/runtime/spec"
)

// Config is the policy's settings, contract.PodPolicyConfig as the apiserver renders it.
type Config struct {
	// AllowPrivilegedPods is settings.kubernetes.allow-privileged-pods: privileged containers,
	// host PID and host IPC pods are let through, and their seccomp profile is left as the pod
	// asked.
	AllowPrivilegedPods bool `json:"allow-privileged-pods"`
}

// LoadConfig reads path; a missing file is the zero Config (nothing privileged allowed).
func LoadConfig(path string) (Config, error) {
	b, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return Config{}, nil
	}
	if err != nil {
		return Config{}, fmt.Errorf("pod policy: %w", err)
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	var c Config
	if err := dec.Decode(&c); err != nil {
		return Config{}, fmt.Errorf("pod policy: %s: %w", path, err)
	}
	return c, nil
}

// Setting names the setting a refusal points to.
const Setting = "settings.kubernetes.allow-privileged-pods"

// Refusals. Their text reaches the pod's events through the kubelet (CreateContainerError,
// FailedCreatePodSandBox), so each says what was refused and which setting would allow it.
var (
	ErrPrivileged  = errors.New("ballast: privileged containers are not allowed on this node (" + Setting + ")")
	ErrHostPID     = errors.New("ballast: pods in the host's PID namespace (hostPID) are not allowed on this node (" + Setting + ")")
	ErrHostIPC     = errors.New("ballast: pods in the host's IPC namespace (hostIPC) are not allowed on this node (" + Setting + ")")
	ErrSELinuxType = errors.New("ballast: pods may not choose their SELinux type (seLinuxOptions.type) on this node (" + Setting + ")")
)

// SELinuxLabel is the pod label in which containerd's CRI shows NRI the sandbox's process label.
const SELinuxLabel = "selinux_label"

// CheckPod decides on a pod sandbox: a pod without its own PID or IPC namespace, or whose
// processes are not of the pods' SELinux type, is refused.
// The host's network namespace is allowed: CNI daemonsets and kube-proxy need it, and it gives
// no more than the network (the pod's capabilities and seccomp profile still apply).
func CheckPod(c Config, pod *api.PodSandbox) error {
	if c.AllowPrivilegedPods {
		return nil
	}
	// CRI leaves a namespace out of the sandbox's spec to share the host's (NamespaceMode_NODE).
	ns := pod.GetLinux().GetNamespaces()
	has := func(typ string) bool {
		return slices.ContainsFunc(ns, func(n *api.LinuxNamespace) bool { return n.GetType() == typ })
	}
	if !has("pid") {
		return fmt.Errorf("pod %s/%s: %w", pod.GetNamespace(), pod.GetName(), ErrHostPID)
	}
	if !has("ipc") {
		return fmt.Errorf("pod %s/%s: %w", pod.GetNamespace(), pod.GetName(), ErrHostIPC)
	}
	// A pod's seLinuxOptions may name any type the runtime can start, host containers' too
	// (super_t); only the pods' own is let through. The label is empty when SELinux is off.
	if l := pod.GetLabels()[SELinuxLabel]; l != "" {
		if f := strings.SplitN(l, ":", 4); len(f) < 3 || f[2] != spec.PodType {
			return fmt.Errorf("pod %s/%s (%s): %w", pod.GetNamespace(), pod.GetName(), l, ErrSELinuxType)
		}
	}
	return nil
}

// AdjustContainer decides on a container of pod: a privileged one is refused (and every
// container of a pod CheckPod refuses, should the sandbox predate the policy); an allowed one gets
// Ballast's seccomp profile where the pod did not name its own. The adjustment is nil when
// nothing changes.
func AdjustContainer(c Config, pod *api.PodSandbox, ctr *api.Container) (*api.ContainerAdjustment, error) {
	if c.AllowPrivilegedPods {
		return nil, nil
	}
	name := fmt.Sprintf("container %s of pod %s/%s", ctr.GetName(), pod.GetNamespace(), pod.GetName())
	if err := CheckPod(c, pod); err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	if why := privileged(ctr); why != "" {
		return nil, fmt.Errorf("%s (%s): %w", name, why, ErrPrivileged)
	}
	p, err := seccompFor(ctr)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	if p == nil {
		return nil, nil
	}
	adj := &api.ContainerAdjustment{}
	adj.SetLinuxSeccompPolicy(p)
	return adj, nil
}

// privileged says why ctr looks privileged, or "" when it does not.
func privileged(ctr *api.Container) string {
	for _, m := range ctr.GetMounts() {
		// CRI's privileged mode turns sysfs's "ro" into "rw" (oci.WithWriteableSysfs).
		if m.GetType() == "sysfs" && !slices.Contains(m.GetOptions(), "ro") {
			return "writable sysfs at " + m.GetDestination()
		}
	}
	for _, d := range ctr.GetLinux().GetResources().GetDevices() {
		// oci.WithAllDevicesAllowed: one rule for every device, no type, major or minor.
		if d.GetAllow() && (d.GetType() == "" || d.GetType() == "a") && d.GetMajor() == nil && d.GetMinor() == nil {
			return "every device allowed"
		}
	}
	return ""
}

// seccompFor is the profile ctr gets instead of its own, nil to keep its own:
//   - RuntimeDefault: containerd's profile (made for the container's own capabilities) without
//     spec.DeniedSyscalls, as a host container has it;
//   - Unconfined, or no profile at all: Ballast's strict profile for spec.DefaultCapabilities,
//     the host containers' default, since nothing privileged is let through here;
//   - Localhost: the node's administrator wrote that profile for the pod; kept.
func seccompFor(ctr *api.Container) (*api.LinuxSeccomp, error) {
	cur := ctr.GetLinux().GetSeccompPolicy()
	switch ctr.GetLinux().GetSeccompProfile().GetProfileType() {
	case api.SecurityProfile_LOCALHOST:
		return nil, nil
	case api.SecurityProfile_RUNTIME_DEFAULT:
		if cur != nil {
			return withoutDenied(cur), nil
		}
	}
	p, err := spec.StrictSeccomp(spec.DefaultCapabilities())
	if err != nil {
		return nil, err
	}
	return api.FromOCILinuxSeccomp(p), nil
}

// withoutDenied is p without spec.DeniedSyscalls in its allow rules, or nil when p allows none
// of them.
func withoutDenied(p *api.LinuxSeccomp) *api.LinuxSeccomp {
	denied := spec.DeniedSyscalls()
	changed := false
	out := &api.LinuxSeccomp{
		DefaultAction: p.GetDefaultAction(), DefaultErrno: p.GetDefaultErrno(),
		Architectures: p.GetArchitectures(), Flags: p.GetFlags(),
		ListenerPath: p.GetListenerPath(), ListenerMetadata: p.GetListenerMetadata(),
	}
	for _, r := range p.GetSyscalls() {
		names := r.GetNames()
		if r.GetAction() == string(specs.ActAllow) {
			names = slices.DeleteFunc(slices.Clone(names), func(n string) bool { return slices.Contains(denied, n) })
			if len(names) != len(r.GetNames()) {
				changed = true
			}
			if len(names) == 0 {
				continue
			}
		}
		out.Syscalls = append(out.Syscalls, &api.LinuxSyscall{Names: names, Action: r.GetAction(), ErrnoRet: r.GetErrnoRet(), Args: r.GetArgs()})
	}
	if !changed {
		return nil
	}
	return out
}
