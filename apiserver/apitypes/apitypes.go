// Package apitypes holds the JSON shapes of the host API that are not settings, shared by the
// server and its clients so neither has to import the other.
package apitypes

// OS is the answer to GET /os.
type OS struct {
	Version  string `json:"version"`
	Variant  string `json:"variant"`
	Slot     string `json:"slot"`
	RootHash string `json:"roothash"`
	Kernel   string `json:"kernel"`
	BuildID  string `json:"build_id"`
}

// Error is the body of every error response. Key names the settings key at fault, when one is.
type Error struct {
	Error string `json:"error"`
	Key   string `json:"key,omitempty"`
}

// Commit is the answer to POST /tx/commit_and_apply: the keys the transaction set.
type Commit struct {
	Changed []string `json:"changed"`
}

// User data states in UserData.State.
const (
	UserDataApplied    = "applied"     // parsed and committed
	UserDataNone       = "none"        // no source had user data
	UserDataInvalid    = "invalid"     // found but rejected (or unreadable); nothing applied
	UserDataNotChecked = "not-checked" // the datastore already existed: not the first boot
)

// UserData is the answer to GET /userdata: what happened to user data on this boot.
type UserData struct {
	State  string   `json:"state"`
	Source string   `json:"source,omitempty"`
	Error  string   `json:"error,omitempty"`
	Line   int      `json:"line,omitempty"`
	Key    string   `json:"key,omitempty"`
	Keys   []string `json:"keys,omitempty"` // the keys applied
}
