package api

import (
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ballast-os/ballast/apiserver/apitypes"
	"github.com/ballast-os/ballast/apiserver/datastore"
	"github.com/ballast-os/ballast/apiserver/osinfo"
	"github.com/ballast-os/ballast/apiserver/settings"
)

type fixture struct {
	h       http.Handler
	store   *datastore.Store
	applied []settings.Settings
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
	f := &fixture{store: store}
	f.h = NewHandler(Config{
		Store: store,
		Apply: func(s settings.Settings) error {
			f.applied = append(f.applied, s)
			if f.applyFn != nil {
				return f.applyFn(s)
			}
			return nil
		},
		OS: osinfo.Sources{OSRelease: rel, Cmdline: cmd, Kernel: func() (string, error) { return "6.1.0", nil }},
	})
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
	if ct := rec.Header().Get("Content-Type"); rec.Code != http.StatusNoContent && ct != "application/json" {
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
		{"os", "GET", "/os", "", 200, `{"version":"1.2.3","variant":"qemu","slot":"b","roothash":"00ff","kernel":"6.1.0","build_id":"abc"}`, ""},
		{"empty settings", "GET", "/settings", "", 200, `{}`, ""},
		{"patch", "PATCH", "/settings", `{"motd":"hi"}`, 204, "", ""},
		{"unknown key", "PATCH", "/settings", `{"network":{"hostnme":"x"}}`, 400, `"error":"settings.network.hostnme: unknown key"`, "settings.network.hostnme"},
		{"wrong type", "PATCH", "/settings", `{"motd":1}`, 400, "expected string", "settings.motd"},
		{"bad hostname", "PATCH", "/settings", `{"network":{"hostname":"a_b"}}`, 400, "only letters", "settings.network.hostname"},
		{"bad json", "PATCH", "/settings", `{"motd"`, 400, "invalid JSON", ""},
		{"too large", "PATCH", "/settings", `{"motd":"` + strings.Repeat("a", MaxBodyBytes) + `"}`, 413, "larger than 1048576 bytes", ""},
		{"pending empty", "GET", "/tx", "", 200, `{}`, ""},
		{"commit nothing", "POST", "/tx/commit_and_apply", "", 200, `{"changed":[]}`, ""},
		{"userdata default", "GET", "/userdata", "", 200, `{"state":"not-checked"}`, ""},
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

func TestTransaction(t *testing.T) {
	f := newFixture(t)
	steps := []struct {
		method, path, body string
		wantStatus         int
		wantBody           string
	}{
		{"PATCH", "/settings", `{"motd":"one"}`, 204, ""},
		{"PATCH", "/settings", `{"network":{"hostname":"h"}}`, 204, ""},
		{"PATCH", "/settings", `{"motd":1}`, 400, ""}, // a bad patch leaves the staged ones alone
		{"GET", "/tx", "", 200, `{"motd":"one","network":{"hostname":"h"}}`},
		{"GET", "/settings", "", 200, `{}`},
		{"POST", "/tx/commit_and_apply", "", 200, `{"changed":["settings.motd","settings.network.hostname"]}`},
		{"GET", "/settings", "", 200, `{"motd":"one","network":{"hostname":"h"}}`},
		{"GET", "/tx", "", 200, `{}`},
		{"PATCH", "/settings", `{"motd":"two"}`, 204, ""},
		{"DELETE", "/tx", "", 204, ""},
		{"POST", "/tx/commit_and_apply", "", 200, `{"changed":[]}`},
		{"GET", "/settings", "", 200, `{"motd":"one","network":{"hostname":"h"}}`},
	}
	for i, s := range steps {
		rec := f.do(t, s.method, s.path, s.body)
		if rec.Code != s.wantStatus || s.wantBody != "" && strings.TrimSpace(rec.Body.String()) != s.wantBody {
			t.Fatalf("step %d %s %s: %d %s; want %d %s", i, s.method, s.path, rec.Code, rec.Body, s.wantStatus, s.wantBody)
		}
	}
	if len(f.applied) != 1 || *f.applied[0].Motd != "one" {
		t.Fatalf("applied %+v; want one apply of the committed settings", f.applied)
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

func TestOSMissingRelease(t *testing.T) {
	store, _, err := datastore.New(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	h := NewHandler(Config{Store: store, OS: osinfo.Sources{OSRelease: "/nonexistent/os-release"}})
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest("GET", "/os", nil))
	if rec.Code != 500 || !strings.Contains(rec.Body.String(), "os-release") {
		t.Fatalf("GET /os = %d %s", rec.Code, rec.Body)
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
