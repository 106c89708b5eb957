package policy

import (
	"bytes"
	"crypto"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
)

// File is the PCR signature file, in the JSON form systemd-measure sign writes and systemd-stub
// hands to the initrd as /.extra/tpm2-pcr-signature.json (from the UKI's .pcrsig section):
//
//	{"sha256":[{"pcrs":[11],"pkfp":"<hex>","pol":"<hex>","sig":"<base64>"}]}
//
// systemd-measure sign output for the same UKI and key is byte-for-byte what NewEntry makes.
type File struct {
	SHA256 []Entry `json:"sha256"`
}

// Entry is one signed policy.
type Entry struct {
	// PCRs are the PCRs the policy covers; for Ballast always [11].
	PCRs []int `json:"pcrs"`
	// PKFP is the hex sha256 of the signing public key's PKCS#1 DER (see Fingerprint).
	PKFP string `json:"pkfp"`
	// Pol is the hex approved policy digest (PolicyPCR over PCRs, from a fresh session).
	Pol string `json:"pol"`
	// Sig is the base64 RSASSA-PKCS1-v1_5 sha256 signature over sha256(pol || policyRef), with
	// an empty policyRef; it is exactly what TPM2_VerifySignature checks.
	Sig string `json:"sig"`
}

// Errors Find returns; the unlock path tells them apart to say why a disk stays locked.
var (
	// ErrNoPolicy: no entry approves the PCR value.
	ErrNoPolicy = errors.New("no signed policy for this PCR 11 value")
	// ErrOtherKey: an entry approves the value, but it was signed by another key.
	ErrOtherKey = errors.New("the policy for this PCR 11 value is signed by another key")
)

// Fingerprint is the pkfp of a public key as systemd 252 computes it: hex sha256 of the key's
// PKCS#1 RSAPublicKey DER (OpenSSL's i2d_PublicKey), not of the SubjectPublicKeyInfo a PEM
// "PUBLIC KEY" holds. The systemd-measure cross-check pins this.
func Fingerprint(pub crypto.PublicKey) (string, error) {
	rsaPub, ok := pub.(*rsa.PublicKey)
	if !ok || rsaPub == nil {
		return "", fmt.Errorf("policy: the pcr key is a %T, want RSA", pub)
	}
	sum := sha256.Sum256(x509.MarshalPKCS1PublicKey(rsaPub))
	return hex.EncodeToString(sum[:]), nil
}

// aHash is the digest TPM2_PolicyAuthorize wants a signature over.
func aHash(approved, policyRef []byte) []byte {
	h := sha256.New()
	h.Write(approved)
	h.Write(policyRef)
	return h.Sum(nil)
}

// AHash is the digest signed for an approved policy with the empty policyRef Ballast seals to;
// VerifySignature is given this.
func AHash(approved []byte) []byte { return aHash(approved, nil) }

// Sign signs an approved policy digest with the owner's RSA-2048 pcr key (PKCS#1 v1.5, so the
// same policy and key always give the same signature).
func Sign(approved []byte, key crypto.Signer) ([]byte, error) {
	if len(approved) != Size {
		return nil, fmt.Errorf("policy: approved policy is %d bytes, want %d", len(approved), Size)
	}
	pub, ok := key.Public().(*rsa.PublicKey)
	if !ok {
		return nil, fmt.Errorf("policy: the pcr key is a %T, want RSA", key.Public())
	}
	if _, err := RSAPublic(pub); err != nil {
		return nil, err
	}
	sig, err := key.Sign(rand.Reader, AHash(approved), crypto.SHA256)
	if err != nil {
		return nil, fmt.Errorf("policy: signing: %w", err)
	}
	return sig, nil
}

