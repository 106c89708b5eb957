package api

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ballast-os/ballast/apiserver/apitypes"
	"github.com/ballast-os/ballast/apiserver/datastore"
	"github.com/ballast-os/ballast/contract"
)

// fakeUpdater answers each action with the status or error given for it, recording the calls.
type fakeUpdater struct {
	mu      sync.Mutex
	status  apitypes.UpdateStatus
	errs    map[string]error
	delay   time.Duration
	calls   []string
	ctxDone []bool // whether each action's context was already done when it returned
}

func (u *fakeUpdater) Status() apitypes.UpdateStatus {
	u.mu.Lock()
	defer u.mu.Unlock()
	return u.status
}

func (u *fakeUpdater) act(ctx context.Context, action string) (apitypes.UpdateStatus, error) {
	time.Sleep(u.delay)
	u.mu.Lock()
	defer u.mu.Unlock()
	u.calls = append(u.calls, action)
	u.ctxDone = append(u.ctxDone, ctx.Err() != nil)
	if err := u.errs[action]; err != nil {
		u.status.State = apitypes.UpdateError
		u.status.LastAttempt = &apitypes.UpdateAttempt{Action: action, Error: err.Error()}
		return u.status, err
	}
	u.status.LastAttempt = &apitypes.UpdateAttempt{Action: action, Time: time.Date(2026, 5, 1, 8, 0, 0, 0, time.UTC)}
	switch action {
	case apitypes.UpdateCheck:
		u.status.State, u.status.Available = apitypes.UpdateAvailable, []string{"2.0.0", "1.0.0"}
		u.status.Chosen = &apitypes.UpdateChosen{Version: "2.0.0", Notes: "fixes"}
	case apitypes.UpdateApply:
		u.status.State, u.status.Staged = apitypes.UpdateStaged, &apitypes.UpdateSlot{Version: "2.0.0", Slot: contract.SlotB}
	case apitypes.UpdateActivate:
		u.status.State, u.status.Activated = apitypes.UpdateReady, u.status.Staged
	case apitypes.UpdateCancel:
		u.status.State, u.status.Staged, u.status.Activated = apitypes.UpdateAvailable, nil, nil
	}
	return u.status, nil
}

func (u *fakeUpdater) Check(ctx context.Context) (apitypes.UpdateStatus, error) {
	return u.act(ctx, apitypes.UpdateCheck)
}
func (u *fakeUpdater) Apply(ctx context.Context) (apitypes.UpdateStatus, error) {
	return u.act(ctx, apitypes.UpdateApply)
}
func (u *fakeUpdater) Activate(ctx context.Context) (apitypes.UpdateStatus, error) {
	return u.act(ctx, apitypes.UpdateActivate)
}
func (u *fakeUpdater) Cancel(ctx context.Context) (apitypes.UpdateStatus, error) {
	return u.act(ctx, apitypes.UpdateCancel)
}

func updateHandler(t *testing.T, u Updater) http.Handler {
	t.Helper()
	store, _, err := datastore.New(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { store.Close() })
	cfg := Config{Store: store}
	if u != nil {
		cfg.Updater = u
	}
	return NewHandler(cfg)
}

func TestUpdateEndpoints(t *testing.T) {
	u := &fakeUpdater{status: apitypes.UpdateStatus{State: apitypes.UpdateIdle, Available: []string{},
		Running: apitypes.UpdateRunning{Version: "1.0.0", Slot: contract.SlotA, Entry: "ballast-1-a-1.0.0.efi"}}}
	h := updateHandler(t, u)
	steps := []struct {
		method, path string
		wantStatus   int
		wantBody     string // substring
	}{
		{"GET", "/updates/status", 200, `{"state":"idle","running":{"version":"1.0.0","slot":"a","entry":"ballast-1-a-1.0.0.efi","on_trial":false},"available":[],"bytes_downloaded":0}`},
		{"POST", "/actions/updates/check", 200, `"chosen":{"version":"2.0.0","notes":"fixes"}`},
		{"POST", "/actions/updates/apply", 200, `"staged":{"version":"2.0.0","slot":"b"}`},
		{"GET", "/updates/status", 200, `"state":"staged"`},
		{"POST", "/actions/updates/activate", 200, `"activated":{"version":"2.0.0","slot":"b"}`},
		{"POST", "/actions/updates/cancel", 200, `"state":"available"`},
		{"GET", "/actions/updates/apply", 405, "Method Not Allowed"},
		{"POST", "/updates/status", 405, "Method Not Allowed"},
		{"POST", "/actions/updates/frobnicate", 404, "Not Found"},
	}
	for _, s := range steps {
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, httptest.NewRequest(s.method, s.path, nil))
		if rec.Code != s.wantStatus || !strings.Contains(rec.Body.String(), s.wantBody) {
			t.Fatalf("%s %s = %d %s; want %d with %s", s.method, s.path, rec.Code, rec.Body, s.wantStatus, s.wantBody)
		}
		if ct := rec.Header().Get("Content-Type"); ct != "application/json" {
			t.Fatalf("%s %s: Content-Type %q", s.method, s.path, ct)
		}
	}
	if want := []string{"check", "apply", "activate", "cancel"}; fmt.Sprint(u.calls) != fmt.Sprint(want) {
		t.Fatalf("calls %v, want %v", u.calls, want)
	}
}

