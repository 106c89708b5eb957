package luks2

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"errors"
	"strings"
	"testing"
)

// formatted returns an in-memory volume with two keyslots ("one" normal, "two" high priority).
func formatted(t testing.TB) (memDev, *Header) {
	t.Helper()
	dev := make(memDev, DataOffset+1<<20)
	h, err := Format(dev, int64(len(dev)), FormatOptions{
		Rand: detRand(0), VolumeKey: testKey(0),
		Keyslots: []KeyslotSpec{{Passphrase: []byte("one"), Iterations: 1000}, {Passphrase: []byte("two"), Iterations: 1000, Priority: PriorityHigh}},
		Tokens:   []json.RawMessage{json.RawMessage(`{"type":"ballast-tpm2","keyslots":["0"]}`)},
	})
	if err != nil {
		t.Fatal(err)
	}
	return dev, h
}

func TestFormatDeterministic(t *testing.T) {
	a, _ := formatted(t)
	b, _ := formatted(t)
	if !bytes.Equal(a[:DataOffset], b[:DataOffset]) {
		t.Fatal("same inputs and random stream gave different metadata")
	}
	c := make(memDev, len(a))
	for i := range c {
		c[i] = 0xaa // leftovers of an earlier volume must not show through
	}
	if _, err := Format(c, int64(len(c)), FormatOptions{Rand: detRand(0), VolumeKey: testKey(0),
		Keyslots: []KeyslotSpec{{Passphrase: []byte("one"), Iterations: 1000}, {Passphrase: []byte("two"), Iterations: 1000, Priority: PriorityHigh}},
		Tokens:   []json.RawMessage{json.RawMessage(`{"type":"ballast-tpm2","keyslots":["0"]}`)},
	}); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(a[:DataOffset], c[:DataOffset]) {
		t.Fatal("metadata depends on what the device held before")
	}
}

func TestFormatRejects(t *testing.T) {
	ok := []KeyslotSpec{{Passphrase: []byte("p"), Iterations: 1000}}
	tests := []struct {
		name string
		size int64
		opts FormatOptions
		want string
	}{
		{"too small", DataOffset, FormatOptions{Keyslots: ok}, "too small"},
		{"no keyslots", 32 << 20, FormatOptions{}, "0 keyslots"},
		{"few iterations", 32 << 20, FormatOptions{Keyslots: []KeyslotSpec{{Passphrase: []byte("p"), Iterations: 999}}}, "999 iterations"},
		{"empty passphrase", 32 << 20, FormatOptions{Keyslots: []KeyslotSpec{{Iterations: 1000}}}, "empty passphrase"},
		{"short key", 32 << 20, FormatOptions{Keyslots: ok, VolumeKey: make([]byte, 32)}, "volume key of 32 bytes"},
		{"bad uuid", 32 << 20, FormatOptions{Keyslots: ok, UUID: "not-a-uuid"}, "uuid"},
		{"long label", 32 << 20, FormatOptions{Keyslots: ok, Label: strings.Repeat("x", 48)}, "label"},
		{"token without keyslots", 32 << 20, FormatOptions{Keyslots: ok, Tokens: []json.RawMessage{json.RawMessage(`{"type":"x"}`)}}, "lacks type or keyslots"},
		{"token for missing keyslot", 32 << 20, FormatOptions{Keyslots: ok, Tokens: []json.RawMessage{json.RawMessage(`{"type":"x","keyslots":["3"]}`)}}, `keyslot "3"`},
		{"token too big", 32 << 20, FormatOptions{Keyslots: ok, Tokens: []json.RawMessage{json.RawMessage(`{"type":"x","keyslots":[],"b":"` + strings.Repeat("a", 13000) + `"}`)}}, "does not fit"},
	}
	for _, tc := range tests {
		tc.opts.Rand = detRand(1)
		_, err := Format(make(memDev, max(tc.size, DataOffset)), tc.size, tc.opts)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: err = %v, want %q", tc.name, err, tc.want)
		}
	}
}