// NewEntry approves the PCR 11 value pcr11 with key.
func NewEntry(pcr11 []byte, key crypto.Signer) (Entry, error) {
	pol, err := Approved(pcr11)
	if err != nil {
		return Entry{}, err
	}
	sig, err := Sign(pol, key)
	if err != nil {
		return Entry{}, err
	}
	fp, err := Fingerprint(key.Public())
	if err != nil {
		return Entry{}, err
	}
	return Entry{PCRs: []int{11}, PKFP: fp, Pol: hex.EncodeToString(pol), Sig: base64.StdEncoding.EncodeToString(sig)}, nil
}

// Policy decodes Pol.
func (e Entry) Policy() ([]byte, error) {
	b, err := hex.DecodeString(e.Pol)
	if err != nil || len(b) != Size {
		return nil, fmt.Errorf("policy: entry pol %q is not a %d-byte hex digest", e.Pol, Size)
	}
	return b, nil
}

// Signature decodes Sig.
func (e Entry) Signature() ([]byte, error) {
	b, err := base64.StdEncoding.DecodeString(e.Sig)
	if err != nil || len(b) == 0 {
		return nil, fmt.Errorf("policy: entry sig is not base64: %v", err)
	}
	return b, nil
}

// Verify checks the entry's signature with pub in software, as the TPM will.
func (e Entry) Verify(pub *rsa.PublicKey) error {
	pol, err := e.Policy()
	if err != nil {
		return err
	}
	sig, err := e.Signature()
	if err != nil {
		return err
	}
	if err := rsa.VerifyPKCS1v15(pub, crypto.SHA256, AHash(pol), sig); err != nil {
		return fmt.Errorf("policy: signature of policy %s does not verify: %w", e.Pol, err)
	}
	return nil
}

// Marshal writes the file as compact JSON.
func Marshal(f File) ([]byte, error) {
	if f.SHA256 == nil {
		f.SHA256 = []Entry{}
	}
	b, err := json.Marshal(f)
	if err != nil {
		return nil, fmt.Errorf("policy: encoding the signature file: %w", err)
	}
	return b, nil
}

// Parse reads a signature file. Banks other than sha256 (systemd may write sha1, sha384 ...) are
// ignored, as Ballast only seals against sha256; entries are checked for form, not signature.
func Parse(b []byte) (File, error) {
	var f File
	dec := json.NewDecoder(bytes.NewReader(b))
	if err := dec.Decode(&f); err != nil {
		return File{}, fmt.Errorf("policy: signature file is not valid JSON: %w", err)
	}
	for i, e := range f.SHA256 {
		if _, err := e.Policy(); err != nil {
			return File{}, fmt.Errorf("policy: sha256 entry %d: %w", i, err)
		}
		if _, err := e.Signature(); err != nil {
			return File{}, fmt.Errorf("policy: sha256 entry %d: %w", i, err)
		}
		for _, p := range e.PCRs {
			if p < 0 || p > MaxPCR {
				return File{}, fmt.Errorf("policy: sha256 entry %d: PCR %d out of range", i, p)
			}
		}
	}
	return f, nil
}

// Find returns the entry approving PCR 11 = pcr11 signed by the key with fingerprint pkfp. When
// no entry approves the value it returns ErrNoPolicy; when only entries from other keys do,
// ErrOtherKey.
func (f File) Find(pcr11 []byte, pkfp string) (Entry, error) {
	want, err := Approved(pcr11)
	if err != nil {
		return Entry{}, err
	}
	wantHex := hex.EncodeToString(want)
	var others []string
	for _, e := range f.SHA256 {
		if !slices.Equal(e.PCRs, []int{11}) || !strings.EqualFold(e.Pol, wantHex) {
			continue
		}
		if strings.EqualFold(e.PKFP, pkfp) {
			return e, nil
		}
		others = append(others, e.PKFP)
	}
	if len(others) > 0 {
		return Entry{}, fmt.Errorf("%w (signed by %v, want %s)", ErrOtherKey, others, pkfp)
	}
	return Entry{}, fmt.Errorf("%w (policy %s)", ErrNoPolicy, wantHex)
}
