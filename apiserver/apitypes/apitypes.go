// Package apitypes holds the JSON shapes of the host API that are not settings, shared by the
// server and its clients so neither has to import the other.
package apitypes

import (
	"errors"
	"time"

	"github.com/ballast-os/ballast/contract"
)

// OS is the answer to GET /os. Slot and Entry say what booted: the A/B slot from the kernel
// command line, and the boot entry file (contract.Entry's name, with the boot counter it had at
// this boot) from the loader's EFI variables, empty when no loader said. Arch is the image's
// architecture (image.json), else the kernel's (uname -m). SecureBoot is the firmware's word
// (efivar.SecureBootState): enabled, disabled, setup-mode or unsupported.
type OS struct {
	Version  string `json:"version"`
	Variant  string `json:"variant"`
	Slot     string `json:"slot"`
	Entry    string `json:"entry,omitempty"`
	RootHash string `json:"roothash"`
	Kernel   string `json:"kernel"`
	Arch     string `json:"arch"`
	BuildID  string `json:"build_id"`
	// SecureBoot is empty only from a server that predates it.
	SecureBoot string `json:"secure_boot,omitempty"`
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
	// Notes are changes the running kernel does not make (a lower lockdown level, a module in
	// use): they take effect at the next boot.
	Notes []string `json:"notes,omitempty"`
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

// Statuses of a HardeningCheck.
const (
	CheckPass = "pass"
	CheckFail = "fail"
	// CheckExpectedFail is a failure with a known cause that Reason names (a dev variant's shell,
	// the SELinux policy that is not there yet): reported, not hidden.
	CheckExpectedFail = "expected-fail"
)

// HardeningReport is the answer to GET /report/hardening: checks of the running system, each
// computed from what the kernel and the mount table say, never from configuration alone.
type HardeningReport struct {
	Passed       int              `json:"passed"`
	Failed       int              `json:"failed"`
	ExpectedFail int              `json:"expected_fail"`
	Checks       []HardeningCheck `json:"checks"`
}

// HardeningCheck is one check of the report.
type HardeningCheck struct {
	ID       string `json:"id"` // stable, e.g. verity-root, sysctl.kernel.kptr_restrict
	Title    string `json:"title"`
	Status   string `json:"status"`             // CheckPass, CheckFail or CheckExpectedFail
	Observed string `json:"observed"`           // what the running system shows
	Expected string `json:"expected,omitempty"` // what would pass
	Reason   string `json:"reason,omitempty"`   // why it fails (or is expected to)
}

// TimeUnknown is the state of GET /time when the time service has written none: the image does
// not run it, or it has not started yet.
const TimeUnknown = "unknown"

// Time is the answer to GET /time: the time service's state (contract.TimeStatus, whose fields it
// carries at its top level), the host's clock when the answer was made, and whether the kernel
// counts its clock as synchronised.
type Time struct {
	contract.TimeStatus
	Clock  time.Time   `json:"clock"`
	Kernel KernelClock `json:"kernel"`
}

// KernelClock is the kernel's view of its clock, from adjtimex(2): what every program that asks
// the kernel whether the time is right sees.
type KernelClock struct {
	Synchronised    bool    `json:"synchronised"`      // not TIME_ERROR: STA_UNSYNC is clear
	MaxErrorSeconds float64 `json:"max_error_seconds"` // grows by 500 ppm between updates
	EstErrorSeconds float64 `json:"est_error_seconds"`
	FrequencyPPM    float64 `json:"frequency_ppm"` // the correction of the clock's rate
}

// States of a support bundle's part (BundlePart.State).
const (
	BundlePartOK          = "ok"
	BundlePartUnavailable = "unavailable" // this host or build has no producer for it
	BundlePartError       = "error"       // its producer failed
)

// BundleIndex is bundle.json, the last file of a support bundle (GET /logs/bundle): what each
// part holds. A part that is unavailable has the file <name>.unavailable ("not available:
// <reason>"), one that failed <name>.error, instead of its own.
type BundleIndex struct {
	Created string       `json:"created"` // RFC 3339
	Parts   []BundlePart `json:"parts"`
}

// BundlePart is one part of a support bundle.
type BundlePart struct {
	Name   string   `json:"name"`
	State  string   `json:"state"`
	Detail string   `json:"detail,omitempty"` // why it is unavailable or failed
	Files  []string `json:"files"`
}

// BootReport is the answer to GET /report/boot: the trust of this boot, from the firmware's
// variables, the kernel, image.json and the initramfs's record (contract.BootSecurity). Each part
// that could not be read leaves its field empty and says why in its *_error field; the answer is
// still given, with what is known.
type BootReport struct {
	// SecureBoot is efivar.SecureBootState: enabled, disabled, setup-mode or unsupported.
	SecureBoot      string `json:"secure_boot"`
	SetupMode       bool   `json:"setup_mode"`
	SecureBootError string `json:"secure_boot_error,omitempty"`
	// Lockdown is the kernel's lockdown level (none, integrity, confidentiality).
	Lockdown      string `json:"lockdown"`
	LockdownError string `json:"lockdown_error,omitempty"`
	// KernelLockdown is the level the kernel set itself at boot, before the system init raised
	// it (the initramfs's record): the kernel locks itself down when it finds Secure Boot on.
	KernelLockdown string `json:"kernel_lockdown,omitempty"`
	// Signed and LocalPolicy are image.json's: whether the build signs the boot chain with the
	// owner's keys, and how the initramfs is to protect /local.
	Signed      bool                      `json:"signed"`
	LocalPolicy *contract.LocalPolicyJSON `json:"local_policy,omitempty"`
	ImageError  string                    `json:"image_error,omitempty"`
	// TPM and Local are the initramfs's record of this boot, passed through. TPM is null when
	// the machine has no TPM or the record is missing; Local is null when the record is missing,
	// and RecordError then says why.
	TPM         *contract.TPMRecord   `json:"tpm"`
	Local       *contract.LocalRecord `json:"local"`
	RecordError string                `json:"record_error,omitempty"`
	// RecoveryKey is /local's recovery key, shown from the first boot of the encrypted volume
	// until an operator acknowledges it (POST /actions/report/boot/acknowledge-recovery-key);
	// after that it is gone for good.
	RecoveryKey        string `json:"recovery_key,omitempty"`
	RecoveryKeyPending bool   `json:"recovery_key_pending"`
	RecoveryKeyError   string `json:"recovery_key_error,omitempty"`
}

// ErrNoRecoveryKey is the answer (404) to acknowledging a recovery key when none is waiting: it
// was acknowledged before, or /local is not encrypted.
var ErrNoRecoveryKey = errors.New("no recovery key is waiting to be acknowledged")
