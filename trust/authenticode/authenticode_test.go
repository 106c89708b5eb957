package authenticode

import (
	"bytes"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/binary"
	"encoding/hex"
	"encoding/pem"
	"fmt"
	"math/big"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/ballast-os/ballast/contract"
	"github.com/ballast-os/ballast/tests/testutil"
)

// efiBinary is one of the EFI binaries of Debian's systemd-boot-efi: the boot manager, or the
// stub UKIs are made of.
type efiBinary struct {
	arch contract.Arch
	path string
}

// efiBinaries are both binaries of every architecture: arm64's (PE machine 0xAA64) come from the
// package's arm64 build, installed beside amd64's (dpkg --add-architecture arm64; apt-get install
// systemd-boot-efi:arm64).
func efiBinaries() []efiBinary {
	var out []efiBinary
	for _, a := range contract.Archs() {
		out = append(out, efiBinary{a, "/" + a.SystemdBootFile()}, efiBinary{a, "/" + a.SystemdStubFile()})
	}
	return out
}

type signer struct {
	cert     *x509.Certificate
	key      *rsa.PrivateKey
	certFile string
	keyFile  string
}

func newSigner(t *testing.T, cn string) signer {
	t.Helper()
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(42),
		Subject:      pkix.Name{CommonName: cn},
		NotBefore:    time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC),
		NotAfter:     time.Date(2046, 1, 1, 0, 0, 0, 0, time.UTC),
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, _ := x509.ParseCertificate(der)
	dir := t.TempDir()
	s := signer{cert: cert, key: key, certFile: filepath.Join(dir, cn+".crt"), keyFile: filepath.Join(dir, cn+".key")}
	writeFile(t, s.certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}))
	writeFile(t, s.keyFile, pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Bytes: x509.MarshalPKCS1PrivateKey(key)}))
	return s
}

