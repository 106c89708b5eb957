// Command netconf is the network service (see package netconf): started by the system init at
// boot and kept running. SIGHUP makes it read its configuration file at once; SIGTERM stops it,
// leaving the network as it is for the next instance to take over.
package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"syscall"

	"github.com/ballast-os/ballast/contract"
	"github.com/ballast-os/ballast/init/console"
	"github.com/ballast-os/ballast/init/system/netconf"
)

func main() {
	// Milestones go to the console, for whoever watches the boot, and to stdout, which the system
	// init keeps as this service's log, beside the slog lines on stderr.
	var out io.Writer = os.Stdout
	if c, err := os.OpenFile("/dev/console", os.O_WRONLY|syscall.O_NOCTTY, 0); err == nil {
		defer c.Close()
		out = io.MultiWriter(c, os.Stdout)
	}
	con := &console.Writer{Out: out}
	log := slog.New(slog.NewTextHandler(os.Stderr, nil))

	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	m := netconf.New(netconf.Options{
		ConfigPath:       contract.NetworkConfigPath,
		StateDir:         contract.NetworkDir,
		ResolvConf:       "/etc/resolv.conf",
		HostnameFile:     "/etc/hostname",
		MetadataHostname: contract.MetadataHostnamePath,
		ProcSys:          "/proc/sys",
		DefaultHostname:  contract.DefaultHostname,
		SetHostname:      func(name string) error { return syscall.Sethostname([]byte(name)) },
		Console:          con,
		Log:              log,
	})
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	go func() {
		for range hup {
			m.Reload()
		}
	}()
	if err := m.Run(ctx); err != nil {
		con.Errorf("network: %v", err)
		fmt.Fprintln(os.Stderr, "netconf:", err)
		os.Exit(1)
	}
}
