// Command hostctr is the host-container manager (the host-containers service): bootstrap
// containers at boot, then the enabled host containers, as contract.ContainersConfigPath says.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/ballast-os/ballast/apiserver/userdata"
	"github.com/ballast-os/ballast/contract"
	"github.com/ballast-os/ballast/init/marker"
	"github.com/ballast-os/ballast/init/system/logs"
	"github.com/ballast-os/ballast/runtime/cni"
	"github.com/ballast-os/ballast/runtime/hostctr"
)

func main() {
	m := &hostctr.Manager{Network: cni.Default(), HostRoot: "/", Out: os.Stdout}
	flag.StringVar(&m.Containerd, "containerd", contract.ContainerdSocket, "containerd's socket")
	flag.StringVar(&m.Config, "config", contract.ContainersConfigPath, "what to run, rendered by the apiserver")
	flag.StringVar(&m.State, "state", contract.ContainersStatePath, "where the containers' state is written for GET /services")
	flag.StringVar(&m.Socket, "socket", contract.ContainersSocket, "the control socket (exec), for the apiserver")
	flag.StringVar(&m.RunDir, "run-dir", contract.ContainersDir, "run-time files: user data")
	flag.StringVar(&m.StorageDir, "storage", contract.ContainerStorageDir, "host containers' persistent directories")
	flag.StringVar(&m.DoneFile, "bootstrap-done", contract.ContainerBootstrapDone, "the bootstrap containers in mode once that completed")
	flag.StringVar(&m.ResolvConf, "resolv-conf", "/etc/resolv.conf", "bound read-only into containers")
	logDir := flag.String("log-dir", contract.ContainerLogDir, "the containers' logs")
	volatile := flag.String("volatile-log-dir", contract.ContainerVolatileLogDir, "the logs when log-dir cannot be written")
	seedWait := flag.Duration("seed-wait", 2*time.Second, "how long to look for the NoCloud volume")
	flag.Parse()
	// Labels need a loaded policy; until the system init loads one, containers run unlabelled.
	if _, err := os.Stat(contract.SELinuxEnforce); err != nil {
		m.NoLabels = true
	}
	if flag.NArg() != 0 {
		fmt.Fprintf(os.Stderr, "hostctr: unexpected arguments %q\n", flag.Args())
		os.Exit(2)
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()

	m.Logs = logs.New(logs.Options{Dir: *logDir, Volatile: *volatile,
		Errorf: func(format string, args ...any) { fmt.Fprintf(os.Stderr, "hostctr: logs: "+format+"\n", args...) }})
	bootID, _ := os.ReadFile(contract.BootID)
	version := "unknown"
	if img, err := contract.ReadImage("/"); err == nil {
		version = img.Version
	}
	if err := m.Logs.Open(strings.TrimSpace(string(bootID)), version); err != nil {
		fmt.Fprintf(os.Stderr, "hostctr: %v\n", err)
	}
	defer m.Logs.Close()
	// The NoCloud volume stays mounted, so an image archive on it is oci-archive:/run/cidata/...
	// Its file systems' modules are loaded by the system init in the background of the boot.
	seed := userdata.NoCloud{Wait: *seedWait, BeforeMount: func(ctx context.Context) error {
		return marker.Wait(ctx, contract.BootModules)
	}}
	seeded := make(chan struct{})
	go func() {
		defer close(seeded)
		if dev, err := seed.MountAt(ctx, contract.CIDataMount); err == nil {
			fmt.Printf("seed volume %s mounted read-only at %s\n", dev.Path, contract.CIDataMount)
		} else if !errors.Is(err, userdata.ErrNotFound) {
			fmt.Fprintf(os.Stderr, "hostctr: seed volume: %v\n", err)
		}
	}()
	// An archive is looked for once the volume it may be on is mounted (or known to be absent).
	m.BeforeImport = func(ctx context.Context) error {
		select {
		case <-seeded:
			return nil
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	go func() {
		logf := func(format string, args ...any) { fmt.Printf(format+"\n", args...) }
		if err := importPause(ctx, m.Containerd, contract.PauseImageArchive, contract.PauseImageRef, logf); err != nil && ctx.Err() == nil {
			fmt.Fprintf(os.Stderr, "hostctr: %v\n", err)
		}
	}()
	if err := m.Run(ctx); err != nil {
		fmt.Fprintf(os.Stderr, "hostctr: %v\n", err)
		os.Exit(1)
	}
}
