package pkcs7

import (
	"bytes"
	"crypto"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"errors"
	"fmt"
	"math/big"
)

// Parsed is a SignedData read back: what Verify checks and what callers such as Authenticode need
// from it.
type Parsed struct {
	ContentType asn1.ObjectIdentifier
	// Content is the encapsulated content, nil when detached: for id-data the bytes themselves, for
	// other types the DER element.
	Content      []byte
	Certificates []*x509.Certificate

	signed     []byte // the bytes the message digest covers; nil when detached
	attrs      []byte // signed attributes re-tagged as a universal SET, nil if none
	attrList   []attribute
	issuer     asn1.RawValue
	serial     *big.Int
	digestAlg  asn1.ObjectIdentifier
	sigAlg     asn1.ObjectIdentifier
	signature  []byte
	hasContent bool
}

type contentInfo struct {
	ContentType asn1.ObjectIdentifier
	Content     asn1.RawValue `asn1:"explicit,tag:0"`
}

type signedData struct {
	Version          int
	DigestAlgorithms asn1.RawValue
	EncapContentInfo encapContentInfo
	Certificates     asn1.RawValue `asn1:"optional,tag:0"`
	CRLs             asn1.RawValue `asn1:"optional,tag:1"`
	SignerInfos      []signerInfo  `asn1:"set"`
}

type encapContentInfo struct {
	ContentType asn1.ObjectIdentifier
	Content     asn1.RawValue `asn1:"optional,explicit,tag:0"`
}

type signerInfo struct {
	Version            int
	Issuer             issuerAndSerial
	DigestAlgorithm    pkix.AlgorithmIdentifier
	SignedAttrs        asn1.RawValue `asn1:"optional,tag:0"`
	SignatureAlgorithm pkix.AlgorithmIdentifier
	Signature          []byte
	UnsignedAttrs      asn1.RawValue `asn1:"optional,tag:1"`
}

type issuerAndSerial struct {
	Issuer asn1.RawValue
	Serial *big.Int
}

type attribute struct {
	Type   asn1.ObjectIdentifier
	Values []asn1.RawValue `asn1:"set"`
}

// Parse reads a DER ContentInfo holding a SignedData, or a bare SignedData, with exactly one signer.
func Parse(b []byte) (*Parsed, error) {
	var ci contentInfo
	if rest, err := asn1.Unmarshal(b, &ci); err == nil && len(rest) == 0 && ci.ContentType.Equal(OIDSignedData) {
		b = ci.Content.Bytes
	}
	var sd signedData
	rest, err := asn1.Unmarshal(b, &sd)
	if err != nil {
		return nil, fmt.Errorf("pkcs7: not a SignedData: %w", err)
	}
	if len(rest) > 0 {
		return nil, fmt.Errorf("pkcs7: %d bytes after the SignedData", len(rest))
	}
	if len(sd.SignerInfos) != 1 {
		return nil, fmt.Errorf("pkcs7: %d signers, want 1", len(sd.SignerInfos))
	}
	si := sd.SignerInfos[0]
	p := &Parsed{
		ContentType: sd.EncapContentInfo.ContentType,
		issuer:      si.Issuer.Issuer,
		serial:      si.Issuer.Serial,
		digestAlg:   si.DigestAlgorithm.Algorithm,
		sigAlg:      si.SignatureAlgorithm.Algorithm,
		signature:   si.Signature,
	}
	if len(sd.Certificates.Bytes) > 0 {
		if p.Certificates, err = x509.ParseCertificates(sd.Certificates.Bytes); err != nil {
			return nil, fmt.Errorf("pkcs7: certificates: %w", err)
		}
	}
	if ec := sd.EncapContentInfo.Content; len(ec.FullBytes) > 0 {
		var inner asn1.RawValue
		if rest, err := asn1.Unmarshal(ec.Bytes, &inner); err != nil || len(rest) > 0 {
			return nil, fmt.Errorf("pkcs7: encapsulated content is not one DER element")
		}
		p.hasContent = true
		p.signed = inner.Bytes
		p.Content = inner.FullBytes
		if p.ContentType.Equal(OIDData) {
			if inner.Tag != asn1.TagOctetString || inner.IsCompound {
				return nil, errors.New("pkcs7: id-data content is not a primitive OCTET STRING")
			}
			p.Content = inner.Bytes
		}
	}
	if len(si.SignedAttrs.FullBytes) > 0 {
		p.attrs = append([]byte{0x31}, si.SignedAttrs.FullBytes[1:]...)
		if _, err := asn1.UnmarshalWithParams(p.attrs, &p.attrList, "set"); err != nil {
			return nil, fmt.Errorf("pkcs7: signed attributes: %w", err)
		}
	}
	return p, nil
}

