// Package pkcs7 encodes and checks the one kind of CMS/PKCS#7 SignedData that Secure Boot needs:
// one RSA signer named by issuer and serial number, SHA-256, the signer's certificate included and
// nothing time-dependent, so that the same key and content always give the same bytes.
//
// It is written by hand on encoding/asn1 rather than with a general PKCS#7 library because
// Authenticode encapsulates a content of its own type whose DER is embedded as is, with the message
// digest taken over that content's value bytes only, which such libraries do not offer.
package pkcs7

import (
	"bytes"
	"crypto"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/asn1"
	"errors"
	"fmt"
	"slices"
)

// Object identifiers this package writes or reads.
var (
	OIDData          = asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 7, 1}
	OIDSignedData    = asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 7, 2}
	OIDContentType   = asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 9, 3}
	OIDMessageDigest = asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 9, 4}
	OIDSHA256        = asn1.ObjectIdentifier{2, 16, 840, 1, 101, 3, 4, 2, 1}
	OIDRSA           = asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 1, 1}
	OIDSHA256WithRSA = asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 1, 11}
)

// Attribute is a signed attribute beyond the contentType and messageDigest that are always there
// when attributes are: its type and the DER encoding of each of its values.
type Attribute struct {
	Type   asn1.ObjectIdentifier
	Values [][]byte
}

// Params says what to sign and how.
type Params struct {
	Cert *x509.Certificate
	Key  crypto.Signer // an RSA key, the private half of Cert's public key

	// ContentType is the content's type; nil means id-data. For id-data, Content is the bytes
	// themselves. For any other type, Content is the DER encoding of the content (for Authenticode,
	// a SpcIndirectDataContent): it is embedded as is and its value bytes, without the outer tag and
	// length, are what is digested.
	ContentType asn1.ObjectIdentifier
	Content     []byte

	// Detached leaves the content out of the SignedData; the verifier brings it.
	Detached bool

	// SignedAttributes signs the attributes (contentType, messageDigest, then Extra) rather than the
	// content directly. Extra implies it.
	SignedAttributes bool
	Extra            []Attribute
}

// ContentInfo signs and returns the DER ContentInfo wrapping the SignedData, the form
// Authenticode and most tools want.
func ContentInfo(p Params) ([]byte, error) {
	sd, err := SignedData(p)
	if err != nil {
		return nil, err
	}
	return seq(der(asn1.ObjectIdentifier(OIDSignedData)), explicit(0, sd)), nil
}

// SignedData signs and returns the bare DER SignedData, the form UEFI authenticated variables
// carry.
func SignedData(p Params) ([]byte, error) {
	if p.Cert == nil || p.Key == nil {
		return nil, errors.New("pkcs7: no signer certificate or key")
	}
	if p.Cert.SerialNumber == nil || len(p.Cert.RawIssuer) == 0 || len(p.Cert.Raw) == 0 {
		return nil, errors.New("pkcs7: signer certificate is not a parsed certificate (no DER, issuer or serial)")
	}
	pub, ok := p.Key.Public().(*rsa.PublicKey)
	if !ok {
		return nil, fmt.Errorf("pkcs7: signer key is %T, want RSA", p.Key.Public())
	}
	if certPub, ok := p.Cert.PublicKey.(*rsa.PublicKey); !ok || !certPub.Equal(pub) {
		return nil, fmt.Errorf("pkcs7: key does not belong to certificate %q", p.Cert.Subject)
	}
	ctype := p.ContentType
	if ctype == nil {
		ctype = OIDData
	}
	signed, eContent, err := contentBytes(ctype, p.Content)
	if err != nil {
		return nil, err
	}
	digest := sha256.Sum256(signed)

	var attrs []byte // the [0] IMPLICIT SET in the SignerInfo, empty if none
	toSign := digest[:]
	if p.SignedAttributes || len(p.Extra) > 0 {
		all := append([]Attribute{
			{Type: OIDContentType, Values: [][]byte{der(ctype)}},
			{Type: OIDMessageDigest, Values: [][]byte{der(digest[:])}},
		}, p.Extra...)
		set := attributeSet(all)
		// The signature covers the attributes as a universal SET, although they are stored under an
		// implicit [0] tag.
		h := sha256.Sum256(set)
		toSign = h[:]
		attrs = append([]byte{0xa0}, set[1:]...)
	}
	sig, err := p.Key.Sign(rand.Reader, toSign, crypto.SHA256)
	if err != nil {
		return nil, fmt.Errorf("pkcs7: signing with the key of %q: %w", p.Cert.Subject, err)
	}

	sha256Alg := seq(der(OIDSHA256), nullDER)
	encap := [][]byte{der(ctype)}
	if !p.Detached {
		encap = append(encap, explicit(0, eContent))
	}
	signerInfo := seq(
		der(1),
		seq(p.Cert.RawIssuer, der(p.Cert.SerialNumber)),
		sha256Alg,
		attrs,
		seq(der(OIDRSA), nullDER),
		der(sig),
	)
	return seq(
		der(1),
		set(sha256Alg),
		seq(encap...),
		tlv(0xa0, p.Cert.Raw),
		set(signerInfo),
	), nil
}

// contentBytes returns the bytes the message digest covers and the eContent element embedded when
// the content is not detached.
func contentBytes(ctype asn1.ObjectIdentifier, content []byte) (signed, eContent []byte, err error) {
	if ctype.Equal(OIDData) {
		return content, der(content), nil
	}
	var raw asn1.RawValue
	rest, err := asn1.Unmarshal(content, &raw)
	if err != nil {
		return nil, nil, fmt.Errorf("pkcs7: content of type %s is not DER: %w", ctype, err)
	}
	if len(rest) > 0 {
		return nil, nil, fmt.Errorf("pkcs7: content of type %s has %d bytes after its DER element", ctype, len(rest))
	}
	return raw.Bytes, content, nil
}

// attributeSet encodes attributes as a DER SET OF, each attribute's values a SET OF too, both sorted
// by their encodings as DER requires (the attribute order is not the caller's to choose).
func attributeSet(attrs []Attribute) []byte {
	enc := make([][]byte, len(attrs))
	for i, a := range attrs {
		enc[i] = seq(der(a.Type), set(a.Values...))
	}
	return set(enc...)
}

var nullDER = []byte{0x05, 0x00}

// der marshals a value whose encoding cannot fail: OIDs, small integers, byte strings and the
// non-nil serial numbers SignedData checks for, so a failure is a bug in this package.
func der(v any) []byte {
	b, err := asn1.Marshal(v)
	if err != nil {
		panic(fmt.Sprintf("pkcs7: marshalling %T: %v", v, err))
	}
	return b
}

func seq(parts ...[]byte) []byte { return tlv(0x30, bytes.Join(parts, nil)) }

// set encodes a DER SET OF, its elements sorted by their encodings.
func set(elems ...[]byte) []byte {
	s := slices.Clone(elems)
	slices.SortFunc(s, bytes.Compare)
	return tlv(0x31, bytes.Join(s, nil))
}

func explicit(n byte, inner []byte) []byte { return tlv(0xa0|n, inner) }

// tlv encodes a tag, a DER definite length and contents.
func tlv(tag byte, content []byte) []byte {
	n := len(content)
	out := []byte{tag}
	switch {
	case n < 0x80:
		out = append(out, byte(n))
	default:
		var l []byte
		for ; n > 0; n >>= 8 {
			l = append([]byte{byte(n)}, l...)
		}
		out = append(out, 0x80|byte(len(l)))
		out = append(out, l...)
	}
	return append(out, content...)
}
