// Package daemon runs the API server's lifecycle: open the datastore, take in the image's defaults
// and (on the first boot) user data, give the host its update wave seed, build the update agent,
// render the host's configuration from the stored settings, serve the API on a Unix socket (and
// on TCP with mutual TLS when settings.api.remote asks for it) until told to stop. cmd/apiserver
// only turns flags into Options.
package daemon

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"time"

	"github.com/ballast-os/ballast/apiserver/api"
	"github.com/ballast-os/ballast/apiserver/apitypes"
	"github.com/ballast-os/ballast/apiserver/datastore"
	"github.com/ballast-os/ballast/apiserver/initclient"
	"github.com/ballast-os/ballast/apiserver/osinfo"
	"github.com/ballast-os/ballast/apiserver/render"
	"github.com/ballast-os/ballast/apiserver/report"
	"github.com/ballast-os/ballast/apiserver/timeinfo"
	"github.com/ballast-os/ballast/apiserver/userdata"
	"github.com/ballast-os/ballast/contract"
	"github.com/ballast-os/ballast/init/harden"
)

// ShutdownTimeout bounds how long a stop waits for requests in flight.
const ShutdownTimeout = 10 * time.Second

// Options configures Run.
type Options struct {
	Socket string // Unix socket to serve on
	// AllowUID says which peers may use the Unix socket; nil allows root only.
	AllowUID  func(uid uint32) bool
	Datastore string // datastore root directory
	EtcDir    string // stands for /etc: where configuration files are rendered
	// ProcDir stands for /proc, where sysctls are written; "" leaves them alone.
	ProcDir string
	// Kernel is the running kernel, for lockdown and module policy; nil leaves them alone.
	Kernel *harden.Kernel
	// KernelPolicy is where settings.kernel is left for the system init's next boot
	// (contract.KernelPolicyPath); "" writes nothing.
	KernelPolicy string
	OS           osinfo.Sources
	Time         timeinfo.Sources
	// Defaults are the image's default settings, taken at every start for keys not set yet; nil
	// means none.
	Defaults userdata.Source
	// UserData are read on the first boot (a new datastore), in order; later sources override
	// earlier ones.
	UserData []userdata.NamedSource
	// SetHostname sets the kernel's host name; nil leaves it alone.
	SetHostname func(string) error
	// Init is the system init (services, restarts, reboot, logs); nil answers those with 503.
	Init initclient.Init
	// NetworkState is the network service's state file, served as GET /network.
	NetworkState string
	// Containers says where the host-container manager's state, logs and socket are.
	Containers api.Containers
	// Console gets the short "ballast: ..." lines an operator reads on the console.
	Console io.Writer
	// Log gets the server's own diagnostics; nil discards them.
	Log *slog.Logger
	// Report says where the hardening and boot reports look; nil serves neither. Its Settings
	// and RemoteAddr are the server's own.
	Report *report.Sources
	// WaitBoot, when set, returns once the system init has loaded the boot modules; the
	// settings that need a module (a module's sysctls, module blocks and loads) wait for it.
	// The user data sources take their own wait (userdata.NoCloud.BeforeMount).
	WaitBoot func(context.Context) error
	// Node is what the image offers a Kubernetes node (render.DetectNode): with a kubelet, the
	// node's files and sysctls are rendered from settings.kubernetes.
	Node render.Node
	// UpdatePolicy is the image's update policy (contract.Image.Updates): among others the
	// repository URLs settings.updates falls back to.
	UpdatePolicy contract.UpdatePolicy
	// NewUpdater builds the update agent once the datastore is open: this is where the agent
	// (updates/agent) is wired in, with env.Config read at each of its actions. Nil, or an error,
	// leaves GET /updates/status and POST /actions/updates/* answering 503.
	NewUpdater func(env UpdaterEnv) (api.Updater, error)
	// OnListen, when set, is called once the socket accepts connections.
	OnListen func()
	// OnRemoteListen, when set, is called each time the remote API starts listening.
	OnRemoteListen func(net.Addr)
}

