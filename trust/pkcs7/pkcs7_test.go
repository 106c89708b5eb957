package pkcs7

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"math/big"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ballast-os/ballast/tests/testutil"
)

func testSigner(t *testing.T, cn string) (*x509.Certificate, *rsa.PrivateKey) {
	t.Helper()
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(0x1234567890),
		Subject:      pkix.Name{CommonName: cn},
		NotBefore:    time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC),
		NotAfter:     time.Date(2046, 1, 1, 0, 0, 0, 0, time.UTC),
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	return cert, key
}

// a content type of our own, to stand for Authenticode's SpcIndirectDataContent
var oidOther = asn1.ObjectIdentifier{1, 3, 6, 1, 4, 1, 311, 2, 1, 4}

func TestSignVerify(t *testing.T) {
	cert, key := testSigner(t, "pkcs7 test")
	data := []byte("the content\x00\x01\xff")
	other, _ := asn1.Marshal(struct {
		A int
		B []byte
	}{7, data})
	extra := Attribute{Type: asn1.ObjectIdentifier{1, 3, 6, 1, 4, 1, 311, 2, 1, 12}, Values: [][]byte{{0x30, 0x00}}}
	tests := []struct {
		name string
		p    Params
		// openssl: whether `openssl cms -verify` can check it (OpenSSL's CMS reads eContent only
		// as an OCTET STRING, so other encapsulated types are for Authenticode tools to check)
		openssl bool
	}{
		{"detached", Params{Content: data, Detached: true}, true},
		{"detached attrs", Params{Content: data, Detached: true, SignedAttributes: true}, true},
		{"encapsulated", Params{Content: data}, true},
		{"encapsulated attrs extra", Params{Content: data, Extra: []Attribute{extra}}, true},
		{"other type", Params{ContentType: oidOther, Content: other, Extra: []Attribute{extra}}, false},
		{"other type detached", Params{ContentType: oidOther, Content: other, Detached: true, SignedAttributes: true}, false},
	}
	openssl := testutil.Tool(t, "openssl", "openssl")
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			tc.p.Cert, tc.p.Key = cert, key
			ci, err := ContentInfo(tc.p)
			if err != nil {
				t.Fatal(err)
			}
			again, err := ContentInfo(tc.p)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(ci, again) {
				t.Error("signing twice gave different bytes")
			}
			sd, err := SignedData(tc.p)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Contains(ci, sd) {
				t.Error("the ContentInfo does not hold the bare SignedData")
			}
			for _, enc := range [][]byte{ci, sd} {
				p, err := Parse(enc)
				if err != nil {
					t.Fatal(err)
				}
				var detached []byte
				if tc.p.Detached {
					detached = tc.p.Content
					if p.Content != nil {
						t.Error("detached SignedData has content")
					}
				} else if !bytes.Equal(p.Content, tc.p.Content) {
					t.Errorf("content read back %x, want %x", p.Content, tc.p.Content)
				}
				signer, err := p.Verify(detached)
				if err != nil {
					t.Fatal(err)
				}
				if !signer.Equal(cert) {
					t.Error("wrong signer certificate")
				}
				if tc.p.Detached {
					bad := bytes.Clone(detached)
					bad[len(bad)-1] ^= 1
					if _, err := p.Verify(bad); err == nil {
						t.Error("Verify accepted altered content")
					}
				}
			}
			if !tc.openssl {
				out, err := exec.Command(openssl, "asn1parse", "-inform", "DER", "-in", write(t, "x.p7", ci)).CombinedOutput()
				if err != nil {
					t.Fatalf("openssl asn1parse: %v\n%s", err, out)
				}
				return
			}
			args := []string{"cms", "-verify", "-binary", "-inform", "DER", "-noverify", "-in", write(t, "x.p7", ci), "-out", filepath.Join(t.TempDir(), "out")}
			if tc.p.Detached {
				args = append(args, "-content", write(t, "content", data))
			}
			out, err := exec.Command(openssl, args...).CombinedOutput()
			if err != nil || !strings.Contains(string(out), "Verification successful") {
				t.Fatalf("openssl %s: %v\n%s", strings.Join(args, " "), err, out)
			}
			if tc.p.Detached {
				bad := bytes.Clone(data)
				bad[0] ^= 1
				args[len(args)-1] = write(t, "bad", bad)
				if out, err := exec.Command(openssl, args...).CombinedOutput(); err == nil {
					t.Errorf("openssl accepted altered content:\n%s", out)
				}
			}
		})
	}
}

func write(t *testing.T, name string, b []byte) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(p, b, 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestSignErrors(t *testing.T) {
	cert, key := testSigner(t, "a")
	_, otherKey := testSigner(t, "b")
	ecKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	tests := []struct {
		name string
		p    Params
		want string
	}{
		{"no cert", Params{Key: key}, "no signer"},
		{"wrong key", Params{Cert: cert, Key: otherKey}, "does not belong"},
		{"ecdsa", Params{Cert: cert, Key: ecKey}, "want RSA"},
		{"unparsed cert", Params{Cert: &x509.Certificate{}, Key: key}, "not a parsed certificate"},
		{"bad DER", Params{Cert: cert, Key: key, ContentType: oidOther, Content: []byte{0x30, 0x05}}, "not DER"},
		{"trailing", Params{Cert: cert, Key: key, ContentType: oidOther, Content: []byte{0x30, 0x00, 0x00}}, "after its DER"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := SignedData(tc.p)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %v, want one saying %q", err, tc.want)
			}
		})
	}
}

func TestParseGarbage(t *testing.T) {
	for _, b := range [][]byte{nil, {0x30}, {0x30, 0x00}, {0x04, 0x01, 0x00}, bytes.Repeat([]byte{0xff}, 40)} {
		if _, err := Parse(b); err == nil {
			t.Errorf("Parse(%x) succeeded", b)
		}
	}
}
