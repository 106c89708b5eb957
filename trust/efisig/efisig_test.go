package efisig

import (
	"bytes"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"encoding/pem"
	"math/big"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ballast-os/ballast/tests/testutil"
	"github.com/ballast-os/ballast/trust/pkcs7"
)

func TestGUID(t *testing.T) {
	for _, tc := range []struct {
		s string
		g GUID
	}{
		{"8be4df61-93ca-11d2-aa0d-00e098032b8c", GlobalVariable},
		{"d719b2cb-3d3a-4596-a3bc-dad00e67656f", ImageSecurityDatabase},
		{"a5c059a1-94e4-4aa7-87b5-ab155c2bf072", CertX509},
		{"4aafd29d-68df-49ee-8aa9-347d375665a7", CertTypePKCS7},
	} {
		g, err := ParseGUID(strings.ToUpper(tc.s))
		if err != nil || g != tc.g {
			t.Errorf("ParseGUID(%s) = %x, %v; want %x", tc.s, g, err, tc.g)
		}
		if g.String() != tc.s {
			t.Errorf("String() = %s, want %s", g, tc.s)
		}
	}
	for _, bad := range []string{"", "8be4df61-93ca-11d2-aa0d", "8be4df6193ca11d2aa0d00e098032b8c", "8be4df61-93ca-11d2-aa0d-00e098032bxx", "8be4df6-193ca-11d2-aa0d-00e098032b8c"} {
		if _, err := ParseGUID(bad); err == nil {
			t.Errorf("ParseGUID(%q) succeeded", bad)
		}
	}
}

type keyPair struct {
	cert              *x509.Certificate
	key               *rsa.PrivateKey
	certFile, keyFile string
}

// newKey makes a key and a certificate issued by parent (self-signed if nil), in files too.
func newKey(t *testing.T, cn string, parent *keyPair) *keyPair {
	t.Helper()
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(time.Now().UnixNano()),
		Subject:               pkix.Name{CommonName: cn},
		NotBefore:             time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC),
		NotAfter:              time.Date(2046, 1, 1, 0, 0, 0, 0, time.UTC),
		BasicConstraintsValid: true,
		IsCA:                  true,
	}
	issuer, signKey := tmpl, key
	if parent != nil {
		issuer, signKey = parent.cert, parent.key
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, issuer, &key.PublicKey, signKey)
	if err != nil {
		t.Fatal(err)
	}
	cert, _ := x509.ParseCertificate(der)
	dir := t.TempDir()
	kp := &keyPair{cert: cert, key: key, certFile: filepath.Join(dir, "k.crt"), keyFile: filepath.Join(dir, "k.key")}
	write(t, kp.certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}))
	write(t, kp.keyFile, pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Bytes: x509.MarshalPKCS1PrivateKey(key)}))
	return kp
}

