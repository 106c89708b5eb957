package initclient

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ballast-os/ballast/apiserver/apitypes"
)

// testInit stands in for the system init behind Serve: it knows a fixed set of services and
// records what it was asked to do.
type testInit struct {
	mu        sync.Mutex
	services  []apitypes.Service
	restarted []string
	reboots   int
}

func (t *testInit) Services(context.Context) ([]apitypes.Service, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	return slices.Clone(t.services), nil
}

func (t *testInit) Restart(_ context.Context, ids ...string) error {
	t.mu.Lock()
	defer t.mu.Unlock()
	for _, id := range ids {
		if !slices.ContainsFunc(t.services, func(s apitypes.Service) bool { return s.ID == id }) {
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

func serve(t *testing.T, h Handler) string {
	t.Helper()
	sock := filepath.Join(t.TempDir(), "init.sock")
	ln, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- Serve(ctx, ln, h) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Serve: %v", err)
		}
	})
	return sock
}

func TestProtocol(t *testing.T) {
	h := &testInit{services: []apitypes.Service{
		{ID: "apiserver", State: "ready", Pid: 12},
		{ID: "containerd", State: "backoff", Restarts: 3, LastExit: "exit status 1"},
	}}
	sock := serve(t, h)
	c := New(sock, t.TempDir())
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
		{"too long", strings.Repeat("x", MaxRequest+10) + "\n", "longer than"},
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
	c := New(filepath.Join(t.TempDir(), "none.sock"), "")
	if _, err := c.Services(context.Background()); !errors.Is(err, ErrUnavailable) {
		t.Fatalf("Services without an init = %v, want ErrUnavailable", err)
	}
}

func TestLogs(t *testing.T) {
	dir := t.TempDir()
	f := Files{Dir: dir, Poll: 10 * time.Millisecond}
	path := filepath.Join(dir, "containerd.log")
	if err := os.WriteFile(path, []byte("line 1\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	os.WriteFile(filepath.Join(dir, "apiserver.log"), nil, 0o600)
	os.WriteFile(filepath.Join(dir, "notes.txt"), nil, 0o600)
	if got, err := f.List(); err != nil || !reflect.DeepEqual(got, []string{"apiserver", "containerd"}) {
		t.Fatalf("List = %q, %v", got, err)
	}
	ctx := context.Background()
	r, err := f.Logs(ctx, "containerd", false)
	if err != nil {
		t.Fatal(err)
	}
	if b, _ := io.ReadAll(r); string(b) != "line 1\n" {
		t.Fatalf("log = %q", b)
	}
	r.Close()

	for _, bad := range []string{"../etc/passwd", "", "a/b", "x..y"} {
		if _, err := f.Logs(ctx, bad, false); err == nil || !strings.Contains(err.Error(), "not a service name") {
			t.Errorf("Logs(%q) = %v", bad, err)
		}
	}
	if _, err := f.Logs(ctx, "missing", false); !errors.Is(err, ErrNoLog) {
		t.Fatalf("Logs of a service without a log = %v", err)
	}

	// Following: what is appended arrives; cancelling ends the stream.
	fctx, cancel := context.WithCancel(ctx)
	r, err = f.Logs(fctx, "containerd", true)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	br := bufio.NewReader(r)
	if l, _ := br.ReadString('\n'); l != "line 1\n" {
		t.Fatalf("first line %q", l)
	}
	go func() {
		time.Sleep(30 * time.Millisecond)
		fh, _ := os.OpenFile(path, os.O_APPEND|os.O_WRONLY, 0)
		fh.WriteString("line 2\n")
		fh.Close()
	}()
	if l, err := br.ReadString('\n'); l != "line 2\n" {
		t.Fatalf("followed line %q, %v", l, err)
	}
	// A truncated log is followed from its new start.
	os.WriteFile(path, []byte("new\n"), 0o600)
	if l, err := br.ReadString('\n'); l != "new\n" {
		t.Fatalf("line after truncation %q, %v", l, err)
	}
	cancel()
	if _, err := br.ReadString('\n'); !errors.Is(err, io.EOF) {
		t.Fatalf("read after cancel = %v, want EOF", err)
	}
}
