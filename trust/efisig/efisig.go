// Package efisig encodes what Secure Boot variables hold: EFI signature lists of X.509
// certificates, and the time-based authenticated variable payloads (EFI_VARIABLE_AUTHENTICATION_2)
// that firmware in setup mode, or a KEK/PK holder later, writes them with. Payloads are
// deterministic: the same inputs give the same bytes.
package efisig

import (
	"bytes"
	"crypto"
	"crypto/x509"
	"encoding/binary"
	"errors"
	"fmt"
	"time"
	"unicode/utf16"

	"github.com/ballast-os/ballast/trust/pkcs7"
)

// Variable attributes (UEFI specification, SetVariable).
const (
	NonVolatile                       = 0x01
	BootserviceAccess                 = 0x02
	RuntimeAccess                     = 0x04
	TimeBasedAuthenticatedWriteAccess = 0x20
	AppendWrite                       = 0x40

	// SecureBootAttrs are the attributes PK, KEK and db are written with.
	SecureBootAttrs = NonVolatile | BootserviceAccess | RuntimeAccess | TimeBasedAuthenticatedWriteAccess
)

const (
	listHeaderSize     = 16 + 4 + 4 + 4 // SignatureType, SignatureListSize, SignatureHeaderSize, SignatureSize
	efiTimeSize        = 16
	winCertGUIDHdrSize = 4 + 2 + 2 + 16 // dwLength, wRevision, wCertificateType, CertType
	winCertRevision    = 0x0200
	winCertTypeEFIGUID = 0x0ef1
)

// X509List returns EFI signature lists holding certs, each signature owned by owner. Every
// certificate gets a list of its own, since the signatures in one list must be of one size.
func X509List(owner GUID, certs ...*x509.Certificate) ([]byte, error) {
	if len(certs) == 0 {
		return nil, errors.New("efisig: no certificates for the signature list")
	}
	var out []byte
	for _, c := range certs {
		if c == nil || len(c.Raw) == 0 {
			return nil, errors.New("efisig: a certificate for the signature list has no DER")
		}
		sigSize := 16 + len(c.Raw)
		out = append(out, CertX509[:]...)
		out = binary.LittleEndian.AppendUint32(out, uint32(listHeaderSize+sigSize))
		out = binary.LittleEndian.AppendUint32(out, 0)
		out = binary.LittleEndian.AppendUint32(out, uint32(sigSize))
		out = append(out, owner[:]...)
		out = append(out, c.Raw...)
	}
	return out, nil
}

// Signature is one entry of a signature list.
type Signature struct {
	Type  GUID // the list's SignatureType
	Owner GUID
	Data  []byte // for CertX509, a certificate's DER
}

// ParseLists reads a sequence of EFI signature lists.
func ParseLists(b []byte) ([]Signature, error) {
	var sigs []Signature
	for off := 0; off < len(b); {
		if len(b)-off < listHeaderSize {
			return nil, fmt.Errorf("efisig: signature list at %d: %d bytes, shorter than its header", off, len(b)-off)
		}
		var typ GUID
		copy(typ[:], b[off:])
		listSize := int(binary.LittleEndian.Uint32(b[off+16:]))
		hdrSize := int(binary.LittleEndian.Uint32(b[off+20:]))
		sigSize := int(binary.LittleEndian.Uint32(b[off+24:]))
		if listSize < listHeaderSize || listSize > len(b)-off {
			return nil, fmt.Errorf("efisig: signature list at %d: size %d does not fit the %d bytes left", off, listSize, len(b)-off)
		}
		body := listSize - listHeaderSize - hdrSize
		if hdrSize < 0 || body < 0 || sigSize <= 16 || body%sigSize != 0 {
			return nil, fmt.Errorf("efisig: signature list at %d: header %d and signature size %d do not divide its %d bytes", off, hdrSize, sigSize, listSize)
		}
		for p := off + listHeaderSize + hdrSize; p < off+listSize; p += sigSize {
			s := Signature{Type: typ, Data: bytes.Clone(b[p+16 : p+sigSize])}
			copy(s.Owner[:], b[p:])
			if typ == CertX509 {
				if _, err := x509.ParseCertificate(s.Data); err != nil {
					return nil, fmt.Errorf("efisig: signature list at %d: certificate: %w", off, err)
				}
			}
			sigs = append(sigs, s)
		}
		off += listSize
	}
	return sigs, nil
}

