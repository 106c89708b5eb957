package luks2

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
	"testing"

	"github.com/ballast-os/ballast/tests/testutil"
)

const imgSize = 64 << 20

// TestFormatOpensWithCryptsetup formats with this package and has cryptsetup read the result:
// luksDump, each keyslot's passphrase, a wrong one, and the volume key it recovers.
func TestFormatOpensWithCryptsetup(t *testing.T) {
	bin := cryptsetup(t)
	recovery, _, err := NewRecoveryKey(detRand(9))
	if err != nil {
		t.Fatal(err)
	}
	tpmToken := json.RawMessage(`{"type":"ballast-tpm2","keyslots":["0"],"blob":"AAEC","pcrs":[7]}`)
	tests := []struct {
		name   string
		opts   FormatOptions
		dump   []string // luksDump must show these
		unlock int      // keyslot Unlock should pick for keyslot 0's passphrase
	}{
		{
			name: "one keyslot, 1000 iterations",
			opts: FormatOptions{
				UUID: "0f0e0d0c-0b0a-4908-8706-050403020100", Label: "ballast-local",
				Keyslots: []KeyslotSpec{{Passphrase: []byte("tpm-unsealed-secret"), Iterations: 1000}},
			},
			dump:   []string{"Label:         \tballast-local", "0f0e0d0c-0b0a-4908-8706-050403020100", "offset: 16777216 [bytes]", "sector: 4096 [bytes]", "Iterations: 1000"},
			unlock: 0,
		},
		{
			name: "TPM and recovery keyslots, token, priorities",
			opts: FormatOptions{
				Keyslots: []KeyslotSpec{
					{Passphrase: []byte("tpm\x00binary\xffkey"), Iterations: 1000, Priority: PriorityHigh},
					{Passphrase: []byte(recovery), Iterations: 5000},
				},
				Tokens: []json.RawMessage{tpmToken},
			},
			dump:   []string{"0: ballast-tpm2", "1: luks2", "Priority:   preferred", "Iterations: 5000"},
			unlock: 0,
		},
	}
	for i, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			img := image(t, imgSize)
			f := openRW(t, img)
			tc.opts.Rand = detRand(byte(i))
			tc.opts.VolumeKey = testKey(byte(i))
			h, err := Format(f, imgSize, tc.opts)
			if err != nil {
				t.Fatal(err)
			}
			dump := testutil.Run(t, bin, "luksDump", img)
			for _, want := range tc.dump {
				if !strings.Contains(dump, want) {
					t.Errorf("luksDump lacks %q:\n%s", want, dump)
				}
			}
			for slot, ks := range tc.opts.Keyslots {
				kf := keyFile(t, ks.Passphrase)
				testutil.Run(t, bin, "open", "--test-passphrase", "--key-slot", strconv.Itoa(slot), "--key-file", kf, img)
				mustEqual(t, "volume key cryptsetup dumps for keyslot "+strconv.Itoa(slot), dumpVolumeKey(t, bin, img, kf), tc.opts.VolumeKey)
			}
			if code, out := runStatus(t, bin, "open", "--test-passphrase", "--key-file", keyFile(t, []byte("wrong")), img); code != 2 {
				t.Errorf("cryptsetup with a wrong passphrase: exit %d, want 2 (no key available)\n%s", code, out)
			}
			for j, tok := range tc.opts.Tokens {
				out := testutil.Run(t, bin, "token", "export", "--token-id", strconv.Itoa(j), img)
				if !jsonEqual(t, []byte(out), tok) {
					t.Errorf("token %d: cryptsetup exports %s, want %s", j, out, tok)
				}
			}

			// Our own reader sees what we wrote.
			r, err := Read(f)
			if err != nil {
				t.Fatal(err)
			}
			if r.Damage != nil || r.UUID != h.UUID || r.SeqID != 1 {
				t.Errorf("Read: uuid %s seqid %d damage %v", r.UUID, r.SeqID, r.Damage)
			}
			vk, slot, err := r.Unlock(f, tc.opts.Keyslots[0].Passphrase)
			if err != nil || slot != tc.unlock {
				t.Fatalf("Unlock = slot %d, %v", slot, err)
			}
			mustEqual(t, "volume key", vk, tc.opts.VolumeKey)
		})
	}
}

func jsonEqual(t testing.TB, a, b []byte) bool {
	t.Helper()
	var x, y any
	if err := json.Unmarshal(a, &x); err != nil {
		t.Fatalf("%s: %v", a, err)
	}
	if err := json.Unmarshal(b, &y); err != nil {
		t.Fatalf("%s: %v", b, err)
	}
	xs, _ := json.Marshal(x)
	ys, _ := json.Marshal(y)
	return bytes.Equal(xs, ys)
}

