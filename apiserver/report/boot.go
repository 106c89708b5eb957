package report

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"github.com/ballast-os/ballast/apiserver/apitypes"
	"github.com/ballast-os/ballast/contract"
	"github.com/ballast-os/ballast/init/efivar"
	"github.com/ballast-os/ballast/init/harden"
)

// Bounds on what is read: the record carries the event log's summary, the key is 71 characters.
const (
	maxRecord      = 1 << 20
	maxRecoveryKey = 4 << 10
)

// Boot computes the boot report (GET /report/boot). Every part is read on its own: one that
// cannot be read says why in its error field and leaves the rest standing.
func (r *Reporter) Boot() apitypes.BootReport {
	var rep apitypes.BootReport
	sb, err := r.secureBoot()
	if err != nil {
		rep.SecureBootError = err.Error()
	} else {
		rep.SecureBoot = string(sb)
		rep.SetupMode = sb == efivar.SecureBootSetupMode
	}
	if l, err := (harden.Kernel{Root: r.src.Root}).Lockdown(); err != nil {
		rep.LockdownError = err.Error()
	} else {
		rep.Lockdown = string(l)
	}
	if img, err := contract.ReadImage(r.src.Root); err != nil {
		rep.ImageError = err.Error()
	} else {
		rep.Signed = img.Signed
		p := localPolicy(img)
		rep.LocalPolicy = &contract.LocalPolicyJSON{Encryption: p.Encryption, WithoutTPM: p.WithoutTPM}
	}
	if rec, err := r.bootSecurity(); err != nil {
		rep.RecordError = err.Error()
	} else {
		rep.TPM, rep.Local, rep.KernelLockdown = rec.TPM, &rec.Local, string(rec.KernelLockdown)
	}
	key, pending, err := r.recoveryKey()
	rep.RecoveryKey, rep.RecoveryKeyPending = key, pending
	if err != nil {
		rep.RecoveryKeyError = err.Error()
	}
	return rep
}

// AcknowledgeRecoveryKey removes the recovery key file: the operator has it, and the API never
// shows it again. Nothing to remove is apitypes.ErrNoRecoveryKey.
func (r *Reporter) AcknowledgeRecoveryKey() error {
	p := r.path(contract.RecoveryKeyPath)
	if err := os.Remove(p); errors.Is(err, fs.ErrNotExist) {
		return apitypes.ErrNoRecoveryKey
	} else if err != nil {
		return fmt.Errorf("acknowledge the recovery key: %w", err)
	}
	// The removal must outlive a power cut: a key that comes back after it was acknowledged is
	// one more copy of the secret nobody asked for.
	if err := syncDir(filepath.Dir(p)); err != nil {
		return fmt.Errorf("acknowledge the recovery key: removed, but %w", err)
	}
	return nil
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	if err := d.Sync(); err != nil {
		return fmt.Errorf("sync %s: %w", dir, err)
	}
	return nil
}

func (r *Reporter) secureBoot() (efivar.SecureBootState, error) {
	return efivar.SecureBoot(efivar.Vars{Dir: r.src.EFIVars})
}

// bootSecurity reads the initramfs's record of this boot.
func (r *Reporter) bootSecurity() (contract.BootSecurity, error) {
	b, err := readLimited(r.path(contract.BootSecurityPath), maxRecord)
	if errors.Is(err, fs.ErrNotExist) {
		return contract.BootSecurity{}, fmt.Errorf("no boot security record: the initramfs wrote no %s this boot", contract.BootSecurityPath)
	}
	if err != nil {
		return contract.BootSecurity{}, fmt.Errorf("boot security record: %w", err)
	}
	var rec contract.BootSecurity
	if err := json.Unmarshal(b, &rec); err != nil {
		return contract.BootSecurity{}, fmt.Errorf("boot security record %s: %w", contract.BootSecurityPath, err)
	}
	return rec, nil
}

// recoveryKey reads the recovery key while it waits to be acknowledged. pending is true whenever
// the file exists, even when it cannot be read: the operator must still be told to look.
func (r *Reporter) recoveryKey() (key string, pending bool, err error) {
	b, err := readLimited(r.path(contract.RecoveryKeyPath), maxRecoveryKey)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return "", false, nil
	case err != nil:
		return "", true, fmt.Errorf("recovery key: %w", err)
	}
	key = strings.TrimSpace(string(b))
	if key == "" {
		return "", true, fmt.Errorf("recovery key: %s is empty", contract.RecoveryKeyPath)
	}
	return key, true, nil
}

