package api

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"os"
	"strings"
	"time"

	"github.com/ballast-os/ballast/apiserver/apitypes"
	"github.com/ballast-os/ballast/apiserver/initclient"
	"github.com/ballast-os/ballast/contract"
)

// Containers says where the host-container manager keeps what the API serves of it.
type Containers struct {
	// State is contract.ContainersStatePath; "" lists no containers in GET /services.
	State string
	// Logs reads the containers' logs (contract.ContainerLogDir).
	Logs initclient.Files
	// Socket is the manager's control socket, for POST /exec; "" answers 503.
	Socket string
}

// DefaultContainers are the image's paths.
func DefaultContainers() Containers {
	return Containers{State: contract.ContainersStatePath, Socket: contract.ContainersSocket,
		Logs: initclient.Files{Dir: contract.ContainerLogDir, Volatile: contract.ContainerVolatileLogDir}}
}

// containerStatuses are the manager's containers, for GET /services after the system services.
// A missing or unreadable file lists none: the manager may not run on this image.
func (h *handler) containerStatuses() []apitypes.Service {
	if h.cfg.Containers.State == "" {
		return nil
	}
	b, err := os.ReadFile(h.cfg.Containers.State)
	if err != nil {
		return nil
	}
	var st contract.ContainersState
	if err := json.Unmarshal(b, &st); err != nil {
		h.cfg.Log.Error("containers state", "path", h.cfg.Containers.State, "err", err)
		return nil
	}
	return st.Containers
}

// exec runs a command in a host container: POST /exec?service=<name>&command=...&tty=..., with
// Upgrade: contract.ExecUpgrade. The request is checked here and then carried to the manager's
// control socket; the upgraded connection is relayed byte for byte both ways.
func (h *handler) exec(w http.ResponseWriter, r *http.Request) {
	if _, err := contract.ParseExecQuery(r.URL.Query()); err != nil {
		h.fail(w, r, http.StatusBadRequest, err)
		return
	}
	if !strings.EqualFold(r.Header.Get("Upgrade"), contract.ExecUpgrade) {
		h.fail(w, r, http.StatusUpgradeRequired, fmt.Errorf("exec needs Connection: Upgrade and Upgrade: %s", contract.ExecUpgrade))
		return
	}
	sock := h.cfg.Containers.Socket
	if sock == "" {
		h.fail(w, r, http.StatusServiceUnavailable, errors.New("no host-container manager on this host"))
		return
	}
	if _, err := os.Stat(sock); err != nil {
		h.fail(w, r, http.StatusServiceUnavailable, fmt.Errorf("the host-container manager is not running: %w", err))
		return
	}
	// An exec session lasts as long as the command: no server deadlines.
	rc := http.NewResponseController(w)
	rc.SetReadDeadline(time.Time{})
	rc.SetWriteDeadline(time.Time{})
	proxy := &httputil.ReverseProxy{
		Rewrite: func(pr *httputil.ProxyRequest) {
			pr.SetURL(&url.URL{Scheme: "http", Host: "hostctr"})
			pr.Out.Header.Set("Connection", "Upgrade")
			pr.Out.Header.Set("Upgrade", contract.ExecUpgrade)
		},
		Transport: &http.Transport{
			DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
				var d net.Dialer
				return d.DialContext(ctx, "unix", sock)
			},
		},
		ErrorHandler: func(w http.ResponseWriter, r *http.Request, err error) {
			h.fail(w, r, http.StatusBadGateway, fmt.Errorf("host-container manager: %w", err))
		},
	}
	proxy.ServeHTTP(w, r)
}
