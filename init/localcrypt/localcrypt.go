// Package localcrypt opens the data partition for /local in the initramfs: it unlocks a LUKS2
// volume with the key the TPM unseals, or, on the first boot of a fresh disk, encrypts it (a
// random volume key, a TPM keyslot whose key is sealed to the TPM, a recovery keyslot) and writes
// the builder's empty file system into it; or it leaves /local plain where the image's policy
// says so. Nothing that is already on the partition is ever overwritten: only the builder's
// never-mounted file system is replaced.
package localcrypt

import (
	"bytes"
	"compress/gzip"
	"crypto/rand"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/ballast-os/ballast/contract"
	"github.com/ballast-os/ballast/init/luks2"
)

// TokenType is the LUKS2 token type that carries the TPM-sealed key.
const TokenType = "ballast-tpm2"

// Keyslot iterations: both passphrases are 256-bit random keys, so PBKDF2 only has to exist.
const keyslotIterations = 1000

// Sealer is the TPM as the volume sees it: it seals a new key into a token and unseals a token
// back into the key, refusing when the boot's measurements do not match the token's policy.
type Sealer interface {
	Seal(key []byte) (json.RawMessage, error)
	Unseal(token json.RawMessage) ([]byte, error)
	// Describe says what the seal covers, for the record.
	Describe() (pcrs []int, policyKey string)
}

// Mapper makes the dm-crypt device for an open volume and returns its device node.
type Mapper func(p luks2.CryptParams) (string, error)

// Config is one data partition and what to do with it.
type Config struct {
	Policy contract.LocalPolicy
	// Dev is the partition's device node, Size its size in bytes.
	Dev  string
	Size int64
	// UUID is the partition's PARTUUID: the builder's file system and the LUKS2 volume carry it.
	UUID string
	// TPM is nil on a machine without one (or one the image cannot seal with), and NoTPMReason
	// then says which.
	TPM         Sealer
	NoTPMReason string
	// Template opens contract.LocalTemplate (gzip).
	Template func() (io.ReadCloser, error)
	Map      Mapper
	Rand     io.Reader // default crypto/rand
}

// Result is what the initramfs mounts.
type Result struct {
	Dev    string // the block device holding the ext4 file system
	Size   int64  // its size in bytes
	Record contract.LocalRecord
	// RecoveryKey is set on the boot that made the volume: shown once, then kept for the API
	// until acknowledged.
	RecoveryKey string
}

// Content is what the partition holds.
type Content int

const (
	Unknown  Content = iota
	Pristine         // the builder's ext4, never mounted
	Ext4             // an ext4 file system in use
	LUKS2            // a LUKS2 volume
)

// Errors that stop the boot; the initramfs prints them and never touches the disk.
var (
	ErrNoTPM      = errors.New("this image keeps /local encrypted with a TPM-sealed key, and this machine has no TPM")
	ErrNeedsTPM   = errors.New("/local is encrypted with a TPM-sealed key, and this machine has no TPM")
	ErrUnknown    = errors.New("the data partition holds neither Ballast's file system nor a LUKS2 volume")
	ErrNoTPMToken = errors.New("the LUKS2 volume has no " + TokenType + " token")
)

// Detect reads the start of the partition.
func Detect(r io.ReaderAt) (Content, error) {
	head := make([]byte, 4096)
	if _, err := r.ReadAt(head, 0); err != nil && !errors.Is(err, io.EOF) {
		return Unknown, fmt.Errorf("read the data partition: %w", err)
	}
	if bytes.HasPrefix(head, []byte("LUKS\xba\xbe")) || bytes.HasPrefix(head, []byte("SKUL\xba\xbe")) {
		return LUKS2, nil
	}
	sb := head[1024:]
	if binary.LittleEndian.Uint16(sb[0x38:]) != 0xef53 {
		return Unknown, nil
	}
	// s_mnt_count: the kernel counts every mount, so zero is the builder's file system as
	// it left it, with nothing anyone wrote.
	if binary.LittleEndian.Uint16(sb[0x34:]) == 0 {
		return Pristine, nil
	}
	return Ext4, nil
}