// Run serves until ctx is done, then shuts down gracefully. Problems with user data or with
// applying settings are reported and kept, never fatal: a host with a bad setting must still
// answer its API so it can be fixed.
func Run(ctx context.Context, o Options) error {
	if o.Console == nil {
		o.Console = io.Discard
	}
	if o.Log == nil {
		o.Log = slog.New(slog.DiscardHandler)
	}
	// How long each start step takes, in the log: the boot waits for all of them.
	start := time.Now()
	var steps []any
	step := func(name string) {
		steps = append(steps, name, time.Since(start).Round(time.Millisecond).String())
	}
	store, created, err := datastore.New(o.Datastore)
	if err != nil {
		return err
	}
	defer store.Close()
	step("datastore")

	ud := takeUserData(ctx, store, created, o.Defaults, o.UserData, o.Console)
	if err := ensureUpdateSeed(store, randomSeed, o.Console); err != nil {
		fmt.Fprintf(o.Console, "ballast: updates: %v\n", err)
	}
	step("userdata")

	remote := &remoteAPI{log: o.Log, console: o.Console, onListen: o.OnRemoteListen}
	renderer := &render.Renderer{
		EtcDir:      o.EtcDir,
		ProcDir:     o.ProcDir,
		Kernel:      o.Kernel,
		PolicyFile:  o.KernelPolicy,
		SetHostname: o.SetHostname,
		Init:        o.Init,
		Actions:     []render.Action{{Name: render.ActionRemoteAPI, Keys: render.ActionKeys()[render.ActionRemoteAPI], Run: remote.apply}},
		Log:         o.Log,
		WaitBoot:    o.WaitBoot,
		Node:        o.Node,
	}
	var hardening func(context.Context) apitypes.HardeningReport
	var boot api.BootReporter
	if o.Report != nil {
		src := *o.Report
		src.Settings, src.RemoteAddr = store.Live, remote.addr
		if o.Node.Kubelet {
			src.Listeners = append(src.Listeners, render.NodeListeners()...)
		}
		rep := report.New(src)
		hardening, boot = rep.Hardening, rep
	}
	h := api.NewHandler(api.Config{
		Store:        store,
		Apply:        renderer.Apply,
		Mapping:      renderer.Mapping,
		Init:         o.Init,
		OS:           o.OS,
		Time:         o.Time,
		UserData:     func() apitypes.UserData { return ud },
		Hardening:    hardening,
		Boot:         boot,
		Log:          o.Log,
		NetworkState: o.NetworkState,
		Containers:   o.Containers,
		Updater:      newUpdater(o, store),
	})
	remote.handler = h
	defer func() {
		sctx, cancel := context.WithTimeout(context.Background(), ShutdownTimeout)
		defer cancel()
		remote.shutdown(sctx)
	}()

	// Rendered at every start: /etc is a tmpfs filled from the image, so the settings have to be
	// put back into it on each boot.
	res, err := renderer.Apply(ctx, store.Live(), nil)
	if err != nil {
		fmt.Fprintf(o.Console, "ballast: apply: %v\n", err)
	}
	for _, n := range res.Notes {
		fmt.Fprintf(o.Console, "ballast: apply: %s\n", n)
	}
	step("render")

	ln, err := api.ListenUnix(o.Socket)
	if err != nil {
		return err
	}
	srv := api.UnixServer(h, o.AllowUID, o.Log)

	serveErr := make(chan error, 1)
	go func() { serveErr <- srv.Serve(ln) }()
	step("listen")
	o.Log.Info("listening", append([]any{"socket", o.Socket, "datastore", o.Datastore, "first_boot", created}, steps...)...)
	if o.OnListen != nil {
		o.OnListen()
	}

	select {
	case err = <-serveErr:
	case <-ctx.Done():
		sctx, cancel := context.WithTimeout(context.Background(), ShutdownTimeout)
		defer cancel()
		err = srv.Shutdown(sctx)
		if serr := <-serveErr; !errors.Is(serr, http.ErrServerClosed) && err == nil {
			err = serr
		}
	}
	if errors.Is(err, http.ErrServerClosed) {
		err = nil
	}
	if err != nil {
		return fmt.Errorf("serve %s: %w", o.Socket, err)
	}
	return nil
}
