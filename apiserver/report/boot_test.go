package report

import (
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ballast-os/ballast/apiserver/apitypes"
	"github.com/ballast-os/ballast/contract"
	"github.com/ballast-os/ballast/init/harden/hardentest"
)

const recoveryKey = "cbdefghi-jklnrtuv-cbdefghi-jklnrtuv-cbdefghi-jklnrtuv-cbdefghi-jklnrtuv"

func TestBoot(t *testing.T) {
	tests := []struct {
		name   string
		change func(t *testing.T, root string)
		check  func(t *testing.T, rep apitypes.BootReport)
	}{
		{name: "signed, secure boot, encrypted", check: func(t *testing.T, rep apitypes.BootReport) {
			if rep.SecureBoot != "enabled" || rep.SetupMode || rep.Lockdown != "integrity" || !rep.Signed {
				t.Errorf("firmware, kernel and image: %+v", rep)
			}
			// No local policy in image.json: the defaults, as the initramfs takes them.
			if p := rep.LocalPolicy; p == nil || p.Encryption != contract.LocalTPM || p.WithoutTPM != contract.WithoutTPMPlain {
				t.Errorf("local policy %+v", p)
			}
			if rep.TPM == nil || !rep.TPM.PCR11Signed || !rep.TPM.LeftInitrd || rep.TPM.PCRs[11] != "bb" || string(rep.TPM.EventLog) != `{"events":42}` {
				t.Errorf("tpm %+v", rep.TPM)
			}
			if rep.Local == nil || rep.Local.State != contract.LocalEncrypted || rep.Local.Cipher != "aes-xts-plain64" {
				t.Errorf("local %+v", rep.Local)
			}
			if rep.RecoveryKeyPending || rep.RecoveryKey != "" {
				t.Errorf("a recovery key without a file: %+v", rep)
			}
		}},
		{name: "first boot of the encrypted volume",
			change: func(t *testing.T, root string) { write(t, root, contract.RecoveryKeyPath, recoveryKey+"\n") },
			check: func(t *testing.T, rep apitypes.BootReport) {
				if rep.RecoveryKey != recoveryKey || !rep.RecoveryKeyPending || rep.RecoveryKeyError != "" {
					t.Errorf("recovery key %q pending %v (%s)", rep.RecoveryKey, rep.RecoveryKeyPending, rep.RecoveryKeyError)
				}
			}},
		{name: "empty recovery key file",
			change: func(t *testing.T, root string) { write(t, root, contract.RecoveryKeyPath, "\n") },
			check: func(t *testing.T, rep apitypes.BootReport) {
				if rep.RecoveryKey != "" || !rep.RecoveryKeyPending || !strings.Contains(rep.RecoveryKeyError, "is empty") {
					t.Errorf("recovery key %q pending %v (%s)", rep.RecoveryKey, rep.RecoveryKeyPending, rep.RecoveryKeyError)
				}
			}},
		{name: "oversized recovery key file",
			change: func(t *testing.T, root string) {
				write(t, root, contract.RecoveryKeyPath, strings.Repeat("x", maxRecoveryKey+1))
			},
			check: func(t *testing.T, rep apitypes.BootReport) {
				if rep.RecoveryKey != "" || !rep.RecoveryKeyPending || !strings.Contains(rep.RecoveryKeyError, "longer than 4096 bytes") {
					t.Errorf("recovery key %q pending %v (%s)", rep.RecoveryKey, rep.RecoveryKeyPending, rep.RecoveryKeyError)
				}
			}},
		{name: "setup mode, no TPM, plain by policy",
			change: func(t *testing.T, root string) {
				write(t, root, setupModeVar, "\x06\x00\x00\x00\x01")
				write(t, root, secureBootVar, "\x06\x00\x00\x00\x00")
				write(t, root, contract.BootSecurityPath, plainRecord)
				write(t, root, contract.ImageInfoPath, `{"kernel":"`+hardentest.Kver+`","local":{"encryption":"plain","without_tpm":"refuse"}}`)
			},
			check: func(t *testing.T, rep apitypes.BootReport) {
				if rep.SecureBoot != "setup-mode" || !rep.SetupMode || rep.Signed || rep.TPM != nil {
					t.Errorf("%+v", rep)
				}
				if p := rep.LocalPolicy; p == nil || p.Encryption != contract.LocalPlain || p.WithoutTPM != contract.WithoutTPMRefuse {
					t.Errorf("local policy %+v", p)
				}
				if rep.Local == nil || rep.Local.State != contract.LocalIsPlain || rep.Local.Reason != "no TPM" {
					t.Errorf("local %+v", rep.Local)
				}
			}},
		// Nothing but the kernel: every part says why it is missing, and the answer still comes.
		{name: "nothing to read",
			change: func(t *testing.T, root string) {
				for _, p := range []string{contract.EFIVarsMount, contract.BootSecurityPath, contract.ImageInfoPath, contract.LockdownFile} {
					os.RemoveAll(filepath.Join(root, p))
				}
			},
			check: func(t *testing.T, rep apitypes.BootReport) {
				if rep.SecureBoot != "unsupported" || rep.Lockdown != "" || rep.LockdownError == "" || rep.ImageError == "" || rep.LocalPolicy != nil {
					t.Errorf("%+v", rep)
				}
				if rep.TPM != nil || rep.Local != nil || !strings.Contains(rep.RecordError, "no boot security record: the initramfs wrote no /run/ballast/boot-security.json") {
					t.Errorf("record: %+v", rep)
				}
				b, _ := json.Marshal(rep)
				if !strings.Contains(string(b), `"tpm":null,"local":null`) {
					t.Errorf("JSON %s: want tpm and local null", b)
				}
			}},
		{name: "malformed SecureBoot",
			change: func(t *testing.T, root string) { write(t, root, secureBootVar, "\x06\x00") },
			check: func(t *testing.T, rep apitypes.BootReport) {
				if rep.SecureBoot != "" || !strings.Contains(rep.SecureBootError, "shorter than its attributes") || rep.Local == nil {
					t.Errorf("%+v", rep)
				}
			}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			root := machine(t)
			if tt.change != nil {
				tt.change(t, root)
			}
			tt.check(t, New(Sources{Root: root}).Boot())
		})
	}
}

