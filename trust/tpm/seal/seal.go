// Package seal seals the disk key to the TPM and unseals it at boot: the key opens only while
// PCR 7 (Secure Boot state and keys) is what it was at sealing and PCR 11 (the booted UKI) holds a
// value the owner's pcr key has signed, so signed updates keep working without resealing.
package seal

import (
	"bytes"
	"crypto/rsa"
	"encoding/hex"
	"errors"
	"fmt"

	"github.com/ballast-os/ballast/trust/tpm/policy"
	"github.com/google/go-tpm/tpm2"
	"github.com/google/go-tpm/tpm2/transport"
)

// MaxSecret is the most a TPM seals in one object (MAX_SYM_DATA).
const MaxSecret = 128

// Why Unseal failed, for the boot to tell the owner. Test with errors.Is; the returned error
// adds the detail.
var (
	// ErrCannotLoad: the TPM does not accept the sealed object, because it was cleared or
	// replaced or the disk is in another machine.
	ErrCannotLoad = errors.New("the TPM cannot load the sealed disk key (TPM cleared or replaced, or the disk was moved to another machine)")
	// ErrNoSignature: nothing signed by the owner's pcr key approves the booted PCR 11 value:
	// the UKI is not signed by that key, its signature is missing, or PCR 11 was already
	// extended past the unlock point.
	ErrNoSignature = errors.New("no signature from the owner's pcr key matches the booted PCR 11 value (UKI not signed by that key, or its signature missing)")
	// ErrPCR7Changed: PCR 7 differs from sealing time: Secure Boot was switched, or its keys
	// (PK, KEK, db, dbx) changed.
	ErrPCR7Changed = errors.New("PCR 7 changed since the disk key was sealed (Secure Boot state or keys changed)")
	// ErrWrongKey: the signature, or the key offered to check it, is not the one the disk key
	// is sealed to.
	ErrWrongKey = errors.New("the PCR signature is from a different key than the one the disk key is sealed to")
)

// Sealed is the TPM's encrypted copy of the disk key and what is needed to load and explain it.
// It is stored as JSON in a LUKS2 token:
//
//	{"public":"<base64 TPM2B_PUBLIC>","private":"<base64 TPM2B_PRIVATE>","pcrs":[7,11],
//	 "bank":"sha256","pkfp":"<hex>","policy":"<hex>"}
type Sealed struct {
	Public  []byte `json:"public"`
	Private []byte `json:"private"`
	// PCRs the key is bound to: 7 directly, 11 through the signed policies.
	PCRs []int  `json:"pcrs"`
	Bank string `json:"bank"`
	// PKFP is the fingerprint (policy.Fingerprint) of the pcr key the policy trusts.
	PKFP string `json:"pkfp"`
	// Policy is the hex authPolicy of the object, for diagnostics.
	Policy string `json:"policy"`
}

// srk creates the storage root key. The ECC P-256 template is the TCG standard one, so the
// primary is derived from the owner seed the same way every boot and need not be persisted.
func srk(tpm transport.TPM) (*tpm2.CreatePrimaryResponse, func(), error) {
	rsp, err := tpm2.CreatePrimary{
		PrimaryHandle: tpm2.TPMRHOwner,
		InPublic:      tpm2.New2B(tpm2.ECCSRKTemplate),
	}.Execute(tpm)
	if err != nil {
		return nil, nil, fmt.Errorf("seal: creating the storage root key: %w", err)
	}
	return rsp, func() { flush(tpm, rsp.ObjectHandle) }, nil
}

func flush(tpm transport.TPM, h tpm2.TPMHandle) {
	// Best effort: a handle left behind is freed by the resource manager when the device is
	// closed, and an error here must not hide the one that matters.
	_, _ = tpm2.FlushContext{FlushHandle: h}.Execute(tpm)
}

