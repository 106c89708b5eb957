package seal

import (
	"crypto/sha256"
	"errors"
	"fmt"
	"os"
	"slices"

	"github.com/ballast-os/ballast/trust/tpm/policy"
	"github.com/google/go-tpm/tpm2"
	"github.com/google/go-tpm/tpm2/transport"
	"github.com/google/go-tpm/tpm2/transport/linuxtpm"
)

// Device is the kernel's resource-managed TPM: it flushes what a process leaves loaded, so a
// crash mid-unlock cannot fill the TPM's few object slots.
const Device = "/dev/tpmrm0"

// Open opens the TPM through the kernel resource manager.
func Open() (transport.TPMCloser, error) {
	t, err := linuxtpm.Open(Device)
	if err != nil {
		return nil, fmt.Errorf("seal: opening %s: %w", Device, err)
	}
	return t, nil
}

// Present reports whether the machine has a TPM 2.0 the kernel drives.
func Present() bool {
	for _, p := range []string{Device, "/dev/tpm0"} {
		if _, err := os.Stat(p); err == nil {
			return true
		}
	}
	return false
}

// ReadPCRs reads sha256-bank PCR values. The TPM returns at most eight digests per PCR_Read and
// says which ones it returned, so this asks again for the rest.
func ReadPCRs(tpm transport.TPM, pcrs []int) (map[int][]byte, error) {
	out := map[int][]byte{}
	want := slices.Clone(pcrs)
	slices.Sort(want)
	want = slices.Compact(want)
	for len(want) > 0 {
		sel, err := policy.Selection(want)
		if err != nil {
			return nil, fmt.Errorf("seal: %w", err)
		}
		rsp, err := tpm2.PCRRead{PCRSelectionIn: sel}.Execute(tpm)
		if err != nil {
			return nil, fmt.Errorf("seal: reading PCRs %v: %w", want, err)
		}
		var got []int
		for _, s := range rsp.PCRSelectionOut.PCRSelections {
			if s.Hash != tpm2.TPMAlgSHA256 {
				continue
			}
			for i, b := range s.PCRSelect {
				for bit := 0; bit < 8; bit++ {
					if b&(1<<bit) != 0 {
						got = append(got, i*8+bit)
					}
				}
			}
		}
		if len(got) != len(rsp.PCRValues.Digests) {
			return nil, fmt.Errorf("seal: TPM returned %d PCR values for %d selected PCRs", len(rsp.PCRValues.Digests), len(got))
		}
		if len(got) == 0 {
			return nil, errors.New("seal: TPM returned no sha256 PCR values (is the sha256 bank allocated?)")
		}
		for i, p := range got {
			if !slices.Contains(want, p) {
				return nil, fmt.Errorf("seal: TPM returned PCR %d, which was not asked for", p)
			}
			out[p] = slices.Clone(rsp.PCRValues.Digests[i].Buffer)
		}
		want = slices.DeleteFunc(want, func(p int) bool { _, ok := out[p]; return ok })
	}
	return out, nil
}

// ExtendPCR measures data into a sha256-bank PCR: extends it with sha256(data).
func ExtendPCR(tpm transport.TPM, pcr int, data []byte) error {
	if pcr < 0 || pcr > policy.MaxPCR {
		return fmt.Errorf("seal: PCR %d out of range 0-%d", pcr, policy.MaxPCR)
	}
	d := sha256.Sum256(data)
	_, err := tpm2.PCRExtend{
		PCRHandle: tpm2.AuthHandle{Handle: tpm2.TPMHandle(pcr), Auth: tpm2.PasswordAuth(nil)},
		Digests:   tpm2.TPMLDigestValues{Digests: []tpm2.TPMTHA{{HashAlg: tpm2.TPMAlgSHA256, Digest: d[:]}}},
	}.Execute(tpm)
	if err != nil {
		return fmt.Errorf("seal: extending PCR %d: %w", pcr, err)
	}
	return nil
}