func TestUnlock(t *testing.T) {
	dev, h := formatted(t)
	tests := []struct {
		name string
		pass string
		slot int
		err  error
	}{
		{"normal keyslot", "one", 0, nil},
		{"high priority keyslot", "two", 1, nil},
		{"wrong", "three", -1, ErrWrongKey},
		{"empty", "", -1, ErrWrongKey},
	}
	for _, tc := range tests {
		vk, slot, err := h.Unlock(dev, []byte(tc.pass))
		if !errors.Is(err, tc.err) || slot != tc.slot {
			t.Errorf("%s: slot %d, %v; want %d, %v", tc.name, slot, err, tc.slot, tc.err)
			continue
		}
		if err != nil {
			if strings.Contains(err.Error(), tc.pass) && tc.pass != "" {
				t.Errorf("%s: error %q names the passphrase", tc.name, err)
			}
			continue
		}
		mustEqual(t, tc.name, vk, testKey(0))
	}
	// A damaged keyslot area is a wrong key for that slot, not a crash; the other slot still opens.
	dev[2*HeaderSize+100] ^= 1
	if _, _, err := h.Unlock(dev, []byte("one")); !errors.Is(err, ErrWrongKey) {
		t.Errorf("damaged keyslot 0: %v", err)
	}
	if _, slot, err := h.Unlock(dev, []byte("two")); err != nil || slot != 1 {
		t.Errorf("keyslot 1 after keyslot 0 was damaged: %d, %v", slot, err)
	}
	// A device too short to hold the area reports the read error, not a wrong key.
	if _, _, err := h.Unlock(dev[:2*HeaderSize+1000], []byte("two")); err == nil || errors.Is(err, ErrWrongKey) || !strings.Contains(err.Error(), "offset") {
		t.Errorf("short device: %v", err)
	}
}

func TestPriorityIgnore(t *testing.T) {
	dev := make(memDev, DataOffset+4096)
	h, err := Format(dev, int64(len(dev)), FormatOptions{Rand: detRand(2), Keyslots: []KeyslotSpec{
		{Passphrase: []byte("p"), Iterations: 1000, Priority: PriorityIgnore},
		{Passphrase: []byte("q"), Iterations: 1000},
	}})
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := h.Unlock(dev, []byte("p")); !errors.Is(err, ErrWrongKey) {
		t.Errorf("Unlock tried an ignored keyslot: %v", err)
	}
	if _, err := h.UnlockKeyslot(dev, []byte("p"), 0); err != nil {
		t.Errorf("UnlockKeyslot(0): %v", err)
	}
	if ks := h.Keyslots(); ks[0].Priority != PriorityIgnore || ks[1].Priority != PriorityNormal {
		t.Errorf("Keyslots() = %+v", ks)
	}
}

// withCopy rewrites header copy which of dev with the given JSON text and a valid checksum, as a
// hostile or buggy writer could.
func withCopy(t testing.TB, dev memDev, which Copy, js string, seqid uint64) {
	t.Helper()
	h := &Header{UUID: "0f0e0d0c-0b0a-4908-8706-050403020100", SeqID: seqid, HeaderSize: HeaderSize}
	area, err := h.encodeCopy(which, []byte(js))
	if err != nil {
		t.Fatal(err)
	}
	off := int64(0)
	if which == Secondary {
		off = HeaderSize
	}
	copy(dev[off:], area)
}

