// Package daemon runs the API server's lifecycle: open the datastore, take in user data on the
// first boot, apply the stored settings, serve the API on a Unix socket until told to stop.
// cmd/apiserver only turns flags into Options.
package daemon

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"time"

	"github.com/ballast-os/ballast/apiserver/api"
	"github.com/ballast-os/ballast/apiserver/apitypes"
	"github.com/ballast-os/ballast/apiserver/apply"
	"github.com/ballast-os/ballast/apiserver/datastore"
	"github.com/ballast-os/ballast/apiserver/osinfo"
	"github.com/ballast-os/ballast/apiserver/settings"
	"github.com/ballast-os/ballast/apiserver/userdata"
)

// userDataTx is the transaction first-boot user data is committed through, apart from the one
// API clients use.
const userDataTx = "userdata"

// ShutdownTimeout bounds how long a stop waits for requests in flight.
const ShutdownTimeout = 10 * time.Second

// Options configures Run.
type Options struct {
	Socket    string // Unix socket to serve on
	Datastore string // datastore root directory
	EtcDir    string // where settings are applied
	OS        osinfo.Sources
	// UserData is read on the first boot (a new datastore); nil means no source.
	UserData userdata.Source
	// SetHostname is passed to the applier; nil leaves the kernel's host name alone.
	SetHostname func(string) error
	// Console gets the short "ballast: ..." lines an operator reads on the console.
	Console io.Writer
	// Log gets the server's own diagnostics; nil discards them.
	Log *slog.Logger
	// OnListen, when set, is called once the socket accepts connections.
	OnListen func()
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

	ud := apitypes.UserData{State: apitypes.UserDataNotChecked}
	if created {
		ud = takeUserData(ctx, store, o.UserData, o.Console)
	}
	applier := apply.Applier{EtcDir: o.EtcDir, SetHostname: o.SetHostname}
	if err := applier.Apply(store.Live()); err != nil {
		fmt.Fprintf(o.Console, "ballast: apply: %v\n", err)
	}

	ln, err := api.ListenUnix(o.Socket)
	if err != nil {
		return err
	}
	h := api.NewHandler(api.Config{
		Store:    store,
		Apply:    applier.Apply,
		OS:       o.OS,
		UserData: func() apitypes.UserData { return ud },
		Log:      o.Log,
	})
	srv := api.NewServer(h, o.Log)

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

// takeUserData reads, parses and commits user data, all or nothing, and says what happened both
// on the console and in the returned status.
func takeUserData(ctx context.Context, store *datastore.Store, src userdata.Source, console io.Writer) apitypes.UserData {
	if src == nil {
		return apitypes.UserData{State: apitypes.UserDataNone}
	}
	invalid := func(source string, err error) apitypes.UserData {
		fmt.Fprintf(console, "ballast: userdata: %v\n", err)
		st := apitypes.UserData{State: apitypes.UserDataInvalid, Source: source, Error: err.Error()}
		var ue *userdata.Error
		if errors.As(err, &ue) {
			st.Line, st.Key = ue.Line, ue.Key
		}
		return st
	}
	data, origin, err := src.Fetch(ctx)
	if errors.Is(err, userdata.ErrNotFound) {
		fmt.Fprintf(console, "ballast: userdata: none (%v)\n", err)
		return apitypes.UserData{State: apitypes.UserDataNone}
	}
	if err != nil {
		return invalid(origin, fmt.Errorf("%s: %w", origin, err))
	}
	s, err := userdata.Parse(origin, data)
	if err != nil {
		return invalid(origin, err)
	}
	if err := commit(store, s); err != nil {
		return invalid(origin, fmt.Errorf("%s: %w", origin, err))
	}
	keys := s.Keys()
	fmt.Fprintf(console, "ballast: userdata: applied %d settings from %s\n", len(keys), origin)
	return apitypes.UserData{State: apitypes.UserDataApplied, Source: origin, Keys: keys}
}

func commit(store *datastore.Store, s settings.Settings) error {
	if err := store.Stage(userDataTx, s); err != nil {
		return err
	}
	if _, _, err := store.Commit(userDataTx); err != nil {
		// Leave nothing staged to be committed later by accident; the error is what matters.
		store.Discard(userDataTx)
		return err
	}
	return nil
}
