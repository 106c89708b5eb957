package nripolicy

import (
	"context"
	"errors"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/containerd/containerd/v2/contrib/seccomp"
	"github.com/containerd/containerd/v2/core/containers"
	"github.com/containerd/containerd/v2/pkg/namespaces"
	"github.com/containerd/containerd/v2/pkg/oci"
	"github.com/containerd/nri/pkg/api"
	"github.com/opencontainers/runtime-spec/specs-go"

	"github.com/ballast-os/ballast/runtime/spec"
)

// pod is a sandbox as NRI shows it: the namespaces CRI left in the sandbox's spec.
func pod(omit ...string) *api.PodSandbox {
	var ns []*api.LinuxNamespace
	for _, typ := range []string{"pid", "ipc", "uts", "mount", "network"} {
		if !slices.Contains(omit, typ) {
			ns = append(ns, &api.LinuxNamespace{Type: typ})
		}
	}
	return &api.PodSandbox{Name: "web", Namespace: "default", Linux: &api.LinuxPodSandbox{Namespaces: ns}}
}

// labelled is pod with the process label containerd's CRI gives NRI.
func labelled(p *api.PodSandbox, label string) *api.PodSandbox {
	p.Labels = map[string]string{SELinuxLabel: label}
	return p
}

// container is a container as NRI shows it, made from the spec containerd's own options give:
// the CRI base spec, then opts (oci.WithPrivileged and oci.WithAllDevicesAllowed for a privileged
// one, as CRI adds them), with the seccomp profile type the pod asked for.
func container(t *testing.T, profile api.SecurityProfile_ProfileType, opts ...oci.SpecOpts) *api.Container {
	t.Helper()
	base, err := spec.CRIBaseSpec()
	if err != nil {
		t.Fatal(err)
	}
	ctx := namespaces.WithNamespace(context.Background(), "k8s.io")
	if profile == api.SecurityProfile_RUNTIME_DEFAULT {
		opts = append(opts, seccomp.WithDefaultProfile())
	}
	if err := oci.ApplyOpts(ctx, nil, &containers.Container{ID: "c"}, base, opts...); err != nil {
		t.Fatal(err)
	}
	var policy *api.LinuxSeccomp
	if base.Linux.Seccomp != nil {
		policy = api.FromOCILinuxSeccomp(base.Linux.Seccomp)
	}
	return &api.Container{
		Name:   "app",
		Mounts: api.FromOCIMounts(base.Mounts),
		Linux: &api.LinuxContainer{
			Resources:      api.FromOCILinuxResources(base.Linux.Resources, nil),
			SeccompProfile: &api.SecurityProfile{ProfileType: profile},
			SeccompPolicy:  policy,
		},
	}
}

func allows(p *api.LinuxSeccomp, call string) bool {
	for _, r := range p.GetSyscalls() {
		if r.GetAction() == string(specs.ActAllow) && slices.Contains(r.GetNames(), call) {
			return true
		}
	}
	return false
}

