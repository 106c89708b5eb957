package nripolicy

import (
	"context"
	"fmt"
	"log/slog"

	"github.com/containerd/nri/pkg/api"
	"github.com/containerd/nri/pkg/stub"
)

// Plugin is the NRI plugin: CheckPod at RunPodSandbox, AdjustContainer at CreateContainer, with
// the Config read from ConfigPath each time, so a settings change applies to the next pod
// without a restart. An unreadable ConfigPath refuses the pod: the policy fails closed.
type Plugin struct {
	ConfigPath string
	Log        *slog.Logger
}

// RunPodSandbox implements stub.RunPodInterface; containerd fails the sandbox with the error.
func (p *Plugin) RunPodSandbox(_ context.Context, pod *api.PodSandbox) error {
	c, err := LoadConfig(p.ConfigPath)
	if err == nil {
		err = CheckPod(c, pod)
	}
	if err != nil {
		p.Log.Warn("pod refused", "namespace", pod.GetNamespace(), "pod", pod.GetName(), "err", err)
	}
	return err
}

// CreateContainer implements stub.CreateContainerInterface.
func (p *Plugin) CreateContainer(_ context.Context, pod *api.PodSandbox, ctr *api.Container) (*api.ContainerAdjustment, []*api.ContainerUpdate, error) {
	c, err := LoadConfig(p.ConfigPath)
	if err != nil {
		p.Log.Warn("container refused", "namespace", pod.GetNamespace(), "pod", pod.GetName(), "container", ctr.GetName(), "err", err)
		return nil, nil, err
	}
	adj, err := AdjustContainer(c, pod, ctr)
	if err != nil {
		p.Log.Warn("container refused", "namespace", pod.GetNamespace(), "pod", pod.GetName(), "container", ctr.GetName(), "err", err)
		return nil, nil, err
	}
	return adj, nil, nil
}

// Run connects p to the NRI socket under the plugin name and index (contract.PodPolicyPlugin,
// contract.PodPolicyPluginIndex) and serves until ctx ends or containerd closes the connection
// (it restarted): the caller exits then and its supervisor starts it again.
func Run(ctx context.Context, p *Plugin, socket, name, index string) error {
	s, err := stub.New(p, stub.WithSocketPath(socket), stub.WithPluginName(name), stub.WithPluginIdx(index),
		stub.WithLogger(nriLogger{p.Log}))
	if err != nil {
		return fmt.Errorf("pod policy: NRI plugin %s-%s: %w", index, name, err)
	}
	if err := s.Run(ctx); err != nil {
		return fmt.Errorf("pod policy: NRI socket %s: %w", socket, err)
	}
	return nil
}

// nriLogger sends the NRI stub's messages to slog.
type nriLogger struct{ l *slog.Logger }

func (n nriLogger) Debugf(ctx context.Context, f string, a ...any) {
	n.l.DebugContext(ctx, fmt.Sprintf(f, a...))
}
func (n nriLogger) Infof(ctx context.Context, f string, a ...any) {
	n.l.InfoContext(ctx, fmt.Sprintf(f, a...))
}
func (n nriLogger) Warnf(ctx context.Context, f string, a ...any) {
	n.l.WarnContext(ctx, fmt.Sprintf(f, a...))
}
func (n nriLogger) Errorf(ctx context.Context, f string, a ...any) {
	n.l.ErrorContext(ctx, fmt.Sprintf(f, a...))
}
