package localcrypt

import (
	"crypto/aes"

	"bytes"
	"compress/gzip"
	"encoding/json"
	"errors"
	"golang.org/x/crypto/xts"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ballast-os/ballast/contract"
	"github.com/ballast-os/ballast/init/luks2"
	"github.com/ballast-os/ballast/tests/testutil"
)

// clearTPM keeps the "sealed" key in the token in clear: the TPM's own sealing is tested in
// trust/tpm/seal against a TPM simulator; here it is what this package does around it. Refuse
// makes it refuse every unseal, as a TPM with other PCRs would.
type clearTPM struct{ refuse error }

func (c clearTPM) Seal(key []byte) (json.RawMessage, error) {
	return json.Marshal(map[string]any{"type": TokenType, "keyslots": []string{"0"}, "key": string(key)})
}

func (c clearTPM) Unseal(tok json.RawMessage) ([]byte, error) {
	if c.refuse != nil {
		return nil, c.refuse
	}
	var t struct{ Key string }
	if err := json.Unmarshal(tok, &t); err != nil {
		return nil, err
	}
	return []byte(t.Key), nil
}

func (clearTPM) Describe() ([]int, string) { return []int{7, 11}, "test" }

const partSize = 64 << 20

// fixture makes a partition image holding a builder-style ext4 (never mounted) and a gzip
// template like the builder's.
func fixture(t *testing.T) (part string, template []byte) {
	t.Helper()
	mkfs := testutil.Tool(t, "mkfs.ext4", "e2fsprogs")
	dir := t.TempDir()
	part = filepath.Join(dir, "data.img")
	tmpl := filepath.Join(dir, "tmpl.ext4")
	for _, f := range []struct {
		path string
		size string
	}{{part, "64M"}, {tmpl, "8M"}} {
		if out, err := exec.Command(mkfs, "-q", "-F", "-b", "4096", "-L", "BALLAST-DATA", f.path, f.size).CombinedOutput(); err != nil {
			t.Fatalf("mkfs.ext4: %v\n%s", err, out)
		}
	}
	raw, err := os.ReadFile(tmpl)
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	zw.Write(raw)
	zw.Close()
	return part, buf.Bytes()
}

func config(part string, tmpl []byte, tpm Sealer, p contract.LocalPolicy, mapped *luks2.CryptParams) Config {
	return Config{Policy: p, Dev: part, Size: partSize, UUID: "a6d5f3c4-0d7c-4a54-8a4e-0c9d2b7f1e11", TPM: tpm, NoTPMReason: "no TPM on this machine",
		Template: func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(tmpl)), nil },
		Map: func(c luks2.CryptParams) (string, error) {
			*mapped = c
			return "/dev/mapper/test", nil
		}}
}

func TestFirstBootThenUnlock(t *testing.T) {
	cryptsetup := testutil.Tool(t, "cryptsetup", "cryptsetup-bin")
	e2fsck := testutil.Tool(t, "e2fsck", "e2fsprogs")
	part, tmpl := fixture(t)
	var mapped luks2.CryptParams
	res, err := Open(config(part, tmpl, clearTPM{}, contract.DefaultLocalPolicy(), &mapped))
	if err != nil {
		t.Fatal(err)
	}
	if res.Dev != "/dev/mapper/test" || !res.Record.Formatted || res.Record.State != contract.LocalEncrypted || res.RecoveryKey == "" {
		t.Fatalf("first boot: %+v", res)
	}
	if res.Size != partSize-luks2.DataOffset || mapped.Offset != luks2.DataOffset/512 || mapped.SectorSize != 4096 {
		t.Errorf("mapping %+v, size %d", mapped, res.Size)
	}
	if c, err := detectFile(part); err != nil || c != LUKS2 {
		t.Fatalf("after the first boot the partition is %v (%v), want LUKS2", c, err)
	}

	// cryptsetup reads the volume, takes the recovery key, and the key it finds decrypts the
	// template file system.
	keyFile := filepath.Join(t.TempDir(), "recovery")
	os.WriteFile(keyFile, []byte(res.RecoveryKey), 0o600)
	dump, err := exec.Command(cryptsetup, "luksDump", part).CombinedOutput()
	if err != nil || !strings.Contains(string(dump), TokenType) {
		t.Fatalf("luksDump: %v\n%s", err, dump)
	}
	if out, err := exec.Command(cryptsetup, "open", "--test-passphrase", "--key-file", keyFile, part).CombinedOutput(); err != nil {
		t.Fatalf("cryptsetup refuses the recovery key: %v\n%s", err, out)
	}
	plain := decrypt(t, part, mapped)
	if out, err := exec.Command(e2fsck, "-fn", plain).CombinedOutput(); err != nil {
		t.Errorf("e2fsck of the decrypted template: %v\n%s", err, out)
	}
	// Every byte of the template, not only what e2fsck reads.
	zr, _ := gzip.NewReader(bytes.NewReader(tmpl))
	want, _ := io.ReadAll(zr)
	if got, _ := os.ReadFile(plain); len(want) < 2<<20 || !bytes.Equal(got[:len(want)], want) {
		t.Errorf("the decrypted volume does not start with the %d-byte template", len(want))
	}

	// Later boots unlock with the TPM's key and never format again.
	before, _ := os.ReadFile(part)
	var again luks2.CryptParams
	res2, err := Open(config(part, tmpl, clearTPM{}, contract.DefaultLocalPolicy(), &again))
	if err != nil {
		t.Fatal(err)
	}
	if res2.Record.Formatted || res2.RecoveryKey != "" || !bytes.Equal(again.Key, mapped.Key) {
		t.Errorf("second boot: %+v", res2)
	}
	after, _ := os.ReadFile(part)
	if !bytes.Equal(before, after) {
		t.Errorf("unlocking wrote to the partition")
	}

	// A TPM that refuses, and no TPM at all: the boot stops and the disk is untouched.
	refusal := errors.New("PCR 7 changed")
	for name, tpm := range map[string]Sealer{"refusing TPM": clearTPM{refuse: refusal}, "no TPM": nil} {
		_, err := Open(config(part, tmpl, tpm, contract.DefaultLocalPolicy(), &again))
		if err == nil {
			t.Errorf("%s: unlocked", name)
		}
		if tpm != nil && (!errors.Is(err, refusal) || !strings.Contains(err.Error(), "recovery key")) {
			t.Errorf("%s: %v", name, err)
		}
		if tpm == nil && !errors.Is(err, ErrNeedsTPM) {
			t.Errorf("%s: %v", name, err)
		}
		if now, _ := os.ReadFile(part); !bytes.Equal(before, now) {
			t.Errorf("%s: the partition changed", name)
		}
	}
}