// readLimited reads a file of at most max bytes; a longer one is an error, not a truncation.
func readLimited(path string, max int64) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, max+1))
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	if int64(len(b)) > max {
		return nil, fmt.Errorf("%s: longer than %d bytes", path, max)
	}
	return b, nil
}

// localPolicy is image.json's policy for /local; an image that predates the field gets the
// defaults, as its command line (without the words) does.
func localPolicy(img contract.Image) contract.LocalPolicy {
	if img.Local == nil {
		return contract.DefaultLocalPolicy()
	}
	return contract.LocalPolicy{Encryption: img.Local.Encryption, WithoutTPM: img.Local.WithoutTPM}
}

// secureBootCheck: the firmware verifies what it boots. An unsigned image (a dev build) cannot
// be booted that way, so there the failure is expected; a signed one must be.
func secureBootCheck(state efivar.SecureBootState, sbErr error, img contract.Image, imgErr error) check {
	c := check{ID: "secure-boot", Title: "the firmware verifies the boot chain with the owner's keys (Secure Boot)", Expected: string(efivar.SecureBootEnabled)}
	if sbErr != nil {
		return fail(c, "", sbErr.Error())
	}
	observed := string(state)
	if state == efivar.SecureBootEnabled {
		return pass(c, observed)
	}
	if imgErr != nil {
		return fail(c, observed, imgErr.Error())
	}
	if !img.Signed {
		return expectedFail(c, observed, "unsigned image (a dev build): its boot chain carries no owner's signature for the firmware to verify")
	}
	switch state {
	case efivar.SecureBootSetupMode:
		return fail(c, observed, "the image is signed, but the firmware is in setup mode: no platform key is enrolled, so nothing is verified")
	case efivar.SecureBootDisabled:
		return fail(c, observed, "the image is signed, but Secure Boot is disabled in the firmware")
	}
	return fail(c, observed, "the image is signed, but the firmware has no Secure Boot variables (no Secure Boot support, or efivarfs not mounted)")
}

// localEncryptionCheck: /local is an encrypted volume. A plain one is expected where the image's
// policy chose it (encryption plain, or no TPM and without-tpm plain); anywhere else it is a
// failure, and so is a boot that left no record.
func localEncryptionCheck(rec contract.BootSecurity, recErr error, img contract.Image, imgErr error) check {
	c := check{ID: "local-encryption", Title: "/local is encrypted (LUKS2, its key sealed to the TPM)", Expected: string(contract.LocalEncrypted)}
	if recErr != nil {
		return fail(c, "", recErr.Error())
	}
	l := rec.Local
	observed := string(l.State)
	if l.Reason != "" {
		observed += " (" + l.Reason + ")"
	}
	switch l.State {
	case contract.LocalEncrypted:
		if l.Cipher != "" {
			observed += ", " + l.Cipher
		}
		return pass(c, observed)
	case contract.LocalIsPlain:
	default:
		return fail(c, observed, fmt.Sprintf("the boot security record says %q, neither %q nor %q", l.State, contract.LocalEncrypted, contract.LocalIsPlain))
	}
	if imgErr != nil {
		return fail(c, observed, imgErr.Error())
	}
	p := localPolicy(img)
	why := orNone(l.Reason)
	switch {
	case p.Encryption == contract.LocalPlain:
		return expectedFail(c, observed, fmt.Sprintf("the image keeps /local plain (%s=%s): %s", contract.ParamLocal, p.Encryption, why))
	case rec.TPM == nil && p.WithoutTPM == contract.WithoutTPMPlain:
		return expectedFail(c, observed, fmt.Sprintf("no TPM, and the image keeps /local plain without one (%s=%s): %s", contract.ParamLocalWithoutTPM, p.WithoutTPM, why))
	case rec.TPM == nil:
		return fail(c, observed, fmt.Sprintf("no TPM, and the image refuses a plain /local without one (%s=%s)", contract.ParamLocalWithoutTPM, p.WithoutTPM))
	}
	return fail(c, observed, fmt.Sprintf("the machine has a TPM and the image wants /local encrypted (%s=%s), yet it is plain", contract.ParamLocal, p.Encryption))
}