// Seal seals secret so that it unseals while PCR 7 equals pcr7 (its current value) and PCR 11
// holds a value approved by pcrPub.
func Seal(tpm transport.TPM, secret, pcr7 []byte, pcrPub *rsa.PublicKey) (Sealed, error) {
	if len(secret) == 0 || len(secret) > MaxSecret {
		return Sealed{}, fmt.Errorf("seal: secret is %d bytes, want 1 to %d", len(secret), MaxSecret)
	}
	authPolicy, err := policy.Sealing(pcrPub, pcr7)
	if err != nil {
		return Sealed{}, fmt.Errorf("seal: computing the policy: %w", err)
	}
	fp, err := policy.Fingerprint(pcrPub)
	if err != nil {
		return Sealed{}, err
	}
	parent, done, err := srk(tpm)
	if err != nil {
		return Sealed{}, err
	}
	defer done()
	rsp, err := tpm2.Create{
		ParentHandle: tpm2.AuthHandle{Handle: parent.ObjectHandle, Name: parent.Name, Auth: tpm2.PasswordAuth(nil)},
		InSensitive: tpm2.TPM2BSensitiveCreate{Sensitive: &tpm2.TPMSSensitiveCreate{
			Data: tpm2.NewTPMUSensitiveCreate(&tpm2.TPM2BSensitiveData{Buffer: secret}),
		}},
		InPublic: tpm2.New2B(tpm2.TPMTPublic{
			Type:    tpm2.TPMAlgKeyedHash,
			NameAlg: tpm2.TPMAlgSHA256,
			ObjectAttributes: tpm2.TPMAObject{
				FixedTPM:    true,
				FixedParent: true,
				// Only the policy can authorize use, and only the policy can administer it:
				// the empty auth value must open nothing.
				UserWithAuth:    false,
				AdminWithPolicy: true,
				// A policy mismatch is an expected event on a changed boot, not an attack
				// on a password; it must not count toward dictionary-attack lockout.
				NoDA: true,
			},
			AuthPolicy: tpm2.TPM2BDigest{Buffer: authPolicy},
			Parameters: tpm2.NewTPMUPublicParms(tpm2.TPMAlgKeyedHash, &tpm2.TPMSKeyedHashParms{
				Scheme: tpm2.TPMTKeyedHashScheme{Scheme: tpm2.TPMAlgNull},
			}),
		}),
	}.Execute(tpm)
	if err != nil {
		return Sealed{}, fmt.Errorf("seal: creating the sealed object: %w", err)
	}
	// Sanity check: the TPM must have recorded the policy computed here, or no unseal would
	// ever succeed and the mistake would surface only at the next boot.
	pub, err := rsp.OutPublic.Contents()
	if err != nil {
		return Sealed{}, fmt.Errorf("seal: reading back the sealed object: %w", err)
	}
	if !bytes.Equal(pub.AuthPolicy.Buffer, authPolicy) {
		return Sealed{}, fmt.Errorf("seal: TPM recorded policy %x, computed %x", pub.AuthPolicy.Buffer, authPolicy)
	}
	return Sealed{
		Public:  tpm2.Marshal(rsp.OutPublic),
		Private: tpm2.Marshal(rsp.OutPrivate),
		PCRs:    []int{7, 11},
		Bank:    "sha256",
		PKFP:    fp,
		Policy:  hex.EncodeToString(authPolicy),
	}, nil
}

