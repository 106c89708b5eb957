// Package daemon runs the API server's lifecycle: open the datastore, take in the image's defaults
// and (on the first boot) user data, render the host's configuration from the stored settings,
// serve the API on a Unix socket (and on TCP with mutual TLS when settings.api.remote asks for
// it) until told to stop. cmd/apiserver only turns flags into Options.
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
	"github.com/ballast-os/ballast/apiserver/userdata"
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
	OS      osinfo.Sources
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
	// Console gets the short "ballast: ..." lines an operator reads on the console.
	Console io.Writer
	// Log gets the server's own diagnostics; nil discards them.
	Log *slog.Logger
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
	store, created, err := datastore.New(o.Datastore)
	if err != nil {
		return err
	}
	defer store.Close()

	ud := takeUserData(ctx, store, created, o.Defaults, o.UserData, o.Console)

	remote := &remoteAPI{log: o.Log, console: o.Console, onListen: o.OnRemoteListen}
	renderer := &render.Renderer{
		EtcDir:      o.EtcDir,
		ProcDir:     o.ProcDir,
		SetHostname: o.SetHostname,
		Init:        o.Init,
		Actions:     []render.Action{{Name: render.ActionRemoteAPI, Keys: render.ActionKeys()[render.ActionRemoteAPI], Run: remote.apply}},
		Log:         o.Log,
	}
	h := api.NewHandler(api.Config{
		Store:        store,
		Apply:        renderer.Apply,
		Mapping:      renderer.Mapping,
		Init:         o.Init,
		OS:           o.OS,
		UserData:     func() apitypes.UserData { return ud },
		NetworkState: o.NetworkState,
		Log:          o.Log,
	})
	remote.handler = h
	defer func() {
		sctx, cancel := context.WithTimeout(context.Background(), ShutdownTimeout)
		defer cancel()
		remote.shutdown(sctx)
	}()

	// Rendered at every start: /etc is a tmpfs filled from the image, so the settings have to be
	// put back into it on each boot.
	if _, err := renderer.Apply(ctx, store.Live(), nil); err != nil {
		fmt.Fprintf(o.Console, "ballast: apply: %v\n", err)
	}

	ln, err := api.ListenUnix(o.Socket)
	if err != nil {
		return err
	}
	srv := api.UnixServer(h, o.AllowUID, o.Log)

	serveErr := make(chan error, 1)
	go func() { serveErr <- srv.Serve(ln) }()
	o.Log.Info("listening", "socket", o.Socket, "datastore", o.Datastore, "first_boot", created)
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
