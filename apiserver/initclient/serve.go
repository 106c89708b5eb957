package initclient

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"sync"
	"time"

	"github.com/ballast-os/ballast/apiserver/apitypes"
)

// Handler is the init's side of the protocol: what Serve calls for each request.
type Handler interface {
	Services(ctx context.Context) ([]apitypes.Service, error)
	// Restart restarts the services in order, or none if one is unknown.
	Restart(ctx context.Context, ids ...string) error
	// Reboot schedules a reboot and returns at once; Serve answers the client after it returns.
	Reboot(ctx context.Context) error
}

// requestTimeout bounds how long Serve waits for a request and for its handler.
const requestTimeout = 5 * time.Second

// Serve answers protocol requests on ln until ctx is done, then closes ln and waits for the
// exchanges in flight. Every connection gets one answer.
func Serve(ctx context.Context, ln net.Listener, h Handler) error {
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
		wg.Go(func() { serveConn(ctx, conn, h) })
	}
}

func serveConn(ctx context.Context, conn net.Conn, h Handler) {
	defer conn.Close()
	conn.SetReadDeadline(time.Now().Add(requestTimeout))
	resp := handle(ctx, conn, h)
	b, err := json.Marshal(resp)
	if err != nil {
		b, _ = json.Marshal(Response{Error: "encode response: " + err.Error()})
	}
	conn.SetWriteDeadline(time.Now().Add(requestTimeout))
	conn.Write(append(b, '\n'))
}

func handle(ctx context.Context, conn net.Conn, h Handler) Response {
	line, err := readLine(bufio.NewReader(io.LimitReader(conn, MaxRequest+1)), MaxRequest)
	if err != nil {
		return Response{Error: fmt.Sprintf("read request: %v", err)}
	}
	var req Request
	if err := json.Unmarshal(line, &req); err != nil {
		return Response{Error: fmt.Sprintf("bad request: %v", err)}
	}
	if req.Version != ProtocolVersion {
		return Response{Error: fmt.Sprintf("protocol version %d, this init speaks %d", req.Version, ProtocolVersion)}
	}
	switch req.Op {
	case OpServices:
		svcs, err := h.Services(ctx)
		if err != nil {
			return Response{Error: err.Error()}
		}
		if svcs == nil {
			svcs = []apitypes.Service{}
		}
		return Response{OK: true, Services: svcs}
	case OpRestart:
		if len(req.Services) == 0 {
			return Response{Error: "restart: no services named"}
		}
		if err := h.Restart(ctx, req.Services...); err != nil {
			return Response{Error: err.Error()}
		}
		return Response{OK: true}
	case OpReboot:
		if err := h.Reboot(ctx); err != nil {
			return Response{Error: err.Error()}
		}
		return Response{OK: true}
	}
	return Response{Error: fmt.Sprintf("unknown op %q", req.Op)}
}
