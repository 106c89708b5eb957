package api

import (
	"bufio"
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ballast-os/ballast/contract"

	"github.com/ballast-os/ballast/apiserver/apitypes"
	"github.com/ballast-os/ballast/apiserver/datastore"
	"github.com/ballast-os/ballast/apiserver/initclient"
	"github.com/ballast-os/ballast/apiserver/osinfo"
	"github.com/ballast-os/ballast/apiserver/render"
	"github.com/ballast-os/ballast/apiserver/report"
	"github.com/ballast-os/ballast/apiserver/settings"
	"github.com/ballast-os/ballast/apiserver/timeinfo"
	"github.com/ballast-os/ballast/init/efivar"
)

// testInit stands in for the system init behind the real socket protocol.
type testInit struct {
	mu      sync.Mutex
	reboots int
}

func (i *testInit) Services(context.Context) ([]apitypes.Service, error) {
	return []apitypes.Service{{ID: "apiserver", State: "ready", Pid: 7}}, nil
}
func (i *testInit) Restart(context.Context, ...string) error { return nil }
func (i *testInit) Reboot(context.Context) error {
	i.mu.Lock()
	defer i.mu.Unlock()
	i.reboots++
	return nil
}

type fixture struct {
	h       http.Handler
	store   *datastore.Store
	init    *testInit
	logDir  string
	mu      sync.Mutex
	applied [][]string // changed keys of each apply
	applyFn func(settings.Settings) error
}

