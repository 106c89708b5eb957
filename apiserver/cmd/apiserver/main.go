// Command apiserver serves Ballast's host API on a Unix socket (and on TCP with mutual TLS when
// settings.api.remote asks for it). See package daemon for what it does at start; this file only
// reads flags and signals.
package main

import (
	"context"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/ballast-os/ballast/contract"

	"github.com/ballast-os/ballast/apiserver/daemon"
	"github.com/ballast-os/ballast/apiserver/initclient"
	"github.com/ballast-os/ballast/apiserver/osinfo"
	"github.com/ballast-os/ballast/apiserver/userdata"
)

func main() {
	var (
		socket    = flag.String("socket", contract.APISocket, "Unix socket to serve the API on")
		allowUID  = flag.String("allow-uid", "0", "comma-separated uids allowed to use the socket (checked with SO_PEERCRED)")
		store     = flag.String("datastore", contract.DatastoreDir, "datastore directory")
		etc       = flag.String("etc", "/etc", "directory configuration files are rendered into")
		proc      = flag.String("proc", "/proc", "proc file system sysctls are written to (only as root; \"\" for none)")
		osRelease = flag.String("os-release", contract.OSReleasePath, "os-release file GET /os reads")
		cmdline   = flag.String("cmdline", "/proc/cmdline", "kernel command line: GET /os and ballast.userdata=")
		defaults  = flag.String("defaults", contract.DefaultsPath, "the image's default settings (TOML user data; a missing file means none)")
		userData  = flag.String("user-data", "", "read first-boot user data from this file instead of a cidata volume")
		// Disks present at boot were probed in the initramfs before the root was mounted, so the wait
		// only covers late devices; every second of it delays a first boot without a seed volume.
		udWait       = flag.Duration("user-data-wait", 500*time.Millisecond, "how long to wait for a cidata volume to appear on first boot")
		runDir       = flag.String("run", "/run", "where the cidata volume is mounted while it is read")
		imdsEndpoint = flag.String("imds-endpoint", userdata.IMDSEndpoint, "EC2 instance metadata service for first-boot user data (\"off\" to skip)")
		imdsTimeout  = flag.Duration("imds-timeout", 2*time.Second, "how long to try the instance metadata service")
		initSocket   = flag.String("init-socket", contract.InitSocket, "the system init's socket (services, restarts, reboot)")
		logDir       = flag.String("log-dir", contract.LogDir, "where the system init writes service logs")
		netState     = flag.String("network-state", contract.NetworkStatePath, "the network service's state file, served as GET /network")
		setHostname  = flag.Bool("sethostname", true, "set the kernel host name (only done when running as root)")
	)
	flag.Parse()
	if flag.NArg() != 0 {
		fmt.Fprintf(os.Stderr, "apiserver: unexpected arguments %q\n", flag.Args())
		os.Exit(2)
	}
	uids, err := parseUIDs(*allowUID)
	if err != nil {
		fmt.Fprintf(os.Stderr, "apiserver: --allow-uid: %v\n", err)
		os.Exit(2)
	}
	// Everything the server creates (socket, datastore files) is for root alone.
	syscall.Umask(0o077)

	log := slog.New(slog.NewTextHandler(os.Stderr, nil))
	root := os.Geteuid() == 0

	var first userdata.NamedSource
	if *userData != "" {
		first = userdata.NamedSource{Name: "file", Source: userdata.File(*userData)}
	} else {
		first = userdata.NamedSource{Name: "nocloud", Source: userdata.NoCloud{RunDir: *runDir, Wait: *udWait}}
	}
	sources := []userdata.NamedSource{first}
	if *imdsEndpoint != "off" && *imdsEndpoint != "" {
		sources = append(sources, userdata.NamedSource{Name: "imds", Source: userdata.IMDS{Endpoint: *imdsEndpoint, Timeout: *imdsTimeout}})
	}
	sources = append(sources, userdata.NamedSource{Name: "cmdline", Source: userdata.Cmdline{Path: *cmdline}})
	var defaultsSrc userdata.Source
	if *defaults != "" {
		defaultsSrc = userdata.File(*defaults)
	}

	var sethostname func(string) error
	if *setHostname && root {
		sethostname = func(name string) error { return syscall.Sethostname([]byte(name)) }
	}
	procDir := *proc
	if !root {
		procDir = ""
	}

	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	err = daemon.Run(ctx, daemon.Options{
		Socket:       *socket,
		AllowUID:     func(uid uint32) bool { return slices.Contains(uids, uid) },
		Datastore:    *store,
		EtcDir:       *etc,
		ProcDir:      procDir,
		OS:           osinfo.Sources{OSRelease: *osRelease, Cmdline: *cmdline},
		Defaults:     defaultsSrc,
		UserData:     sources,
		SetHostname:  sethostname,
		Init:         initclient.New(*initSocket, *logDir),
		NetworkState: *netState,
		Console:      os.Stderr,
		Log:          log,
	})
	if err != nil {
		fmt.Fprintf(os.Stderr, "ballast: apiserver: %v\n", err)
		os.Exit(1)
	}
}

func parseUIDs(s string) ([]uint32, error) {
	var uids []uint32
	for _, f := range strings.Split(s, ",") {
		n, err := strconv.ParseUint(strings.TrimSpace(f), 10, 32)
		if err != nil {
			return nil, fmt.Errorf("%q is not a uid", f)
		}
		uids = append(uids, uint32(n))
	}
	return uids, nil
}
