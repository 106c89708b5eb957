// Command ballast-pod-policy is the node's pod policy (runtime/nripolicy), an NRI plugin of
// containerd on the Kubernetes node: it refuses privileged containers and host PID/IPC pods
// unless settings.kubernetes.allow-privileged-pods allows them, and gives pod containers
// Ballast's seccomp profile.
package main

import (
	"context"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"syscall"

	"github.com/ballast-os/ballast/contract"
	"github.com/ballast-os/ballast/runtime/nripolicy"
)

func main() {
	socket := flag.String("socket", contract.NRISocket, "containerd's NRI socket")
	config := flag.String("config", contract.PodPolicyConfig, "the policy's settings, rendered by the apiserver")
	name := flag.String("name", contract.PodPolicyPlugin, "the NRI plugin name")
	index := flag.String("index", contract.PodPolicyPluginIndex, "the NRI plugin index (two digits)")
	flag.Parse()
	if flag.NArg() != 0 {
		fmt.Fprintf(os.Stderr, "ballast-pod-policy: unexpected arguments %q\n", flag.Args())
		os.Exit(2)
	}
	log := slog.New(slog.NewTextHandler(os.Stderr, nil))
	// The settings are read at each decision; reading them once here reports a bad file at start.
	if _, err := nripolicy.LoadConfig(*config); err != nil {
		log.Error("settings", "err", err)
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	err := nripolicy.Run(ctx, &nripolicy.Plugin{ConfigPath: *config, Log: log}, *socket, *name, *index)
	if ctx.Err() != nil {
		return
	}
	// containerd went away (or never answered): exit, and the supervisor starts the policy
	// again, which connects to the new containerd.
	log.Error("NRI connection ended", "err", err)
	os.Exit(1)
}