func newFixture(t *testing.T) *fixture {
	t.Helper()
	dir := t.TempDir()
	store, _, err := datastore.New(filepath.Join(dir, "ds"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { store.Close() })
	rel, cmd := filepath.Join(dir, "os-release"), filepath.Join(dir, "cmdline")
	os.WriteFile(rel, []byte("VERSION_ID=1.2.3\nVARIANT_ID=qemu\nBUILD_ID=abc\n"), 0o644)
	os.WriteFile(cmd, []byte("roothash=00ff ballast.slot=b\n"), 0o644)
	timeState := filepath.Join(dir, "time.json")
	os.WriteFile(timeState, []byte(`{"state":"synced","servers":["ntp.test"],"last_sync":{"server":"ntp.test","stratum":2}}`), 0o644)

	f := &fixture{store: store, init: &testInit{}, logDir: filepath.Join(dir, "logs")}
	os.Mkdir(f.logDir, 0o755)
	sock := filepath.Join(dir, "init.sock")
	ln, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { contract.ServeInit(ctx, ln, f.init); close(done) }()
	t.Cleanup(func() { cancel(); <-done })
	ic := initclient.New(sock, f.logDir, filepath.Join(dir, "volatile"))
	ic.Poll = 10 * time.Millisecond

	f.h = NewHandler(Config{
		Store: store,
		Apply: func(_ context.Context, s settings.Settings, changed []string) (render.Result, error) {
			f.mu.Lock()
			f.applied = append(f.applied, changed)
			f.mu.Unlock()
			if f.applyFn != nil {
				return render.Result{}, f.applyFn(s)
			}
			return render.Result{Files: []string{"/etc/motd"}}, nil
		},
		Mapping: (&render.Renderer{}).Mapping,
		Init:    ic,
		OS: osinfo.Sources{OSRelease: rel, Cmdline: cmd, Kernel: func() (string, error) { return "6.1.0", nil },
			Image: filepath.Join(dir, "image.json"), EFIVars: filepath.Join(dir, "efivars"),
			Machine: func() (string, error) { return "x86_64", nil }},
		Time: timeinfo.Sources{State: timeState,
			Now:    func() time.Time { return time.Date(2026, 5, 1, 8, 0, 0, 0, time.UTC) },
			Kernel: func() (apitypes.KernelClock, error) { return apitypes.KernelClock{Synchronised: true}, nil }},
		Bundle: BundleSources{Mountinfo: filepath.Join(dir, "mountinfo"), Kmsg: filepath.Join(dir, "no-kmsg")},
	})
	os.WriteFile(filepath.Join(dir, "mountinfo"), []byte("22 1 254:0 / / ro,relatime - erofs /dev/dm-0 ro\n"), 0o644)
	return f
}

func (f *fixture) do(t *testing.T, method, path, body string) *httptest.ResponseRecorder {
	t.Helper()
	var req *http.Request
	if body == "" {
		req = httptest.NewRequest(method, path, nil)
	} else {
		req = httptest.NewRequest(method, path, strings.NewReader(body))
	}
	rec := httptest.NewRecorder()
	f.h.ServeHTTP(rec, req)
	if ct := rec.Header().Get("Content-Type"); rec.Code != http.StatusNoContent && ct != "application/json" && !strings.HasPrefix(path, "/logs?service") {
		t.Errorf("%s %s: Content-Type %q", method, path, ct)
	}
	return rec
}

func TestRequests(t *testing.T) {
	tests := []struct {
		name       string
		method     string
		path       string
		body       string
		wantStatus int
		wantBody   string // substring
		wantKey    string // for errors
	}{
		{"os", "GET", "/os", "", 200, `{"version":"1.2.3","variant":"qemu","slot":"b","roothash":"00ff","kernel":"6.1.0","arch":"x86_64","build_id":"abc","secure_boot":"unsupported"}`, ""},
		{"empty settings", "GET", "/settings", "", 200, `{}`, ""},
		{"patch", "PATCH", "/settings", `{"motd":"hi"}`, 204, "", ""},
		{"patch named tx", "PATCH", "/settings?tx=batch-1", `{"motd":"hi"}`, 204, "", ""},
		{"patch bad tx", "PATCH", "/settings?tx=../x", `{"motd":"hi"}`, 400, `transaction name \"../x\"`, ""},
		{"unknown key", "PATCH", "/settings", `{"network":{"hostnme":"x"}}`, 400, `"error":"settings.network.hostnme: unknown key"`, "settings.network.hostnme"},
		{"wrong type", "PATCH", "/settings", `{"motd":1}`, 400, "expected string", "settings.motd"},
		{"bad hostname", "PATCH", "/settings", `{"network":{"hostname":"a_b"}}`, 400, "only letters", "settings.network.hostname"},
		{"bad sysctl key", "PATCH", "/settings", `{"kernel":{"sysctl":{"a b":"1"}}}`, 400, "not a sysctl name", `settings.kernel.sysctl."a b"`},
		{"bad json", "PATCH", "/settings", `{"motd"`, 400, "invalid JSON", ""},
		{"too large", "PATCH", "/settings", `{"motd":"` + strings.Repeat("a", MaxBodyBytes) + `"}`, 413, "larger than 1048576 bytes", ""},
		{"keys filter unknown", "GET", "/settings?keys=motto", "", 400, "keys: settings.motto: unknown key", "settings.motto"},
		{"pending empty", "GET", "/tx", "", 200, `{}`, ""},
		{"tx list", "GET", "/tx/list", "", 200, `{"transactions":[]}`, ""},
		{"commit nothing", "POST", "/tx/commit_and_apply", "", 200, `{"changed":[]}`, ""},
		{"commit only nothing", "POST", "/tx/commit", "", 200, `{"changed":[]}`, ""},
		{"apply bad key", "POST", "/tx/apply?keys=nope", "", 400, "unknown key", "settings.nope"},
		{"userdata default", "GET", "/userdata", "", 200, `{"state":"not-checked","sources":[]}`, ""},
		{"services", "GET", "/services", "", 200, `{"services":[{"id":"apiserver","state":"ready","pid":7,"restarts":0,"last_exit":"","error":""}]}`, ""},
		{"configuration files", "GET", "/configuration-files", "", 200, `{"path":"/etc/ballast/proxy.env","keys":["settings.network.https-proxy","settings.network.no-proxy"],"services":["containerd"]}`, ""},
		{"reboot", "POST", "/actions/reboot", "", 202, `{"status":"rebooting"}`, ""},
		{"reboot by GET", "GET", "/actions/reboot", "", 405, "Method Not Allowed", ""},
		{"logs list", "GET", "/logs", "", 200, `{"services":[]}`, ""},
		{"logs of nothing", "GET", "/logs?service=none", "", 404, "log none: no log", ""},
		{"logs bad name", "GET", "/logs?service=../x", "", 400, "not a log source name", ""},
		{"logs bad follow", "GET", "/logs?service=x&follow=maybe", "", 400, "follow", ""},
		{"time", "GET", "/time", "", 200, `{"state":"synced","servers":["ntp.test"],"last_sync":{"server":"ntp.test","address":"","stratum":2,` +
			`"reference_id":"","offset_seconds":0,"delay_seconds":0,"jitter_seconds":0,"root_distance_seconds":0,"time":"0001-01-01T00:00:00Z"},` +
			`"updated":"0001-01-01T00:00:00Z","clock":"2026-05-01T08:00:00Z","kernel":{"synchronised":true,"max_error_seconds":0,` +
			`"est_error_seconds":0,"frequency_ppm":0}}`, ""},
		{"time by POST", "POST", "/time", "", 405, "Method Not Allowed", ""},
		{"not found", "GET", "/nope", "", 404, `"error":"GET /nope: Not Found"`, ""},
		{"method not allowed", "DELETE", "/settings", "", 405, "Method Not Allowed", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFixture(t)
			rec := f.do(t, tt.method, tt.path, tt.body)
			if rec.Code != tt.wantStatus {
				t.Fatalf("status = %d, want %d; body %s", rec.Code, tt.wantStatus, rec.Body)
			}
			if !strings.Contains(rec.Body.String(), tt.wantBody) {
				t.Fatalf("body = %s, want it to contain %s", rec.Body, tt.wantBody)
			}
			if rec.Code >= 400 {
				var e apitypes.Error
				if err := json.Unmarshal(rec.Body.Bytes(), &e); err != nil || e.Error == "" {
					t.Fatalf("error body %s is not an API error: %v", rec.Body, err)
				}
				if e.Key != tt.wantKey {
					t.Fatalf("key = %q, want %q", e.Key, tt.wantKey)
				}
			}
		})
	}
}

