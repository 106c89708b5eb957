package api

import (
	"context"
	"errors"
	"net/http"
	"time"

	"github.com/ballast-os/ballast/apiserver/apitypes"
)

// Updater is the update agent (updates/agent) as the API drives it. Status answers at once,
// also while an action runs; the actions return the status they leave, and their errors wrap
// apitypes.ErrUpdateBusy, ErrUpdateRefused, ErrUpdateRepository or ErrUpdatesNotConfigured when
// one of those is the cause (see updateStatusCode).
type Updater interface {
	Status() apitypes.UpdateStatus
	// Check asks the repository which version this host may take now (waves, version lock).
	Check(ctx context.Context) (apitypes.UpdateStatus, error)
	// Apply downloads the chosen version and writes it into the other slot.
	Apply(ctx context.Context) (apitypes.UpdateStatus, error)
	// Activate makes the staged version the next boot, on trial.
	Activate(ctx context.Context) (apitypes.UpdateStatus, error)
	// Cancel undoes a staged or activated update that has not booted.
	Cancel(ctx context.Context) (apitypes.UpdateStatus, error)
}

// An update action runs to its end inside the request, which answers the status it left. The
// request is simple to use and to script (no polling for the outcome), and the action does not
// depend on the client: it goes on if the client leaves, and GET /updates/status tells how it
// ended. apply moves a whole root filesystem, so these requests get apitypes.UpdateActionTimeout
// instead of the server's WriteTimeout.
func (h *handler) updateAction(run func(Updater, context.Context) (apitypes.UpdateStatus, error)) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		u := h.cfg.Updater
		if u == nil {
			h.fail(w, r, http.StatusServiceUnavailable, apitypes.ErrUpdatesNotConfigured)
			return
		}
		rc := http.NewResponseController(w)
		// Errors mean the writer has no deadlines to set (a recorder in tests): nothing to lift.
		_ = rc.SetWriteDeadline(time.Now().Add(apitypes.UpdateActionTimeout))
		st, err := run(u, context.WithoutCancel(r.Context()))
		if err != nil {
			h.fail(w, r, updateStatusCode(err), err)
			return
		}
		writeJSON(w, http.StatusOK, st)
	}
}

func (h *handler) getUpdateStatus(w http.ResponseWriter, r *http.Request) {
	if h.cfg.Updater == nil {
		h.fail(w, r, http.StatusServiceUnavailable, apitypes.ErrUpdatesNotConfigured)
		return
	}
	writeJSON(w, http.StatusOK, h.cfg.Updater.Status())
}

// updateStatusCode tells a client what an update action's failure means for it: try later (409,
// another action runs or the state does not allow it), nothing to update from (503), the
// repository's fault (502), or the host's (500).
func updateStatusCode(err error) int {
	switch {
	case errors.Is(err, apitypes.ErrUpdateBusy), errors.Is(err, apitypes.ErrUpdateRefused):
		return http.StatusConflict
	case errors.Is(err, apitypes.ErrUpdatesNotConfigured):
		return http.StatusServiceUnavailable
	case errors.Is(err, apitypes.ErrUpdateRepository):
		return http.StatusBadGateway
	}
	return http.StatusInternalServerError
}

func (h *handler) updateRoutes(mux *http.ServeMux) {
	mux.HandleFunc("GET /updates/status", h.getUpdateStatus)
	mux.HandleFunc("POST /actions/updates/"+apitypes.UpdateCheck, h.updateAction(Updater.Check))
	mux.HandleFunc("POST /actions/updates/"+apitypes.UpdateApply, h.updateAction(Updater.Apply))
	mux.HandleFunc("POST /actions/updates/"+apitypes.UpdateActivate, h.updateAction(Updater.Activate))
	mux.HandleFunc("POST /actions/updates/"+apitypes.UpdateCancel, h.updateAction(Updater.Cancel))
}