// Auth2 returns the payload that sets the authenticated variable varName of vendor to data:
// an EFI_VARIABLE_AUTHENTICATION_2 carrying timestamp t and a detached PKCS#7 signature by
// signerKey (whose certificate is signerCert) over name, vendor, attributes, timestamp and data,
// followed by data. attrs are the attributes the variable is set with, SecureBootAttrs for PK,
// KEK and db. The firmware only takes a timestamp later than the variable's current one.
func Auth2(varName string, vendor GUID, attrs uint32, t time.Time, data []byte, signerCert *x509.Certificate, signerKey crypto.Signer) ([]byte, error) {
	ts, err := efiTime(t)
	if err != nil {
		return nil, fmt.Errorf("efisig: %s: %w", varName, err)
	}
	if varName == "" {
		return nil, errors.New("efisig: no variable name")
	}
	// As sign-efi-sig-list signs, and EDK2 checks: no signed attributes, content detached, the bare
	// SignedData rather than a ContentInfo.
	sig, err := pkcs7.SignedData(pkcs7.Params{
		Cert:     signerCert,
		Key:      signerKey,
		Content:  signedBytes(varName, vendor, attrs, ts, data),
		Detached: true,
	})
	if err != nil {
		return nil, fmt.Errorf("efisig: %s: %w", varName, err)
	}
	out := append([]byte(nil), ts[:]...)
	out = binary.LittleEndian.AppendUint32(out, uint32(winCertGUIDHdrSize+len(sig)))
	out = binary.LittleEndian.AppendUint16(out, winCertRevision)
	out = binary.LittleEndian.AppendUint16(out, winCertTypeEFIGUID)
	out = append(out, CertTypePKCS7[:]...)
	out = append(out, sig...)
	return append(out, data...), nil
}

// signedBytes is what an authenticated variable's signature covers.
func signedBytes(varName string, vendor GUID, attrs uint32, ts [efiTimeSize]byte, data []byte) []byte {
	var b []byte
	for _, c := range utf16.Encode([]rune(varName)) {
		b = binary.LittleEndian.AppendUint16(b, c)
	}
	b = append(b, vendor[:]...)
	b = binary.LittleEndian.AppendUint32(b, attrs)
	b = append(b, ts[:]...)
	return append(b, data...)
}

// efiTime encodes t in UTC as an EFI_TIME with the fields authenticated variables require zero
// (nanoseconds, time zone, daylight) left zero.
func efiTime(t time.Time) ([efiTimeSize]byte, error) {
	var ts [efiTimeSize]byte
	t = t.UTC()
	if t.Year() < 1900 || t.Year() > 9999 {
		return ts, fmt.Errorf("timestamp %s outside the years EFI_TIME holds", t)
	}
	binary.LittleEndian.PutUint16(ts[0:], uint16(t.Year()))
	ts[2], ts[3] = byte(t.Month()), byte(t.Day())
	ts[4], ts[5], ts[6] = byte(t.Hour()), byte(t.Minute()), byte(t.Second())
	return ts, nil
}

// Auth is an EFI_VARIABLE_AUTHENTICATION_2 payload read back.
type Auth struct {
	Time       time.Time
	SignedData []byte // the PKCS#7 SignedData DER
	Data       []byte // the variable's new value
	timestamp  [efiTimeSize]byte
}

// ParseAuth2 reads an EFI_VARIABLE_AUTHENTICATION_2 payload, such as a .auth file.
func ParseAuth2(b []byte) (*Auth, error) {
	if len(b) < efiTimeSize+winCertGUIDHdrSize {
		return nil, fmt.Errorf("efisig: authenticated payload of %d bytes is shorter than its header", len(b))
	}
	a := &Auth{}
	copy(a.timestamp[:], b)
	ts := b[:efiTimeSize]
	if ts[7] != 0 || !bytes.Equal(ts[8:], make([]byte, 8)) {
		return nil, errors.New("efisig: timestamp has nonzero nanoseconds, time zone or daylight fields")
	}
	a.Time = time.Date(int(binary.LittleEndian.Uint16(ts)), time.Month(ts[2]), int(ts[3]), int(ts[4]), int(ts[5]), int(ts[6]), 0, time.UTC)
	w := b[efiTimeSize:]
	n := int(binary.LittleEndian.Uint32(w))
	if rev, typ := binary.LittleEndian.Uint16(w[4:]), binary.LittleEndian.Uint16(w[6:]); rev != winCertRevision || typ != winCertTypeEFIGUID {
		return nil, fmt.Errorf("efisig: WIN_CERTIFICATE revision 0x%x type 0x%x, want 0x%x 0x%x", rev, typ, winCertRevision, winCertTypeEFIGUID)
	}
	if GUID(w[8:24]) != CertTypePKCS7 {
		return nil, fmt.Errorf("efisig: certificate type %s, want EFI_CERT_TYPE_PKCS7_GUID", GUID(w[8:24]))
	}
	if n < winCertGUIDHdrSize || n > len(w) {
		return nil, fmt.Errorf("efisig: WIN_CERTIFICATE length %d does not fit the %d bytes", n, len(w))
	}
	a.SignedData = bytes.Clone(w[winCertGUIDHdrSize:n])
	a.Data = bytes.Clone(w[n:])
	return a, nil
}

// Verify checks the payload's signature as the firmware would for variable varName of vendor set
// with attrs, and returns the signer's certificate; whether that certificate may write the
// variable (PK for PK and KEK, a KEK for db) is the caller's question.
func (a *Auth) Verify(varName string, vendor GUID, attrs uint32) (*x509.Certificate, error) {
	p, err := pkcs7.Parse(a.SignedData)
	if err != nil {
		return nil, fmt.Errorf("efisig: %s: %w", varName, err)
	}
	signer, err := p.Verify(signedBytes(varName, vendor, attrs, a.timestamp, a.Data))
	if err != nil {
		return nil, fmt.Errorf("efisig: %s: %w", varName, err)
	}
	return signer, nil
}
