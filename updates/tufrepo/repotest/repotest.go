// Package repotest makes small but consistent builds for tests of the update repository and its
// clients: an update payload with zstd-compressed, content-addressed files, a real dm-verity tree
// of the root file system and its root hash, without running the image build.
package repotest

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"

	"github.com/klauspost/compress/zstd"

	"github.com/ballast-os/ballast/contract"
	"github.com/ballast-os/ballast/images/verity"
)

// Spec says what to build. Zero fields take defaults derived from the version, so two versions
// differ in every file unless the caller passes the same bytes.
type Spec struct {
	Variant         string // default "qemu"
	Version         string
	Arch            string // default contract.DefaultArch's machine name ("x86_64")
	DatastoreFormat int
	// Root is the raw root file system, padded with zeros to whole 4 KiB blocks; default 256 KiB
	// of bytes seeded by the version, half of them compressible.
	Root []byte
	// UKI holds the raw UKI of each slot; default a short text naming slot and version.
	UKI map[contract.Slot][]byte
}

// Build writes <buildDir>/update/payload.json and its files as `ballast build` lays them out,
// and returns the payload.
func Build(buildDir string, s Spec) (*contract.Payload, error) {
	if s.Variant == "" {
		s.Variant = "qemu"
	}
	if s.Arch == "" {
		s.Arch = contract.DefaultArch.Info().Machine
	}
	if s.Version == "" {
		return nil, fmt.Errorf("repotest: no version")
	}
	seed := sha256.Sum256([]byte(s.Variant + "/" + s.Version))
	root := s.Root
	if root == nil {
		rng := rand.New(rand.NewChaCha8(seed))
		root = make([]byte, 256<<10)
		for i := range root[:len(root)/2] {
			root[i] = byte(rng.Uint32())
		}
		copy(root[len(root)/2:], bytes.Repeat([]byte("ballast "+s.Version+"\n"), len(root)/2/(len(s.Version)+9)))
	}
	if pad := len(root) % verity.DefaultBlockSize; pad != 0 {
		root = append(root, make([]byte, verity.DefaultBlockSize-pad)...)
	}
	salt := seed[:]
	hash := &memWriterAt{}
	res, err := verity.Build(bytes.NewReader(root), int64(len(root)), hash, verity.Params{Salt: salt})
	if err != nil {
		return nil, fmt.Errorf("repotest: verity: %w", err)
	}
	dir := filepath.Join(buildDir, "update")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("repotest: %w", err)
	}
	p := &contract.Payload{
		Variant: s.Variant, Version: s.Version, Arch: s.Arch, RootHash: hex.EncodeToString(res.RootHash),
		VerityBlocks: res.DataBlocks, Salt: hex.EncodeToString(salt), DatastoreFormat: s.DatastoreFormat,
		UKI: map[contract.Slot]contract.PayloadFile{},
	}
	if p.Root, err = writeFile(dir, "root", root); err != nil {
		return nil, err
	}
	if p.Verity, err = writeFile(dir, "verity", hash.b); err != nil {
		return nil, err
	}
	for _, slot := range []contract.Slot{contract.SlotA, contract.SlotB} {
		uki := s.UKI[slot]
		if uki == nil {
			uki = []byte(fmt.Sprintf("UKI of slot %s, %s %s, roothash=%s\n", slot, s.Variant, s.Version, p.RootHash))
		}
		if p.UKI[slot], err = writeFile(dir, "uki-"+string(slot), uki); err != nil {
			return nil, err
		}
	}
	data, err := json.MarshalIndent(p, "", "  ")
	if err != nil {
		return nil, fmt.Errorf("repotest: %w", err)
	}
	if err := os.WriteFile(filepath.Join(dir, "payload.json"), append(data, '\n'), 0o644); err != nil {
		return nil, fmt.Errorf("repotest: %w", err)
	}
	return p, nil
}

func writeFile(dir, kind string, raw []byte) (contract.PayloadFile, error) {
	enc, err := zstd.NewWriter(nil, zstd.WithEncoderConcurrency(1))
	if err != nil {
		return contract.PayloadFile{}, fmt.Errorf("repotest: %w", err)
	}
	z := enc.EncodeAll(raw, nil)
	enc.Close()
	sum, rawSum := sha256.Sum256(z), sha256.Sum256(raw)
	f := contract.PayloadFile{
		Name: contract.PayloadFileName(hex.EncodeToString(sum[:]), kind), Size: int64(len(z)), SHA256: hex.EncodeToString(sum[:]),
		RawSize: int64(len(raw)), RawSHA256: hex.EncodeToString(rawSum[:]),
	}
	if err := os.WriteFile(filepath.Join(dir, f.Name), z, 0o644); err != nil {
		return contract.PayloadFile{}, fmt.Errorf("repotest: %w", err)
	}
	return f, nil
}

type memWriterAt struct{ b []byte }

func (m *memWriterAt) WriteAt(p []byte, off int64) (int, error) {
	if end := int(off) + len(p); end > len(m.b) {
		m.b = append(m.b, make([]byte, end-len(m.b))...)
	}
	copy(m.b[off:], p)
	return len(p), nil
}
