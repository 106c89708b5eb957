package initramfs

import (
	"crypto/rsa"
	"crypto/x509"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"os"

	"github.com/google/go-tpm/tpm2/transport"

	"github.com/ballast-os/ballast/contract"
	"github.com/ballast-os/ballast/init/localcrypt"
	"github.com/ballast-os/ballast/trust/tpm/eventlog"
	"github.com/ballast-os/ballast/trust/tpm/policy"
	"github.com/ballast-os/ballast/trust/tpm/seal"
)

// tpmDevice is the machine's TPM with what the UKI's stub passed along: the owner's pcr public
// key (measured into PCR 11) and the signed policies for this UKI's PCR 11 (not measured).
type tpmDevice struct {
	t    transport.TPMCloser
	pcrs map[int][]byte // sha256 bank, PCRs 0-15, read before anything here extended one

	pub    *rsa.PublicKey // nil: an unsigned image
	fp     string
	sig    policy.File
	sigErr error
}

// token is the LUKS2 token that carries the sealed key.
type token struct {
	Type     string      `json:"type"`
	Keyslots []string    `json:"keyslots"`
	Sealed   seal.Sealed `json:"ballast_sealed"`
}

// openTPM opens the TPM when the machine has one; nil, nil when it has none.
func openTPM() (*tpmDevice, error) {
	if !seal.Present() {
		return nil, nil
	}
	t, err := seal.Open()
	if err != nil {
		return nil, err
	}
	d := &tpmDevice{t: t}
	all := make([]int, 16)
	for i := range all {
		all[i] = i
	}
	if d.pcrs, err = seal.ReadPCRs(t, all); err != nil {
		t.Close()
		return nil, fmt.Errorf("read PCRs: %w", err)
	}
	pemBytes, err := os.ReadFile(contract.StubPCRPublicKey)
	switch {
	case errors.Is(err, os.ErrNotExist):
		d.sigErr = errors.New("the image is unsigned: its UKI carries no PCR signing key")
		return d, nil
	case err != nil:
		d.sigErr = err
		return d, nil
	}
	if d.pub, d.fp, err = parsePublicKey(pemBytes); err != nil {
		d.sigErr = fmt.Errorf("%s: %w", contract.StubPCRPublicKey, err)
		d.pub = nil
		return d, nil
	}
	b, err := os.ReadFile(contract.StubPCRSignature)
	if err == nil {
		d.sig, err = policy.Parse(b)
	}
	if err != nil {
		d.sigErr = fmt.Errorf("%s: %w", contract.StubPCRSignature, err)
	}
	return d, nil
}

func parsePublicKey(b []byte) (*rsa.PublicKey, string, error) {
	blk, _ := pem.Decode(b)
	if blk == nil {
		return nil, "", errors.New("no PEM block")
	}
	k, err := x509.ParsePKIXPublicKey(blk.Bytes)
	if err != nil {
		return nil, "", err
	}
	pub, ok := k.(*rsa.PublicKey)
	if !ok {
		return nil, "", fmt.Errorf("a %T, want an RSA key", k)
	}
	fp, err := policy.Fingerprint(pub)
	return pub, fp, err
}

func (d *tpmDevice) Close() error { return d.t.Close() }

// sealer is the TPM as localcrypt uses it, or nil with the reason when the image cannot seal
// (an unsigned image has no key to approve PCR 11 with).
func (d *tpmDevice) sealer() (localcrypt.Sealer, string) {
	if d.pub == nil {
		return nil, fmt.Sprintf("the TPM is not used: %v", d.sigErr)
	}
	return d, ""
}

func (d *tpmDevice) Seal(key []byte) (json.RawMessage, error) {
	s, err := seal.Seal(d.t, key, d.pcrs[7], d.pub)
	if err != nil {
		return nil, err
	}
	return json.Marshal(token{Type: localcrypt.TokenType, Keyslots: []string{"0"}, Sealed: s})
}

func (d *tpmDevice) Unseal(raw json.RawMessage) ([]byte, error) {
	var tok token
	if err := json.Unmarshal(raw, &tok); err != nil {
		return nil, fmt.Errorf("token: %w", err)
	}
	if d.sigErr != nil {
		return nil, fmt.Errorf("%w: %v", seal.ErrNoSignature, d.sigErr)
	}
	return seal.Unseal(d.t, tok.Sealed, d.sig, d.pub)
}

func (d *tpmDevice) Describe() ([]int, string) { return []int{7, 11}, d.fp }

// Record is the TPM's part of the boot record.
func (d *tpmDevice) Record() *contract.TPMRecord {
	r := &contract.TPMRecord{PCRs: map[int]string{}}
	var err error
	for i, v := range d.pcrs {
		r.PCRs[i] = hex.EncodeToString(v)
	}
	switch {
	case d.sigErr != nil:
		r.PCR11Signature = d.sigErr.Error()
	default:
		if _, err := d.sig.Find(d.pcrs[11], d.fp); err != nil {
			r.PCR11Signature = err.Error()
		} else {
			r.PCR11Signed = true
			r.PCR11Signature = "signed by the owner's pcr key " + d.fp
		}
	}
	r.EventLog, err = d.eventLog()
	if err != nil {
		r.EventLogError = err.Error()
	}
	return r
}

// eventLog summarises the firmware's event log and checks that replaying it gives the PCRs the
// TPM holds: a log that does not replay describes some other boot.
func (d *tpmDevice) eventLog() (json.RawMessage, error) {
	var b []byte
	if err := withSecurityfs(func() (err error) {
		b, err = os.ReadFile(eventlog.Path)
		return err
	}); err != nil {
		return nil, err
	}
	l, err := eventlog.Parse(b)
	if err != nil {
		return nil, err
	}
	replayed, err := l.Replay(eventlog.SHA256)
	if err != nil {
		return nil, err
	}
	// Only the firmware's PCRs: PCR 11 is the stub's, which logs to the log too, but the PCRs
	// 8 and up also hold what happened after the log was handed over.
	actual := map[int][]byte{}
	for i := 0; i <= 7; i++ {
		actual[i] = d.pcrs[i]
	}
	for i := range replayed {
		if i > 7 {
			delete(replayed, i)
		}
	}
	mism := eventlog.Check(replayed, actual)
	return json.Marshal(struct {
		Summary    eventlog.Summary    `json:"summary"`
		Replays    bool                `json:"replays"` // PCRs 0-7 equal the log's replay
		Mismatches []eventlog.Mismatch `json:"mismatches,omitempty"`
	}{l.Summarize(), len(mism) == 0, mism})
}

// LeaveInitrd extends PCR 11 so that no later program can unseal.
func (d *tpmDevice) LeaveInitrd() error {
	return seal.ExtendPCR(d.t, 11, []byte(contract.LeaveInitrdEvent))
}
