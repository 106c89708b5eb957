package contract

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"sync"
	"syscall"
	"time"
)

// The system init's control protocol (version 1).
//
// The system init listens on a Unix stream socket, InitSocket, mode 0600 and owned by root (only
// root may ask the init to restart services or reboot). Each connection carries one exchange: the
// client writes one JSON request and a newline (at most MaxInitRequest bytes), the init answers with
// one JSON response and a newline (at most MaxInitResponse bytes) and closes the connection.
//
//	{"version": 1, "op": "services"}
//	{"version": 1, "op": "restart", "services": ["containerd", "host-containerd"]}
//	{"version": 1, "op": "reboot"}
//
//	{"ok": true, "services": [{"id": "apiserver", "state": "ready", "pid": 312, "restarts": 0,
//	  "last_exit": "", "error": ""}, ...]}                 answer to services
//	{"ok": true}                                            answer to restart and reboot
//	{"ok": false, "error": "unknown service \"x\""}
//
// services lists every supervised service in start order. restart checks every named service first
// and restarts none if one is unknown; it answers once each service has been stopped and started
// again (not necessarily ready). reboot answers before the init starts shutting down. A request
// with an unknown op, another version, or that is not JSON gets {"ok": false, "error": ...}. The init
// reads a request with a deadline, so a client that sends nothing cannot block it.
//
// Logs are not part of the protocol: the init writes the host logs (logs.go), and readers open
// their files.
const (
	InitProtocolVersion = 1
	MaxInitRequest      = 64 << 10
	MaxInitResponse     = 1 << 20

	OpServices = "services"
	OpRestart  = "restart"
	OpReboot   = "reboot"
)

// InitRequest is what a client sends.
type InitRequest struct {
	Version  int      `json:"version"`
	Op       string   `json:"op"`
	Services []string `json:"services,omitempty"`
}

// InitResponse is what the init answers.
type InitResponse struct {
	OK       bool            `json:"ok"`
	Error    string          `json:"error,omitempty"`
	Services []ServiceStatus `json:"services,omitempty"`
}

// ServiceStatus is one supervised service. State is the supervisor's state name (waiting, running,
// ready, backoff, stopping, stopped, finished, failed); Pid is 0 when no instance runs; Restarts
// counts instances started after the first; LastExit says how the previous instance ended
// ("exit status 1", "signal: killed"); Error why a failed service failed. Kind is "" for a system
// service, KindHostContainer or KindBootstrapContainer for a container the host-container
// manager runs.
type ServiceStatus struct {
	ID   string `json:"id"`
	Kind string `json:"kind,omitempty"`
	// Label is a running container's SELinux process label, with the category pair the runtime
	// allocated for it (in the spec once the kernel has a policy loaded).
	Label    string `json:"label,omitempty"`
	State    string `json:"state"`
	Pid      int    `json:"pid"`
	Restarts int    `json:"restarts"`
	LastExit string `json:"last_exit"`
	Error    string `json:"error"`
}

// ErrInitUnavailable means the init's socket is not there or nobody answers on it: an init without
// the protocol, or a test host.
var ErrInitUnavailable = errors.New("system init is not reachable")

// InitClient asks the system init over its socket.
type InitClient struct {
	Socket string // "" means InitSocket
}

func (c InitClient) socket() string {
	if c.Socket == "" {
		return InitSocket
	}
	return c.Socket
}

// Services asks for the supervised services.
func (c InitClient) Services(ctx context.Context) ([]ServiceStatus, error) {
	resp, err := c.call(ctx, InitRequest{Op: OpServices}, 5*time.Second)
	if err != nil {
		return nil, err
	}
	if resp.Services == nil {
		resp.Services = []ServiceStatus{}
	}
	return resp.Services, nil
}

// Restart asks for services to be restarted, in order; the init waits for each to start again.
func (c InitClient) Restart(ctx context.Context, ids ...string) error {
	if len(ids) == 0 {
		return nil
	}
	_, err := c.call(ctx, InitRequest{Op: OpRestart, Services: ids}, 60*time.Second)
	return err
}

// Reboot asks for a reboot; it returns once the init has accepted the request.
func (c InitClient) Reboot(ctx context.Context) error {
	_, err := c.call(ctx, InitRequest{Op: OpReboot}, 5*time.Second)
	return err
}

