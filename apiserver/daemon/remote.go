package daemon

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"sync"

	"github.com/ballast-os/ballast/apiserver/api"
	"github.com/ballast-os/ballast/apiserver/settings"
)

// remoteAPI runs the API on TCP with mutual TLS while settings.api.remote asks for it. It is the
// renderer's remote-api action: every change under settings.api.remote replaces the listener.
type remoteAPI struct {
	handler  http.Handler
	log      *slog.Logger
	console  io.Writer
	onListen func(net.Addr)

	mu      sync.Mutex
	current *http.Server
	ln      net.Listener
	old     []*http.Server // replaced servers, finishing their requests
	stopped bool           // set by shutdown
}

// apply starts, replaces or stops the listener to match s.
func (r *remoteAPI) apply(_ context.Context, s settings.Settings) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.stopped {
		return errors.New("remote API: server is shutting down")
	}
	var rem *settings.RemoteAPI
	if s.API != nil {
		rem = s.API.Remote
	}
	enabled := rem != nil && rem.Enabled != nil && *rem.Enabled
	var ln net.Listener
	if enabled {
		// Settings are validated before they are committed (ValidateLive), so the keys are here.
		cfg, err := api.TLSConfig([]byte(*rem.ServerCert), []byte(*rem.ServerKey), []byte(*rem.ClientCA))
		if err != nil {
			return fmt.Errorf("remote API: %w", err)
		}
		// The old listener goes first: the new one usually wants the same port.
		r.stopLocked()
		if ln, err = api.ListenTLS(string(*rem.Listen), cfg); err != nil {
			return fmt.Errorf("remote API: %w", err)
		}
	} else {
		r.stopLocked()
		return nil
	}
	srv := api.NewServer(r.handler, r.log)
	r.current, r.ln = srv, ln
	go func() {
		if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) && !errors.Is(err, net.ErrClosed) {
			r.log.Error("remote API stopped", "err", err)
		}
	}()
	fmt.Fprintf(r.console, "ballast: api: remote API on %s (mutual TLS)\n", ln.Addr())
	r.log.Info("remote API listening", "addr", ln.Addr().String())
	if r.onListen != nil {
		r.onListen(ln.Addr())
	}
	return nil
}

// stopLocked stops accepting on the current listener. Requests in flight, such as the one whose
// commit replaces the listener, are answered; then their connections close.
func (r *remoteAPI) stopLocked() {
	if r.current == nil {
		return
	}
	r.ln.Close()
	r.current.SetKeepAlivesEnabled(false)
	r.old = append(r.old, r.current)
	r.current, r.ln = nil, nil
}

// addr is the address the remote API listens on, nil while it is off.
func (r *remoteAPI) addr() net.Addr {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.ln == nil {
		return nil
	}
	return r.ln.Addr()
}

// shutdown stops the remote API and waits, within ctx, for its requests.
func (r *remoteAPI) shutdown(ctx context.Context) error {
	r.mu.Lock()
	r.stopped = true
	r.stopLocked()
	servers := r.old
	r.old = nil
	r.mu.Unlock()
	var errs []error
	for _, s := range servers {
		if err := s.Shutdown(ctx); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}
