package daemon

import (
	"context"
	"errors"
	"net"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ballast-os/ballast/apiserver/api"
	"github.com/ballast-os/ballast/apiserver/apitypes"
	"github.com/ballast-os/ballast/apiserver/client"
	"github.com/ballast-os/ballast/apiserver/initclient"
	"github.com/ballast-os/ballast/apiserver/osinfo"
	"github.com/ballast-os/ballast/apiserver/report"
	"github.com/ballast-os/ballast/apiserver/userdata"
	"github.com/ballast-os/ballast/contract"
	"github.com/ballast-os/ballast/tests/testutil"
)

// host is the directories one test server works in, standing in for the host's /local, /etc, /run.
type host struct {
	dir, socket, datastore, etc string
	osSrc                       osinfo.Sources
	userData                    []userdata.NamedSource
	defaults                    userdata.Source
	proc                        string
	report                      *report.Sources
	init                        initclient.Init
	remoteAddrs                 chan net.Addr
	updatePolicy                contract.UpdatePolicy
	newUpdater                  func(UpdaterEnv) (api.Updater, error)

	mu        sync.Mutex // the server's goroutines call SetHostname
	hostnames []string
}

func (h *host) setHostname(name string) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.hostnames = append(h.hostnames, name)
	return nil
}

// takeHostnames returns the names set so far and forgets them.
func (h *host) takeHostnames() []string {
	h.mu.Lock()
	defer h.mu.Unlock()
	n := h.hostnames
	h.hostnames = nil
	return n
}

func newHost(t testing.TB) *host {
	t.Helper()
	dir := t.TempDir()
	h := &host{
		dir: dir,
		// Unix socket paths are limited to 108 bytes; t.TempDir() can be long, so keep the name short.
		socket:    filepath.Join(dir, "s"),
		datastore: filepath.Join(dir, "local", "var", "lib", "ballast", "datastore"),
		etc:       filepath.Join(dir, "etc"),
	}
	if err := os.MkdirAll(h.etc, 0o755); err != nil {
		t.Fatal(err)
	}
	rel, cmd := filepath.Join(dir, "os-release"), filepath.Join(dir, "cmdline")
	os.WriteFile(rel, []byte("ID=ballast\nNAME=Ballast\nVERSION_ID=0.1.0\nVARIANT_ID=qemu\nBUILD_ID=20250101\n"), 0o644)
	os.WriteFile(cmd, []byte("console=ttyS0 roothash="+strings.Repeat("0a", 32)+" ballast.slot=a\n"), 0o644)
	h.osSrc = osinfo.Sources{OSRelease: rel, Cmdline: cmd, Kernel: func() (string, error) { return "6.12.1-ballast", nil },
		Image: filepath.Join(dir, "image.json"), EFIVars: filepath.Join(dir, "efivars"), Machine: func() (string, error) { return "x86_64", nil }}
	return h
}

// running is one server process, in-process.
type running struct {
	console *testutil.Buffer
	stop    func() error
}

// start runs the server and waits until it listens.
func (h *host) start(t testing.TB) *running {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	r := &running{console: &testutil.Buffer{}}
	listening := make(chan struct{})
	done := make(chan error, 1)
	go func() {
		done <- Run(ctx, Options{
			Socket:    h.socket,
			Datastore: h.datastore,
			EtcDir:    h.etc,
			OS:        h.osSrc,
			UserData:  h.userData,
			Defaults:  h.defaults,
			AllowUID:  func(uid uint32) bool { return uid == uint32(os.Getuid()) },
			ProcDir:   h.proc,
			Report:    h.report,
			Init:      h.init,
			OnRemoteListen: func(a net.Addr) {
				if h.remoteAddrs != nil {
					h.remoteAddrs <- a
				}
			},
			SetHostname:  h.setHostname,
			UpdatePolicy: h.updatePolicy,
			NewUpdater:   h.newUpdater,
			Console:      r.console,
			OnListen:     func() { close(listening) },
		})
	}()
	select {
	case <-listening:
	case err := <-done:
		cancel()
		t.Fatalf("server exited before listening: %v\nconsole:\n%s", err, r.console)
	case <-time.After(10 * time.Second):
		cancel()
		t.Fatal("server did not listen within 10s")
	}
	var once sync.Once
	var stopErr error
	r.stop = func() error {
		once.Do(func() {
			cancel()
			select {
			case stopErr = <-done:
			case <-time.After(15 * time.Second):
				stopErr = errors.New("server did not stop within 15s")
			}
		})
		return stopErr
	}
	t.Cleanup(func() { r.stop() })
	return r
}

