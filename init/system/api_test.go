package system

import (
	"context"
	"errors"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ballast-os/ballast/contract"

	"github.com/ballast-os/ballast/init/system/supervise"
)

// fakeAPI serves /os on the Init's API socket, after rendering the motd as the apiserver does.
func fakeAPI(t *testing.T, i *Init, motd string) {
	t.Helper()
	if motd != "" {
		write(t, i, "/etc/motd", motd)
	}
	sock := i.path(contract.APISocket)
	if err := os.MkdirAll(filepath.Dir(sock), 0o755); err != nil {
		t.Fatal(err)
	}
	l, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /os", func(w http.ResponseWriter, r *http.Request) { w.Write([]byte(`{"id":"ballast"}`)) })
	srv := &http.Server{Handler: mux}
	go srv.Serve(l)
	t.Cleanup(func() { srv.Close() })
}

func TestAPIClient(t *testing.T) {
	i, _, _ := testInit(t)
	c := newAPIClient(i.path(contract.APISocket))
	ctx := context.Background()
	if err := c.ready(ctx); err == nil {
		t.Error("ready before the server listens")
	}
	fakeAPI(t, i, "")
	if err := c.ready(ctx); err != nil {
		t.Errorf("ready: %v", err)
	}
	if code, body, err := c.get(ctx, "/os"); code != 200 || string(body) != `{"id":"ballast"}` || err != nil {
		t.Errorf("GET /os = %d %q %v", code, body, err)
	}
	if code, _, err := c.get(ctx, "/nothing"); code != 404 || err != nil {
		t.Errorf("GET /nothing = %d, %v", code, err)
	}
	// Something that is not HTTP on the socket is an error, not a hang.
	bogus := filepath.Join(t.TempDir(), "bogus.sock")
	l, err := net.Listen("unix", bogus)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	go func() {
		if c, err := l.Accept(); err == nil {
			c.Read(make([]byte, 256)) // the request, then an answer that is not HTTP
			c.Write([]byte("SSH-2.0-nope\r\n"))
			c.Close()
		}
	}()
	if err := newAPIClient(bogus).ready(ctx); err == nil || !strings.Contains(err.Error(), "not an HTTP answer") {
		t.Errorf("ready on a non-HTTP socket: %v", err)
	}
}

// startFakeAPIServer supervises a stand-in apiserver process whose readiness is the real check
// against the fake API.
func startFakeAPIServer(t *testing.T, i *Init) {
	t.Helper()
	api := newAPIClient(i.path(contract.APISocket))
	sup, err := supervise.New(supervise.Options{Console: i.console, ProbeInterval: 5 * time.Millisecond},
		supervise.Service{
			ID:      "apiserver",
			Runner:  &supervise.Exec{Reaper: testReaper, Path: "/bin/sleep", Args: []string{"30"}, Console: i.console},
			Ready:   api.ready,
			Restart: supervise.RestartAlways,
		})
	if err != nil {
		t.Fatal(err)
	}
	if err := sup.Start(); err != nil {
		t.Fatal(err)
	}
	i.sup = sup
	t.Cleanup(func() { sup.Stop(context.Background()) })
}

func TestAnnounce(t *testing.T) {
	hash := strings.Repeat("0f", 32)
	tests := []struct {
		name, rendered, motd string
	}{
		{"with motd", "Welcome to Ballast!\n", "Welcome to Ballast!\n"},
		{"without motd", "", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			i, _, out := testInit(t)
			i.image.Services = []string{"apiserver"}
			i.identity = contract.Identity{Version: "0.1.0", Variant: "qemu", Slot: "a", RootHash: hash}
			startFakeAPIServer(t, i)
			close(i.bootDone)
			go i.initRandom(context.Background())
			go i.announce(context.Background())
			time.Sleep(50 * time.Millisecond)
			if strings.Contains(out.String(), "ready version") {
				t.Fatal("ready line before the API answers")
			}
			fakeAPI(t, i, tt.rendered)
			select {
			case <-i.announced:
			case <-time.After(10 * time.Second):
				t.Fatalf("not announced; console:\n%s", out)
			}
			ready := "[  1.500000] ballast: ready version=0.1.0 variant=qemu slot=a roothash=" + hash + "\n"
			_, after, ok := strings.Cut(out.String(), ready)
			if !ok {
				t.Fatalf("console lacks %q:\n%s", ready, out)
			}
			if after != tt.motd {
				t.Errorf("after the ready line: %q, want %q", after, tt.motd)
			}
		})
	}
}

func TestAnnounceWithoutAPIServer(t *testing.T) {
	i, _, out := testInit(t)
	go i.initRandom(context.Background())
	i.announce(context.Background())
	select {
	case <-i.announced:
	default:
		t.Fatal("the gate stays shut: a console shell would never start")
	}
	if !strings.Contains(out.String(), "ballast: error: no service serves the API: no ready line") {
		t.Errorf("console:\n%s", out)
	}
}

