package sbkeys

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ballast-os/ballast/tests/testutil"
	"github.com/ballast-os/ballast/trust/authenticode"
	"github.com/ballast-os/ballast/trust/efisig"
)

var testNow = time.Date(2026, 3, 4, 5, 6, 7, 0, time.UTC)

// initDir makes one key directory for the tests that only read it (key generation is slow).
func initDir(t *testing.T) string {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "keys")
	if err := Init(dir, "Test Owner", testNow); err != nil {
		t.Fatal(err)
	}
	return dir
}

func copyDir(t *testing.T, src string) string {
	t.Helper()
	dst := t.TempDir()
	ents, err := os.ReadDir(src)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range ents {
		b, err := os.ReadFile(filepath.Join(src, e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dst, e.Name()), b, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	return dst
}

func TestInitLoad(t *testing.T) {
	dir := initDir(t)
	st, err := os.Stat(dir)
	if err != nil || st.Mode().Perm() != 0o700 {
		t.Errorf("directory mode %v (%v), want 0700", st.Mode(), err)
	}
	for _, f := range allFiles() {
		st, err := os.Stat(filepath.Join(dir, f))
		if err != nil {
			t.Errorf("%s: %v", f, err)
			continue
		}
		if strings.HasSuffix(f, ".key") && st.Mode().Perm() != 0o600 {
			t.Errorf("%s mode %v, want 0600", f, st.Mode())
		}
	}

	// The build must work with the PK and KEK private keys gone offline.
	os.Remove(filepath.Join(dir, PKKey))
	os.Remove(filepath.Join(dir, KEKKey))
	k, err := Load(dir)
	if err != nil {
		t.Fatal(err)
	}
	if k.DBCert.Subject.CommonName != "Test Owner db" || !k.DBCert.NotBefore.Equal(testNow) || !k.DBCert.NotAfter.Equal(testNow.AddDate(20, 0, 0)) {
		t.Errorf("db certificate %s, valid %s to %s", k.DBCert.Subject, k.DBCert.NotBefore, k.DBCert.NotAfter)
	}
	sum := sha256.Sum256(k.DBCert.Raw)
	if k.Fingerprint() != hex.EncodeToString(sum[:]) {
		t.Errorf("Fingerprint %s", k.Fingerprint())
	}
	guid, err := os.ReadFile(filepath.Join(dir, OwnerGUID))
	if err != nil {
		t.Fatal(err)
	}
	owner, err := efisig.ParseGUID(strings.TrimSpace(string(guid)))
	if err != nil {
		t.Fatal(err)
	}
	pkCert, err := readCert(dir, PKCert)
	if err != nil {
		t.Fatal(err)
	}
	if owner != ownerGUID(pkCert) {
		t.Errorf("owner.guid %s, derived from PK %s", owner, ownerGUID(pkCert))
	}
	for _, v := range []struct {
		name string
		auth []byte
	}{{"PK", k.PKAuth}, {"KEK", k.KEKAuth}, {"db", k.DBAuth}} {
		a, err := efisig.ParseAuth2(v.auth)
		if err != nil {
			t.Fatalf("%s.auth: %v", v.name, err)
		}
		esl, _ := os.ReadFile(filepath.Join(dir, v.name+".esl"))
		sigs, err := efisig.ParseLists(esl)
		if err != nil || len(sigs) != 1 || sigs[0].Owner != owner {
			t.Errorf("%s.esl: %+v, %v", v.name, sigs, err)
		}
		if !a.Time.Equal(testNow) || !bytes.Equal(a.Data, esl) {
			t.Errorf("%s.auth: time %s, data not the .esl", v.name, a.Time)
		}
	}

	readme, _ := os.ReadFile(filepath.Join(dir, Readme))
	for _, want := range []string{"db.key, db.crt", "pcr.key", "Move PK.key and KEK.key offline", "sign-efi-sig-list"} {
		if !bytes.Contains(readme, []byte(want)) {
			t.Errorf("README.txt lacks %q", want)
		}
	}
}

// TestTools checks the directory with the tools that use such files: efitools makes the same
// .auth files, sbsign signs with db.key and sbverify checks against db.crt, openssl reads pcr.pub.pem.
func TestTools(t *testing.T) {
	signESL := testutil.Tool(t, "sign-efi-sig-list", "efitools")
	sbsign := testutil.Tool(t, "sbsign", "sbsigntool")
	sbverify := testutil.Tool(t, "sbverify", "sbsigntool")
	openssl := testutil.Tool(t, "openssl", "openssl")
	dir := initDir(t)
	guid, _ := os.ReadFile(filepath.Join(dir, OwnerGUID))
	out := t.TempDir()
	for _, v := range []struct{ name, signer string }{{"PK", "PK"}, {"KEK", "PK"}, {"db", "KEK"}} {
		p := filepath.Join(out, v.name+".auth")
		testutil.Run(t, signESL, "-t", testNow.Format("2006-01-02 15:04:05"), "-g", strings.TrimSpace(string(guid)),
			"-c", filepath.Join(dir, v.signer+".crt"), "-k", filepath.Join(dir, v.signer+".key"), v.name, filepath.Join(dir, v.name+".esl"), p)
		theirs, _ := os.ReadFile(p)
		ours, _ := os.ReadFile(filepath.Join(dir, v.name+".auth"))
		if !bytes.Equal(ours, theirs) {
			t.Errorf("%s.auth differs from sign-efi-sig-list's", v.name)
		}
	}

	efi := "/usr/lib/systemd/boot/efi/systemd-bootx64.efi"
	pe, err := os.ReadFile(efi)
	testutil.Need(t, err == nil, "%s (apt-get install systemd-boot-efi): %v", efi, err)
	signed := filepath.Join(out, "signed.efi")
	testutil.Run(t, sbsign, "--key", filepath.Join(dir, DBKey), "--cert", filepath.Join(dir, DBCert), "--output", signed, efi)
	testutil.Run(t, sbverify, "--cert", filepath.Join(dir, DBCert), signed)

	k, err := Load(dir)
	if err != nil {
		t.Fatal(err)
	}
	ours, err := authenticode.Sign(pe, k.DBCert, k.DBKey)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(signed, ours, 0o644); err != nil {
		t.Fatal(err)
	}
	if o := testutil.Run(t, sbverify, "--cert", filepath.Join(dir, DBCert), signed); !strings.Contains(o, "Signature verification OK") {
		t.Errorf("sbverify:\n%s", o)
	}
	if o := testutil.Run(t, openssl, "pkey", "-pubin", "-in", filepath.Join(dir, PCRPub), "-text", "-noout"); !strings.Contains(o, "2048 bit") {
		t.Errorf("openssl pkey pcr.pub.pem:\n%s", o)
	}
}

func TestInitRefuses(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, DBKey), []byte("an old key"), 0o600); err != nil {
		t.Fatal(err)
	}
	err := Init(dir, "x", testNow)
	if err == nil || !strings.Contains(err.Error(), filepath.Join(dir, DBKey)) || !strings.Contains(err.Error(), "refusing") {
		t.Fatalf("Init over an existing key: %v", err)
	}
	if b, _ := os.ReadFile(filepath.Join(dir, DBKey)); string(b) != "an old key" {
		t.Error("the existing key was changed")
	}
	if ents, _ := os.ReadDir(dir); len(ents) != 1 {
		t.Errorf("Init left %d files", len(ents))
	}
	if err := Init(t.TempDir(), " ", testNow); err == nil {
		t.Error("Init with no name succeeded")
	}
}