func TestDecisions(t *testing.T) {
	allow := Config{AllowPrivilegedPods: true}
	for _, tc := range []struct {
		name    string
		config  Config
		pod     *api.PodSandbox
		ctr     *api.Container
		podErr  error  // from CheckPod
		ctrErr  error  // from AdjustContainer
		seccomp string // "" none set, "strict" or "stripped"
	}{
		{name: "ordinary pod", pod: pod(), ctr: container(t, api.SecurityProfile_RUNTIME_DEFAULT), seccomp: "stripped"},
		{name: "host network", pod: pod("network", "uts"), ctr: container(t, api.SecurityProfile_RUNTIME_DEFAULT), seccomp: "stripped"},
		{name: "unconfined", pod: pod(), ctr: container(t, api.SecurityProfile_UNCONFINED), seccomp: "strict"},
		{name: "localhost profile", pod: pod(), ctr: container(t, api.SecurityProfile_LOCALHOST)},
		{name: "privileged", pod: pod(), ctr: container(t, api.SecurityProfile_RUNTIME_DEFAULT, oci.WithPrivileged, oci.WithAllDevicesAllowed),
			ctrErr: ErrPrivileged},
		{name: "privileged without host devices", pod: pod(), ctr: container(t, api.SecurityProfile_UNCONFINED, oci.WithPrivileged),
			ctrErr: ErrPrivileged},
		{name: "every device", pod: pod(), ctr: container(t, api.SecurityProfile_RUNTIME_DEFAULT, oci.WithAllDevicesAllowed),
			ctrErr: ErrPrivileged},
		{name: "host PID", pod: pod("pid"), ctr: container(t, api.SecurityProfile_RUNTIME_DEFAULT), podErr: ErrHostPID, ctrErr: ErrHostPID},
		{name: "host IPC", pod: pod("ipc"), ctr: container(t, api.SecurityProfile_RUNTIME_DEFAULT), podErr: ErrHostIPC, ctrErr: ErrHostIPC},
		{name: "pod label", pod: labelled(pod(), "system_u:system_r:pod_t:s0:c1,c2"), ctr: container(t, api.SecurityProfile_RUNTIME_DEFAULT), seccomp: "stripped"},
		{name: "SELinux type chosen", pod: labelled(pod(), "system_u:system_r:super_t:s0"), ctr: container(t, api.SecurityProfile_RUNTIME_DEFAULT),
			podErr: ErrSELinuxType, ctrErr: ErrSELinuxType},
		{name: "SELinux type allowed", config: allow, pod: labelled(pod(), "system_u:system_r:super_t:s0"), ctr: container(t, api.SecurityProfile_RUNTIME_DEFAULT)},
		{name: "privileged allowed", config: allow, pod: pod("pid", "ipc"),
			ctr: container(t, api.SecurityProfile_UNCONFINED, oci.WithPrivileged, oci.WithAllDevicesAllowed)},
		{name: "allowed leaves seccomp alone", config: allow, pod: pod(), ctr: container(t, api.SecurityProfile_RUNTIME_DEFAULT)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if err := CheckPod(tc.config, tc.pod); !errors.Is(err, tc.podErr) {
				t.Errorf("CheckPod: %v, want %v", err, tc.podErr)
			}
			adj, err := AdjustContainer(tc.config, tc.pod, tc.ctr)
			if !errors.Is(err, tc.ctrErr) {
				t.Fatalf("AdjustContainer: %v, want %v", err, tc.ctrErr)
			}
			if err != nil {
				// The refusal names the container and the setting that would allow it.
				if !strings.Contains(err.Error(), "container app of pod default/web") || !strings.Contains(err.Error(), Setting) {
					t.Errorf("refusal %q", err)
				}
				return
			}
			got := adj.GetLinux().GetSeccompPolicy()
			switch tc.seccomp {
			case "":
				if got != nil {
					t.Fatalf("seccomp set: %v", got.GetDefaultAction())
				}
				return
			case "strict":
				if allows(got, "mount") {
					t.Error("the strict profile allows mount")
				}
			case "stripped":
				// The container's own profile, without the denied calls only.
				if !allows(tc.ctr.Linux.SeccompPolicy, "ptrace") {
					t.Fatal("containerd's profile does not allow ptrace: the case tests nothing")
				}
				if len(got.GetSyscalls()) == 0 || got.GetDefaultAction() != tc.ctr.Linux.SeccompPolicy.GetDefaultAction() {
					t.Errorf("stripped profile: %d rules, default %s", len(got.GetSyscalls()), got.GetDefaultAction())
				}
			}
			if got == nil {
				t.Fatal("no seccomp profile set")
			}
			for _, call := range spec.DeniedSyscalls() {
				if allows(got, call) {
					t.Errorf("%s allowed", call)
				}
			}
			if !allows(got, "read") {
				t.Error("read refused")
			}
		})
	}
}

func TestLoadConfig(t *testing.T) {
	dir := t.TempDir()
	write := func(name, s string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(s), 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	for _, tc := range []struct {
		path string
		want Config
		err  string
	}{
		{path: filepath.Join(dir, "missing.json")},
		{path: write("on.json", `{"allow-privileged-pods": true}`), want: Config{AllowPrivilegedPods: true}},
		{path: write("off.json", `{"allow-privileged-pods": false}`)},
		{path: write("typo.json", `{"allow-privileged-pod": true}`), err: "typo.json"},
		{path: write("bad.json", `{"allow-privileged-pods": "yes"}`), err: "bad.json"},
	} {
		got, err := LoadConfig(tc.path)
		if tc.err != "" {
			if err == nil || !strings.Contains(err.Error(), tc.err) {
				t.Errorf("%s: %v, want an error naming %s", tc.path, err, tc.err)
			}
			continue
		}
		if err != nil || got != tc.want {
			t.Errorf("%s: %+v, %v; want %+v", tc.path, got, err, tc.want)
		}
	}
}

// The plugin reads the settings at each decision and refuses when it cannot read them.
func TestPluginRereadsSettings(t *testing.T) {
	path := filepath.Join(t.TempDir(), "pod-policy.json")
	p := &Plugin{ConfigPath: path, Log: slog.New(slog.DiscardHandler)}
	ctx := context.Background()
	if err := p.RunPodSandbox(ctx, pod("pid")); !errors.Is(err, ErrHostPID) {
		t.Errorf("without settings: %v, want %v", err, ErrHostPID)
	}
	os.WriteFile(path, []byte(`{"allow-privileged-pods": true}`), 0o644)
	if err := p.RunPodSandbox(ctx, pod("pid")); err != nil {
		t.Errorf("allowed: %v", err)
	}
	if _, _, err := p.CreateContainer(ctx, pod(), container(t, api.SecurityProfile_UNCONFINED, oci.WithPrivileged)); err != nil {
		t.Errorf("allowed: %v", err)
	}
	os.WriteFile(path, []byte(`{`), 0o644)
	if err := p.RunPodSandbox(ctx, pod()); err == nil {
		t.Error("an unreadable settings file lets pods through")
	}
	if _, _, err := p.CreateContainer(ctx, pod(), container(t, api.SecurityProfile_RUNTIME_DEFAULT)); err == nil {
		t.Error("an unreadable settings file lets containers through")
	}
}