// TestAddTokenCryptsetup adds a token to a formatted volume and has cryptsetup read it back.
func TestAddTokenCryptsetup(t *testing.T) {
	bin := cryptsetup(t)
	img := image(t, imgSize)
	f := openRW(t, img)
	h, err := Format(f, imgSize, FormatOptions{Rand: detRand(1), Keyslots: []KeyslotSpec{{Passphrase: []byte("a"), Iterations: 1000}, {Passphrase: []byte("b"), Iterations: 1000}}})
	if err != nil {
		t.Fatal(err)
	}
	tok := json.RawMessage(`{"type":"ballast-tpm2","keyslots":["1"],"blob":"c2VhbGVk"}`)
	id, err := AddToken(f, h, tok)
	if err != nil || id != 0 {
		t.Fatalf("AddToken = %d, %v", id, err)
	}
	if id, err := AddToken(f, h, json.RawMessage(`{"type":"other","keyslots":[]}`)); err != nil || id != 1 {
		t.Fatalf("second AddToken = %d, %v", id, err)
	}
	if _, err := AddToken(f, h, json.RawMessage(`{"type":"x","keyslots":["7"]}`)); err == nil || !strings.Contains(err.Error(), `keyslot "7"`) {
		t.Errorf("token naming a missing keyslot: %v", err)
	}
	if !strings.Contains(testutil.Run(t, bin, "luksDump", img), "Epoch:         \t3") {
		t.Error("luksDump does not show epoch (seqid) 3 after two tokens")
	}
	out := testutil.Run(t, bin, "token", "export", "--token-id", "0", img)
	if !jsonEqual(t, []byte(out), tok) {
		t.Errorf("cryptsetup exports %s, want %s", out, tok)
	}
	r, err := Read(f)
	if err != nil || r.SeqID != 3 || r.Damage != nil {
		t.Fatalf("Read: %v (seqid %d, damage %v)", err, r.SeqID, r.Damage)
	}
	if got := r.Tokens()[0]; !jsonEqual(t, got, tok) {
		t.Errorf("token read back as %s", got)
	}
}

// TestCryptsetupFormatOpensHere goes the other way: volumes made by cryptsetup unlock here and
// yield the volume key cryptsetup dumps; an imported token reads back.
func TestCryptsetupFormatOpensHere(t *testing.T) {
	bin := cryptsetup(t)
	pbkdf2 := []string{"--pbkdf", "pbkdf2", "--pbkdf-force-iterations", "1000"}
	argon := func(kind, threads string) []string {
		return []string{"--pbkdf", kind, "--pbkdf-force-iterations", "4", "--pbkdf-memory", "32768", "--pbkdf-parallel", threads}
	}
	tests := []struct {
		name   string
		format []string // luksFormat only
		pbkdf  []string // luksFormat and luksAddKey
		kdf    string
		hsize  int64
	}{
		{"pbkdf2, 4096-byte sectors", []string{"--sector-size", "4096"}, pbkdf2, "pbkdf2", 16 << 10},
		{"argon2id", []string{"--sector-size", "4096"}, argon("argon2id", "2"), "argon2id", 16 << 10},
		{"argon2i, 512-byte sectors", []string{"--sector-size", "512"}, argon("argon2i", "1"), "argon2i", 16 << 10},
		{"64 KiB metadata", []string{"--sector-size", "4096", "--luks2-metadata-size", "64k"}, pbkdf2, "pbkdf2", 64 << 10},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			img := image(t, imgSize)
			pass1, pass2 := []byte("first passphrase"), []byte("second\nwith newline")
			kf1, kf2 := keyFile(t, pass1), keyFile(t, pass2)
			args := append(append([]string{"luksFormat", "--type", "luks2", "--batch-mode", "--key-file", kf1}, tc.format...), tc.pbkdf...)
			testutil.Run(t, bin, append(args, img)...)
			args = append([]string{"luksAddKey", "--batch-mode", "--key-file", kf1, "--new-keyfile", kf2}, tc.pbkdf...)
			testutil.Run(t, bin, append(args, img)...)
			tok := jsonFile(t, `{"type":"ballast-tpm2","keyslots":["1"],"blob":"AQID"}`)
			testutil.Run(t, bin, "token", "import", "--json-file", tok, "--token-id", "0", img)
			want := dumpVolumeKey(t, bin, img, kf1)

			f := openRW(t, img)
			h, err := Read(f)
			if err != nil {
				t.Fatal(err)
			}
			if h.Damage != nil || h.HeaderSize != tc.hsize {
				t.Errorf("header size %d damage %v", h.HeaderSize, h.Damage)
			}
			ks := h.Keyslots()
			if len(ks) != 2 || ks[0].KDF != tc.kdf {
				t.Errorf("keyslots %+v, want two %s", ks, tc.kdf)
			}
			for i, p := range [][]byte{pass1, pass2} {
				vk, slot, err := h.Unlock(f, p)
				if err != nil || slot != i {
					t.Fatalf("Unlock passphrase %d = slot %d, %v", i, slot, err)
				}
				mustEqual(t, "volume key", vk, want)
			}
			if _, _, err := h.Unlock(f, []byte("first passphrasE")); !errors.Is(err, ErrWrongKey) {
				t.Errorf("wrong passphrase: %v", err)
			}
			if got := h.Tokens()[0]; !jsonEqual(t, got, []byte(`{"type":"ballast-tpm2","keyslots":["1"],"blob":"AQID"}`)) {
				t.Errorf("token 0 = %s", got)
			}
			// And a token added here is one cryptsetup reads, next to its own.
			if _, err := AddToken(f, h, json.RawMessage(`{"type":"ballast-tpm2","keyslots":["0"]}`)); err != nil {
				t.Fatal(err)
			}
			if out := testutil.Run(t, bin, "token", "export", "--token-id", "1", img); !strings.Contains(out, `"keyslots":["0"]`) && !strings.Contains(out, `"0"`) {
				t.Errorf("token 1 export: %s", out)
			}
			testutil.Run(t, bin, "open", "--test-passphrase", "--key-file", kf2, img)
		})
	}
}