type step struct {
	method, path, body string
	wantStatus         int
	wantBody           string // exact, trimmed; "" to skip
}

func runSteps(t *testing.T, f *fixture, steps []step) {
	t.Helper()
	for i, s := range steps {
		rec := f.do(t, s.method, s.path, s.body)
		if rec.Code != s.wantStatus || s.wantBody != "" && strings.TrimSpace(rec.Body.String()) != s.wantBody {
			t.Fatalf("step %d %s %s: %d %s; want %d %s", i, s.method, s.path, rec.Code, rec.Body, s.wantStatus, s.wantBody)
		}
	}
}

func TestTransactions(t *testing.T) {
	f := newFixture(t)
	runSteps(t, f, []step{
		{"PATCH", "/settings", `{"motd":"one"}`, 204, ""},
		{"PATCH", "/settings", `{"network":{"hostname":"h"}}`, 204, ""},
		{"PATCH", "/settings", `{"motd":1}`, 400, ""}, // a bad patch leaves the staged ones alone
		{"PATCH", "/settings?tx=other", `{"kernel":{"sysctl":{"vm.swappiness":"10"}}}`, 204, ""},
		{"GET", "/tx", "", 200, `{"motd":"one","network":{"hostname":"h"}}`},
		{"GET", "/tx?tx=other", "", 200, `{"kernel":{"sysctl":{"vm.swappiness":"10"}}}`},
		{"GET", "/tx/list", "", 200, `{"transactions":["default","other"]}`},
		{"GET", "/settings", "", 200, `{}`},
		{"POST", "/tx/commit_and_apply", "", 200, `{"changed":["settings.motd","settings.network.hostname"],"files":["/etc/motd"]}`},
		{"GET", "/settings", "", 200, `{"motd":"one","network":{"hostname":"h"}}`},
		{"GET", "/tx", "", 200, `{}`},
		// Commit without apply, then apply those keys.
		{"POST", "/tx/commit?tx=other", "", 200, `{"changed":["settings.kernel.sysctl.\"vm.swappiness\""]}`},
		{"GET", "/tx/list", "", 200, `{"transactions":[]}`},
		{"POST", "/tx/apply?keys=kernel.sysctl.vm.swappiness", "", 200, `{"changed":["settings.kernel.sysctl.\"vm.swappiness\""],"files":["/etc/motd"]}`},
		// Filters.
		{"GET", "/settings?keys=motd", "", 200, `{"motd":"one"}`},
		{"GET", "/settings?keys=settings.motd,network.hostname", "", 200, `{"motd":"one","network":{"hostname":"h"}}`},
		{"GET", "/settings?prefix=kernel", "", 200, `{"kernel":{"sysctl":{"vm.swappiness":"10"}}}`},
		{"GET", "/settings?prefix=settings.dns", "", 200, `{}`},
		// Setting what is already live changes nothing and applies nothing.
		{"PATCH", "/settings", `{"motd":"one"}`, 204, ""},
		{"POST", "/tx/commit_and_apply", "", 200, `{"changed":[]}`},
		{"PATCH", "/settings", `{"motd":"two"}`, 204, ""},
		{"DELETE", "/tx", "", 204, ""},
		{"POST", "/tx/commit_and_apply", "", 200, `{"changed":[]}`},
		{"GET", "/settings?keys=motd", "", 200, `{"motd":"one"}`},
		// A commit breaking a rule across keys is refused with the key, and stays pending.
		{"PATCH", "/settings", `{"host-containers":{"admin":{"enabled":true}}}`, 204, ""},
		{"POST", "/tx/commit_and_apply", "", 400, ""},
		{"GET", "/tx", "", 200, `{"host-containers":{"admin":{"enabled":true}}}`},
	})
	want := [][]string{{"settings.motd", "settings.network.hostname"}, {`settings.kernel.sysctl."vm.swappiness"`}}
	if fmt.Sprint(f.applied) != fmt.Sprint(want) {
		t.Fatalf("applied %q; want %q", f.applied, want)
	}
	rec := f.do(t, "POST", "/tx/commit_and_apply", "")
	var e apitypes.Error
	json.Unmarshal(rec.Body.Bytes(), &e)
	if e.Key != "settings.host-containers.admin.source" {
		t.Fatalf("refused commit: %s", rec.Body)
	}
}