func TestLoadErrors(t *testing.T) {
	good := initDir(t)
	other := initDir(t)
	tests := []struct {
		name   string
		damage func(dir string)
		want   string
	}{
		{"no db.key", func(d string) { os.Remove(filepath.Join(d, DBKey)) }, DBKey},
		{"no db.crt", func(d string) { os.Remove(filepath.Join(d, DBCert)) }, DBCert},
		{"no pcr.key", func(d string) { os.Remove(filepath.Join(d, PCRKey)) }, PCRKey},
		{"no KEK.auth", func(d string) { os.Remove(filepath.Join(d, KEKAuth)) }, KEKAuth},
		{"bad db.crt", func(d string) { os.WriteFile(filepath.Join(d, DBCert), []byte("junk"), 0o600) }, DBCert},
		{"bad pcr.key", func(d string) { os.WriteFile(filepath.Join(d, PCRKey), []byte("junk"), 0o600) }, PCRKey},
		{"short PK.auth", func(d string) { os.WriteFile(filepath.Join(d, PKAuth), []byte("junk"), 0o600) }, PKAuth},
		{"db key of another dir", func(d string) { cp(t, other, d, DBKey) }, "does not belong"},
		{"db cert and key of another dir", func(d string) { cp(t, other, d, DBKey); cp(t, other, d, DBCert) }, "does not enroll"},
		{"KEK.auth of another dir", func(d string) { cp(t, other, d, KEKAuth) }, KEKAuth},
		{"db.auth of another dir", func(d string) { cp(t, other, d, DBAuth) }, DBAuth},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			dir := copyDir(t, good)
			tc.damage(dir)
			_, err := Load(dir)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("Load: %v, want an error naming %q", err, tc.want)
			}
		})
	}
}

func cp(t *testing.T, from, to, name string) {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(from, name))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(to, name), b, 0o600); err != nil {
		t.Fatal(err)
	}
}
