package daemon

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ballast-os/ballast/contract"

	"github.com/ballast-os/ballast/apiserver/apitypes"
	"github.com/ballast-os/ballast/apiserver/client"
	"github.com/ballast-os/ballast/apiserver/initclient/initclienttest"
	"github.com/ballast-os/ballast/apiserver/report"
	"github.com/ballast-os/ballast/apiserver/settings"
	"github.com/ballast-os/ballast/apiserver/userdata"
	"github.com/ballast-os/ballast/builder/devpki"
	"github.com/ballast-os/ballast/init/harden/hardentest"
)

func writeFile(t *testing.T, path, content string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
}

// imds serves user data with the IMDSv2 token flow.
func imds(t *testing.T, ud string) string {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch {
		case r.Method == "PUT" && r.URL.Path == "/latest/api/token" && r.Header.Get("X-aws-ec2-metadata-token-ttl-seconds") != "":
			w.Write([]byte("t0k"))
		case r.Method == "GET" && r.URL.Path == "/latest/user-data" && r.Header.Get("X-aws-ec2-metadata-token") == "t0k":
			w.Write([]byte(ud))
		default:
			http.Error(w, "no", http.StatusForbidden)
		}
	}))
	t.Cleanup(srv.Close)
	return srv.URL
}

// TestUserDataSources gives a first boot every kind of source: later sources override earlier
// ones, an invalid source contributes nothing while the others still apply, and GET /userdata
// tells the whole story.
func TestUserDataSources(t *testing.T) {
	ctx := context.Background()
	h := newHost(t)
	defaults := filepath.Join(h.dir, "defaults.toml")
	writeFile(t, defaults, "[settings]\nmotd = \"default motd\"\n[settings.container-runtime]\nmax-concurrent-downloads = 3\n")
	seed := filepath.Join(h.dir, "seed")
	writeFile(t, seed, "[settings]\nmotd = \"from the seed\"\n[settings.network]\nhostname = \"seeded\"\n")
	cmdline := filepath.Join(h.dir, "proc-cmdline")
	cmdUD := base64.StdEncoding.EncodeToString([]byte("[settings.network]\nhostname = \"from-cmdline\"\n"))
	writeFile(t, cmdline, "console=ttyS0 ballast.userdata="+cmdUD+"\n")
	h.defaults = userdata.File(defaults)
	h.userData = []userdata.NamedSource{
		{Name: "nocloud", Source: userdata.File(seed)},
		{Name: "imds", Source: userdata.IMDS{Endpoint: imds(t, "[settings]\nmotd = \"from imds\"\n[settings.kernel]\nlockdown = \"sometimes\"\n")}},
		{Name: "cmdline", Source: userdata.Cmdline{Path: cmdline}},
	}
	srv := h.start(t)
	c := client.New(h.socket)
	defer c.Close()

	s, err := c.Settings(ctx)
	if err != nil {
		t.Fatal(err)
	}
	// The wave seed the server drew for the host, checked in TestUpdateSeed.
	if s.Updates == nil || s.Updates.Seed == nil {
		t.Fatalf("no settings.updates.seed: %+v", s.Updates)
	}
	s.Updates = nil
	// IMDS was invalid (lockdown), so its motd is not applied either: the seed's motd wins over
	// the default, the command line's host name over the seed's.
	want := `{"motd":"from the seed","network":{"hostname":"from-cmdline"},"container-runtime":{"max-concurrent-downloads":3}}`
	if got, _ := json.Marshal(s); string(got) != want {
		t.Fatalf("settings = %s, want %s", got, want)
	}
	ud, err := c.UserData(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if ud.State != apitypes.UserDataInvalid || ud.Key != "settings.kernel.lockdown" || ud.Line != 4 || !strings.HasSuffix(ud.Source, "/latest/user-data") {
		t.Fatalf("UserData = %+v", ud)
	}
	var states []string
	for _, src := range ud.Sources {
		states = append(states, src.Name+":"+src.State)
	}
	if want := []string{"defaults:applied", "nocloud:applied", "imds:invalid", "cmdline:applied"}; !reflect.DeepEqual(states, want) {
		t.Fatalf("sources %q, want %q", states, want)
	}
	if !reflect.DeepEqual(ud.Keys, []string{"settings.motd", "settings.network.hostname"}) {
		t.Fatalf("user data keys %q", ud.Keys)
	}
	console := srv.console.String()
	for _, line := range []string{
		"ballast: userdata: applied 2 default settings from " + defaults + "\n",
		"ballast: userdata: applied 2 settings from " + seed + "\n",
		"/latest/user-data: line 4: key settings.kernel.lockdown: \"sometimes\" is not one of none, integrity, confidentiality\n",
		"ballast: userdata: applied 1 settings from " + cmdline + ":ballast.userdata\n",
	} {
		if !strings.Contains(console, line) {
			t.Errorf("console lacks %q:\n%s", line, console)
		}
	}
	if got := readFile(t, filepath.Join(h.etc, "hostname")); got != "from-cmdline\n" {
		t.Fatalf("/etc/hostname = %q", got)
	}

	// Later boots: user data is not read again, but keys new in the image's defaults arrive,
	// without overriding what is set.
	srv.stop()
	writeFile(t, defaults, "[settings]\nmotd = \"new default\"\n[settings.ntp]\ntime-servers = [\"pool.example\"]\n")
	writeFile(t, seed, "[settings]\nmotd = \"second boot\"\n")
	srv = h.start(t)
	s, err = c.Settings(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if *s.Motd != "from the seed" || s.NTP == nil || s.NTP.TimeServers[0] != "pool.example" {
		t.Fatalf("settings on the second boot = %+v", s)
	}
	ud, _ = c.UserData(ctx)
	if ud.State != apitypes.UserDataNotChecked || len(ud.Sources) != 1 || ud.Sources[0].Keys == nil {
		t.Fatalf("UserData on the second boot = %+v", ud)
	}
	if !strings.Contains(srv.console.String(), "applied 2 default settings") {
		t.Fatalf("console on the second boot: %s", srv.console)
	}
}

// TestInvalidDefaults keeps serving when the image's defaults are broken.
func TestInvalidDefaults(t *testing.T) {
	h := newHost(t)
	defaults := filepath.Join(h.dir, "defaults.toml")
	writeFile(t, defaults, "[settings]\nmotd = 1\n")
	h.defaults = userdata.File(defaults)
	srv := h.start(t)
	c := client.New(h.socket)
	defer c.Close()
	ud, err := c.UserData(context.Background())
	if err != nil || ud.Sources[0].State != apitypes.UserDataInvalid || ud.Sources[0].Line != 2 {
		t.Fatalf("UserData = %+v, %v", ud, err)
	}
	if !strings.Contains(srv.console.String(), "ballast: userdata: "+defaults+": line 2: key settings.motd: expected string") {
		t.Fatalf("console: %s", srv.console)
	}
}

// testInit stands in for the system init behind the real socket protocol.
type testInit struct {
	mu        sync.Mutex
	restarted []string
}

func (i *testInit) Services(context.Context) ([]apitypes.Service, error) {
	return []apitypes.Service{{ID: "apiserver", State: "ready"}, {ID: "containerd", State: "ready"}}, nil
}

func (i *testInit) Restart(_ context.Context, ids ...string) error {
	i.mu.Lock()
	defer i.mu.Unlock()
	i.restarted = append(i.restarted, ids...)
	return nil
}

func (i *testInit) Reboot(context.Context) error { return nil }

// TestRenderAndRestarts checks the host side of settings: files rendered at start and on change,
// sysctls written to /proc, and only the services whose files changed restarted.
func TestRenderAndRestarts(t *testing.T) {
	ctx := context.Background()
	h := newHost(t)
	h.proc = filepath.Join(hardentest.Root(t), "proc")
	sysctl := filepath.Join(h.proc, "sys", "net", "ipv4", "ip_forward")
	os.MkdirAll(filepath.Dir(sysctl), 0o755)
	writeFile(t, sysctl, "0\n")
	ti := &testInit{}
	logs := filepath.Join(h.dir, "logs")
	if err := os.MkdirAll(logs, 0o755); err != nil {
		t.Fatal(err)
	}
	h.init = initclienttest.Start(t, ti, logs)
	h.start(t)
	c := client.New(h.socket)
	defer c.Close()

	res, err := c.Apply(ctx, mustSettings(t, `{"kernel":{"sysctl":{"net.ipv4.ip_forward":"1"}},"dns":{"name-servers":["10.0.0.2"]},"motd":"m"}`))
	if err != nil {
		t.Fatal(err)
	}
	// settings.dns goes to the network service's file; this init runs no network service to restart.
	if res.Restarted != nil || !slices.Contains(res.Files, "/etc/ballast/network.json") {
		t.Fatalf("apply = %+v", res)
	}
	if got := readFile(t, sysctl); got != "1" {
		t.Fatalf("ip_forward = %q", got)
	}
	if got := readFile(t, filepath.Join(h.etc, "sysctl.d", "ballast.conf")); !strings.Contains(got, "net.ipv4.ip_forward = 1\n") {
		t.Fatalf("sysctl.d/ballast.conf = %q", got)
	}
	res, err = c.Apply(ctx, mustSettings(t, `{"network":{"https-proxy":"proxy:3128"},"motd":"m2"}`))
	if err != nil || !reflect.DeepEqual(res.Restarted, []string{"containerd"}) {
		t.Fatalf("apply of a proxy = %+v, %v", res, err)
	}
	svcs, err := c.Services(ctx)
	if err != nil || len(svcs) != 2 {
		t.Fatalf("Services = %+v, %v", svcs, err)
	}
	if !reflect.DeepEqual(ti.restarted, []string{"containerd"}) {
		t.Fatalf("restarted %q", ti.restarted)
	}
	// The mapping the API lists is the one applied.
	b, err := c.Do(ctx, "GET", "/configuration-files", nil)
	if err != nil || !strings.Contains(string(b), `"name":"remote-api"`) {
		t.Fatalf("GET /configuration-files = %s, %v", b, err)
	}
}

func mustSettings(t *testing.T, body string) settings.Settings {
	t.Helper()
	s, err := settings.DecodeJSON(strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// TestRemoteAPI drives the real server through the client package over the Unix socket and over
// mutual TLS on TCP, turning the remote API on, moving it and turning it off through settings.
func TestRemoteAPI(t *testing.T) {
	ctx := context.Background()
	h := newHost(t)
	h.remoteAddrs = make(chan net.Addr, 4)
	h.report = &report.Sources{Root: t.TempDir()}
	h.start(t)
	local := client.New(h.socket)
	defer local.Close()

	dir := filepath.Join(h.dir, "pki")
	if err := devpki.GenerateDev(dir, []string{"localhost", "127.0.0.1"}); err != nil {
		t.Fatal(err)
	}
	read := func(name string) string { return readFile(t, filepath.Join(dir, name)) }
	remoteSettings := func(listen string, enabled bool) settings.Settings {
		b, _ := json.Marshal(map[string]any{"api": map[string]any{"remote": map[string]any{
			"enabled": enabled, "listen": listen,
			"client-ca": read(contract.PKICACert), "server-cert": read(contract.PKIServerCert), "server-key": read(contract.PKIServerKey),
		}}})
		return mustSettings(t, string(b))
	}
	if _, err := local.Apply(ctx, remoteSettings("127.0.0.1:0", true)); err != nil {
		t.Fatal(err)
	}
	addr := waitAddr(t, h.remoteAddrs)

	cfg, err := client.LoadPKI(dir)
	if err != nil {
		t.Fatal(err)
	}
	remote, err := client.NewRemote("https://"+addr.String(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer remote.Close()
	if _, err := remote.Set(ctx, []string{"motd=set remotely"}); err != nil {
		t.Fatal(err)
	}
	got, err := local.Get(ctx, "settings.motd")
	if err != nil || fmt.Sprint(got) != "map[settings:map[motd:set remotely]]" {
		t.Fatalf("local Get after a remote set = %v, %v", got, err)
	}
	if _, err := remote.OS(ctx); err != nil {
		t.Fatal(err)
	}

	// The hardening report probes the live listener the way an anonymous client would.
	if c := hardeningCheck(t, local, "remote-api-client-auth"); c.Status != apitypes.CheckPass || !strings.Contains(c.Observed, "refused") {
		t.Errorf("the report's remote API check with the listener up: %+v", c)
	}

	// A client without a certificate gets nothing.
	anonCfg := cfg.Clone()
	anonCfg.Certificates = nil
	anon, _ := client.NewRemote("https://"+addr.String(), anonCfg)
	if _, err := anon.OS(ctx); err == nil {
		t.Fatal("a client without a certificate was served")
	}

	// Moving the listener through the remote API itself: the request that does it is answered,
	// then the old address goes away and the new one serves.
	if _, err := remote.Apply(ctx, remoteSettings("localhost:0", true)); err != nil {
		t.Fatalf("moving the remote API through itself: %v", err)
	}
	moved := waitAddr(t, h.remoteAddrs)
	if moved.String() == addr.String() {
		t.Fatal("the remote API did not move")
	}
	remote2, _ := client.NewRemote("https://"+moved.String(), cfg)
	defer remote2.Close()
	if _, err := remote2.OS(ctx); err != nil {
		t.Fatalf("remote API at its new address: %v", err)
	}
	fresh, _ := client.NewRemote("https://"+addr.String(), cfg)
	if _, err := fresh.OS(ctx); err == nil {
		t.Fatal("the old remote address still serves")
	}

	// Turning it off.
	if _, err := local.Set(ctx, []string{"api.remote.enabled=false"}); err != nil {
		t.Fatal(err)
	}
	fresh2, _ := client.NewRemote("https://"+moved.String(), cfg)
	if _, err := fresh2.OS(ctx); err == nil {
		t.Fatal("a disabled remote API still serves")
	}
	if c := hardeningCheck(t, local, "remote-api-client-auth"); c.Status != apitypes.CheckPass || c.Observed != "remote API off" {
		t.Errorf("the report's remote API check with the listener off: %+v", c)
	}
	var apiErr *client.Error
	if _, err := local.Set(ctx, []string{"api.remote.enabled=true", "api.remote.listen=:99999"}); !errors.As(err, &apiErr) || apiErr.Key != "settings.api.remote.listen" {
		t.Fatalf("bad listen address: %v", err)
	}
}

// hardeningCheck returns one check of GET /report/hardening.
func hardeningCheck(t *testing.T, c *client.Client, id string) apitypes.HardeningCheck {
	t.Helper()
	rep, err := c.Hardening(context.Background())
	if err != nil {
		t.Fatalf("GET /report/hardening: %v", err)
	}
	for _, ch := range rep.Checks {
		if ch.ID == id {
			return ch
		}
	}
	t.Fatalf("the hardening report has no check %s", id)
	return apitypes.HardeningCheck{}
}

func waitAddr(t *testing.T, ch chan net.Addr) net.Addr {
	t.Helper()
	select {
	case a := <-ch:
		return a
	case <-time.After(10 * time.Second):
		t.Fatal("the remote API did not start listening")
		return nil
	}
}
