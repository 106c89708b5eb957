package contract

import (
	"encoding/json"
	"fmt"
	"strings"
)

// Secure Boot enrollment and measured boot: what the builder puts on the ESP and the UKI, what the
// initramfs records about the boot's trust, and what the API server reports from it.

// ESPKeysDir holds the owner's signed EFI signature lists (PK.auth, KEK.auth, db.auth) that
// systemd-boot enrolls when it finds the firmware in setup mode. systemd-boot 252 enrolls the
// directory named "auto" by itself (loader.conf's secure-boot-enroll force, on virtual machines,
// after a 15 s countdown) and offers any other as a menu entry. Only signed images carry it.
const ESPKeysDir = "loader/keys/auto"

// EnrollFiles are the files of ESPKeysDir, in the order systemd-boot writes them (db and KEK
// while the firmware is still in setup mode, PK last, which ends setup mode).
var EnrollFiles = []string{"db.auth", "KEK.auth", "PK.auth"}

// Where the UKI's stub exports its unmeasured PCR 11 signature and its measured public key inside
// the initramfs (systemd-stub 252 adds them as an extra cpio archive).
const (
	StubPCRSignature = "/.extra/tpm2-pcr-signature.json"
	StubPCRPublicKey = "/.extra/tpm2-pcr-public-key.pem"
)

// LeaveInitrdEvent is what the initramfs extends PCR 11 with once /local is open: from then on
// PCR 11 matches no signed policy, so nothing the system runs later can unseal the disk key again.
const LeaveInitrdEvent = "ballast: leave-initrd"

// Kernel command line words for /local's protection. The command line is part of the signed UKI,
// so the choice is the image's, not the disk's or the user's.
const (
	ParamLocal           = "ballast.local"             // LocalEncryption
	ParamLocalWithoutTPM = "ballast.local.without-tpm" // WithoutTPM
)

// LocalEncryption is how the initramfs formats a fresh data partition.
type LocalEncryption string

const (
	// LocalTPM encrypts /local with LUKS2 under a random key sealed to the TPM, plus a recovery key.
	LocalTPM LocalEncryption = "tpm"
	// LocalPlain keeps /local a plain ext4 file system.
	LocalPlain LocalEncryption = "plain"
)

// WithoutTPM is what an image that wants LocalTPM does on a machine without a TPM.
type WithoutTPM string

const (
	WithoutTPMPlain  WithoutTPM = "plain"  // keep /local plain and say so in GET /report/boot
	WithoutTPMRefuse WithoutTPM = "refuse" // stop the boot before anything is written
)

// LocalPolicy is the image's choice for /local.
type LocalPolicy struct {
	Encryption LocalEncryption
	WithoutTPM WithoutTPM
}

// DefaultLocalPolicy encrypts where a TPM is and stays plain where none is, as a cloud image
// that must boot on instance types without a vTPM would.
func DefaultLocalPolicy() LocalPolicy {
	return LocalPolicy{Encryption: LocalTPM, WithoutTPM: WithoutTPMPlain}
}

// Validate names the word that is wrong.
func (p LocalPolicy) Validate() error {
	switch p.Encryption {
	case LocalTPM, LocalPlain:
	default:
		return fmt.Errorf("%s=%q: want %q or %q", ParamLocal, p.Encryption, LocalTPM, LocalPlain)
	}
	switch p.WithoutTPM {
	case WithoutTPMPlain, WithoutTPMRefuse:
	default:
		return fmt.Errorf("%s=%q: want %q or %q", ParamLocalWithoutTPM, p.WithoutTPM, WithoutTPMPlain, WithoutTPMRefuse)
	}
	return nil
}

// Params returns the command line words.
func (p LocalPolicy) Params() Cmdline {
	return Cmdline{KV(ParamLocal, string(p.Encryption)), KV(ParamLocalWithoutTPM, string(p.WithoutTPM))}
}