// Each kind of failure answers the status that tells the client what to do, with the agent's
// message.
func TestUpdateErrors(t *testing.T) {
	tests := []struct {
		name   string
		err    error
		status int
	}{
		{"busy", fmt.Errorf("apply: %w", apitypes.ErrUpdateBusy), 409},
		{"refused", fmt.Errorf("%w: nothing staged to activate", apitypes.ErrUpdateRefused), 409},
		{"no repository", fmt.Errorf("%w: no settings.updates.metadata-base-url", apitypes.ErrUpdatesNotConfigured), 503},
		{"repository", fmt.Errorf("%w: timestamp.json: expired", apitypes.ErrUpdateRepository), 502},
		{"disk", fmt.Errorf("write root-b: no space left on device"), 500},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			u := &fakeUpdater{errs: map[string]error{apitypes.UpdateActivate: tt.err}}
			rec := httptest.NewRecorder()
			updateHandler(t, u).ServeHTTP(rec, httptest.NewRequest("POST", "/actions/updates/activate", nil))
			var e apitypes.Error
			if err := json.Unmarshal(rec.Body.Bytes(), &e); err != nil || rec.Code != tt.status || e.Error != tt.err.Error() {
				t.Fatalf("= %d %s (%v); want %d with %q", rec.Code, rec.Body, err, tt.status, tt.err)
			}
		})
	}
	// Without an agent every update request is a 503 saying so.
	h := updateHandler(t, nil)
	for _, r := range []struct{ method, path string }{{"GET", "/updates/status"}, {"POST", "/actions/updates/check"},
		{"POST", "/actions/updates/apply"}, {"POST", "/actions/updates/activate"}, {"POST", "/actions/updates/cancel"}} {
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, httptest.NewRequest(r.method, r.path, nil))
		if rec.Code != 503 || strings.TrimSpace(rec.Body.String()) != `{"error":"updates: not configured in this image"}` {
			t.Errorf("%s %s without an agent = %d %s", r.method, r.path, rec.Code, rec.Body)
		}
	}
}

// An action outlasts the server's write timeout and a client that left: the answer still comes
// to a client that waits, and the action is not cancelled for one that does not.
func TestUpdateActionOutlastsTimeouts(t *testing.T) {
	u := &fakeUpdater{delay: 300 * time.Millisecond}
	srv := NewServer(updateHandler(t, u), nil)
	srv.WriteTimeout, srv.ReadTimeout = 100*time.Millisecond, 100*time.Millisecond
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go srv.Serve(ln)
	defer srv.Close()
	base := "http://" + ln.Addr().String()

	resp, err := http.Post(base+"/actions/updates/apply", "", nil)
	if err != nil {
		t.Fatalf("apply past the write timeout: %v", err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || !strings.Contains(string(body), `"state":"staged"`) {
		t.Fatalf("apply = %d %s", resp.StatusCode, body)
	}

	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, "POST", base+"/actions/updates/activate", nil)
	if resp, err := http.DefaultClient.Do(req); err == nil {
		resp.Body.Close()
		t.Fatal("activate answered before the client gave up")
	}
	deadline := time.Now().Add(5 * time.Second)
	for {
		u.mu.Lock()
		n, done := len(u.calls), append([]bool(nil), u.ctxDone...)
		u.mu.Unlock()
		if n == 2 {
			if done[0] || done[1] {
				t.Fatalf("an action's context was cancelled: %v", done)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("activate did not run to its end after the client left")
		}
		time.Sleep(20 * time.Millisecond)
	}
	if st := u.Status(); st.State != apitypes.UpdateReady {
		t.Fatalf("state after the abandoned activate = %s", st.State)
	}
}