// Attribute returns the DER values of the signed attribute of type oid, or nil.
func (p *Parsed) Attribute(oid asn1.ObjectIdentifier) [][]byte {
	for _, a := range p.attrList {
		if a.Type.Equal(oid) {
			vals := make([][]byte, len(a.Values))
			for i, v := range a.Values {
				vals[i] = v.FullBytes
			}
			return vals
		}
	}
	return nil
}

// Verify checks the signature over the encapsulated content, or over detached (for id-data the
// bytes, for other types the DER element) when the SignedData has none, and returns the signer's
// certificate from those included. Whether that certificate is trusted is the caller's question.
func (p *Parsed) Verify(detached []byte) (*x509.Certificate, error) {
	signed := p.signed
	if !p.hasContent {
		if detached == nil {
			return nil, errors.New("pkcs7: detached signature and no content given")
		}
		var err error
		if signed, _, err = contentBytes(p.ContentType, detached); err != nil {
			return nil, err
		}
	}
	if !p.digestAlg.Equal(OIDSHA256) {
		return nil, fmt.Errorf("pkcs7: digest algorithm %s, want SHA-256", p.digestAlg)
	}
	if !p.sigAlg.Equal(OIDRSA) && !p.sigAlg.Equal(OIDSHA256WithRSA) {
		return nil, fmt.Errorf("pkcs7: signature algorithm %s, want RSA", p.sigAlg)
	}
	var signer *x509.Certificate
	for _, c := range p.Certificates {
		if bytes.Equal(c.RawIssuer, p.issuer.FullBytes) && c.SerialNumber.Cmp(p.serial) == 0 {
			signer = c
		}
	}
	if signer == nil {
		return nil, errors.New("pkcs7: the signer's certificate is not included")
	}
	pub, ok := signer.PublicKey.(*rsa.PublicKey)
	if !ok {
		return nil, fmt.Errorf("pkcs7: signer %q has a %T key, want RSA", signer.Subject, signer.PublicKey)
	}
	digest := sha256.Sum256(signed)
	toVerify := digest[:]
	if p.attrs != nil {
		md := p.Attribute(OIDMessageDigest)
		var got []byte
		if len(md) != 1 {
			return nil, errors.New("pkcs7: signed attributes without one messageDigest")
		}
		if _, err := asn1.Unmarshal(md[0], &got); err != nil || !bytes.Equal(got, digest[:]) {
			return nil, errors.New("pkcs7: message digest does not match the content")
		}
		ct := p.Attribute(OIDContentType)
		var oid asn1.ObjectIdentifier
		if len(ct) != 1 {
			return nil, errors.New("pkcs7: signed attributes without one contentType")
		}
		if _, err := asn1.Unmarshal(ct[0], &oid); err != nil || !oid.Equal(p.ContentType) {
			return nil, errors.New("pkcs7: contentType attribute does not match the content's type")
		}
		h := sha256.Sum256(p.attrs)
		toVerify = h[:]
	}
	if err := rsa.VerifyPKCS1v15(pub, crypto.SHA256, toVerify, p.signature); err != nil {
		return nil, fmt.Errorf("pkcs7: signature by %q: %w", signer.Subject, err)
	}
	return signer, nil
}
