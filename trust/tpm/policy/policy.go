// Package policy computes TPM 2.0 policy digests in software and signs PCR policies, so that the
// disk key can be sealed to "whatever PCR 11 value the owner's key approves" and each new UKI
// comes with its approval in a systemd-compatible signature file.
//
// Every digest here is for a sha256 policy session over the sha256 PCR bank.
package policy

import (
	"crypto/rsa"
	"crypto/sha256"
	"encoding/binary"
	"fmt"
	"slices"

	"github.com/google/go-tpm/tpm2"
)

// Size is the length of a sha256 policy digest.
const Size = sha256.Size

// MaxPCR is the highest PCR index of a PC-client TPM.
const MaxPCR = 23

// Zero is the digest a fresh policy session starts from.
func Zero() []byte { return make([]byte, Size) }

func extend(prev []byte, cc tpm2.TPMCC, parts ...[]byte) []byte {
	h := sha256.New()
	h.Write(prev)
	h.Write(binary.BigEndian.AppendUint32(nil, uint32(cc)))
	for _, p := range parts {
		h.Write(p)
	}
	return h.Sum(nil)
}

// Selection is the sha256-bank TPML_PCR_SELECTION for pcrs, the form PolicyPCR and PCR_Read
// take.
func Selection(pcrs []int) (tpm2.TPMLPCRSelection, error) {
	bitmap := make([]byte, 3) // PCRs 0-23; a PC-client TPM rejects any other size
	for _, p := range pcrs {
		if p < 0 || p > MaxPCR {
			return tpm2.TPMLPCRSelection{}, fmt.Errorf("policy: PCR %d out of range 0-%d", p, MaxPCR)
		}
		bitmap[p/8] |= 1 << (p % 8)
	}
	return tpm2.TPMLPCRSelection{PCRSelections: []tpm2.TPMSPCRSelection{{Hash: tpm2.TPMAlgSHA256, PCRSelect: bitmap}}}, nil
}

// PCRDigest is TPM2_PolicyPCR's update of the session digest prev (Zero() at the start):
// H(prev || TPM_CC_PolicyPCR || TPML_PCR_SELECTION || H(values in ascending PCR order)).
// values maps PCR index to its expected sha256-bank value.
func PCRDigest(prev []byte, values map[int][]byte) ([]byte, error) {
	if len(prev) != Size {
		return nil, fmt.Errorf("policy: previous digest is %d bytes, want %d", len(prev), Size)
	}
	if len(values) == 0 {
		return nil, fmt.Errorf("policy: PolicyPCR needs at least one PCR")
	}
	pcrs := make([]int, 0, len(values))
	for p := range values {
		pcrs = append(pcrs, p)
	}
	slices.Sort(pcrs)
	sel, err := Selection(pcrs)
	if err != nil {
		return nil, err
	}
	vh := sha256.New()
	for _, p := range pcrs {
		if len(values[p]) != sha256.Size {
			return nil, fmt.Errorf("policy: PCR %d value is %d bytes, want %d", p, len(values[p]), sha256.Size)
		}
		vh.Write(values[p])
	}
	return extend(prev, tpm2.TPMCCPolicyPCR, tpm2.Marshal(sel), vh.Sum(nil)), nil
}

// Authorize is the session digest after TPM2_PolicyAuthorize succeeds: the TPM resets the digest
// and records only who may approve (the key's Name) and for what (policyRef), which is why the
// approved policy itself can change without resealing.
func Authorize(keyName, policyRef []byte) []byte {
	d := extend(Zero(), tpm2.TPMCCPolicyAuthorize, keyName)
	h := sha256.New()
	h.Write(d)
	h.Write(policyRef)
	return h.Sum(nil)
}

// RSAPublic is the TPMT_PUBLIC under which the owner's RSA "pcr" key is loaded with
// LoadExternal to verify policy signatures. Its Name, and so every authPolicy sealed to the key,
// depends on every field, so sealing and unsealing must both use this and only this.
func RSAPublic(pub *rsa.PublicKey) (tpm2.TPMTPublic, error) {
	if pub == nil {
		return tpm2.TPMTPublic{}, fmt.Errorf("policy: no public key")
	}
	if bits := pub.N.BitLen(); bits != 2048 {
		return tpm2.TPMTPublic{}, fmt.Errorf("policy: the pcr key is RSA-%d, want RSA-2048", bits)
	}
	// The TPM writes the default exponent 65537 as 0; any other must be given.
	exp := uint32(0)
	if pub.E != 65537 {
		if pub.E <= 1 || pub.E > 1<<31 {
			return tpm2.TPMTPublic{}, fmt.Errorf("policy: unusable RSA exponent %d", pub.E)
		}
		exp = uint32(pub.E)
	}
	return tpm2.TPMTPublic{
		Type:    tpm2.TPMAlgRSA,
		NameAlg: tpm2.TPMAlgSHA256,
		ObjectAttributes: tpm2.TPMAObject{
			SignEncrypt:  true,
			UserWithAuth: true,
		},
		Parameters: tpm2.NewTPMUPublicParms(tpm2.TPMAlgRSA, &tpm2.TPMSRSAParms{
			Scheme: tpm2.TPMTRSAScheme{
				Scheme:  tpm2.TPMAlgRSASSA,
				Details: tpm2.NewTPMUAsymScheme(tpm2.TPMAlgRSASSA, &tpm2.TPMSSigSchemeRSASSA{HashAlg: tpm2.TPMAlgSHA256}),
			},
			KeyBits:  2048,
			Exponent: exp,
		}),
		Unique: tpm2.NewTPMUPublicID(tpm2.TPMAlgRSA, &tpm2.TPM2BPublicKeyRSA{Buffer: pub.N.FillBytes(make([]byte, 256))}),
	}, nil
}

// KeyName is the TPM Name of the key loaded as RSAPublic: nameAlg || sha256(TPMT_PUBLIC).
func KeyName(pub *rsa.PublicKey) ([]byte, error) {
	t, err := RSAPublic(pub)
	if err != nil {
		return nil, err
	}
	n, err := tpm2.ObjectName(&t)
	if err != nil {
		return nil, fmt.Errorf("policy: name of the pcr key: %w", err)
	}
	return n.Buffer, nil
}

// Sealing is the authPolicy of the sealed disk key: PolicyAuthorize(pub, empty policyRef)
// followed by PolicyPCR(PCR 7 = pcr7). PCR 11 is not in it; it is in the approved policies the
// owner signs.
func Sealing(pub *rsa.PublicKey, pcr7 []byte) ([]byte, error) {
	name, err := KeyName(pub)
	if err != nil {
		return nil, err
	}
	return PCRDigest(Authorize(name, nil), map[int][]byte{7: pcr7})
}

// Approved is the policy the owner signs for one UKI: PolicyPCR(PCR 11 = pcr11) from a fresh
// session.
func Approved(pcr11 []byte) ([]byte, error) {
	return PCRDigest(Zero(), map[int][]byte{11: pcr11})
}
