package initclient

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"syscall"
	"time"

	"github.com/ballast-os/ballast/apiserver/apitypes"
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

// Where the system init listens and writes logs on a Ballast host.
const (
	DefaultSocket = "/run/ballast/init.sock"
	DefaultLogDir = "/run/ballast/logs"
)

// ProtocolVersion is the version of the socket protocol this package speaks.
const ProtocolVersion = 1

// Limits of the protocol.
const (
	MaxRequest  = 64 << 10
	MaxResponse = 1 << 20
)

// Ops of the protocol.
const (
	OpServices = "services"
	OpRestart  = "restart"
	OpReboot   = "reboot"
)

// Request is what the client sends.
type Request struct {
	Version  int      `json:"version"`
	Op       string   `json:"op"`
	Services []string `json:"services,omitempty"`
}

// Response is what the init answers.
type Response struct {
	OK       bool               `json:"ok"`
	Error    string             `json:"error,omitempty"`
	Services []apitypes.Service `json:"services,omitempty"`
}

// ErrUnavailable means the init's socket is not there or nobody answers on it: an init without the
// protocol, or a test host. Nothing the init supervises can be restarted then.
var ErrUnavailable = errors.New("system init is not reachable")

// Client talks to the init over its socket and reads service logs from the log directory. It
// implements Init.
type Client struct {
	Files
	socket string
}

// New returns a client for the init at socket ("" for DefaultSocket) whose logs are in logDir
// ("" for DefaultLogDir).
func New(socket, logDir string) *Client {
	if socket == "" {
		socket = DefaultSocket
	}
	return &Client{Files: Files{Dir: logDir}, socket: socket}
}

var _ Init = (*Client)(nil)

// Services asks the init for its services.
func (c *Client) Services(ctx context.Context) ([]apitypes.Service, error) {
	resp, err := c.call(ctx, Request{Op: OpServices}, 5*time.Second)
	if err != nil {
		return nil, err
	}
	if resp.Services == nil {
		resp.Services = []apitypes.Service{}
	}
	return resp.Services, nil
}

// Restart asks the init to restart services.
func (c *Client) Restart(ctx context.Context, ids ...string) error {
	if len(ids) == 0 {
		return nil
	}
	_, err := c.call(ctx, Request{Op: OpRestart, Services: ids}, 60*time.Second)
	return err
}

// Reboot asks the init to reboot the host.
func (c *Client) Reboot(ctx context.Context) error {
	_, err := c.call(ctx, Request{Op: OpReboot}, 5*time.Second)
	return err
}

func (c *Client) call(ctx context.Context, req Request, timeout time.Duration) (Response, error) {
	req.Version = ProtocolVersion
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	var d net.Dialer
	conn, err := d.DialContext(ctx, "unix", c.socket)
	if err != nil {
		if errors.Is(err, syscall.ENOENT) || errors.Is(err, syscall.ECONNREFUSED) {
			return Response{}, fmt.Errorf("%s: %w", c.socket, ErrUnavailable)
		}
		return Response{}, fmt.Errorf("init %s: %w", c.socket, err)
	}
	defer conn.Close()
	if dl, ok := ctx.Deadline(); ok {
		conn.SetDeadline(dl)
	}
	// Closing the connection is what unblocks a read when ctx is cancelled early.
	stop := context.AfterFunc(ctx, func() { conn.Close() })
	defer stop()

	b, err := json.Marshal(req)
	if err != nil {
		return Response{}, err
	}
	if _, err := conn.Write(append(b, '\n')); err != nil {
		return Response{}, fmt.Errorf("init %s: %s: %w", c.socket, req.Op, err)
	}
	line, err := readLine(bufio.NewReader(io.LimitReader(conn, MaxResponse+1)), MaxResponse)
	if err != nil {
		if ctx.Err() != nil {
			err = ctx.Err()
		}
		return Response{}, fmt.Errorf("init %s: %s: %w", c.socket, req.Op, err)
	}
	var resp Response
	if err := json.Unmarshal(line, &resp); err != nil {
		return Response{}, fmt.Errorf("init %s: %s: bad response: %w", c.socket, req.Op, err)
	}
	if !resp.OK {
		if resp.Error == "" {
			resp.Error = "failed without saying why"
		}
		return Response{}, fmt.Errorf("init: %s: %s", req.Op, resp.Error)
	}
	return resp, nil
}

// readLine reads up to and including a newline, at most max bytes before it.
func readLine(r *bufio.Reader, max int) ([]byte, error) {
	var line []byte
	for {
		chunk, err := r.ReadSlice('\n')
		line = append(line, chunk...)
		if err == nil {
			line = line[:len(line)-1]
		}
		if len(line) > max {
			return nil, fmt.Errorf("message longer than %d bytes", max)
		}
		switch {
		case err == nil:
			return line, nil
		case errors.Is(err, bufio.ErrBufferFull):
			continue
		case errors.Is(err, io.EOF):
			return nil, io.ErrUnexpectedEOF
		default:
			return nil, err
		}
	}
}
