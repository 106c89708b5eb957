// Package api serves the host API over HTTP: settings and their transactions, the OS description,
// services and their logs, reboot, the configuration-file mapping, what happened to user data,
// the time service's state, the hardening and boot reports and the update agent's status and
// actions. It holds no state of its own beyond the queue that keeps applies in order; settings live in
// the datastore, services in the system init.
package api

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/ballast-os/ballast/apiserver/apitypes"
	"github.com/ballast-os/ballast/apiserver/datastore"
	"github.com/ballast-os/ballast/apiserver/initclient"
	"github.com/ballast-os/ballast/apiserver/osinfo"
	"github.com/ballast-os/ballast/apiserver/render"
	"github.com/ballast-os/ballast/apiserver/settings"
	"github.com/ballast-os/ballast/apiserver/timeinfo"
)

// MaxBodyBytes bounds request bodies; settings documents are far smaller.
const MaxBodyBytes = 1 << 20

// ApplyFunc makes the host match the live settings after a commit; changed are the keys whose
// values changed (see render.Renderer.Apply).
type ApplyFunc func(ctx context.Context, live settings.Settings, changed []string) (render.Result, error)

// Config is what the handlers need.
type Config struct {
	Store *datastore.Store
	// Apply applies committed settings; nil applies nothing.
	Apply ApplyFunc
	// Mapping describes what depends on which setting (GET /configuration-files).
	Mapping func() apitypes.ConfigurationFiles
	// Init is the system init: services, restarts, reboot, logs. Nil answers 503 for those.
	Init initclient.Init
	// OS says where GET /os reads from.
	OS osinfo.Sources
	// Time says where GET /time reads from.
	Time timeinfo.Sources
	// UserData reports this boot's user data outcome; nil answers "not-checked".
	UserData func() apitypes.UserData
	// Hardening computes the hardening report (GET /report/hardening); nil answers 503.
	Hardening func(ctx context.Context) apitypes.HardeningReport
	// Boot computes the boot report and acknowledges the recovery key (GET /report/boot, POST
	// /actions/report/boot/acknowledge-recovery-key); nil answers 503.
	Boot BootReporter
	// Bundle says where the support bundle reads what no other request answers.
	Bundle BundleSources
	// NetworkState is the network service's state file, GET /network; "" answers 503.
	NetworkState string
	// Containers says where the host-container manager's state, logs and control socket are.
	Containers Containers
	// Updater is the update agent: GET /updates/status and POST /actions/updates/*. Nil answers
	// them with 503 (apitypes.ErrUpdatesNotConfigured).
	Updater Updater
	// Log gets errors that are the server's fault; nil discards them.
	Log *slog.Logger
}

// BootReporter is what the boot report's routes need (report.Reporter).
type BootReporter interface {
	Boot() apitypes.BootReport
	// AcknowledgeRecoveryKey removes the recovery key; none waiting is apitypes.ErrNoRecoveryKey.
	AcknowledgeRecoveryKey() error
}

type handler struct {
	cfg     Config
	applies *applyQueue
	mux     *http.ServeMux // the support bundle asks it for its parts
}

