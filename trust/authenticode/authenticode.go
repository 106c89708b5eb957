// Package authenticode signs and checks PE32+ (EFI) images the way UEFI Secure Boot checks them:
// a SHA-256 Authenticode image digest signed in a PKCS#7 SignedData, one certificate table entry
// at the end of the file. Signing is deterministic: the same image and key give the same bytes.
package authenticode

import (
	"bytes"
	"crypto"
	"crypto/sha256"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"encoding/binary"
	"errors"
	"fmt"
	"unicode/utf16"

	"github.com/ballast-os/ballast/trust/pkcs7"
)

// Authenticode object identifiers (Microsoft's Authenticode PE specification).
var (
	oidSpcIndirectData = asn1.ObjectIdentifier{1, 3, 6, 1, 4, 1, 311, 2, 1, 4}
	oidSpcPeImageData  = asn1.ObjectIdentifier{1, 3, 6, 1, 4, 1, 311, 2, 1, 15}
	oidSpcSpOpusInfo   = asn1.ObjectIdentifier{1, 3, 6, 1, 4, 1, 311, 2, 1, 12}
)

const (
	winCertRevision = 0x0200
	winCertPKCS7    = 0x0002
)

type spcIndirectDataContent struct {
	Data          spcAttributeTypeAndOptionalValue
	MessageDigest digestInfo
}

type spcAttributeTypeAndOptionalValue struct {
	Type  asn1.ObjectIdentifier
	Value asn1.RawValue
}

type digestInfo struct {
	Algorithm pkix.AlgorithmIdentifier
	Digest    []byte
}

// Digest returns the SHA-256 Authenticode digest of a PE32+ image: headers without CheckSum and
// the Certificate Table entry, sections in file order, then the rest of the file up to the
// certificate table. For an unsigned image whose length is not a multiple of 8 it is the digest
// of the image padded with zeros as Sign pads it, which is what its signature will cover.
func Digest(pe []byte) ([]byte, error) {
	l, err := parse(pe)
	if err != nil {
		return nil, fmt.Errorf("authenticode: %w", err)
	}
	if l.certSize == 0 {
		pe = pad8(pe)
	}
	return digest(pe, l), nil
}

func digest(pe []byte, l *layout) []byte {
	h := sha256.New()
	h.Write(pe[:l.checksum])
	h.Write(pe[l.checksum+4 : l.certDir])
	h.Write(pe[l.certDir+8 : l.sizeHeaders])
	hashed := l.sizeHeaders
	for _, s := range l.sections {
		h.Write(pe[s[0]:s[1]])
		hashed = max(hashed, s[1])
	}
	end := len(pe)
	if l.certSize != 0 {
		end = l.certOff
	}
	if hashed < end {
		h.Write(pe[hashed:end])
	}
	return h.Sum(nil)
}

// Sign returns pe signed with key, whose certificate is cert: the image padded to 8 bytes, a
// WIN_CERTIFICATE holding the PKCS#7 signature appended, the Certificate Table entry and the
// checksum set. An image that is already signed is refused rather than signed twice.
func Sign(pe []byte, cert *x509.Certificate, key crypto.Signer) ([]byte, error) {
	l, err := parse(pe)
	if err != nil {
		return nil, fmt.Errorf("authenticode: %w", err)
	}
	if l.certSize != 0 {
		return nil, fmt.Errorf("authenticode: image is already signed (certificate table of %d bytes at 0x%x)", l.certSize, l.certOff)
	}
	out := pad8(bytes.Clone(pe))
	sum := digest(out, l)
	content, err := indirectData(sum)
	if err != nil {
		return nil, err
	}
	sig, err := pkcs7.ContentInfo(pkcs7.Params{
		Cert:        cert,
		Key:         key,
		ContentType: oidSpcIndirectData,
		Content:     content,
		// signtool and sbsign put an (empty) SpcSpOpusInfo among the signed attributes.
		Extra: []pkcs7.Attribute{{Type: oidSpcSpOpusInfo, Values: [][]byte{{0x30, 0x00}}}},
	})
	if err != nil {
		return nil, fmt.Errorf("authenticode: %w", err)
	}
	certOff := len(out)
	entry := binary.LittleEndian.AppendUint32(nil, uint32(winCertHeaderSz+len(sig)))
	entry = binary.LittleEndian.AppendUint16(entry, winCertRevision)
	entry = binary.LittleEndian.AppendUint16(entry, winCertPKCS7)
	entry = pad8(append(entry, sig...))
	if uint64(certOff)+uint64(len(entry)) > 0xffffffff {
		return nil, fmt.Errorf("authenticode: signed image would exceed 4 GiB")
	}
	out = append(out, entry...)
	binary.LittleEndian.PutUint32(out[l.certDir:], uint32(certOff))
	binary.LittleEndian.PutUint32(out[l.certDir+4:], uint32(len(entry)))
	binary.LittleEndian.PutUint32(out[l.checksum:], checksum(out, l.checksum))
	return out, nil
}