func TestApplyFailureKeepsCommit(t *testing.T) {
	f := newFixture(t)
	f.applyFn = func(settings.Settings) error { return errors.New("disk on fire") }
	f.do(t, "PATCH", "/settings", `{"motd":"x"}`)
	rec := f.do(t, "POST", "/tx/commit_and_apply", "")
	if rec.Code != 500 || !strings.Contains(rec.Body.String(), "committed, but apply failed: disk on fire") {
		t.Fatalf("commit_and_apply = %d %s", rec.Code, rec.Body)
	}
	if m := f.store.Live().Motd; m == nil || *m != "x" {
		t.Fatalf("live motd = %v after a failed apply; the commit should stand", m)
	}
}

func TestWithoutInit(t *testing.T) {
	store, _, err := datastore.New(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	h := NewHandler(Config{Store: store, OS: osinfo.Sources{OSRelease: "/nonexistent/os-release"}})
	for _, r := range []struct{ method, path string }{{"GET", "/services"}, {"POST", "/actions/reboot"}, {"GET", "/logs?service=x"}} {
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, httptest.NewRequest(r.method, r.path, nil))
		if rec.Code != 503 || !strings.Contains(rec.Body.String(), "system init is not reachable") {
			t.Errorf("%s %s without an init = %d %s", r.method, r.path, rec.Code, rec.Body)
		}
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest("GET", "/report/hardening", nil))
	if rec.Code != 503 || !strings.Contains(rec.Body.String(), "no hardening report") {
		t.Errorf("GET /report/hardening without a reporter = %d %s", rec.Code, rec.Body)
	}
	for _, r := range []struct{ method, path string }{{"GET", "/report/boot"}, {"POST", "/actions/report/boot/acknowledge-recovery-key"}} {
		rec = httptest.NewRecorder()
		h.ServeHTTP(rec, httptest.NewRequest(r.method, r.path, nil))
		if rec.Code != 503 || !strings.Contains(rec.Body.String(), "no boot report") {
			t.Errorf("%s %s without a reporter = %d %s", r.method, r.path, rec.Code, rec.Body)
		}
	}
	rec = httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest("GET", "/os", nil))
	if rec.Code != 500 || !strings.Contains(rec.Body.String(), "os-release") {
		t.Fatalf("GET /os = %d %s", rec.Code, rec.Body)
	}
	// An init whose socket is missing is unavailable too.
	h = NewHandler(Config{Store: store, Init: initclient.New(filepath.Join(t.TempDir(), "none"), "", "")})
	rec = httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest("GET", "/services", nil))
	if rec.Code != 503 {
		t.Fatalf("GET /services with a missing init socket = %d %s", rec.Code, rec.Body)
	}
}

