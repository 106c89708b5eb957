// Package apitypes holds the JSON shapes of the host API that are not settings, shared by the
// server and its clients so neither has to import the other.
package apitypes

import "github.com/ballast-os/ballast/contract"

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

// Commit is the answer to POST /tx/commit, /tx/apply and /tx/commit_and_apply: the keys whose
// values changed (or were applied), and what applying them did.
type Commit struct {
	Changed   []string `json:"changed"`
	Files     []string `json:"files,omitempty"`     // configuration files rewritten
	Restarted []string `json:"restarted,omitempty"` // services restarted
}

// Transactions is the answer to GET /tx/list: the transactions with pending changes.
type Transactions struct {
	Transactions []string `json:"transactions"`
}

// Services is the answer to GET /services.
type Services struct {
	Services []Service `json:"services"`
}

// Logs is the answer to GET /logs without ?service=: the services that have a log.
type Logs struct {
	Services []string `json:"services"`
}

// Status is the answer to an action, e.g. POST /actions/reboot.
type Status struct {
	Status string `json:"status"`
}

// User data states, of UserData.State and UserDataSource.State.
const (
	UserDataApplied    = "applied"     // parsed and committed
	UserDataNone       = "none"        // no source had user data
	UserDataInvalid    = "invalid"     // found but rejected (or unreadable); nothing from it applied
	UserDataNotChecked = "not-checked" // the datastore already existed: not the first boot
)

// UserData is the answer to GET /userdata: what happened to user data on this boot. The top-level
// fields sum up the user data sources (image defaults are not user data): State is invalid when
// one source was, else applied when one was; Source, Error, Line and Key describe the first
// invalid source; Keys are the keys applied from user data.
type UserData struct {
	State   string           `json:"state"`
	Source  string           `json:"source,omitempty"`
	Error   string           `json:"error,omitempty"`
	Line    int              `json:"line,omitempty"`
	Key     string           `json:"key,omitempty"`
	Keys    []string         `json:"keys,omitempty"`
	Sources []UserDataSource `json:"sources"`
}

// UserDataSource is what one source gave, in the order sources are read (later ones override).
type UserDataSource struct {
	Name   string   `json:"name"`             // defaults, nocloud, imds, cmdline, file
	Origin string   `json:"origin,omitempty"` // where exactly: a file, a device, a URL
	State  string   `json:"state"`
	Error  string   `json:"error,omitempty"`
	Line   int      `json:"line,omitempty"`
	Key    string   `json:"key,omitempty"`
	Keys   []string `json:"keys,omitempty"` // the keys this source set
}

// Service is one supervised service, as GET /services lists them: what the system init reports.
type Service = contract.ServiceStatus

// Network is the answer to GET /network: what the network service reports (addresses, routes,
// leases, DNS, the host name and where each came from).
type Network = contract.NetworkState

// ConfigurationFiles is the answer to GET /configuration-files: which files and actions depend on
// which settings, and which services a change restarts.
type ConfigurationFiles struct {
	Files   []ConfigFile   `json:"files"`
	Actions []ConfigAction `json:"actions"`
}

// ConfigFile is a file rendered from the settings under Keys.
type ConfigFile struct {
	Path     string   `json:"path"`
	Keys     []string `json:"keys"`
	Services []string `json:"services"`
}

// ConfigAction is a change made to the running system from the settings under Keys.
type ConfigAction struct {
	Name string   `json:"name"`
	Keys []string `json:"keys"`
}
