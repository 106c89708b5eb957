package contract

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"sync"
	"testing"
)

// testInit stands in for the system init behind Serve: it knows a fixed set of services and
// records what it was asked to do.
type testInit struct {
	mu        sync.Mutex
	services  []ServiceStatus
	restarted []string
	reboots   int
}

func (t *testInit) Services(context.Context) ([]ServiceStatus, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	return slices.Clone(t.services), nil
}

func (t *testInit) Restart(_ context.Context, ids ...string) error {
	t.mu.Lock()
	defer t.mu.Unlock()
	for _, id := range ids {
		if !slices.ContainsFunc(t.services, func(s ServiceStatus) bool { return s.ID == id }) {
			return fmt.Errorf("unknown service %q", id)
		}
	}
	t.restarted = append(t.restarted, ids...)
	return nil
}

func (t *testInit) Reboot(context.Context) error {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.reboots++
	return nil
}

func serve(t *testing.T, h InitHandler) string {
	t.Helper()
	sock := filepath.Join(t.TempDir(), "init.sock")
	ln, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- ServeInit(ctx, ln, h) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Serve: %v", err)
		}
	})
	return sock
}

func TestProtocol(t *testing.T) {
	h := &testInit{services: []ServiceStatus{
		{ID: "apiserver", State: "ready", Pid: 12},
		{ID: "containerd", State: "backoff", Restarts: 3, LastExit: "exit status 1"},
	}}
	sock := serve(t, h)
	c := InitClient{Socket: sock}
	ctx := context.Background()

	svcs, err := c.Services(ctx)
	if err != nil || !reflect.DeepEqual(svcs, h.services) {
		t.Fatalf("Services = %+v, %v", svcs, err)
	}
	if err := c.Restart(ctx, "containerd", "apiserver"); err != nil {
		t.Fatal(err)
	}
	if err := c.Restart(ctx, "containerd", "nope"); err == nil || !strings.Contains(err.Error(), `init: restart: unknown service "nope"`) {
		t.Fatalf("Restart of an unknown service = %v", err)
	}
	if err := c.Restart(ctx); err != nil {
		t.Fatalf("Restart of nothing = %v", err)
	}
	if !reflect.DeepEqual(h.restarted, []string{"containerd", "apiserver"}) {
		t.Fatalf("restarted %q", h.restarted)
	}
	if err := c.Reboot(ctx); err != nil || h.reboots != 1 {
		t.Fatalf("Reboot = %v, reboots %d", err, h.reboots)
	}
}

func TestProtocolErrors(t *testing.T) {
	sock := serve(t, &testInit{})
	tests := []struct {
		name, send, want string
	}{
		{"bad json", "{\n", `"ok":false,"error":"bad request`},
		{"old version", `{"version":0,"op":"services"}` + "\n", "protocol version 0"},
		{"unknown op", `{"version":1,"op":"poweroff"}` + "\n", `unknown op \"poweroff\"`},
		{"restart nothing", `{"version":1,"op":"restart"}` + "\n", "no services named"},
		{"no newline", `{"version":1,"op":"services"}`, "unexpected EOF"},
		{"too long", strings.Repeat("x", MaxInitRequest+10) + "\n", "longer than"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			conn, err := net.Dial("unix", sock)
			if err != nil {
				t.Fatal(err)
			}
			defer conn.Close()
			if _, err := io.WriteString(conn, tt.send); err != nil {
				t.Fatal(err)
			}
			conn.(*net.UnixConn).CloseWrite()
			line, err := bufio.NewReader(conn).ReadString('\n')
			if err != nil || !strings.Contains(line, tt.want) {
				t.Fatalf("answer %q, %v; want %q", line, err, tt.want)
			}
		})
	}
}

func TestUnavailable(t *testing.T) {
	c := InitClient{Socket: filepath.Join(t.TempDir(), "none.sock")}
	if _, err := c.Services(context.Background()); !errors.Is(err, ErrInitUnavailable) {
		t.Fatalf("Services without an init = %v, want ErrInitUnavailable", err)
	}
}