// Unseal returns the secret if the TPM's PCRs satisfy the sealing policy: PCR 11 approved by an
// entry of sig signed by pcrPub, and PCR 7 unchanged. The error says which condition failed
// (ErrCannotLoad, ErrNoSignature, ErrWrongKey, ErrPCR7Changed).
func Unseal(tpm transport.TPM, s Sealed, sig policy.File, pcrPub *rsa.PublicKey) ([]byte, error) {
	fp, err := policy.Fingerprint(pcrPub)
	if err != nil {
		return nil, err
	}
	if s.PKFP != "" && s.PKFP != fp {
		return nil, fmt.Errorf("%w: offered key %s, sealed to %s", ErrWrongKey, fp, s.PKFP)
	}
	inPub, err := tpm2.Unmarshal[tpm2.TPM2BPublic](s.Public)
	if err != nil {
		return nil, fmt.Errorf("seal: sealed public part: %w", err)
	}
	inPriv, err := tpm2.Unmarshal[tpm2.TPM2BPrivate](s.Private)
	if err != nil {
		return nil, fmt.Errorf("seal: sealed private part: %w", err)
	}

	parent, done, err := srk(tpm)
	if err != nil {
		return nil, err
	}
	defer done()
	obj, err := tpm2.Load{
		ParentHandle: tpm2.AuthHandle{Handle: parent.ObjectHandle, Name: parent.Name, Auth: tpm2.PasswordAuth(nil)},
		InPrivate:    *inPriv,
		InPublic:     *inPub,
	}.Execute(tpm)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrCannotLoad, err)
	}
	defer flush(tpm, obj.ObjectHandle)

	pcrs, err := ReadPCRs(tpm, []int{11})
	if err != nil {
		return nil, err
	}
	entry, err := sig.Find(pcrs[11], fp)
	switch {
	case errors.Is(err, policy.ErrOtherKey):
		return nil, fmt.Errorf("%w: %v", ErrWrongKey, err)
	case errors.Is(err, policy.ErrNoPolicy):
		return nil, fmt.Errorf("%w: PCR 11 is %x", ErrNoSignature, pcrs[11])
	case err != nil:
		return nil, fmt.Errorf("seal: %w", err)
	}
	approved, err := entry.Policy()
	if err != nil {
		return nil, err
	}
	signature, err := entry.Signature()
	if err != nil {
		return nil, err
	}

	tmpl, err := policy.RSAPublic(pcrPub)
	if err != nil {
		return nil, err
	}
	// The owner hierarchy (not null) so the verification ticket is one PolicyAuthorize accepts.
	key, err := tpm2.LoadExternal{InPublic: tpm2.New2B(tmpl), Hierarchy: tpm2.TPMRHOwner}.Execute(tpm)
	if err != nil {
		return nil, fmt.Errorf("seal: loading the pcr public key: %w", err)
	}
	defer flush(tpm, key.ObjectHandle)
	ticket, err := tpm2.VerifySignature{
		KeyHandle: key.ObjectHandle,
		Digest:    tpm2.TPM2BDigest{Buffer: policy.AHash(approved)},
		Signature: tpm2.TPMTSignature{
			SigAlg: tpm2.TPMAlgRSASSA,
			Signature: tpm2.NewTPMUSignature(tpm2.TPMAlgRSASSA, &tpm2.TPMSSignatureRSA{
				Hash: tpm2.TPMAlgSHA256, Sig: tpm2.TPM2BPublicKeyRSA{Buffer: signature},
			}),
		},
	}.Execute(tpm)
	if err != nil {
		// The entry names our key's fingerprint but its signature does not verify with it: a
		// forged or corrupted entry, which approves nothing.
		return nil, fmt.Errorf("%w: the TPM rejects the signature for PCR 11 %x: %v", ErrNoSignature, pcrs[11], err)
	}

	sess, closeSess, err := tpm2.PolicySession(tpm, tpm2.TPMAlgSHA256, 16)
	if err != nil {
		return nil, fmt.Errorf("seal: starting a policy session: %w", err)
	}
	defer closeSess()
	sel11, _ := policy.Selection([]int{11})
	if _, err := (tpm2.PolicyPCR{PolicySession: sess.Handle(), Pcrs: sel11}).Execute(tpm); err != nil {
		return nil, fmt.Errorf("seal: PolicyPCR(11): %w", err)
	}
	if _, err := (tpm2.PolicyAuthorize{
		PolicySession:  sess.Handle(),
		ApprovedPolicy: tpm2.TPM2BDigest{Buffer: approved},
		KeySign:        key.Name,
		CheckTicket:    ticket.Validation,
	}).Execute(tpm); err != nil {
		// PCR 11 moved between the read above and PolicyPCR: the signed value no longer holds.
		return nil, fmt.Errorf("%w: PolicyAuthorize: %v", ErrNoSignature, err)
	}
	sel7, _ := policy.Selection([]int{7})
	if _, err := (tpm2.PolicyPCR{PolicySession: sess.Handle(), Pcrs: sel7}).Execute(tpm); err != nil {
		return nil, fmt.Errorf("seal: PolicyPCR(7): %w", err)
	}
	out, err := tpm2.Unseal{ItemHandle: tpm2.AuthHandle{Handle: obj.ObjectHandle, Name: obj.Name, Auth: sess}}.Execute(tpm)
	if err != nil {
		if errors.Is(err, tpm2.TPMRCPolicyFail) {
			// PCR 11 and the key were checked above, so the one part left is PCR 7.
			return nil, fmt.Errorf("%w: %v", ErrPCR7Changed, err)
		}
		return nil, fmt.Errorf("seal: unsealing: %w", err)
	}
	return out.OutData.Buffer, nil
}