func writeFile(t *testing.T, p string, b []byte) string {
	t.Helper()
	if err := os.WriteFile(p, b, 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

// readEFI reads a binary of systemd-boot-efi and checks it is one of the architecture's, so a
// test over it covers that machine type.
func readEFI(t *testing.T, e efiBinary) []byte {
	t.Helper()
	b, err := os.ReadFile(e.path)
	testutil.Need(t, err == nil, "%s (apt-get install systemd-boot-efi:%s): %v", e.path, e.arch.Info().Debian, err)
	if len(b) < 0x40 {
		t.Fatalf("%s: %d bytes", e.path, len(b))
	}
	nt := int(binary.LittleEndian.Uint32(b[0x3c:]))
	if nt+6 > len(b) {
		t.Fatalf("%s: PE header at 0x%x is past the end", e.path, nt)
	}
	if m := binary.LittleEndian.Uint16(b[nt+4:]); m != e.arch.Info().PEMachine {
		t.Fatalf("%s: PE machine 0x%x, want %s's 0x%x", e.path, m, e.arch, e.arch.Info().PEMachine)
	}
	return b
}

// osslDigests returns the digest in an image's signature and the one osslsigncode calculates.
func osslDigests(t *testing.T, file string) (current, calculated string) {
	t.Helper()
	out, _ := exec.Command(testutil.Tool(t, "osslsigncode", "osslsigncode"), "verify", "-in", file).CombinedOutput()
	find := func(label string) string {
		m := regexp.MustCompile(label + `\s*:\s*([0-9A-F]{64})`).FindStringSubmatch(string(out))
		if m == nil {
			t.Fatalf("osslsigncode verify %s printed no %s:\n%s", file, label, out)
		}
		return strings.ToLower(m[1])
	}
	return find("Current message digest"), find("Calculated message digest")
}

func TestSignRealEFI(t *testing.T) {
	sbverify := testutil.Tool(t, "sbverify", "sbsigntool")
	sbsign := testutil.Tool(t, "sbsign", "sbsigntool")
	osslsigncode := testutil.Tool(t, "osslsigncode", "osslsigncode")
	db := newSigner(t, "db")
	other := newSigner(t, "other")
	for _, e := range efiBinaries() {
		t.Run(filepath.Base(e.path), func(t *testing.T) {
			pe := readEFI(t, e)
			dir := t.TempDir()
			signed, err := Sign(pe, db.cert, db.key)
			if err != nil {
				t.Fatal(err)
			}
			again, err := Sign(pe, db.cert, db.key)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(signed, again) {
				t.Error("signing twice gave different bytes")
			}
			signedFile := writeFile(t, filepath.Join(dir, "signed.efi"), signed)
			if out := testutil.Run(t, sbverify, "--cert", db.certFile, signedFile); !strings.Contains(out, "Signature verification OK") {
				t.Errorf("sbverify:\n%s", out)
			}
			if out, err := exec.Command(sbverify, "--cert", other.certFile, signedFile).CombinedOutput(); err == nil {
				t.Errorf("sbverify accepted the image with another certificate:\n%s", out)
			}
			if _, err := Verify(signed, db.cert); err != nil {
				t.Error(err)
			}
			if _, err := Verify(signed, other.cert); err == nil {
				t.Error("Verify accepted the image with another certificate")
			}

			// The digest: ours, osslsigncode's recalculation of our file, and the digest sbsign
			// signs (sbsign's own signature carries a signing time, so only the digests compare).
			want, err := Digest(pe)
			if err != nil {
				t.Fatal(err)
			}
			if got, err := Digest(signed); err != nil || !bytes.Equal(got, want) {
				t.Errorf("Digest of the signed image %x (%v), of the unsigned %x", got, err, want)
			}
			cur, calc := osslDigests(t, signedFile)
			if cur != hex.EncodeToString(want) || calc != cur {
				t.Errorf("osslsigncode: current digest %s, calculated %s; ours %x", cur, calc, want)
			}
			sbFile := filepath.Join(dir, "sbsign.efi")
			testutil.Run(t, sbsign, "--key", db.keyFile, "--cert", db.certFile, "--output", sbFile, writeFile(t, filepath.Join(dir, "in.efi"), pe))
			if cur, _ := osslDigests(t, sbFile); cur != hex.EncodeToString(want) {
				t.Errorf("sbsign signed digest %s, ours %x", cur, want)
			}
			out := testutil.Run(t, osslsigncode, "verify", "-in", signedFile, "-CAfile", db.certFile)
			cs := binary.LittleEndian.Uint32(signed[checksumOffset(t, signed):])
			if !strings.Contains(out, fmt.Sprintf("PE checksum   : %08X", cs)) || strings.Contains(out, "Calculated PE checksum") {
				t.Errorf("osslsigncode disagrees with our checksum %08X:\n%s", cs, out)
			}

			// A flipped byte anywhere the signature covers must fail both checks; CheckSum is
			// outside it.
			l, err := parse(signed)
			if err != nil {
				t.Fatal(err)
			}
			last := l.sections[len(l.sections)-1]
			for _, tc := range []struct {
				name string
				off  int
				ok   bool
			}{
				{"DOS stub", 0x40, false},
				{"header after the directory", l.certDir + 8, false},
				{"header before CheckSum", l.checksum - 1, false},
				{"first section", l.sections[0][0] + 17, false},
				{"last section", last[1] - 1, false},
				{"after the sections", l.certOff - 1, false},
				{"CheckSum", l.checksum, true},
			} {
				bad := bytes.Clone(signed)
				bad[tc.off] ^= 0x10
				badFile := writeFile(t, filepath.Join(dir, "bad.efi"), bad)
				sbOut, sbErr := exec.Command(sbverify, "--cert", db.certFile, badFile).CombinedOutput()
				_, err := Verify(bad, db.cert)
				if (sbErr == nil) != tc.ok || (err == nil) != tc.ok {
					t.Errorf("%s (0x%x) flipped: sbverify %v, Verify %v, want ok=%v\n%s", tc.name, tc.off, sbErr, err, tc.ok, sbOut)
				}
			}
		})
	}
}

func checksumOffset(t *testing.T, pe []byte) int {
	l, err := parse(pe)
	if err != nil {
		t.Fatal(err)
	}
	return l.checksum
}

func TestSignRefuses(t *testing.T) {
	db := newSigner(t, "db")
	pe := readEFI(t, efiBinaries()[0])
	signed, err := Sign(pe, db.cert, db.key)
	if err != nil {
		t.Fatal(err)
	}
	l, err := parse(pe)
	if err != nil {
		t.Fatal(err)
	}
	nt := int(binary.LittleEndian.Uint32(pe[0x3c:]))
	pe32 := bytes.Clone(pe)
	binary.LittleEndian.PutUint16(pe32[nt+24:], 0x10b)
	tests := []struct {
		name string
		pe   []byte
		want string
	}{
		{"signed", signed, "already signed"},
		{"PE32", pe32, "want 0x20b (PE32+)"},
		{"truncated", pe[:l.sections[len(l.sections)-1][1]-1], "does not fit"},
		{"headers only", pe[:0x200], "does not fit"},
		{"not PE", []byte("MZ not really a PE image at all, only text, long enough for its header"), "no PE signature"},
		{"empty", nil, "no MZ header"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Sign(tc.pe, db.cert, db.key)
			if err == nil || !strings.Contains(err.Error(), tc.want) || !strings.HasPrefix(err.Error(), "authenticode: ") {
				t.Fatalf("error %v, want one saying %q", err, tc.want)
			}
		})
	}
	if _, err := Verify(pe, db.cert); err == nil || !strings.Contains(err.Error(), "not signed") {
		t.Errorf("Verify of an unsigned image: %v", err)
	}
}

func TestChecksum(t *testing.T) {
	// Words are summed with their carries folded back in, then the length is added.
	tests := []struct {
		b    []byte
		off  int
		want uint32
	}{
		{[]byte{1, 0, 2, 0}, 100, 3 + 4},
		{[]byte{0xff, 0xff, 0x02, 0x00}, 100, 2 + 4},
		{[]byte{1, 0, 0xaa, 0xbb, 0xcc, 0xdd, 3}, 2, 4 + 7},
	}
	for _, tc := range tests {
		if got := checksum(tc.b, tc.off); got != tc.want {
			t.Errorf("checksum(%x, %d) = %d, want %d", tc.b, tc.off, got, tc.want)
		}
	}
}