// NewHandler returns the API's HTTP handler. It does not check who is calling; the listeners do
// (RequireUID for the Unix socket, mutual TLS for TCP).
func NewHandler(cfg Config) http.Handler {
	if cfg.Log == nil {
		cfg.Log = slog.New(slog.DiscardHandler)
	}
	if cfg.Apply == nil {
		cfg.Apply = func(context.Context, settings.Settings, []string) (render.Result, error) { return render.Result{}, nil }
	}
	if cfg.Mapping == nil {
		cfg.Mapping = func() apitypes.ConfigurationFiles { return apitypes.ConfigurationFiles{} }
	}
	h := &handler{cfg: cfg, applies: &applyQueue{live: cfg.Store.Live, apply: cfg.Apply}}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /os", h.getOS)
	mux.HandleFunc("GET /settings", h.getSettings)
	mux.HandleFunc("PATCH /settings", h.patchSettings)
	mux.HandleFunc("GET /tx", h.getTx)
	mux.HandleFunc("DELETE /tx", h.deleteTx)
	mux.HandleFunc("GET /tx/list", h.listTx)
	mux.HandleFunc("POST /tx/commit", h.commit)
	mux.HandleFunc("POST /tx/apply", h.apply)
	mux.HandleFunc("POST /tx/commit_and_apply", h.commitAndApply)
	mux.HandleFunc("GET /services", h.getServices)
	mux.HandleFunc("GET /configuration-files", h.getConfigurationFiles)
	mux.HandleFunc("POST /actions/reboot", h.reboot)
	mux.HandleFunc("GET /logs", h.getLogs)
	mux.HandleFunc("GET /logs/bundle", h.getBundle)
	mux.HandleFunc("GET /userdata", h.getUserData)
	mux.HandleFunc("GET /report/hardening", h.getHardening)
	mux.HandleFunc("GET /report/boot", h.getBootReport)
	mux.HandleFunc("POST /actions/report/boot/acknowledge-recovery-key", h.acknowledgeRecoveryKey)
	mux.HandleFunc("GET /time", h.getTime)
	h.mux = mux
	mux.HandleFunc("GET /network", h.getNetwork)
	mux.HandleFunc("POST /exec", h.exec)
	h.updateRoutes(mux)
	return jsonMuxErrors(mux)
}

// Timeouts of the server. A stuck or slow client cannot hold a connection (and its goroutine)
// forever; only a followed log stream lifts the write timeout, and an update action extends it
// to apitypes.UpdateActionTimeout.
const (
	ReadHeaderTimeout = 5 * time.Second
	ReadTimeout       = 30 * time.Second
	WriteTimeout      = 2 * time.Minute // commit_and_apply may wait for restarts
	IdleTimeout       = 2 * time.Minute
)

// NewServer wraps a handler in an http.Server with the API's timeouts and header limit.
func NewServer(h http.Handler, log *slog.Logger) *http.Server {
	srv := &http.Server{
		Handler:           h,
		ReadHeaderTimeout: ReadHeaderTimeout,
		ReadTimeout:       ReadTimeout,
		WriteTimeout:      WriteTimeout,
		IdleTimeout:       IdleTimeout,
		MaxHeaderBytes:    64 << 10,
	}
	if log != nil {
		srv.ErrorLog = slog.NewLogLogger(log.Handler(), slog.LevelWarn)
	}
	return srv
}

func (h *handler) getOS(w http.ResponseWriter, r *http.Request) {
	info, err := osinfo.Read(h.cfg.OS)
	if err != nil {
		h.fail(w, r, http.StatusInternalServerError, err)
		return
	}
	writeJSON(w, http.StatusOK, info)
}

// getSettings answers the live settings, all of them (straight from the datastore's cached JSON,
// the hot path) or the parts named by ?keys=a,b and ?prefix=p.
func (h *handler) getSettings(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	var paths [][]string
	for _, k := range splitList(q.Get("keys")) {
		p, err := settings.ParseKey(k)
		if err != nil {
			h.fail(w, r, http.StatusBadRequest, fmt.Errorf("keys: %w", err))
			return
		}
		paths = append(paths, p)
	}
	if pre := q.Get("prefix"); pre != "" {
		p, err := settings.ParseKey(pre)
		if err != nil {
			h.fail(w, r, http.StatusBadRequest, fmt.Errorf("prefix: %w", err))
			return
		}
		paths = append(paths, p)
	}
	live := h.cfg.Store.LiveJSON()
	if paths == nil {
		writeRawJSON(w, http.StatusOK, live)
		return
	}
	tree, err := settings.ReadJSONTree(bytes.NewReader(live))
	if err != nil {
		h.fail(w, r, http.StatusInternalServerError, err)
		return
	}
	m, _ := tree.(map[string]any)
	writeJSON(w, http.StatusOK, settings.Select(m, paths))
}

func splitList(s string) []string {
	var out []string
	for _, k := range strings.Split(s, ",") {
		if k = strings.TrimSpace(k); k != "" {
			out = append(out, k)
		}
	}
	return out
}