func jsonFile(t testing.TB, content string) string {
	t.Helper()
	f, err := os.CreateTemp(t.TempDir(), "json")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	fmt.Fprint(f, content)
	return f.Name()
}

// TestDataMatchesCryptsetup checks the data IV rule against cryptsetup itself: `cryptsetup
// reencrypt --encrypt` on an unmapped image encrypts the data in userspace, with the same rules
// dm-crypt applies to the opened volume; SectorCipher must decrypt that to the original and
// encrypt the original to the same ciphertext.
func TestDataMatchesCryptsetup(t *testing.T) {
	bin := cryptsetup(t)
	for _, sectorSize := range []int{4096, 512} {
		t.Run(fmt.Sprintf("sector size %d", sectorSize), func(t *testing.T) {
			const dataSize = 4 << 20
			img := image(t, 0)
			plain := make([]byte, dataSize)
			detRand(byte(sectorSize)).Read(plain)
			if err := os.WriteFile(img, plain, 0o600); err != nil {
				t.Fatal(err)
			}
			if err := os.Truncate(img, dataSize+32<<20); err != nil {
				t.Fatal(err)
			}
			kf := keyFile(t, []byte("data test"))
			testutil.Run(t, bin, "reencrypt", "--encrypt", "--type", "luks2", "--batch-mode", "--sector-size", strconv.Itoa(sectorSize),
				"--reduce-device-size", "32M", "--pbkdf", "pbkdf2", "--pbkdf-force-iterations", "1000", "--key-file", kf, img)
			f := openRW(t, img)
			h, err := Read(f)
			if err != nil {
				t.Fatal(err)
			}
			vk, _, err := h.Unlock(f, []byte("data test"))
			if err != nil {
				t.Fatal(err)
			}
			mustEqual(t, "volume key", vk, dumpVolumeKey(t, bin, img, kf))
			seg := h.Segment()
			if seg.SectorSize != sectorSize || seg.IVTweak != 0 {
				t.Fatalf("segment %+v", seg)
			}
			cipherText := make([]byte, dataSize)
			if _, err := f.ReadAt(cipherText, seg.Offset); err != nil {
				t.Fatal(err)
			}
			sc, err := NewSectorCipher(vk, seg)
			if err != nil {
				t.Fatal(err)
			}
			// Decrypt from the middle too, so the sector numbering (not only sector 0) is tested.
			first := uint64(3)
			got := make([]byte, dataSize-int(first)*sectorSize)
			if err := sc.DecryptSectors(got, cipherText[int(first)*sectorSize:], first); err != nil {
				t.Fatal(err)
			}
			mustEqual(t, "decrypted data", got[:64], plain[int(first)*sectorSize:][:64])
			if !bytes.Equal(got, plain[int(first)*sectorSize:]) {
				t.Fatal("decrypted data differs from the plaintext")
			}
			enc := make([]byte, dataSize)
			if err := sc.EncryptSectors(enc, plain, 0); err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(enc, cipherText) {
				t.Fatal("EncryptSectors output differs from what cryptsetup wrote")
			}
			p, err := h.DMCrypt(vk, imgStat(t, img))
			if err != nil {
				t.Fatal(err)
			}
			if p.Offset != uint64(seg.Offset)/512 || p.SectorSize != uint32(sectorSize) || p.IVLargeSectors || p.Cipher != "aes-xts-plain64" {
				t.Errorf("DMCrypt = %+v", p)
			}
		})
	}
}

func imgStat(t testing.TB, p string) int64 {
	st, err := os.Stat(p)
	if err != nil {
		t.Fatal(err)
	}
	return st.Size()
}
