// Package api serves the host API over HTTP: the OS description, settings and their transactions,
// and what happened to user data. It holds no state of its own beyond a lock that keeps commits
// and applies in order; everything lives in the datastore.
package api

import (
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"sync"
	"time"

	"github.com/ballast-os/ballast/apiserver/apitypes"
	"github.com/ballast-os/ballast/apiserver/datastore"
	"github.com/ballast-os/ballast/apiserver/osinfo"
	"github.com/ballast-os/ballast/apiserver/settings"
)

// MaxBodyBytes bounds request bodies; settings documents are far smaller.
const MaxBodyBytes = 1 << 20

// Config is what the handlers need.
type Config struct {
	Store *datastore.Store
	// Apply makes the host match the live settings after a commit.
	Apply func(settings.Settings) error
	// OS says where GET /os reads from.
	OS osinfo.Sources
	// UserData reports this boot's user data outcome; nil answers "not-checked".
	UserData func() apitypes.UserData
	// Log gets errors that are the server's fault; nil discards them.
	Log *slog.Logger
}

type handler struct {
	cfg Config
	// commitMu orders commit+apply pairs, so a slow apply of older settings can never land after
	// a newer one.
	commitMu sync.Mutex
}

// NewHandler returns the API's HTTP handler.
func NewHandler(cfg Config) http.Handler {
	if cfg.Log == nil {
		cfg.Log = slog.New(slog.DiscardHandler)
	}
	if cfg.Apply == nil {
		cfg.Apply = func(settings.Settings) error { return nil }
	}
	h := &handler{cfg: cfg}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /os", h.getOS)
	mux.HandleFunc("GET /settings", h.getSettings)
	mux.HandleFunc("PATCH /settings", h.patchSettings)
	mux.HandleFunc("GET /tx", h.getTx)
	mux.HandleFunc("DELETE /tx", h.deleteTx)
	mux.HandleFunc("POST /tx/commit_and_apply", h.commitAndApply)
	mux.HandleFunc("GET /userdata", h.getUserData)
	return jsonMuxErrors(mux)
}

// NewServer wraps a handler in an http.Server with timeouts, so a stuck or slow client cannot hold
// a connection (and its goroutine) forever.
func NewServer(h http.Handler, log *slog.Logger) *http.Server {
	srv := &http.Server{
		Handler:           h,
		ReadHeaderTimeout: 5 * time.Second,
		ReadTimeout:       30 * time.Second,
		WriteTimeout:      60 * time.Second, // commit_and_apply will restart services one day
		IdleTimeout:       2 * time.Minute,
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

func (h *handler) getSettings(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusOK, h.cfg.Store.Live())
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
	if err := h.cfg.Store.Stage(datastore.DefaultTx, patch); err != nil {
		h.fail(w, r, statusOf(err), err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

func (h *handler) getTx(w http.ResponseWriter, r *http.Request) {
	p, _ := h.cfg.Store.Pending(datastore.DefaultTx)
	writeJSON(w, http.StatusOK, p)
}

func (h *handler) deleteTx(w http.ResponseWriter, r *http.Request) {
	if err := h.cfg.Store.Discard(datastore.DefaultTx); err != nil {
		h.fail(w, r, http.StatusInternalServerError, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

func (h *handler) commitAndApply(w http.ResponseWriter, r *http.Request) {
	h.commitMu.Lock()
	defer h.commitMu.Unlock()
	changed, live, err := h.cfg.Store.Commit(datastore.DefaultTx)
	if err != nil {
		h.fail(w, r, statusOf(err), fmt.Errorf("commit: %w", err))
		return
	}
	if len(changed) > 0 {
		if err := h.cfg.Apply(live); err != nil {
			// The settings are committed; only making the host match them failed, and the next
			// apply (this call again, or the next boot) retries.
			h.fail(w, r, http.StatusInternalServerError, fmt.Errorf("committed, but apply failed: %w", err))
			return
		}
	}
	if changed == nil {
		changed = []string{}
	}
	writeJSON(w, http.StatusOK, apitypes.Commit{Changed: changed})
}

func (h *handler) getUserData(w http.ResponseWriter, r *http.Request) {
	st := apitypes.UserData{State: apitypes.UserDataNotChecked}
	if h.cfg.UserData != nil {
		st = h.cfg.UserData()
	}
	writeJSON(w, http.StatusOK, st)
}

// statusOf maps an error to a status: a settings key at fault is the client's error, anything else
// (the disk) the server's.
func statusOf(err error) int {
	var ke *settings.KeyError
	if errors.As(err, &ke) {
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
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	w.Write(append(b, '\n'))
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
