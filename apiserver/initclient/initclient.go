// Package initclient is the API server's link to the system init (PID 1): what the API needs from
// the init (Init), and a Client that asks for it over the init's control socket
// (contract.InitClient) and reads the host logs the init writes (Files).
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
	// Logs returns a source's log (the kernel, the init, a service): see Files.Logs.
	Logs(ctx context.Context, source string, o LogOptions) (io.ReadCloser, error)
	// List returns the sources that have a log.
	List() ([]string, error)
	// LogFiles returns every file of the host logs.
	LogFiles() ([]LogFile, error)
}

// ErrUnavailable means the init's socket is not there or nobody answers on it: an init without the
// protocol, or a test host. Nothing the init supervises can be restarted then.
var ErrUnavailable = contract.ErrInitUnavailable

// Client talks to the init over its socket and reads the host logs from their directories. It
// implements Init.
type Client struct {
	contract.InitClient
	Files
}

// New returns a client for the init at socket ("" for contract.InitSocket) whose logs are in
// logDir and volatileLogDir ("" for contract.PersistentLogDir and contract.LogDir).
func New(socket, logDir, volatileLogDir string) *Client {
	return &Client{InitClient: contract.InitClient{Socket: socket}, Files: Files{Dir: logDir, Volatile: volatileLogDir}}
}

var _ Init = (*Client)(nil)
