package nripolicy

import (
	"context"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/containerd/containerd/v2/pkg/oci"
	"github.com/containerd/nri/pkg/adaptation"
	validator "github.com/containerd/nri/plugins/default-validator"

	"github.com/ballast-os/ballast/contract"
	"github.com/ballast-os/ballast/runtime/spec"
)

// The plugin through NRI's own runtime side, as containerd embeds it, configured as Ballast's
// containerd is (the policy a required plugin): refusals reach the runtime with their reason, the
// seccomp adjustment comes back, a settings change applies to the next request, and with the
// policy gone no container is created.
func TestThroughNRI(t *testing.T) {
	dir := t.TempDir()
	socket := filepath.Join(dir, "nri.sock")
	settings := filepath.Join(dir, "pod-policy.json")
	os.MkdirAll(filepath.Join(dir, "plugins"), 0o755)
	os.MkdirAll(filepath.Join(dir, "conf"), 0o755)
	nop := func(context.Context, adaptation.SyncCB) error { return nil }
	noUpdate := func(context.Context, []*adaptation.ContainerUpdate) ([]*adaptation.ContainerUpdate, error) {
		return nil, nil
	}
	r, err := adaptation.New("containerd", "v2.4.2", nop, noUpdate,
		adaptation.WithSocketPath(socket),
		adaptation.WithPluginPath(filepath.Join(dir, "plugins")),
		adaptation.WithPluginConfigPath(filepath.Join(dir, "conf")),
		adaptation.WithDefaultValidator(&validator.DefaultValidatorConfig{Enable: true, RequiredPlugins: []string{contract.PodPolicyPlugin}}))
	if err != nil {
		t.Fatal(err)
	}
	if err := r.Start(); err != nil {
		t.Fatal(err)
	}
	defer r.Stop()
	ctx := t.Context()

	create := func(c *adaptation.Container, p *adaptation.PodSandbox) (*adaptation.CreateContainerResponse, error) {
		c.Id, c.PodSandboxId, p.Id = "c1", "p1", "p1"
		return r.CreateContainer(ctx, &adaptation.CreateContainerRequest{Pod: p, Container: c})
	}
	if _, err := create(container(t, adaptation.SecurityProfile_RUNTIME_DEFAULT), pod()); err == nil {
		t.Fatal("a container was created without the pod policy connected")
	}

	pctx, stop := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() {
		done <- Run(pctx, &Plugin{ConfigPath: settings, Log: slog.New(slog.DiscardHandler)}, socket,
			contract.PodPolicyPlugin, contract.PodPolicyPluginIndex)
	}()
	defer func() { stop(); <-done }()
	var resp *adaptation.CreateContainerResponse
	for deadline := time.Now().Add(10 * time.Second); ; {
		resp, err = create(container(t, adaptation.SecurityProfile_RUNTIME_DEFAULT), pod())
		if err == nil || time.Now().After(deadline) {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	if err != nil {
		t.Fatalf("an ordinary container: %v", err)
	}
	if p := resp.GetAdjust().GetLinux().GetSeccompPolicy(); p == nil || allows(p, "ptrace") || !allows(p, "read") {
		t.Errorf("seccomp adjustment %v: want containerd's profile without %v", p, spec.DeniedSyscalls())
	}

	err = r.RunPodSandbox(ctx, &adaptation.RunPodSandboxRequest{Pod: pod("pid")})
	if err == nil || !strings.Contains(err.Error(), ErrHostPID.Error()) {
		t.Errorf("host PID pod: %v, want %q", err, ErrHostPID)
	}
	privileged := func() *adaptation.Container {
		return container(t, adaptation.SecurityProfile_UNCONFINED, oci.WithPrivileged, oci.WithAllDevicesAllowed)
	}
	_, err = create(privileged(), pod())
	if err == nil || !strings.Contains(err.Error(), ErrPrivileged.Error()) {
		t.Errorf("privileged container: %v, want %q", err, ErrPrivileged)
	}

	if err := os.WriteFile(settings, []byte(`{"allow-privileged-pods": true}`), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := create(privileged(), pod()); err != nil {
		t.Errorf("privileged container, allowed: %v", err)
	}
	if err := r.RunPodSandbox(ctx, &adaptation.RunPodSandboxRequest{Pod: pod("pid", "ipc")}); err != nil {
		t.Errorf("host PID and IPC pod, allowed: %v", err)
	}
}