// txOf returns the transaction a request names with ?tx=, DefaultTx when none.
func txOf(r *http.Request) string {
	if tx := r.URL.Query().Get("tx"); tx != "" {
		return tx
	}
	return datastore.DefaultTx
}

func (h *handler) patchSettings(w http.ResponseWriter, r *http.Request) {
	patch, err := settings.DecodeJSON(http.MaxBytesReader(w, r.Body, MaxBodyBytes))
	if err != nil {
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			h.fail(w, r, http.StatusRequestEntityTooLarge, fmt.Errorf("request body is larger than %d bytes", tooBig.Limit))
			return
		}
		h.fail(w, r, http.StatusBadRequest, err)
		return
	}
	if err := h.cfg.Store.Stage(txOf(r), patch); err != nil {
		h.fail(w, r, statusOf(err), err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

func (h *handler) getTx(w http.ResponseWriter, r *http.Request) {
	p, _ := h.cfg.Store.Pending(txOf(r))
	writeJSON(w, http.StatusOK, p)
}

func (h *handler) listTx(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusOK, apitypes.Transactions{Transactions: h.cfg.Store.Transactions()})
}

func (h *handler) deleteTx(w http.ResponseWriter, r *http.Request) {
	if err := h.cfg.Store.Discard(txOf(r)); err != nil {
		h.fail(w, r, statusOf(err), err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

func (h *handler) commit(w http.ResponseWriter, r *http.Request) {
	changed, _, err := h.cfg.Store.Commit(txOf(r))
	if err != nil {
		h.fail(w, r, statusOf(err), fmt.Errorf("commit: %w", err))
		return
	}
	writeJSON(w, http.StatusOK, apitypes.Commit{Changed: orEmpty(changed)})
}

// apply applies the live settings again: for the keys in ?keys= (changes committed with
// /tx/commit), or for every key. Services restart only when their files' content changed.
func (h *handler) apply(w http.ResponseWriter, r *http.Request) {
	keys := h.cfg.Store.Live().Keys()
	if q := splitList(r.URL.Query().Get("keys")); q != nil {
		keys = nil
		for _, k := range q {
			p, err := settings.ParseKey(k)
			if err != nil {
				h.fail(w, r, http.StatusBadRequest, fmt.Errorf("keys: %w", err))
				return
			}
			keys = append(keys, settings.FormatKey(p))
		}
	}
	res, err := h.applies.run(context.WithoutCancel(r.Context()), keys)
	if err != nil {
		h.fail(w, r, http.StatusInternalServerError, fmt.Errorf("apply failed: %w", err))
		return
	}
	writeJSON(w, http.StatusOK, commitAnswer(keys, res))
}

func (h *handler) commitAndApply(w http.ResponseWriter, r *http.Request) {
	changed, _, err := h.cfg.Store.Commit(txOf(r))
	if err != nil {
		h.fail(w, r, statusOf(err), fmt.Errorf("commit: %w", err))
		return
	}
	var res render.Result
	if len(changed) > 0 {
		// The request may be cancelled by now; the commit stands, so the apply must run through.
		ctx := context.WithoutCancel(r.Context())
		if res, err = h.applies.run(ctx, changed); err != nil {
			// Only making the host match failed; the next apply (this call again, POST /tx/apply,
			// or the next boot) retries.
			h.fail(w, r, http.StatusInternalServerError, fmt.Errorf("committed, but apply failed: %w", err))
			return
		}
	}
	writeJSON(w, http.StatusOK, commitAnswer(changed, res))
}

func commitAnswer(changed []string, res render.Result) apitypes.Commit {
	return apitypes.Commit{Changed: orEmpty(changed), Files: res.Files, Restarted: res.Restarted, Notes: res.Notes}
}

func orEmpty(l []string) []string {
	if l == nil {
		return []string{}
	}
	return l
}

func (h *handler) getServices(w http.ResponseWriter, r *http.Request) {
	if !h.haveInit(w, r) {
		return
	}
	svcs, err := h.cfg.Init.Services(r.Context())
	if err != nil {
		h.fail(w, r, initStatus(err), err)
		return
	}
	writeJSON(w, http.StatusOK, apitypes.Services{Services: append(svcs, h.containerStatuses()...)})
}

func (h *handler) getConfigurationFiles(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusOK, h.cfg.Mapping())
}

func (h *handler) reboot(w http.ResponseWriter, r *http.Request) {
	if !h.haveInit(w, r) {
		return
	}
	if err := h.cfg.Init.Reboot(r.Context()); err != nil {
		h.fail(w, r, initStatus(err), err)
		return
	}
	writeJSON(w, http.StatusAccepted, apitypes.Status{Status: "rebooting"})
}

// getLogs streams a source's log as text (the kernel, the init, a service; earlier boots first);
// ?lines=N starts N lines before the end; ?follow=true keeps the response open and sends what is
// written until the client goes away. Without ?service= it lists the sources that have a log.
func (h *handler) getLogs(w http.ResponseWriter, r *http.Request) {
	if !h.haveInit(w, r) {
		return
	}
	q := r.URL.Query()
	service := q.Get("service")
	if service == "" {
		names, err := h.cfg.Init.List()
		if err != nil {
			h.fail(w, r, http.StatusInternalServerError, err)
			return
		}
		if ctrs, err := h.cfg.Containers.Logs.List(); err == nil {
			for _, n := range ctrs {
				if !slices.Contains(names, n) {
					names = append(names, n)
				}
			}
		}
		writeJSON(w, http.StatusOK, apitypes.Logs{Services: names})
		return
	}
	var o initclient.LogOptions
	if f := q.Get("follow"); f != "" {
		var err error
		if o.Follow, err = strconv.ParseBool(f); err != nil {
			h.fail(w, r, http.StatusBadRequest, fmt.Errorf("follow: %q is not true or false", f))
			return
		}
	}
	if l := q.Get("lines"); l != "" {
		n, err := strconv.Atoi(l)
		if err != nil || n < 0 {
			h.fail(w, r, http.StatusBadRequest, fmt.Errorf("lines: %q is not a number of lines", l))
			return
		}
		o.Lines = n
	}
	follow := o.Follow
	rc, err := h.cfg.Init.Logs(r.Context(), service, o)
	if errors.Is(err, initclient.ErrNoLog) {
		// Not a system source: a container's, by its name.
		rc, err = h.cfg.Containers.Logs.Logs(r.Context(), service, o)
	}
	if err != nil {
		status := http.StatusBadRequest
		if errors.Is(err, initclient.ErrNoLog) {
			status = http.StatusNotFound
		}
		h.fail(w, r, status, err)
		return
	}
	defer rc.Close()
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	rc2 := http.NewResponseController(w)
	if follow {
		// A followed log is meant to stay open; the client decides when it has seen enough.
		rc2.SetWriteDeadline(time.Time{})
	}
	w.WriteHeader(http.StatusOK)
	buf := make([]byte, 32<<10)
	for {
		n, err := rc.Read(buf)
		if n > 0 {
			if _, werr := w.Write(buf[:n]); werr != nil {
				return
			}
			if follow {
				rc2.Flush()
			}
		}
		if err != nil {
			if !errors.Is(err, io.EOF) {
				h.cfg.Log.Warn("reading log", "service", service, "err", err)
			}
			return
		}
	}
}

func (h *handler) getUserData(w http.ResponseWriter, r *http.Request) {
	st := apitypes.UserData{State: apitypes.UserDataNotChecked, Sources: []apitypes.UserDataSource{}}
	if h.cfg.UserData != nil {
		st = h.cfg.UserData()
	}
	writeJSON(w, http.StatusOK, st)
}

func (h *handler) getHardening(w http.ResponseWriter, r *http.Request) {
	if h.cfg.Hardening == nil {
		h.fail(w, r, http.StatusServiceUnavailable, errors.New("this server computes no hardening report"))
		return
	}
	writeJSON(w, http.StatusOK, h.cfg.Hardening(r.Context()))
}

// getBootReport answers 200 with what is known even when parts are missing: the report says
// which and why, and an operator needs the rest most when something is wrong.
func (h *handler) getBootReport(w http.ResponseWriter, r *http.Request) {
	if h.cfg.Boot == nil {
		h.fail(w, r, http.StatusServiceUnavailable, errors.New("this server computes no boot report"))
		return
	}
	writeJSON(w, http.StatusOK, h.cfg.Boot.Boot())
}

func (h *handler) acknowledgeRecoveryKey(w http.ResponseWriter, r *http.Request) {
	if h.cfg.Boot == nil {
		h.fail(w, r, http.StatusServiceUnavailable, errors.New("this server computes no boot report"))
		return
	}
	err := h.cfg.Boot.AcknowledgeRecoveryKey()
	switch {
	case errors.Is(err, apitypes.ErrNoRecoveryKey):
		h.fail(w, r, http.StatusNotFound, err)
	case err != nil:
		h.fail(w, r, http.StatusInternalServerError, err)
	default:
		h.cfg.Log.Info("recovery key acknowledged: GET /report/boot no longer shows it")
		w.WriteHeader(http.StatusNoContent)
	}
}

func (h *handler) getTime(w http.ResponseWriter, r *http.Request) {
	t, err := timeinfo.Read(h.cfg.Time)
	if err != nil {
		h.fail(w, r, http.StatusInternalServerError, err)
		return
	}
	writeJSON(w, http.StatusOK, t)
}

func (h *handler) haveInit(w http.ResponseWriter, r *http.Request) bool {
	if h.cfg.Init == nil {
		h.fail(w, r, http.StatusServiceUnavailable, initclient.ErrUnavailable)
		return false
	}
	return true
}

func initStatus(err error) int {
	if errors.Is(err, initclient.ErrUnavailable) {
		return http.StatusServiceUnavailable
	}
	return http.StatusBadGateway
}

// statusOf maps an error to a status: a settings key at fault or a bad transaction is the
// client's error, anything else (the disk) the server's.
func statusOf(err error) int {
	var ke *settings.KeyError
	var te *datastore.TxError
	if errors.As(err, &ke) || errors.As(err, &te) {
		return http.StatusBadRequest
	}
	return http.StatusInternalServerError
}

func (h *handler) fail(w http.ResponseWriter, r *http.Request, status int, err error) {
	body := apitypes.Error{Error: err.Error()}
	var ke *settings.KeyError
	if errors.As(err, &ke) {
		body.Key = ke.Key()
	}
	if status >= 500 {
		h.cfg.Log.Error("request failed", "method", r.Method, "path", r.URL.Path, "err", err)
	}
	writeJSON(w, status, body)
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		status = http.StatusInternalServerError
		b, _ = json.Marshal(apitypes.Error{Error: "encode response: " + err.Error()})
	}
	writeRawJSON(w, status, b)
}

func writeRawJSON(w http.ResponseWriter, status int, b []byte) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Content-Length", strconv.Itoa(len(b)+1))
	w.WriteHeader(status)
	w.Write(b)
	w.Write([]byte{'\n'})
}

// jsonMuxErrors turns the mux's own plain-text 404 and 405 answers into JSON errors, so every
// answer the API gives has the same shape.
func jsonMuxErrors(mux *http.ServeMux) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if _, pattern := mux.Handler(r); pattern != "" {
			mux.ServeHTTP(w, r)
			return
		}
		rec := &statusRecorder{header: http.Header{}}
		mux.ServeHTTP(rec, r)
		for _, k := range []string{"Allow", "Location"} {
			if v := rec.header.Get(k); v != "" {
				w.Header().Set(k, v)
			}
		}
		msg := fmt.Sprintf("%s %s: %s", r.Method, r.URL.Path, http.StatusText(rec.status))
		writeJSON(w, rec.status, apitypes.Error{Error: msg})
	})
}

type statusRecorder struct {
	header http.Header
	status int
}

func (s *statusRecorder) Header() http.Header { return s.header }
func (s *statusRecorder) Write(b []byte) (int, error) {
	if s.status == 0 {
		s.status = http.StatusOK
	}
	return len(b), nil
}
func (s *statusRecorder) WriteHeader(code int) {
	if s.status == 0 {
		s.status = code
	}
}