// ParseLocalPolicy reads the words Params wrote; absent words take DefaultLocalPolicy's values
// (images built before the words existed).
func ParseLocalPolicy(c Cmdline) (LocalPolicy, error) {
	p := DefaultLocalPolicy()
	if v, ok := c.Get(ParamLocal); ok {
		p.Encryption = LocalEncryption(strings.ToLower(v))
	}
	if v, ok := c.Get(ParamLocalWithoutTPM); ok {
		p.WithoutTPM = WithoutTPM(strings.ToLower(v))
	}
	if err := p.Validate(); err != nil {
		return LocalPolicy{}, fmt.Errorf("kernel command line: %w", err)
	}
	return p, nil
}

// BootSecurityPath is where the initramfs records what it found and did (BootSecurity), for
// GET /report/boot. It is on /run: it describes this boot only.
const BootSecurityPath = "/run/ballast/boot-security.json"

// RecoveryKeyPath holds /local's recovery key from the first boot until an operator acknowledges
// it (POST /actions/report/boot/acknowledge-recovery-key). It lies inside the encrypted volume it
// opens, so it gives nothing to whoever cannot already read /local.
const RecoveryKeyPath = VarOnData + "/lib/ballast/recovery-key"

// LocalState is what /local is.
type LocalState string

const (
	LocalEncrypted LocalState = "encrypted"
	LocalIsPlain   LocalState = "plain"
)

// BootSecurity is the initramfs's record of the boot's trust: the TPM's measurements and how
// /local was opened. The API server adds what userspace can see (Secure Boot variables, lockdown).
type BootSecurity struct {
	TPM   *TPMRecord  `json:"tpm,omitempty"` // nil: no TPM
	Local LocalRecord `json:"local"`
	// KernelLockdown is the lockdown level the kernel set itself, before the system init raised
	// it: "integrity" when it found Secure Boot on, "none" otherwise.
	KernelLockdown Lockdown `json:"kernel_lockdown,omitempty"`
}

// TPMRecord is the TPM's view of the boot, read by the initramfs before it extended PCR 11.
type TPMRecord struct {
	// PCRs are the sha256 bank's PCRs 0 to 15, hex, as the initramfs found them.
	PCRs map[int]string `json:"pcrs"`
	// PCR11Signed reports whether the UKI's PCR signature (.pcrsig) covers the measured PCR 11:
	// the value the builder predicted and the owner's key signed. Without a signature it is false
	// and PCR11Signature says why.
	PCR11Signed    bool   `json:"pcr11_signed"`
	PCR11Signature string `json:"pcr11_signature"` // "owner's key <fingerprint>", or why there is none
	// LeftInitrd reports that PCR 11 was extended with LeaveInitrdEvent.
	LeftInitrd bool `json:"left_initrd"`
	// EventLog summarises the firmware's event log; EventLogError says why it could not be read.
	EventLog      json.RawMessage `json:"event_log,omitempty"`
	EventLogError string          `json:"event_log_error,omitempty"`
}

// LocalRecord says how /local was opened this boot.
type LocalRecord struct {
	State  LocalState `json:"state"`
	Reason string     `json:"reason"` // why it is plain, or how it was unlocked
	// Formatted reports that this boot made the encrypted volume, and FormatSeconds how long
	// that took (key sealing, LUKS2 header, copying the file system through dm-crypt).
	Formatted     bool    `json:"formatted,omitempty"`
	FormatSeconds float64 `json:"format_seconds,omitempty"`
	UnlockSeconds float64 `json:"unlock_seconds,omitempty"`
	// SealedPCRs are the PCRs the key's policy covers directly (7) and through the owner's
	// signature (11).
	SealedPCRs []int    `json:"sealed_pcrs,omitempty"`
	PolicyKey  string   `json:"policy_key,omitempty"` // sha256 of the PCR signing key's public key
	Keyslots   []string `json:"keyslots,omitempty"`
	Cipher     string   `json:"cipher,omitempty"`
}

// LocalTemplate is, in the initramfs, the gzip-compressed ext4 file system (LocalTemplateSize
// bytes, the data partition's UUID and label) that the first boot of an encrypted /local writes
// through dm-crypt and then grows to fill the volume. The plain data partition the builder writes
// cannot serve: it fills its partition, where the LUKS2 header must go first.
const (
	LocalTemplate     = "/usr/lib/ballast/local.ext4.gz"
	LocalTemplateSize = 32 << 20
)