func TestHardeningReport(t *testing.T) {
	store, _, err := datastore.New(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	h := NewHandler(Config{Store: store, Hardening: func(context.Context) apitypes.HardeningReport {
		return apitypes.HardeningReport{Failed: 1, Checks: []apitypes.HardeningCheck{{ID: "lockdown", Status: apitypes.CheckFail, Observed: "none"}}}
	}})
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest("GET", "/report/hardening", nil))
	want := `{"passed":0,"failed":1,"expected_fail":0,"checks":[{"id":"lockdown","title":"","status":"fail","observed":"none"}]}` + "\n"
	if rec.Code != 200 || rec.Body.String() != want {
		t.Errorf("GET /report/hardening = %d %s, want %s", rec.Code, rec.Body, want)
	}
}

func TestRebootAndLogs(t *testing.T) {
	f := newFixture(t)
	if rec := f.do(t, "POST", "/actions/reboot", ""); rec.Code != 202 || f.init.reboots != 1 {
		t.Fatalf("reboot = %d %s, reboots %d", rec.Code, rec.Body, f.init.reboots)
	}
	logPath := filepath.Join(f.logDir, "containerd.log")
	os.WriteFile(logPath, []byte("started\n"), 0o644)
	rec := f.do(t, "GET", "/logs?service=containerd", "")
	if rec.Code != 200 || rec.Body.String() != "started\n" || !strings.HasPrefix(rec.Header().Get("Content-Type"), "text/plain") {
		t.Fatalf("logs = %d %q %v", rec.Code, rec.Body, rec.Header())
	}
	if rec := f.do(t, "GET", "/logs", ""); rec.Body.String() != "{\"services\":[\"containerd\"]}\n" {
		t.Fatalf("log list = %s", rec.Body)
	}
	// Earlier files first; ?lines= takes the end.
	os.WriteFile(logPath+".1", []byte("before\n"), 0o644)
	if rec := f.do(t, "GET", "/logs?service=containerd", ""); rec.Body.String() != "before\nstarted\n" {
		t.Fatalf("logs with a rotated file = %q", rec.Body)
	}
	if rec := f.do(t, "GET", "/logs?service=containerd&lines=1", ""); rec.Code != 200 || rec.Body.String() != "started\n" {
		t.Fatalf("last line = %d %q", rec.Code, rec.Body)
	}
	for _, bad := range []string{"service=containerd&lines=-1", "service=containerd&lines=x", "service=containerd&follow=maybe", "service=../x"} {
		if rec := f.do(t, "GET", "/logs?"+bad, ""); rec.Code != 400 {
			t.Errorf("GET /logs?%s = %d %s", bad, rec.Code, rec.Body)
		}
	}
	if rec := f.do(t, "GET", "/logs?service=nothing", ""); rec.Code != 404 {
		t.Errorf("log of a source without one = %d %s", rec.Code, rec.Body)
	}
	os.Remove(logPath + ".1")

	// Following over a real connection: appended lines arrive; closing the client ends it.
	srv := httptest.NewServer(f.h)
	defer srv.Close()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, "GET", srv.URL+"/logs?service=containerd&follow=true", nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	br := bufio.NewReader(resp.Body)
	if l, _ := br.ReadString('\n'); l != "started\n" {
		t.Fatalf("first line %q", l)
	}
	fh, _ := os.OpenFile(logPath, os.O_APPEND|os.O_WRONLY, 0)
	fh.WriteString("more\n")
	fh.Close()
	if l, err := br.ReadString('\n'); l != "more\n" {
		t.Fatalf("followed line %q, %v", l, err)
	}
	cancel()
	if _, err := io.ReadAll(br); err == nil {
		t.Log("stream ended cleanly after cancel")
	}
}

func TestListenUnix(t *testing.T) {
	dir := t.TempDir()
	sock := filepath.Join(dir, "api.sock")
	ln, err := ListenUnix(sock)
	if err != nil {
		t.Fatal(err)
	}
	st, err := os.Stat(sock)
	if err != nil || st.Mode().Perm() != 0o600 {
		t.Fatalf("socket mode = %v, %v; want 0600", st.Mode(), err)
	}
	if _, err := ListenUnix(sock); err == nil || !strings.Contains(err.Error(), "another server") {
		t.Fatalf("second listen on a live socket: %v", err)
	}
	// A socket file whose server died (no unlink on close, as after a crash).
	ln.(interface{ SetUnlinkOnClose(bool) }).SetUnlinkOnClose(false)
	ln.Close()
	if _, err := os.Stat(sock); err != nil {
		t.Fatalf("stale socket setup: %v", err)
	}
	ln2, err := ListenUnix(sock)
	if err != nil {
		t.Fatalf("listen over a stale socket: %v", err)
	}
	ln2.Close()

	regular := filepath.Join(dir, "file")
	os.WriteFile(regular, nil, 0o600)
	if _, err := ListenUnix(regular); err == nil || !strings.Contains(err.Error(), "not a socket") {
		t.Fatalf("listen over a regular file: %v", err)
	}
}

