// Package initclient is the API server's link to the system init (PID 1): what the API needs from
// the init (Init), and a Client that asks for it over the init's control socket
// (contract.InitClient) and reads the service logs the init writes (Files).
package initclient

import (
	"context"
	"io"

	"github.com/ballast-os/ballast/apiserver/apitypes"
	"github.com/ballast-os/ballast/contract"
)

// Init is what the host API needs from the system init.
type Init interface {
	// Services lists the supervised services.
	Services(ctx context.Context) ([]apitypes.Service, error)
	// Restart restarts the named services, in order; an unknown name restarts none.
	Restart(ctx context.Context, ids ...string) error
	// Reboot asks for a reboot; it returns once the init has accepted the request.
	Reboot(ctx context.Context) error
	// Logs returns a service's log; with follow it keeps reading what is appended until ctx is
	// done or the reader is closed.
	Logs(ctx context.Context, service string, follow bool) (io.ReadCloser, error)
}

// ErrUnavailable means the init's socket is not there or nobody answers on it: an init without the
// protocol, or a test host. Nothing the init supervises can be restarted then.
var ErrUnavailable = contract.ErrInitUnavailable

// Client talks to the init over its socket and reads service logs from the log directory. It
// implements Init.
type Client struct {
	contract.InitClient
	Files
}

// New returns a client for the init at socket ("" for contract.InitSocket) whose logs are in
// logDir ("" for contract.LogDir).
func New(socket, logDir string) *Client {
	return &Client{InitClient: contract.InitClient{Socket: socket}, Files: Files{Dir: logDir}}
}

var _ Init = (*Client)(nil)