func write(t *testing.T, p string, b []byte) string {
	t.Helper()
	if err := os.WriteFile(p, b, 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

func read(t *testing.T, p string) []byte {
	t.Helper()
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestX509List(t *testing.T) {
	certToESL := testutil.Tool(t, "cert-to-efi-sig-list", "efitools")
	owner, _ := ParseGUID("0f1e2d3c-4b5a-6978-8796-a5b4c3d2e1f0")
	a, b := newKey(t, "a", nil), newKey(t, "b with a longer name", nil)
	esl, err := X509List(owner, a.cert)
	if err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(t.TempDir(), "a.esl")
	testutil.Run(t, certToESL, "-g", owner.String(), a.certFile, out)
	if want := read(t, out); !bytes.Equal(esl, want) {
		t.Errorf("X509List differs from cert-to-efi-sig-list:\n ours %x\n want %x", esl, want)
	}

	two, err := X509List(owner, a.cert, b.cert)
	if err != nil {
		t.Fatal(err)
	}
	sigs, err := ParseLists(two)
	if err != nil {
		t.Fatal(err)
	}
	if len(sigs) != 2 || sigs[0].Owner != owner || sigs[1].Type != CertX509 || !bytes.Equal(sigs[0].Data, a.cert.Raw) || !bytes.Equal(sigs[1].Data, b.cert.Raw) {
		t.Errorf("ParseLists read back %+v", sigs)
	}
	for i := range len(two) - 1 {
		if _, err := ParseLists(two[:i+1]); err == nil && i+1 != len(esl) {
			t.Errorf("ParseLists accepted %d of %d bytes", i+1, len(two))
		}
	}
	if _, err := X509List(owner); err == nil {
		t.Error("X509List of no certificates succeeded")
	}
}

// TestAuth2 makes PK, KEK and db payloads as sign-efi-sig-list makes them and compares.
func TestAuth2(t *testing.T) {
	signESL := testutil.Tool(t, "sign-efi-sig-list", "efitools")
	openssl := testutil.Tool(t, "openssl", "openssl")
	owner, _ := ParseGUID("11111111-2222-3333-4444-555555555555")
	pk := newKey(t, "PK", nil)
	kek := newKey(t, "KEK", pk)
	db := newKey(t, "db", kek)
	when := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	for _, tc := range []struct {
		name   string
		vendor GUID
		cert   *keyPair // whose certificate the list holds
		signer *keyPair
	}{
		{"PK", GlobalVariable, pk, pk},
		{"KEK", GlobalVariable, kek, pk},
		{"db", ImageSecurityDatabase, db, kek},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			esl, err := X509List(owner, tc.cert.cert)
			if err != nil {
				t.Fatal(err)
			}
			auth, err := Auth2(tc.name, tc.vendor, SecureBootAttrs, when, esl, tc.signer.cert, tc.signer.key)
			if err != nil {
				t.Fatal(err)
			}
			again, _ := Auth2(tc.name, tc.vendor, SecureBootAttrs, when, esl, tc.signer.cert, tc.signer.key)
			if !bytes.Equal(auth, again) {
				t.Error("Auth2 twice gave different bytes")
			}
			out := filepath.Join(dir, "x.auth")
			testutil.Run(t, signESL, "-t", "2026-01-01 00:00:00", "-g", owner.String(), "-c", tc.signer.certFile, "-k", tc.signer.keyFile,
				tc.name, write(t, filepath.Join(dir, "x.esl"), esl), out)
			theirs := read(t, out)
			if !bytes.Equal(auth, theirs) {
				t.Errorf("Auth2 differs from sign-efi-sig-list:\n ours %x\n want %x", auth, theirs)
			}

			for _, b := range [][]byte{auth, theirs} {
				a, err := ParseAuth2(b)
				if err != nil {
					t.Fatal(err)
				}
				if !a.Time.Equal(when) || !bytes.Equal(a.Data, esl) {
					t.Errorf("ParseAuth2: time %s, data %d bytes", a.Time, len(a.Data))
				}
				signer, err := a.Verify(tc.name, tc.vendor, SecureBootAttrs)
				if err != nil {
					t.Fatal(err)
				}
				if !signer.Equal(tc.signer.cert) {
					t.Errorf("signed by %s, want %s", signer.Subject, tc.signer.cert.Subject)
				}
				if _, err := a.Verify(tc.name, tc.vendor, SecureBootAttrs|AppendWrite); err == nil {
					t.Error("Verify accepted other attributes")
				}
			}

			// openssl checks our signature over the bytes the firmware reconstructs.
			a, _ := ParseAuth2(auth)
			ci, err := asn1.Marshal(struct {
				Type    asn1.ObjectIdentifier
				Content asn1.RawValue
			}{pkcs7.OIDSignedData, asn1.RawValue{Class: asn1.ClassContextSpecific, Tag: 0, IsCompound: true, Bytes: a.SignedData}})
			if err != nil {
				t.Fatal(err)
			}
			ts, _ := efiTime(when)
			content := write(t, filepath.Join(dir, "signed"), signedBytes(tc.name, tc.vendor, SecureBootAttrs, ts, esl))
			if out := testutil.Run(t, openssl, "cms", "-verify", "-binary", "-inform", "DER", "-noverify", "-in", write(t, filepath.Join(dir, "p7"), ci),
				"-content", content, "-out", filepath.Join(dir, "out")); !strings.Contains(out, "Verification successful") {
				t.Errorf("openssl cms -verify:\n%s", out)
			}
		})
	}
}

func TestAuth2Errors(t *testing.T) {
	pk := newKey(t, "PK", nil)
	if _, err := Auth2("PK", GlobalVariable, SecureBootAttrs, time.Date(1899, 1, 1, 0, 0, 0, 0, time.UTC), nil, pk.cert, pk.key); err == nil || !strings.Contains(err.Error(), "PK") {
		t.Errorf("year 1899: %v", err)
	}
	if _, err := Auth2("", GlobalVariable, SecureBootAttrs, time.Now(), nil, pk.cert, pk.key); err == nil {
		t.Error("no name: no error")
	}
	auth, err := Auth2("PK", GlobalVariable, SecureBootAttrs, time.Now(), []byte("data"), pk.cert, pk.key)
	if err != nil {
		t.Fatal(err)
	}
	for i := range 40 {
		if _, err := ParseAuth2(auth[:i]); err == nil {
			t.Errorf("ParseAuth2 accepted %d bytes", i)
		}
	}
	a, err := ParseAuth2(auth)
	if err != nil {
		t.Fatal(err)
	}
	a.Data[0] ^= 1
	if _, err := a.Verify("PK", GlobalVariable, SecureBootAttrs); err == nil {
		t.Error("Verify accepted altered data")
	}
}