func readFile(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func TestEndToEnd(t *testing.T) {
	ctx := context.Background()
	h := newHost(t)
	srv := h.start(t)
	c := client.New(h.socket)
	defer c.Close()

	osInfo, err := c.OS(ctx)
	if err != nil {
		t.Fatal(err)
	}
	wantOS := apitypes.OS{Version: "0.1.0", Variant: "qemu", Slot: "a", RootHash: strings.Repeat("0a", 32), Kernel: "6.12.1-ballast", Arch: "x86_64", BuildID: "20250101",
		SecureBoot: "unsupported"}
	if osInfo != wantOS {
		t.Fatalf("OS = %+v, want %+v", osInfo, wantOS)
	}
	ud, err := c.UserData(ctx)
	if err != nil || ud.State != apitypes.UserDataNone {
		t.Fatalf("UserData on a first boot without a source = %+v, %v", ud, err)
	}

	changed, err := c.Set(ctx, []string{"motd=Welcome to Ballast", "settings.network.hostname=node-1"})
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(changed, []string{"settings.motd", "settings.network.hostname"}) {
		t.Fatalf("Set changed %v", changed)
	}
	got, err := c.Get(ctx, "settings.motd")
	if err != nil {
		t.Fatal(err)
	}
	if want := map[string]any{"settings": map[string]any{"motd": "Welcome to Ballast"}}; !reflect.DeepEqual(got, want) {
		t.Fatalf("Get(settings.motd) = %v, want %v", got, want)
	}
	if got := readFile(t, filepath.Join(h.etc, "motd")); got != "Welcome to Ballast\n" {
		t.Fatalf("/etc/motd = %q", got)
	}
	if got := readFile(t, filepath.Join(h.etc, "hostname")); got != "node-1\n" {
		t.Fatalf("/etc/hostname = %q", got)
	}
	if got := h.takeHostnames(); !reflect.DeepEqual(got, []string{"node-1"}) {
		t.Fatalf("sethostname calls %q", got)
	}

	// An invalid change is refused whole, with the server's message, and changes nothing.
	_, err = c.Set(ctx, []string{"motd=changed", "network.hostnme=x"})
	var apiErr *client.Error
	if !errors.As(err, &apiErr) || apiErr.Status != 400 || apiErr.Key != "settings.network.hostnme" ||
		apiErr.Message != "settings.network.hostnme: unknown key" {
		t.Fatalf("Set with an unknown key: %#v", err)
	}
	if p, err := c.Pending(ctx); err != nil || !p.IsEmpty() {
		t.Fatalf("pending after a refused patch = %+v, %v", p, err)
	}

	// Stage without committing: the change must not survive as live, but stays pending.
	if err := c.Patch(ctx, []byte(`{"motd":"staged only"}`)); err != nil {
		t.Fatal(err)
	}
	if err := srv.stop(); err != nil {
		t.Fatalf("stop: %v", err)
	}
	if _, err := os.Stat(h.socket); !os.IsNotExist(err) {
		t.Fatalf("socket left after shutdown: %v", err)
	}

	// Restart on the same datastore with a fresh /etc, as after a reboot.
	os.RemoveAll(h.etc)
	os.MkdirAll(h.etc, 0o755)
	h.start(t)
	c2 := client.New(h.socket)
	defer c2.Close()
	s, err := c2.Settings(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if *s.Motd != "Welcome to Ballast" || *s.Network.Hostname != "node-1" {
		t.Fatalf("settings after restart = %+v", s)
	}
	if got := readFile(t, filepath.Join(h.etc, "motd")); got != "Welcome to Ballast\n" {
		t.Fatalf("/etc/motd not re-applied at start: %q", got)
	}
	if got := h.takeHostnames(); !reflect.DeepEqual(got, []string{"node-1"}) {
		t.Fatalf("hostname not re-applied at start: %q", got)
	}
	if p, err := c2.Pending(ctx); err != nil || *p.Motd != "staged only" {
		t.Fatalf("pending after restart = %+v, %v", p, err)
	}
	if ud, err := c2.UserData(ctx); err != nil || ud.State != apitypes.UserDataNotChecked {
		t.Fatalf("UserData after restart = %+v, %v", ud, err)
	}
}

func TestFirstBootUserData(t *testing.T) {
	tests := []struct {
		name        string
		userData    string // "" for no file
		wantState   string
		wantMotd    string // "" for unset
		wantConsole string
		wantLine    int
		wantKey     string
	}{
		{"valid", "[settings]\nmotd = \"from user data\"\n[settings.network]\nhostname = \"ud-host\"\n",
			apitypes.UserDataApplied, "from user data", "ballast: userdata: applied 2 settings from ", 0, ""},
		{"absent", "", apitypes.UserDataNone, "", "ballast: userdata: none", 0, ""},
		{"unknown key", "[settings]\nmotd = \"x\"\n[settings.network]\nhostnme = \"h\"\n",
			apitypes.UserDataInvalid, "", ":user-data: line 4: key settings.network.hostnme: unknown key\n", 4, "settings.network.hostnme"},
		{"syntax", "[settings]\nmotd = \"x\n", apitypes.UserDataInvalid, "", ":user-data: line 2: key settings.motd: ", 2, "settings.motd"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx := context.Background()
			h := newHost(t)
			udPath := filepath.Join(h.dir, "seed:user-data")
			if tt.userData != "" {
				os.WriteFile(udPath, []byte(tt.userData), 0o600)
			}
			h.userData = []userdata.NamedSource{{Name: "file", Source: userdata.File(udPath)}}
			srv := h.start(t)
			c := client.New(h.socket)
			defer c.Close()

			if !strings.Contains(srv.console.String(), tt.wantConsole) {
				t.Fatalf("console = %q, want it to contain %q", srv.console, tt.wantConsole)
			}
			if tt.wantState == apitypes.UserDataInvalid && !strings.HasPrefix(srv.console.String(), "ballast: userdata: "+udPath+": line") {
				t.Fatalf("console line %q does not start with the source", srv.console)
			}
			ud, err := c.UserData(ctx)
			if err != nil || ud.State != tt.wantState || ud.Line != tt.wantLine || ud.Key != tt.wantKey {
				t.Fatalf("UserData = %+v, %v; want state %s line %d key %s", ud, err, tt.wantState, tt.wantLine, tt.wantKey)
			}
			s, err := c.Settings(ctx)
			if err != nil {
				t.Fatal(err)
			}
			if got := ""; s.Motd != nil {
				got = *s.Motd
				if got != tt.wantMotd {
					t.Fatalf("motd = %q, want %q", got, tt.wantMotd)
				}
			} else if tt.wantMotd != "" {
				t.Fatalf("motd unset, want %q", tt.wantMotd)
			}
			if tt.wantState == apitypes.UserDataApplied {
				if got := readFile(t, filepath.Join(h.etc, "hostname")); got != "ud-host\n" {
					t.Fatalf("/etc/hostname = %q", got)
				}
			}

			// User data is read on the first boot only: changed user data is ignored later.
			srv.stop()
			os.WriteFile(udPath, []byte("[settings]\nmotd = \"second boot\"\n"), 0o600)
			h.start(t)
			c2 := client.New(h.socket)
			defer c2.Close()
			s, err = c2.Settings(ctx)
			if err != nil || s.Motd != nil && *s.Motd == "second boot" {
				t.Fatalf("user data re-applied on the second boot: %+v, %v", s, err)
			}
		})
	}
}

func TestStartFailures(t *testing.T) {
	h := newHost(t)
	// The socket path's directory does not exist.
	h.socket = filepath.Join(h.dir, "missing", "s")
	err := Run(context.Background(), Options{Socket: h.socket, Datastore: h.datastore, EtcDir: h.etc})
	if err == nil || !strings.Contains(err.Error(), "listen") {
		t.Fatalf("Run with an unusable socket path = %v", err)
	}
	// The datastore lock was released: a second attempt gets as far as the socket again.
	err = Run(context.Background(), Options{Socket: h.socket, Datastore: h.datastore, EtcDir: h.etc})
	if err == nil || strings.Contains(err.Error(), "in use") {
		t.Fatalf("second Run = %v; the datastore lock should have been released", err)
	}
}