// Open does what the partition and the policy call for.
func Open(cfg Config) (Result, error) {
	if cfg.Rand == nil {
		cfg.Rand = rand.Reader
	}
	f, err := os.OpenFile(cfg.Dev, os.O_RDWR, 0)
	if err != nil {
		return Result{}, fmt.Errorf("local: %w", err)
	}
	defer f.Close()
	content, err := Detect(f)
	if err != nil {
		return Result{}, fmt.Errorf("local: %s: %w", cfg.Dev, err)
	}
	plain := func(reason string) (Result, error) {
		return Result{Dev: cfg.Dev, Size: cfg.Size, Record: contract.LocalRecord{State: contract.LocalIsPlain, Reason: reason}}, nil
	}
	switch content {
	case LUKS2:
		if cfg.TPM == nil {
			return Result{}, fmt.Errorf("local: %s: %w; open it with its recovery key (cryptsetup open %s local)", cfg.Dev, ErrNeedsTPM, cfg.Dev)
		}
		return unlock(cfg, f)
	case Ext4:
		return plain("a plain file system from an earlier boot")
	case Unknown:
		return Result{}, fmt.Errorf("local: %s: %w; nothing was written to it", cfg.Dev, ErrUnknown)
	}
	// Pristine: this is the first boot.
	switch {
	case cfg.Policy.Encryption == contract.LocalPlain:
		return plain("the image keeps /local plain (" + contract.ParamLocal + "=plain)")
	case cfg.TPM == nil && cfg.Policy.WithoutTPM == contract.WithoutTPMRefuse:
		return Result{}, fmt.Errorf("local: %w (%s; %s=refuse); nothing was written", ErrNoTPM, cfg.NoTPMReason, contract.ParamLocalWithoutTPM)
	case cfg.TPM == nil:
		return plain(cfg.NoTPMReason + " (" + contract.ParamLocalWithoutTPM + "=plain)")
	}
	return format(cfg, f)
}

// format makes the encrypted volume. The file system goes first (through the cipher, into the
// data area) and the header last, so a power cut before the header leaves the builder's file
// system recognisable as never mounted, and the next boot starts over.
func format(cfg Config, f *os.File) (Result, error) {
	start := time.Now()
	vk := make([]byte, luks2.VolumeKeySize)
	tpmKey := make([]byte, 32)
	for _, b := range [][]byte{vk, tpmKey} {
		if _, err := io.ReadFull(cfg.Rand, b); err != nil {
			return Result{}, fmt.Errorf("local: random key: %w", err)
		}
	}
	// The keyslot takes the key as text, so an operator could type or pipe it like any passphrase.
	tpmPass := []byte(base64.StdEncoding.EncodeToString(tpmKey))
	token, err := cfg.TPM.Seal(tpmPass)
	if err != nil {
		return Result{}, fmt.Errorf("local: seal the key to the TPM: %w", err)
	}
	recovery, _, err := luks2.NewRecoveryKey(cfg.Rand)
	if err != nil {
		return Result{}, fmt.Errorf("local: %w", err)
	}
	seg := luks2.Segment{Cipher: "aes-xts-plain64", SectorSize: luks2.DataSectorSize, Offset: luks2.DataOffset, Size: -1}
	if err := writeTemplate(cfg, f, vk, seg); err != nil {
		return Result{}, err
	}
	h, err := luks2.Format(f, cfg.Size, luks2.FormatOptions{
		UUID: cfg.UUID, Label: "BALLAST-DATA", VolumeKey: vk, Rand: cfg.Rand,
		Keyslots: []luks2.KeyslotSpec{
			{Passphrase: tpmPass, Iterations: keyslotIterations, Priority: luks2.PriorityHigh},
			{Passphrase: []byte(recovery), Iterations: keyslotIterations, Priority: luks2.PriorityNormal},
		},
		Tokens: []json.RawMessage{token},
	})
	if err != nil {
		return Result{}, fmt.Errorf("local: format LUKS2 on %s: %w", cfg.Dev, err)
	}
	if err := f.Sync(); err != nil {
		return Result{}, fmt.Errorf("local: sync %s: %w", cfg.Dev, err)
	}
	res, err := mapVolume(cfg, h, vk)
	if err != nil {
		return Result{}, err
	}
	res.Record.Formatted = true
	res.Record.FormatSeconds = time.Since(start).Seconds()
	res.Record.Reason = "made on this boot: a random key sealed to the TPM, and a recovery key"
	res.RecoveryKey = recovery
	return res, nil
}

