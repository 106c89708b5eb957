// Command apiserver serves Ballast's host API on a Unix socket. See package daemon for what it does
// at start; this file only reads flags and signals.
package main

import (
	"context"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/ballast-os/ballast/apiserver/daemon"
	"github.com/ballast-os/ballast/apiserver/osinfo"
	"github.com/ballast-os/ballast/apiserver/userdata"
)

func main() {
	var (
		socket    = flag.String("socket", "/run/api.sock", "Unix socket to serve the API on")
		store     = flag.String("datastore", "/local/var/lib/ballast/datastore", "datastore directory")
		etc       = flag.String("etc", "/etc", "directory settings are applied to")
		osRelease = flag.String("os-release", "/usr/lib/os-release", "os-release file GET /os reads")
		cmdline   = flag.String("cmdline", "/proc/cmdline", "kernel command line GET /os reads")
		userData  = flag.String("user-data", "", "read first-boot user data from this file instead of a cidata volume")
		// Disks present at boot were probed in the initramfs before the root was mounted, so the wait
		// only covers late devices; every second of it delays a first boot without a seed volume.
		udWait      = flag.Duration("user-data-wait", 500*time.Millisecond, "how long to wait for a cidata volume to appear on first boot")
		runDir      = flag.String("run", "/run", "where the cidata volume is mounted while it is read")
		setHostname = flag.Bool("sethostname", true, "set the kernel host name (only done when running as root)")
	)
	flag.Parse()
	if flag.NArg() != 0 {
		fmt.Fprintf(os.Stderr, "apiserver: unexpected arguments %q\n", flag.Args())
		os.Exit(2)
	}
	// Everything the server creates (socket, datastore files) is for root alone.
	syscall.Umask(0o077)

	log := slog.New(slog.NewTextHandler(os.Stderr, nil))

	var src userdata.Source = userdata.NoCloud{RunDir: *runDir, Wait: *udWait}
	if *userData != "" {
		src = userdata.File(*userData)
	}
	var sethostname func(string) error
	if *setHostname && os.Geteuid() == 0 {
		sethostname = func(name string) error { return syscall.Sethostname([]byte(name)) }
	}

	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	err := daemon.Run(ctx, daemon.Options{
		Socket:      *socket,
		Datastore:   *store,
		EtcDir:      *etc,
		OS:          osinfo.Sources{OSRelease: *osRelease, Cmdline: *cmdline},
		UserData:    src,
		SetHostname: sethostname,
		Console:     os.Stderr,
		Log:         log,
	})
	if err != nil {
		fmt.Fprintf(os.Stderr, "ballast: apiserver: %v\n", err)
		os.Exit(1)
	}
}