// indirectData encodes the SpcIndirectDataContent for an image digest, with the flags and the
// "<<<Obsolete>>>" file link signtool and sbsign write.
func indirectData(sum []byte) ([]byte, error) {
	obsolete := utf16.Encode([]rune("<<<Obsolete>>>"))
	bmp := make([]byte, 0, 2*len(obsolete))
	for _, c := range obsolete {
		bmp = binary.BigEndian.AppendUint16(bmp, c)
	}
	// SpcLink file [2] EXPLICIT SpcString, unicode [0] IMPLICIT BMPString, inside SpcPeImageData's
	// file [0] EXPLICIT.
	link, err := asn1.Marshal(asn1.RawValue{Class: asn1.ClassContextSpecific, Tag: 0, Bytes: bmp})
	if err == nil {
		link, err = asn1.Marshal(asn1.RawValue{Class: asn1.ClassContextSpecific, Tag: 2, IsCompound: true, Bytes: link})
	}
	if err == nil {
		link, err = asn1.Marshal(asn1.RawValue{Class: asn1.ClassContextSpecific, Tag: 0, IsCompound: true, Bytes: link})
	}
	var peData []byte
	if err == nil {
		peData, err = asn1.Marshal(struct {
			Flags asn1.BitString
			File  asn1.RawValue
		}{asn1.BitString{}, asn1.RawValue{FullBytes: link}})
	}
	var out []byte
	if err == nil {
		out, err = asn1.Marshal(spcIndirectDataContent{
			Data: spcAttributeTypeAndOptionalValue{Type: oidSpcPeImageData, Value: asn1.RawValue{FullBytes: peData}},
			MessageDigest: digestInfo{
				Algorithm: pkix.AlgorithmIdentifier{Algorithm: pkcs7.OIDSHA256, Parameters: asn1.NullRawValue},
				Digest:    sum,
			},
		})
	}
	if err != nil {
		return nil, fmt.Errorf("authenticode: encoding SpcIndirectDataContent: %w", err)
	}
	return out, nil
}

// Verify checks that pe carries a valid Authenticode signature over its current contents by
// trusted or by a certificate trusted issued directly, as a UEFI db entry holding trusted would
// accept it (validity periods are ignored, as firmware ignores them). It returns the signer.
func Verify(pe []byte, trusted *x509.Certificate) (*x509.Certificate, error) {
	l, err := parse(pe)
	if err != nil {
		return nil, fmt.Errorf("authenticode: %w", err)
	}
	if l.certSize == 0 {
		return nil, errors.New("authenticode: image is not signed")
	}
	table := pe[l.certOff:]
	if len(table) < winCertHeaderSz {
		return nil, errors.New("authenticode: certificate table shorter than its header")
	}
	n := int(binary.LittleEndian.Uint32(table))
	rev, typ := binary.LittleEndian.Uint16(table[4:]), binary.LittleEndian.Uint16(table[6:])
	if n < winCertHeaderSz || n > len(table) {
		return nil, fmt.Errorf("authenticode: WIN_CERTIFICATE length %d does not fit the %d-byte table", n, len(table))
	}
	if rev != winCertRevision || typ != winCertPKCS7 {
		return nil, fmt.Errorf("authenticode: WIN_CERTIFICATE revision 0x%x type 0x%x, want 0x%x 0x%x", rev, typ, winCertRevision, winCertPKCS7)
	}
	p, err := pkcs7.Parse(table[winCertHeaderSz:n])
	if err != nil {
		return nil, fmt.Errorf("authenticode: %w", err)
	}
	if !p.ContentType.Equal(oidSpcIndirectData) {
		return nil, fmt.Errorf("authenticode: signed content type %s, want SpcIndirectDataContent", p.ContentType)
	}
	var ind spcIndirectDataContent
	if rest, err := asn1.Unmarshal(p.Content, &ind); err != nil || len(rest) > 0 {
		return nil, fmt.Errorf("authenticode: SpcIndirectDataContent does not parse")
	}
	if !ind.MessageDigest.Algorithm.Algorithm.Equal(pkcs7.OIDSHA256) {
		return nil, fmt.Errorf("authenticode: image digest algorithm %s, want SHA-256", ind.MessageDigest.Algorithm.Algorithm)
	}
	if !bytes.Equal(ind.MessageDigest.Digest, digest(pe, l)) {
		return nil, errors.New("authenticode: image digest does not match the signed digest (the image was changed)")
	}
	signer, err := p.Verify(nil)
	if err != nil {
		return nil, fmt.Errorf("authenticode: %w", err)
	}
	if trusted == nil {
		return nil, errors.New("authenticode: no trusted certificate given")
	}
	if !signer.Equal(trusted) && signer.CheckSignatureFrom(trusted) != nil {
		return nil, fmt.Errorf("authenticode: signer %q is not %q nor issued by it", signer.Subject, trusted.Subject)
	}
	return signer, nil
}

// pad8 pads b with zeros to a multiple of 8 bytes, where the certificate table must start.
func pad8(b []byte) []byte {
	return append(b, make([]byte, (8-len(b)%8)%8)...)
}
