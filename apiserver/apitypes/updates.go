package apitypes

import (
	"errors"
	"time"

	"github.com/ballast-os/ballast/contract"
)

// States of UpdateStatus.State.
const (
	UpdateIdle      = "idle"      // nothing newer to take (or not checked yet)
	UpdateAvailable = "available" // a check chose a version this host may take now
	UpdateStaged    = "staged"    // apply wrote the chosen version into the other slot
	UpdateReady     = "ready"     // activate made the staged version the next boot
	UpdateError     = "error"     // the last action failed; LastAttempt says why
)

// Update actions: POST /actions/updates/<action>, and UpdateAttempt.Action.
const (
	UpdateCheck    = "check"    // ask the repository which version this host may take now
	UpdateApply    = "apply"    // download the chosen version and write it into the other slot
	UpdateActivate = "activate" // make the staged version the next boot, on trial
	UpdateCancel   = "cancel"   // undo a staged or activated update not booted yet
)

// UpdateActions are the actions in the order a host goes through them (cancel last).
func UpdateActions() []string {
	return []string{UpdateCheck, UpdateApply, UpdateActivate, UpdateCancel}
}

// UpdateActionTimeout bounds an update action's request: the server keeps the response open
// that long and the client waits that long. An apply downloads and writes a whole root
// filesystem, which takes minutes on a slow link; the action goes on if the client leaves.
const UpdateActionTimeout = time.Hour

// UpdateStatus is the answer to GET /updates/status and to every update action: where the host
// stands. It is the update agent's state, as the agent reports it.
type UpdateStatus struct {
	State     string        `json:"state"` // UpdateIdle, UpdateAvailable, UpdateStaged, UpdateReady or UpdateError
	Running   UpdateRunning `json:"running"`
	Available []string      `json:"available"` // versions the repository has for this variant, newest first
	// Chosen is the version check picked (the newest the waves and the version lock allow).
	Chosen    *UpdateChosen `json:"chosen,omitempty"`
	Staged    *UpdateSlot   `json:"staged,omitempty"`    // written by apply, not the next boot yet
	Activated *UpdateSlot   `json:"activated,omitempty"` // the next boot's, on trial
	// LastAttempt is the last action and how it ended.
	LastAttempt *UpdateAttempt `json:"last_attempt,omitempty"`
	// Rollback is the last trial boot that failed, from which the previous slot took over.
	Rollback        *UpdateRollback `json:"rollback,omitempty"`
	BytesDownloaded int64           `json:"bytes_downloaded"` // by the last apply (resumed downloads count once)
	// Busy names the action in progress, if any.
	Busy string `json:"busy,omitempty"`
	// Error is a problem outside any action (the ESP or the agent's state could not be read).
	Error string `json:"error,omitempty"`
}

// UpdateRunning is the version this host booted.
type UpdateRunning struct {
	Version string        `json:"version"`
	Slot    contract.Slot `json:"slot"`
	Entry   string        `json:"entry,omitempty"` // the boot entry file, when the loader said
	OnTrial bool          `json:"on_trial"`        // booted with a boot counter, not blessed yet
}

// UpdateChosen is the version a check picked.
type UpdateChosen struct {
	Version string `json:"version"`
	Notes   string `json:"notes,omitempty"` // the release notes from the repository
	// WaveOpensAt is when this host's wave opens, while it has not: apply waits for it unless
	// settings.updates.ignore-waves is true.
	WaveOpensAt time.Time `json:"wave_opens_at,omitzero"`
}

// UpdateSlot is a version written into a slot.
type UpdateSlot struct {
	Version string        `json:"version"`
	Slot    contract.Slot `json:"slot"`
}

// UpdateAttempt is one update action and how it ended.
type UpdateAttempt struct {
	Action  string    `json:"action"` // UpdateCheck, UpdateApply, UpdateActivate or UpdateCancel
	Time    time.Time `json:"time"`
	Version string    `json:"version,omitempty"`
	Error   string    `json:"error,omitempty"` // empty when it succeeded
}

// UpdateRollback is a trial boot given up on: the version that failed and why.
type UpdateRollback struct {
	Version string        `json:"version"`
	Slot    contract.Slot `json:"slot"`
	Time    time.Time     `json:"time"`
	Reason  string        `json:"reason"`
}

// The update agent wraps its errors in these (fmt.Errorf("...: %w", ErrUpdateBusy)) so the API
// answers with the status that tells a client what to do; any other error is a 500.
var (
	// ErrUpdatesNotConfigured: the image has no update agent, or no repository to ask (503).
	ErrUpdatesNotConfigured = errors.New("updates: not configured in this image")
	// ErrUpdateBusy: another update action is running (409).
	ErrUpdateBusy = errors.New("updates: another update action is running")
	// ErrUpdateRefused: the action does not fit the state (activate with nothing staged, apply
	// before the wave opens ...) (409).
	ErrUpdateRefused = errors.New("updates: refused")
	// ErrUpdateRepository: the repository could not be reached or what it served failed
	// verification (signatures, expiry, rollback, hashes, lengths) (502).
	ErrUpdateRepository = errors.New("updates: repository")
)