// TestPeerCredentials serves the Unix socket with uid checks: the test's own uid is let in or
// turned away by the allow function, as root and non-root callers are on a host.
func TestPeerCredentials(t *testing.T) {
	f := newFixture(t)
	me := uint32(os.Getuid())
	tests := []struct {
		name    string
		allowed func(uint32) bool
		want    int
	}{
		{"allowed", func(uid uint32) bool { return uid == me }, 200},
		{"refused", func(uid uint32) bool { return uid != me }, 403},
		{"root only", nil, map[bool]int{true: 200, false: 403}[me == 0]},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			sock := filepath.Join(t.TempDir(), "s")
			ln, err := ListenUnix(sock)
			if err != nil {
				t.Fatal(err)
			}
			srv := UnixServer(f.h, tt.allowed, nil)
			go srv.Serve(ln)
			defer srv.Close()
			c := &http.Client{Transport: &http.Transport{DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
				return (&net.Dialer{}).DialContext(ctx, "unix", sock)
			}}}
			resp, err := c.Get("http://x/settings")
			if err != nil {
				t.Fatal(err)
			}
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != tt.want {
				t.Fatalf("status %d %s, want %d", resp.StatusCode, body, tt.want)
			}
			if tt.want == 403 && !strings.Contains(string(body), fmt.Sprintf("uid %d may not use the API", me)) {
				t.Fatalf("403 body %s", body)
			}
		})
	}
}

// TestMutualTLS serves the API on TCP with the remote API's TLS configuration and checks who
// gets in: only TLS 1.3 clients with a certificate from the configured CA.
func TestMutualTLS(t *testing.T) {
	f := newFixture(t)
	ca, srvCert, srvKey := testCA(t, "127.0.0.1")
	other, _, _ := testCA(t, "127.0.0.1")
	cfg, err := TLSConfig(srvCert, srvKey, ca.CertPEM)
	if err != nil {
		t.Fatal(err)
	}
	ln, err := ListenTLS("127.0.0.1:0", cfg)
	if err != nil {
		t.Fatal(err)
	}
	srv := NewServer(f.h, nil)
	go srv.Serve(ln)
	defer srv.Close()
	url := "https://" + ln.Addr().String() + "/os"

	goodCert, goodKey, _ := ca.Client("admin")
	otherCert, otherKey, _ := other.Client("intruder")
	clientTLS := func(certPEM, keyPEM []byte, max uint16) *tls.Config {
		c := &tls.Config{RootCAs: poolOf(t, ca.CertPEM), MaxVersion: max}
		if certPEM != nil {
			pair, err := tls.X509KeyPair(certPEM, keyPEM)
			if err != nil {
				t.Fatal(err)
			}
			c.Certificates = []tls.Certificate{pair}
		}
		return c
	}
	tests := []struct {
		name    string
		cfg     *tls.Config
		wantErr string // "" for a 200
	}{
		{"client of the CA", clientTLS(goodCert, goodKey, 0), ""},
		{"no client certificate", clientTLS(nil, nil, 0), "certificate required"},
		{"certificate of another CA", clientTLS(otherCert, otherKey, 0), "unknown certificate authority"},
		{"TLS 1.2 only", clientTLS(goodCert, goodKey, tls.VersionTLS12), "protocol version"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := &http.Client{Transport: &http.Transport{TLSClientConfig: tt.cfg}, Timeout: 10 * time.Second}
			resp, err := c.Get(url)
			if tt.wantErr == "" {
				if err != nil {
					t.Fatal(err)
				}
				resp.Body.Close()
				if resp.StatusCode != 200 || resp.TLS.Version != tls.VersionTLS13 {
					t.Fatalf("status %d, TLS %x", resp.StatusCode, resp.TLS.Version)
				}
				return
			}
			if err == nil {
				resp.Body.Close()
				t.Fatalf("request succeeded with status %d; want it refused", resp.StatusCode)
			}
			if !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("error %v, want %q", err, tt.wantErr)
			}
		})
	}
	// Plain HTTP on the TLS port is never served: at most Go's TLS stack says it wants TLS.
	resp, err := http.Get("http://" + ln.Addr().String() + "/os")
	if err == nil {
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusBadRequest || strings.Contains(string(body), "version") {
			t.Fatalf("plain HTTP answered %d %s", resp.StatusCode, body)
		}
	}
}