func TestReadDamage(t *testing.T) {
	good, h := formatted(t)
	goodJSON, err := h.JSON()
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name     string
		damage   func(d memDev)
		from     Copy
		wantDmg  string // in Header.Damage; "" for none
		wantErr  string // Read fails with this
		wantSeq  uint64
		unlockOK bool
	}{
		{name: "intact", damage: func(memDev) {}, from: Primary, wantSeq: 1},
		{name: "primary JSON byte flipped", damage: func(d memDev) { d[binHeaderSize+10] ^= 1 }, from: Secondary, wantDmg: "primary header at offset 0: checksum mismatch", wantSeq: 1},
		{name: "primary magic gone", damage: func(d memDev) { copy(d, "XXXX") }, from: Secondary, wantDmg: "primary header at offset 0: bad magic", wantSeq: 1},
		{name: "primary version 1", damage: func(d memDev) { binary.BigEndian.PutUint16(d[offVersion:], 1) }, from: Secondary, wantDmg: "version 1", wantSeq: 1},
		{name: "primary zeroed", damage: func(d memDev) { clear(d[:HeaderSize]) }, from: Secondary, wantDmg: "primary", wantSeq: 1},
		{name: "secondary checksum", damage: func(d memDev) { d[HeaderSize+offCsum] ^= 1 }, from: Primary, wantDmg: "secondary header at offset 16384: checksum mismatch", wantSeq: 1},
		{name: "secondary gone", damage: func(d memDev) { clear(d[HeaderSize : 2*HeaderSize]) }, from: Primary, wantDmg: "no secondary header", wantSeq: 1},
		{name: "both broken", damage: func(d memDev) { d[binHeaderSize+10] ^= 1; d[HeaderSize+binHeaderSize+10] ^= 1 }, wantErr: "no valid header"},
		{name: "primary newer", damage: func(d memDev) { withCopy(t, d, Primary, string(goodJSON), 5) }, from: Primary, wantDmg: "secondary header is stale (seqid 1, primary 5)", wantSeq: 5},
		{name: "secondary newer", damage: func(d memDev) { withCopy(t, d, Secondary, string(goodJSON), 7) }, from: Secondary, wantDmg: "primary header is stale", wantSeq: 7},
		{name: "primary with unknown keyslot type, secondary good", damage: func(d memDev) {
			withCopy(t, d, Primary, strings.Replace(string(goodJSON), `"type":"luks2"`, `"type":"luks3"`, 1), 1)
		}, from: Secondary, wantDmg: `unsupported keyslot type "luks3"`, wantSeq: 1},
		{name: "secondary hdr_offset wrong", damage: func(d memDev) {
			binary.BigEndian.PutUint64(d[HeaderSize+offHdrOffset:], 0)
		}, from: Primary, wantDmg: "hdr_offset 0 does not match", wantSeq: 1},
		{name: "truncated device", damage: nil, wantErr: "no valid header"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			dev := append(memDev(nil), good...)
			if tc.damage == nil {
				dev = dev[:HeaderSize/2]
			} else {
				tc.damage(dev)
			}
			r, err := Read(dev)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("err = %v, want %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if r.From != tc.from || r.SeqID != tc.wantSeq {
				t.Errorf("from %s seqid %d, want %s %d", r.From, r.SeqID, tc.from, tc.wantSeq)
			}
			if (tc.wantDmg == "") != (r.Damage == nil) || r.Damage != nil && !strings.Contains(r.Damage.Error(), tc.wantDmg) {
				t.Errorf("Damage = %v, want %q", r.Damage, tc.wantDmg)
			}
			if _, _, err := r.Unlock(dev, []byte("one")); err != nil {
				t.Errorf("Unlock: %v", err)
			}
			// Rewriting repairs both copies.
			if _, err := AddToken(dev, r, json.RawMessage(`{"type":"t","keyslots":[]}`)); err != nil {
				t.Fatal(err)
			}
			if r2, err := Read(dev); err != nil || r2.Damage != nil || r2.SeqID != tc.wantSeq+1 {
				t.Errorf("after rewrite: %v, damage %v", err, r2.Damage)
			}
		})
	}
}