func TestPolicies(t *testing.T) {
	for _, tc := range []struct {
		name   string
		policy contract.LocalPolicy
		tpm    Sealer
		want   contract.LocalState
		err    error
	}{
		{"plain image", contract.LocalPolicy{Encryption: contract.LocalPlain, WithoutTPM: contract.WithoutTPMRefuse}, clearTPM{}, contract.LocalIsPlain, nil},
		{"no TPM, plain allowed", contract.DefaultLocalPolicy(), nil, contract.LocalIsPlain, nil},
		{"no TPM, refused", contract.LocalPolicy{Encryption: contract.LocalTPM, WithoutTPM: contract.WithoutTPMRefuse}, nil, "", ErrNoTPM},
	} {
		t.Run(tc.name, func(t *testing.T) {
			part, tmpl := fixture(t)
			before, _ := os.ReadFile(part)
			var m luks2.CryptParams
			res, err := Open(config(part, tmpl, tc.tpm, tc.policy, &m))
			if !errors.Is(err, tc.err) || res.Record.State != tc.want {
				t.Fatalf("Open: %+v, %v; want %q, %v", res, err, tc.want, tc.err)
			}
			if tc.want == contract.LocalIsPlain && res.Dev != part {
				t.Errorf("plain /local on %s, want the partition", res.Dev)
			}
			if now, _ := os.ReadFile(part); !bytes.Equal(before, now) {
				t.Errorf("the partition changed")
			}
		})
	}
}

// A partition with something else on it is never formatted.
func TestUnknownContentIsLeftAlone(t *testing.T) {
	part, tmpl := fixture(t)
	f, _ := os.OpenFile(part, os.O_RDWR, 0)
	f.WriteAt(make([]byte, 4096), 0) // no ext4 superblock any more
	f.Close()
	before, _ := os.ReadFile(part)
	var m luks2.CryptParams
	if _, err := Open(config(part, tmpl, clearTPM{}, contract.DefaultLocalPolicy(), &m)); !errors.Is(err, ErrUnknown) {
		t.Fatalf("Open: %v, want ErrUnknown", err)
	}
	if now, _ := os.ReadFile(part); !bytes.Equal(before, now) {
		t.Errorf("the partition changed")
	}
}

func detectFile(p string) (Content, error) {
	f, err := os.Open(p)
	if err != nil {
		return Unknown, err
	}
	defer f.Close()
	return Detect(f)
}

// decrypt decrypts the mapped area as dm-crypt does for LUKS2 (aes-xts-plain64, IVs counting
// 512-byte sectors whatever the encryption sector size), with x/crypto's xts and not luks2's
// sector code, so a wrong IV rule in what wrote it shows.
func decrypt(t *testing.T, part string, p luks2.CryptParams) string {
	t.Helper()
	b, err := os.ReadFile(part)
	if err != nil {
		t.Fatal(err)
	}
	c, err := xts.NewCipher(aes.NewCipher, p.Key)
	if err != nil {
		t.Fatal(err)
	}
	data := b[p.Offset*512:]
	data = data[:p.Length*512]
	out := make([]byte, len(data))
	ss := int(p.SectorSize)
	for i := 0; i < len(data); i += ss {
		c.Decrypt(out[i:i+ss], data[i:i+ss], p.IVOffset+uint64(i/512))
	}
	dst := filepath.Join(t.TempDir(), "plain.ext4")
	os.WriteFile(dst, out, 0o600)
	return dst
}