// The boot report's routes against a report.Reporter reading a temp root: the recovery key is
// shown until it is acknowledged, and a missing record is said, not a failure of the request.
func TestBootReport(t *testing.T) {
	store, _, err := datastore.New(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	root, efi := t.TempDir(), t.TempDir()
	put := func(p, content string) {
		t.Helper()
		full := filepath.Join(root, p)
		if err := os.MkdirAll(filepath.Dir(full), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(full, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	os.WriteFile(filepath.Join(efi, "SecureBoot-"+efivar.GlobalGUID), []byte{6, 0, 0, 0, 1}, 0o644)
	os.WriteFile(filepath.Join(efi, "SetupMode-"+efivar.GlobalGUID), []byte{6, 0, 0, 0, 0}, 0o644)
	put(contract.LockdownFile, "none [integrity] confidentiality\n")
	put(contract.ImageInfoPath, `{"variant":"qemu","signed":true,"local":{"encryption":"tpm","without_tpm":"refuse"}}`)
	h := NewHandler(Config{Store: store, Boot: report.New(report.Sources{Root: root, EFIVars: efi})})
	get := func() (int, string) {
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, httptest.NewRequest("GET", "/report/boot", nil))
		return rec.Code, rec.Body.String()
	}
	ack := func() (int, string) {
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, httptest.NewRequest("POST", "/actions/report/boot/acknowledge-recovery-key", nil))
		return rec.Code, rec.Body.String()
	}

	// Before the initramfs wrote its record: 200, with what is known and why the rest is not.
	want := `{"secure_boot":"enabled","setup_mode":false,"lockdown":"integrity","signed":true,` +
		`"local_policy":{"encryption":"tpm","without_tpm":"refuse"},"tpm":null,"local":null,` +
		`"record_error":"no boot security record: the initramfs wrote no /run/ballast/boot-security.json this boot",` +
		`"recovery_key_pending":false}` + "\n"
	if code, body := get(); code != 200 || body != want {
		t.Errorf("GET /report/boot without a record = %d %s, want %s", code, body, want)
	}
	if code, body := ack(); code != 404 || !strings.Contains(body, `"error":"no recovery key is waiting to be acknowledged"`) {
		t.Errorf("acknowledge without a key = %d %s", code, body)
	}

	const key = "cbdefghi-jklnrtuv-cbdefghi-jklnrtuv-cbdefghi-jklnrtuv-cbdefghi-jklnrtuv"
	put(contract.BootSecurityPath, `{"tpm":{"pcrs":{"11":"ab"},"pcr11_signed":true,"pcr11_signature":"owner's key x","left_initrd":true,`+
		`"event_log":{"events":3}},"local":{"state":"encrypted","reason":"formatted","formatted":true,"format_seconds":2.5}}`)
	put(contract.RecoveryKeyPath, key+"\n")
	code, body := get()
	for _, w := range []string{`"tpm":{"pcrs":{"11":"ab"},"pcr11_signed":true,"pcr11_signature":"owner's key x","left_initrd":true,"event_log":{"events":3}}`,
		`"local":{"state":"encrypted","reason":"formatted","formatted":true,"format_seconds":2.5}`,
		`"recovery_key":"` + key + `","recovery_key_pending":true`} {
		if code != 200 || !strings.Contains(body, w) {
			t.Errorf("GET /report/boot = %d %s, want %s", code, body, w)
		}
	}
	if strings.Contains(body, "record_error") {
		t.Errorf("GET /report/boot with a record: %s", body)
	}
	if code, body := ack(); code != 204 || body != "" {
		t.Errorf("acknowledge = %d %q", code, body)
	}
	if code, body := get(); code != 200 || strings.Contains(body, key) || !strings.Contains(body, `"recovery_key_pending":false`) {
		t.Errorf("GET /report/boot after the acknowledgement = %d %s", code, body)
	}
	if code, _ := ack(); code != 404 {
		t.Errorf("second acknowledge = %d", code)
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest("GET", "/actions/report/boot/acknowledge-recovery-key", nil))
	if rec.Code != 405 {
		t.Errorf("GET on the action = %d", rec.Code)
	}
}