// TestReadRefuses feeds metadata with a valid checksum in both copies, as a hostile header
// would have, and wants a clear error naming the problem.
func TestReadRefuses(t *testing.T) {
	_, h := formatted(t)
	base, err := h.JSON()
	if err != nil {
		t.Fatal(err)
	}
	repl := func(old, new string) string {
		if !strings.Contains(string(base), old) {
			t.Fatalf("metadata lacks %s", old)
		}
		return strings.Replace(string(base), old, new, 1)
	}
	tests := []struct{ name, js, want string }{
		{"not JSON", "{", "JSON metadata"},
		{"empty", "", "JSON metadata"},
		{"truncated", string(base[:len(base)/2]), "JSON metadata"},
		{"array", "[]", "JSON metadata"},
		{"missing sections", `{"config":{"json_size":"12288","keyslots_size":"16744448"}}`, "lacks keyslots"},
		{"keyslot type", repl(`"type":"luks2"`, `"type":"reencrypt"`), `unsupported keyslot type "reencrypt"`},
		{"area encryption", repl(`"encryption":"aes-xts-plain64","key_size":64`, `"encryption":"serpent-xts-plain64","key_size":64`), `unsupported area encryption "serpent-xts-plain64"`},
		{"segment encryption", repl(`"encryption":"aes-xts-plain64","sector_size"`, `"encryption":"aes-cbc-essiv:sha256","sector_size"`), `unsupported encryption "aes-cbc-essiv:sha256"`},
		{"kdf", repl(`"type":"pbkdf2","hash":"sha256","iterations":1000,"salt"`, `"type":"scrypt","salt"`), `unsupported kdf "scrypt"`},
		{"af hash", repl(`"hash":"sha256"}`, `"hash":"md5"}`), `unsupported af hash "md5"`},
		{"huge stripes", repl(`"stripes":4000`, `"stripes":400000000`), "stripes 400000000 out of range"},
		{"area past keyslots", repl(`"offset":"32768"`, `"offset":"16773120"`), "outside the keyslots area"},
		{"area overflow", repl(`"offset":"32768"`, `"offset":"18446744073709551615"`), "outside the keyslots area"},
		{"signed offset", repl(`"offset":"32768"`, `"offset":"+32768"`), "not a decimal string"},
		{"number offset", repl(`"offset":"32768"`, `"offset":32768`), "not a decimal string"},
		{"escaped offset", repl(`"offset":"32768"`, `"offset":"\u0033"`), "not a decimal string"},
		{"too big offset", repl(`"offset":"32768"`, `"offset":"99999999999999999999"`), "out of range"},
		{"negative key size", repl(`"key_size":64,"af"`, `"key_size":-64,"af"`), "key_size -64"},
		{"float iterations", repl(`"iterations":1000,"salt"`, `"iterations":1e3,"salt"`), "JSON metadata"},
		{"json_size", repl(`"json_size":"12288"`, `"json_size":"4096"`), "json_size 4096"},
		{"requirements", repl(`"keyslots_size":"16744448"`, `"keyslots_size":"16744448","requirements":{"mandatory":["online-reencrypt-v2"]}`), "mandatory requirements"},
		{"second segment", repl(`"segments":{`, `"segments":{"1":{"type":"linear","offset":"0","size":"dynamic"},`), "only a single segment 0"},
		{"integrity", repl(`"sector_size":4096`, `"sector_size":4096,"integrity":{"type":"hmac(sha256)"}`), "integrity"},
		{"sector size", repl(`"sector_size":4096`, `"sector_size":3000`), "sector_size 3000"},
		{"data inside metadata", repl(`"offset":"16777216"`, `"offset":"4096"`), "after the metadata"},
		{"digest names missing keyslot", repl(`"keyslots":["0","1"]`, `"keyslots":["0","1","9"]`), `keyslot "9"`},
		{"keyslot without digest", repl(`"keyslots":["0","1"]`, `"keyslots":["0"]`), "keyslot 1: no digest"},
		{"digest too long", repl(`"segments":["0"],"hash":"sha256"`, `"segments":["0"],"hash":"sha1"`), "not a usable pbkdf2 digest"},
		{"null keyslot", repl(`"keyslots":{"0":`, `"keyslots":{"5":null,"0":`), "keyslot 5: null"},
		{"keyslot id", repl(`"keyslots":{"0":`, `"keyslots":{"00":`), `keyslot id "00"`},
		{"token not object", repl(`"tokens":{"0":{"type":"ballast-tpm2","keyslots":["0"]}}`, `"tokens":{"0":"x"}`), "token 0"},
		{"token for missing keyslot", repl(`"keyslots":["0"]}}`, `"keyslots":["4"]}}`), `names keyslot "4"`},
		{"priority", repl(`"priority":2`, `"priority":7`), "priority 7"},
		{"argon2 memory", repl(`"type":"pbkdf2","hash":"sha256","iterations":1000,"salt"`, `"type":"argon2id","time":4,"memory":999999999,"cpus":4,"salt"`), "out of range"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			dev := make(memDev, 2*HeaderSize)
			withCopy(t, dev, Primary, tc.js, 1)
			withCopy(t, dev, Secondary, tc.js, 1)
			_, err := Read(dev)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %v, want %q", err, tc.want)
			}
		})
	}
}

// FuzzRead feeds arbitrary bytes as a device; Read may fail but must not panic, and whatever it
// accepts must be usable.
func FuzzRead(f *testing.F) {
	dev, _ := formatted(f)
	f.Add([]byte(dev[:2*HeaderSize]))
	f.Add([]byte(dev[:HeaderSize]))
	f.Add([]byte("LUKS\xba\xbe\x00\x02"))
	f.Fuzz(func(t *testing.T, b []byte) {
		exercise(t, memDev(b))
	})
}

// FuzzMetadata fuzzes the JSON behind a valid binary header and checksum, which FuzzRead rarely
// gets past.
func FuzzMetadata(f *testing.F) {
	_, h := formatted(f)
	js, _ := h.JSON()
	f.Add(string(js))
	f.Add(`{"keyslots":{},"tokens":{},"segments":{},"digests":{},"config":{}}`)
	f.Fuzz(func(t *testing.T, js string) {
		if len(js) >= HeaderSize-binHeaderSize {
			return
		}
		dev := make(memDev, 2*HeaderSize)
		withCopy(t, dev, Primary, js, 1)
		exercise(t, dev)
	})
}