// writeTemplate encrypts the template file system into the data area.
func writeTemplate(cfg Config, f *os.File, vk []byte, seg luks2.Segment) error {
	rc, err := cfg.Template()
	if err != nil {
		return fmt.Errorf("local: template: %w", err)
	}
	defer rc.Close()
	zr, err := gzip.NewReader(rc)
	if err != nil {
		return fmt.Errorf("local: template %s: %w", contract.LocalTemplate, err)
	}
	c, err := luks2.NewSectorCipher(vk, seg)
	if err != nil {
		return fmt.Errorf("local: %w", err)
	}
	const chunk = 1 << 20
	plain := make([]byte, chunk)
	enc := make([]byte, chunk)
	off := int64(0)
	for {
		n, err := io.ReadFull(zr, plain)
		if n > 0 {
			if n%seg.SectorSize != 0 {
				return fmt.Errorf("local: template is not a whole number of %d-byte sectors", seg.SectorSize)
			}
			if seg.Offset+off+int64(n) > cfg.Size {
				return fmt.Errorf("local: template of more than %d bytes does not fit %s", off+int64(n), cfg.Dev)
			}
			if err := c.EncryptSectors(enc[:n], plain[:n], uint64(off/int64(seg.SectorSize))); err != nil {
				return fmt.Errorf("local: encrypt: %w", err)
			}
			if _, err := f.WriteAt(enc[:n], seg.Offset+off); err != nil {
				return fmt.Errorf("local: write %s: %w", cfg.Dev, err)
			}
			off += int64(n)
		}
		if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
			break
		}
		if err != nil {
			return fmt.Errorf("local: template %s: %w", contract.LocalTemplate, err)
		}
	}
	if off == 0 {
		return fmt.Errorf("local: template %s is empty", contract.LocalTemplate)
	}
	return nil
}

func unlock(cfg Config, f *os.File) (Result, error) {
	start := time.Now()
	h, err := luks2.Read(f)
	if err != nil {
		return Result{}, fmt.Errorf("local: %s: %w", cfg.Dev, err)
	}
	var token json.RawMessage
	for _, t := range h.Tokens() {
		var head struct {
			Type string `json:"type"`
		}
		if json.Unmarshal(t, &head) == nil && head.Type == TokenType {
			token = t
			break
		}
	}
	if token == nil {
		return Result{}, fmt.Errorf("local: %s: %w", cfg.Dev, ErrNoTPMToken)
	}
	pass, err := cfg.TPM.Unseal(token)
	if err != nil {
		return Result{}, fmt.Errorf("local: %s stays locked: %w; the recovery key still opens it", cfg.Dev, err)
	}
	vk, _, err := h.Unlock(f, pass)
	if err != nil {
		return Result{}, fmt.Errorf("local: %s: the TPM's key opens no keyslot: %w", cfg.Dev, err)
	}
	res, err := mapVolume(cfg, h, vk)
	if err != nil {
		return Result{}, err
	}
	res.Record.UnlockSeconds = time.Since(start).Seconds()
	res.Record.Reason = "unlocked with the key the TPM unsealed"
	return res, nil
}

func mapVolume(cfg Config, h *luks2.Header, vk []byte) (Result, error) {
	p, err := h.DMCrypt(vk, cfg.Size)
	if err != nil {
		return Result{}, fmt.Errorf("local: %w", err)
	}
	dev, err := cfg.Map(p)
	if err != nil {
		return Result{}, fmt.Errorf("local: dm-crypt over %s: %w", cfg.Dev, err)
	}
	var pcrs []int
	var key string
	if cfg.TPM != nil {
		pcrs, key = cfg.TPM.Describe()
	}
	var slots []string
	for _, k := range h.Keyslots() {
		slots = append(slots, fmt.Sprintf("%d", k.ID))
	}
	return Result{Dev: dev, Size: int64(p.Length) * 512, Record: contract.LocalRecord{
		State: contract.LocalEncrypted, SealedPCRs: pcrs, PolicyKey: key,
		Keyslots: slots, Cipher: fmt.Sprintf("%s, %d-byte sectors", p.Cipher, p.SectorSize),
	}}, nil
}