// The ready line waits for the kernel's random pool: it promises a remote API that can do TLS.
// The ready line waits for each of the boot's background tasks, whichever ends last.
func TestReadyWaitsForBackgroundBoot(t *testing.T) {
	for _, last := range []string{"random pool", "boot modules"} {
		t.Run(last, func(t *testing.T) {
			hash := strings.Repeat("0f", 32)
			i, _, out := testInit(t)
			release := make(chan struct{})
			i.random = func(ctx context.Context) (string, error) {
				if last == "random pool" {
					<-release
				}
				return "pool ready after 1.00s (seed none; new seed saved)", nil
			}
			i.image.Services = []string{"apiserver"}
			i.identity = contract.Identity{Version: "0.1.0", Variant: "qemu", Slot: "a", RootHash: hash}
			startFakeAPIServer(t, i)
			fakeAPI(t, i, "")
			go i.initRandom(context.Background())
			if last == "boot modules" {
				go func() {
					<-release
					close(i.bootDone)
				}()
			} else {
				close(i.bootDone)
			}
			go i.announce(context.Background())
			time.Sleep(500 * time.Millisecond)
			if strings.Contains(out.String(), "ready version") {
				t.Fatalf("ready line before the %s:\n%s", last, out)
			}
			close(release)
			select {
			case <-i.announced:
			case <-time.After(10 * time.Second):
				t.Fatalf("not announced; console:\n%s", out)
			}
			random := strings.Index(out.String(), "ballast: random pool ready")
			ready := strings.Index(out.String(), "ballast: ready version")
			if random < 0 || ready < random {
				t.Errorf("want the random milestone, then the ready line:\n%s", out)
			}
		})
	}
}

// The ready line waits for the services that ask for it (the host-container manager, until its
// bootstrap containers are done), and there is none when one of them fails.
func TestReadyWaitsForReadyLineServices(t *testing.T) {
	for _, fail := range []bool{false, true} {
		t.Run(map[bool]string{false: "ready", true: "failed"}[fail], func(t *testing.T) {
			i, _, out := testInit(t)
			close(i.bootDone)
			i.random = func(context.Context) (string, error) { return "pool ready (test)", nil }
			go i.initRandom(context.Background())
			i.image.Services = []string{"apiserver", "host-containers"}
			i.identity = contract.Identity{Version: "0.1.0", Variant: "qemu", Slot: "a", RootHash: strings.Repeat("0f", 32)}
			api := newAPIClient(i.path(contract.APISocket))
			release := make(chan struct{})
			gate := supervise.Service{ID: "host-containers", Restart: supervise.RestartNever,
				Runner: &supervise.Exec{Reaper: testReaper, Path: "/bin/sleep", Args: []string{"30"}, Console: i.console},
				Ready: func(ctx context.Context) error {
					select {
					case <-release:
					case <-ctx.Done():
						return ctx.Err()
					}
					if fail {
						return errors.New("bootstrap failed")
					}
					return nil
				}}
			if fail {
				gate.Runner = &supervise.Exec{Reaper: testReaper, Path: "/bin/sh", Args: []string{"-c", "read x <&-; exit 3"}, Console: i.console}
				gate.Ready = func(ctx context.Context) error { <-ctx.Done(); return ctx.Err() }
			}
			sup, err := supervise.New(supervise.Options{Console: i.console, ProbeInterval: 5 * time.Millisecond},
				supervise.Service{ID: "apiserver", Restart: supervise.RestartAlways, Ready: api.ready,
					Runner: &supervise.Exec{Reaper: testReaper, Path: "/bin/sleep", Args: []string{"30"}, Console: i.console}},
				gate)
			if err != nil {
				t.Fatal(err)
			}
			if err := sup.Start(); err != nil {
				t.Fatal(err)
			}
			i.sup = sup
			t.Cleanup(func() { sup.Stop(context.Background()) })
			fakeAPI(t, i, "")
			go i.announce(context.Background())
			time.Sleep(500 * time.Millisecond)
			if strings.Contains(out.String(), "ready version") {
				t.Fatalf("ready line before host-containers is ready:\n%s", out)
			}
			close(release)
			select {
			case <-i.announced:
			case <-time.After(10 * time.Second):
				t.Fatalf("not announced; console:\n%s", out)
			}
			ready := strings.Contains(out.String(), "ballast: ready version")
			if ready == fail {
				t.Errorf("ready line %v, want %v:\n%s", ready, !fail, out)
			}
			if fail && !strings.Contains(out.String(), "no ready line") {
				t.Errorf("no console error for the failed service:\n%s", out)
			}
		})
	}
}