func exercise(t *testing.T, dev memDev) {
	h, err := Read(dev)
	if err != nil {
		return
	}
	h.Keyslots()
	h.Tokens()
	h.Segment()
	h.DataOffset()
	if _, err := h.JSON(); err != nil {
		t.Fatalf("accepted metadata does not encode: %v", err)
	}
	h.DMCrypt(make([]byte, 64), int64(len(dev)))
}

func TestAFRoundTrip(t *testing.T) {
	for _, hn := range []string{"sha1", "sha256", "sha512"} {
		for _, n := range []int{32, 64} {
			key := testKey(byte(n))[:n]
			split, err := afSplit(key, 7, hn, detRand(3))
			if err != nil {
				t.Fatal(err)
			}
			got, err := afMerge(split, n, 7, hn)
			if err != nil {
				t.Fatal(err)
			}
			mustEqual(t, hn, got, key)
			split[0] ^= 1
			if got, _ := afMerge(split, n, 7, hn); bytes.Equal(got, key) {
				t.Errorf("%s: a flipped bit in stripe 0 did not change the key", hn)
			}
		}
	}
}

func TestSectorCipher(t *testing.T) {
	seg := Segment{Cipher: "aes-xts-plain64", SectorSize: 4096}
	sc, err := NewSectorCipher(testKey(1), seg)
	if err != nil {
		t.Fatal(err)
	}
	plain := make([]byte, 3*4096)
	detRand(4).Read(plain)
	enc := make([]byte, len(plain))
	if err := sc.EncryptSectors(enc, plain, 10); err != nil {
		t.Fatal(err)
	}
	// Sector-by-sector and in-place give the same result as one call.
	one := append([]byte(nil), plain[4096:8192]...)
	if err := sc.EncryptSectors(one, one, 11); err != nil {
		t.Fatal(err)
	}
	mustEqual(t, "sector 11", one, enc[4096:8192])
	dec := make([]byte, len(enc))
	if err := sc.DecryptSectors(dec, enc, 10); err != nil {
		t.Fatal(err)
	}
	mustEqual(t, "round trip", dec, plain)
	if err := sc.EncryptSectors(enc, plain[:4000], 0); err == nil {
		t.Error("partial sector accepted")
	}
	for _, bad := range []Segment{{Cipher: "aes-cbc-essiv:sha256", SectorSize: 4096}, {Cipher: "aes-xts-plain64", SectorSize: 3000}} {
		if _, err := NewSectorCipher(testKey(1), bad); err == nil {
			t.Errorf("NewSectorCipher(%+v) accepted", bad)
		}
	}
	if _, err := NewSectorCipher(make([]byte, 48), seg); err == nil {
		t.Error("48-byte key accepted")
	}
}

func TestRecoveryKey(t *testing.T) {
	s, raw, err := NewRecoveryKey(detRand(5))
	if err != nil {
		t.Fatal(err)
	}
	if len(s) != 71 || strings.Count(s, "-") != 7 || len(raw) != 32 {
		t.Fatalf("recovery key %q (%d raw bytes)", s, len(raw))
	}
	for _, g := range strings.Split(s, "-") {
		if len(g) != 8 || strings.Trim(g, modhex) != "" {
			t.Errorf("group %q", g)
		}
	}
	vec := make([]byte, 32)
	vec[0], vec[1], vec[31] = 0x00, 0x1f, 0xff
	if got := formatRecoveryKey(vec); !strings.HasPrefix(got, "ccbvcccc-") || !strings.HasSuffix(got, "-ccccccvv") {
		t.Errorf("format of known bytes = %q", got)
	}
	tests := []struct {
		name, in, want string
	}{
		{"canonical", s, ""},
		{"upper case, spaces around", "  " + strings.ToUpper(s) + "\n", ""},
		{"no dashes", strings.ReplaceAll(s, "-", ""), ""},
		{"spaces for dashes", strings.ReplaceAll(s, "-", " "), ""},
		{"short", s[:70], "63 letters"},
		{"bad letter", "a" + s[1:], "position 0"},
	}
	for _, tc := range tests {
		got, gotRaw, err := ParseRecoveryKey(tc.in)
		if tc.want != "" {
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("%s: err = %v, want %q", tc.name, err, tc.want)
			}
			continue
		}
		if err != nil || got != s || !bytes.Equal(gotRaw, raw) {
			t.Errorf("%s: ParseRecoveryKey = %q, %v", tc.name, got, err)
		}
	}
}
