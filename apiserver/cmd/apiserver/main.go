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

	"github.com/ballast-os/ballast/apiserver/api"
	"github.com/ballast-os/ballast/apiserver/daemon"
	"github.com/ballast-os/ballast/apiserver/initclient"
	"github.com/ballast-os/ballast/apiserver/osinfo"
	"github.com/ballast-os/ballast/apiserver/render"
	"github.com/ballast-os/ballast/apiserver/report"
	"github.com/ballast-os/ballast/apiserver/timeinfo"
	"github.com/ballast-os/ballast/apiserver/updater"
	"github.com/ballast-os/ballast/apiserver/userdata"
	"github.com/ballast-os/ballast/init/harden"
	"github.com/ballast-os/ballast/init/marker"
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
		userData  = flag.String("user-data", "", "read first-boot user data from this file instead of the first source (a cidata volume unless image.json lists others)")
		// No wait by default: the system init loads the image's modules, whose drivers probe their
		// devices as they load, before it starts the apiserver, so a seed volume present at power-on
		// is there to be found. A wait only helps with devices that arrive later (USB), and every
		// second of it delays each first boot without a seed volume.
		udWait           = flag.Duration("user-data-wait", 0, "how long to keep looking for a cidata volume that is not there yet on first boot")
		runDir           = flag.String("run", "/run", "where the cidata volume is mounted while it is read")
		imdsEndpointFlag = flag.String("imds-endpoint", "auto", "EC2 instance metadata service for first-boot user data: \"auto\" asks "+userdata.IMDSEndpoint+" on EC2 only (by the SMBIOS vendor), \"off\" never, a URL always")
		imdsTimeout      = flag.Duration("imds-timeout", 2*time.Second, "how long each request to the instance metadata service may take")
		imdsWait         = flag.Duration("imds-wait", 30*time.Second, "how long an unreachable instance metadata service is tried again on first boot (the network may not be up yet)")
		initSocket       = flag.String("init-socket", contract.InitSocket, "the system init's socket (services, restarts, reboot)")
		logDir           = flag.String("log-dir", contract.PersistentLogDir, "where the system init writes the host logs")
		volatileLogs     = flag.String("volatile-log-dir", contract.LogDir, "where the system init writes a log it cannot keep in --log-dir")
		timeState        = flag.String("time-state", contract.TimeState, "the time service's state GET /time serves")
		netState         = flag.String("network-state", contract.NetworkStatePath, "the network service's state file, served as GET /network")
		setHostname      = flag.Bool("sethostname", true, "set the kernel host name (only done when running as root)")
		bootModules      = flag.String("boot-modules", "", "the file the system init creates once the boot modules are loaded: mounting a seed volume and the settings that need a module wait for it (at most --boot-wait)")
		bootWait         = flag.Duration("boot-wait", time.Minute, "how long --boot-modules is waited for")
		metadataHostname = flag.String("metadata-hostname", contract.MetadataHostnamePath, "where the instance's host name from the metadata service is written for the network service (\"\" for nowhere)")
		kernelPolicy     = flag.String("kernel-policy", contract.KernelPolicyPath, "where settings.kernel is left for the system init's next boot (only as root; \"\" for none)")
		imageInfo        = flag.String("image-info", contract.ImageInfoPath, "the image's description (image.json): its architecture and update policy")
		nodeRoot         = flag.String("node-root", "/", "the root whose files say what the image offers a Kubernetes node (the kubelet, runsc)")
		efiVars          = flag.String("efivars", contract.EFIVarsMount, "efivarfs, where the boot loader says which entry it booted and the firmware whether Secure Boot is on (GET /os, /report/boot)")
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

	var waitBoot func(context.Context) error
	if *bootModules != "" {
		waitBoot = func(ctx context.Context) error {
			ctx, cancel := context.WithTimeout(ctx, *bootWait)
			defer cancel()
			if err := marker.Wait(ctx, *bootModules); err != nil {
				return fmt.Errorf("boot modules: %w", err)
			}
			return nil
		}
	}

	img, imgErr := readImage(*imageInfo)
	if imgErr != nil {
		// The API must still serve: without a policy the update endpoints say updates are not
		// configured, and user data comes from the default sources.
		fmt.Fprintf(os.Stderr, "ballast: apiserver: %v\n", imgErr)
	}
	imds := imdsEndpoint(*imdsEndpointFlag, func() bool { return userdata.OnEC2("/sys") })
	sources, err := userDataSources(sourceConfig{
		Names: img.UserDataSources, File: *userData, RunDir: *runDir, Wait: *udWait, BeforeMount: waitBoot,
		IMDS: imds, IMDSTimeout: *imdsTimeout, IMDSWait: *imdsWait, Cmdline: *cmdline,
	})
	if err != nil {
		fmt.Fprintf(os.Stderr, "ballast: apiserver: %s: %v; reading %s\n", *imageInfo, err, strings.Join(sourceNames(sources), ", "))
	}
	var defaultsSrc userdata.Source
	if *defaults != "" {
		defaultsSrc = userdata.File(*defaults)
	}

	var sethostname func(string) error
	if *setHostname && root {
		sethostname = func(name string) error { return syscall.Sethostname([]byte(name)) }
	}
	procDir := *proc
	var kernel *harden.Kernel
	policyFile := *kernelPolicy
	if root {
		kernel = &harden.Kernel{}
	} else {
		procDir, policyFile = "", ""
	}

	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	if imds != "" && *metadataHostname != "" {
		// At every start, for the network service, which names the host with it when neither
		// settings nor DHCP do. The service is reached once the network is up: asked until then.
		go func() {
			if err := userdata.WriteHostname(ctx, imds, *metadataHostname, time.Second, time.Minute); err != nil && ctx.Err() == nil {
				fmt.Fprintf(os.Stderr, "ballast: apiserver: %v\n", err)
			}
		}()
	}
	err = daemon.Run(ctx, daemon.Options{
		Socket:       *socket,
		AllowUID:     func(uid uint32) bool { return slices.Contains(uids, uid) },
		Datastore:    *store,
		EtcDir:       *etc,
		ProcDir:      procDir,
		Kernel:       kernel,
		KernelPolicy: policyFile,
		Report:       &report.Sources{EFIVars: *efiVars},
		OS:           osinfo.Sources{OSRelease: *osRelease, Cmdline: *cmdline, Image: *imageInfo, EFIVars: *efiVars},
		Time:         timeinfo.Sources{State: *timeState},
		Defaults:     defaultsSrc,
		UserData:     sources,
		SetHostname:  sethostname,
		Init:         initclient.New(*initSocket, *logDir, *volatileLogs),
		NetworkState: *netState,
		Containers:   api.DefaultContainers(),
		WaitBoot:     waitBoot,
		UpdatePolicy: img.Updates,
		Node:         render.DetectNode(*nodeRoot),
		// The update agent reads env.Config at each action, so a settings change holds from the
		// next one on.
		NewUpdater: updater.New(updater.DefaultPaths()),
		Console:    os.Stderr,
		Log:        log,
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