func (c InitClient) call(ctx context.Context, req InitRequest, timeout time.Duration) (InitResponse, error) {
	req.Version = InitProtocolVersion
	sock := c.socket()
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	var d net.Dialer
	conn, err := d.DialContext(ctx, "unix", sock)
	if err != nil {
		if errors.Is(err, syscall.ENOENT) || errors.Is(err, syscall.ECONNREFUSED) {
			return InitResponse{}, fmt.Errorf("%s: %w", sock, ErrInitUnavailable)
		}
		return InitResponse{}, fmt.Errorf("init %s: %w", sock, err)
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
		return InitResponse{}, err
	}
	if _, err := conn.Write(append(b, '\n')); err != nil {
		return InitResponse{}, fmt.Errorf("init %s: %s: %w", sock, req.Op, err)
	}
	line, err := readLine(bufio.NewReader(io.LimitReader(conn, MaxInitResponse+1)), MaxInitResponse)
	if err != nil {
		if ctx.Err() != nil {
			err = ctx.Err()
		}
		return InitResponse{}, fmt.Errorf("init %s: %s: %w", sock, req.Op, err)
	}
	var resp InitResponse
	if err := json.Unmarshal(line, &resp); err != nil {
		return InitResponse{}, fmt.Errorf("init %s: %s: bad response: %w", sock, req.Op, err)
	}
	if !resp.OK {
		if resp.Error == "" {
			resp.Error = "failed without saying why"
		}
		return InitResponse{}, fmt.Errorf("init: %s: %s", req.Op, resp.Error)
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

// InitHandler is the init's side of the protocol: what ServeInit calls for each request.
type InitHandler interface {
	Services(ctx context.Context) ([]ServiceStatus, error)
	// Restart restarts the services in order, or none if one is unknown.
	Restart(ctx context.Context, ids ...string) error
	// Reboot schedules a reboot and returns at once; ServeInit answers the client after it returns.
	Reboot(ctx context.Context) error
}

// initRequestTimeout bounds how long ServeInit waits for a request and for its answer to be taken.
const initRequestTimeout = 5 * time.Second

// ServeInit answers protocol requests on ln until ctx is done, then closes ln and waits for the
// exchanges in flight. Every connection gets one answer.
func ServeInit(ctx context.Context, ln net.Listener, h InitHandler) error {
	stop := context.AfterFunc(ctx, func() { ln.Close() })
	defer stop()
	var wg sync.WaitGroup
	defer wg.Wait()
	for {
		conn, err := ln.Accept()
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				continue
			}
			return fmt.Errorf("init socket: %w", err)
		}
		wg.Go(func() { serveInitConn(ctx, conn, h) })
	}
}

func serveInitConn(ctx context.Context, conn net.Conn, h InitHandler) {
	defer conn.Close()
	conn.SetReadDeadline(time.Now().Add(initRequestTimeout))
	resp := handleInit(ctx, conn, h)
	b, err := json.Marshal(resp)
	if err != nil {
		b, _ = json.Marshal(InitResponse{Error: "encode response: " + err.Error()})
	}
	conn.SetWriteDeadline(time.Now().Add(initRequestTimeout))
	conn.Write(append(b, '\n'))
}

func handleInit(ctx context.Context, conn net.Conn, h InitHandler) InitResponse {
	line, err := readLine(bufio.NewReader(io.LimitReader(conn, MaxInitRequest+1)), MaxInitRequest)
	if err != nil {
		return InitResponse{Error: fmt.Sprintf("read request: %v", err)}
	}
	var req InitRequest
	if err := json.Unmarshal(line, &req); err != nil {
		return InitResponse{Error: fmt.Sprintf("bad request: %v", err)}
	}
	if req.Version != InitProtocolVersion {
		return InitResponse{Error: fmt.Sprintf("protocol version %d, this init speaks %d", req.Version, InitProtocolVersion)}
	}
	switch req.Op {
	case OpServices:
		svcs, err := h.Services(ctx)
		if err != nil {
			return InitResponse{Error: err.Error()}
		}
		if svcs == nil {
			svcs = []ServiceStatus{}
		}
		return InitResponse{OK: true, Services: svcs}
	case OpRestart:
		if len(req.Services) == 0 {
			return InitResponse{Error: "restart: no services named"}
		}
		if err := h.Restart(ctx, req.Services...); err != nil {
			return InitResponse{Error: err.Error()}
		}
		return InitResponse{OK: true}
	case OpReboot:
		if err := h.Reboot(ctx); err != nil {
			return InitResponse{Error: err.Error()}
		}
		return InitResponse{OK: true}
	}
	return InitResponse{Error: fmt.Sprintf("unknown op %q", req.Op)}
}