// The recovery key is shown until it is acknowledged, and never after.
func TestAcknowledgeRecoveryKey(t *testing.T) {
	root := machine(t)
	r := New(Sources{Root: root})
	if err := r.AcknowledgeRecoveryKey(); !errors.Is(err, apitypes.ErrNoRecoveryKey) {
		t.Fatalf("acknowledge without a key: %v", err)
	}
	write(t, root, contract.RecoveryKeyPath, recoveryKey)
	if rep := r.Boot(); rep.RecoveryKey != recoveryKey {
		t.Fatalf("before: %q", rep.RecoveryKey)
	}
	if err := r.AcknowledgeRecoveryKey(); err != nil {
		t.Fatal(err)
	}
	if rep := r.Boot(); rep.RecoveryKey != "" || rep.RecoveryKeyPending {
		t.Fatalf("after: %+v", rep)
	}
	if _, err := os.Stat(filepath.Join(root, contract.RecoveryKeyPath)); !os.IsNotExist(err) {
		t.Fatalf("the key file is still there: %v", err)
	}
	if err := r.AcknowledgeRecoveryKey(); !errors.Is(err, apitypes.ErrNoRecoveryKey) {
		t.Fatalf("second acknowledge: %v", err)
	}
	// EFIVars may point elsewhere than under the root.
	efi := filepath.Join(t.TempDir(), "efivars")
	os.Mkdir(efi, 0o755)
	if rep := New(Sources{Root: root, EFIVars: efi}).Boot(); rep.SecureBoot != "unsupported" {
		t.Errorf("EFIVars elsewhere: %q", rep.SecureBoot)
	}
}
