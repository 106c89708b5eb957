package debian

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"

	"github.com/ProtonMail/go-crypto/openpgp"
	"github.com/ProtonMail/go-crypto/openpgp/clearsign"
	pgperrors "github.com/ProtonMail/go-crypto/openpgp/errors"
	"github.com/ProtonMail/go-crypto/openpgp/packet"
)

// Release is the signed part of an InRelease file.
type Release struct {
	Origin        string
	Suite         string // e.g. "oldstable"
	Codename      string // e.g. "bookworm"
	Date          time.Time
	ValidUntil    time.Time // zero when the archive sets none (the main archive does not)
	Architectures []string
	AcquireByHash bool               // index files are also served under by-hash/SHA256/<sha256>
	Files         map[string]FileSum // from the SHA256 field, by path below dists/<suite>/
	SignedBy      string             // key id of the signature that verified, upper-case hex
}

// FileSum is a file's size and sha256 as the Release file lists them.
type FileSum struct {
	Size   int64
	SHA256 string
}

// VerifyInRelease checks the clearsigned InRelease data against keys at time now and parses the
// signed text, and only that text: anything outside the signed block is refused, since nothing
// there would be covered by the signature.
func VerifyInRelease(data []byte, keys *Keyring, now time.Time) (*Release, error) {
	block, rest := clearsign.Decode(data)
	if block == nil {
		return nil, errors.New("not a clearsigned file (no valid PGP SIGNED MESSAGE block)")
	}
	if i := bytes.Index(data, []byte("-----BEGIN PGP SIGNED MESSAGE-----")); len(bytes.TrimSpace(data[:i])) > 0 || len(bytes.TrimSpace(rest)) > 0 {
		return nil, errors.New("text outside the signed block")
	}
	sig, err := io.ReadAll(block.ArmoredSignature.Body)
	if err != nil {
		return nil, fmt.Errorf("signature block: %w", err)
	}
	issuers, err := signatureIssuers(sig)
	if err != nil {
		return nil, err
	}
	config := &packet.Config{Time: func() time.Time { return now }}
	good, _, err := openpgp.VerifyDetachedSignature(keys.entities, bytes.NewReader(block.Bytes), bytes.NewReader(sig), config)
	if errors.Is(err, pgperrors.ErrUnknownIssuer) {
		return nil, fmt.Errorf("signed only by key %s, none of them in %s", strings.Join(issuers, ", "), keys.from)
	}
	if err != nil {
		return nil, fmt.Errorf("signature by key %s (of %s) does not verify: %w", keys.firstKnown(issuers), strings.Join(issuers, ", "), err)
	}
	r, err := parseRelease(block.Plaintext)
	if err != nil {
		return nil, err
	}
	r.SignedBy = keyID(*good.IssuerKeyId)
	if !r.ValidUntil.IsZero() && now.After(r.ValidUntil) {
		return nil, fmt.Errorf("expired: Valid-Until %s is before now (%s); the mirror serves a stale or replayed index",
			r.ValidUntil.UTC().Format(time.RFC1123), now.UTC().Format(time.RFC1123))
	}
	return r, nil
}

// signatureIssuers lists the issuer key ids of the signature packets, for error messages: Debian
// signs each file with several keys, of which only some need be trusted.
func signatureIssuers(sig []byte) ([]string, error) {
	var ids []string
	packets := packet.NewReader(bytes.NewReader(sig))
	for {
		p, err := packets.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("signature block: %w", err)
		}
		s, ok := p.(*packet.Signature)
		if !ok {
			return nil, fmt.Errorf("signature block: unexpected %T packet", p)
		}
		if s.IssuerKeyId == nil {
			return nil, errors.New("signature block: a signature names no issuer key")
		}
		ids = append(ids, keyID(*s.IssuerKeyId))
	}
	if len(ids) == 0 {
		return nil, errors.New("signature block holds no signature")
	}
	return ids, nil
}

func (k *Keyring) firstKnown(ids []string) string {
	for _, id := range ids {
		n, err := strconv.ParseUint(id, 16, 64)
		if err == nil && len(k.entities.KeysById(n)) > 0 {
			return id
		}
	}
	return strings.Join(ids, ", ")
}

func keyID(id uint64) string { return fmt.Sprintf("%016X", id) }

func parseRelease(text []byte) (*Release, error) {
	var st []stanza
	if err := readStanzas(bytes.NewReader(text), func(s stanza) error { st = append(st, s); return nil }); err != nil {
		return nil, fmt.Errorf("release: %w", err)
	}
	if len(st) != 1 {
		return nil, fmt.Errorf("release: want one paragraph, got %d", len(st))
	}
	s := st[0]
	r := &Release{
		Origin:        s.get("Origin"),
		Suite:         s.get("Suite"),
		Codename:      s.get("Codename"),
		Architectures: strings.Fields(s.get("Architectures")),
		AcquireByHash: s.get("Acquire-By-Hash") == "yes",
		Files:         map[string]FileSum{},
	}
	var err error
	if r.Date, err = parseReleaseTime(s.get("Date")); err != nil || r.Date.IsZero() {
		return nil, fmt.Errorf("release: Date %q: want an RFC 1123 time", s.get("Date"))
	}
	if v := s.get("Valid-Until"); v != "" {
		if r.ValidUntil, err = parseReleaseTime(v); err != nil {
			return nil, fmt.Errorf("release: Valid-Until %q: want an RFC 1123 time", v)
		}
	}
	for i, line := range strings.Split(s.get("SHA256"), "\n") {
		if strings.TrimSpace(line) == "" {
			continue
		}
		f := strings.Fields(line)
		if len(f) != 3 || !sha256Hex.MatchString(f[0]) {
			return nil, fmt.Errorf("release: SHA256 line %d: want \"<sha256> <size> <path>\", got %q", i, truncate(line, 80))
		}
		size, err := strconv.ParseInt(f[1], 10, 64)
		if err != nil || size < 0 {
			return nil, fmt.Errorf("release: SHA256 line %d: bad size %q", i, f[1])
		}
		r.Files[f[2]] = FileSum{Size: size, SHA256: f[0]}
	}
	if len(r.Files) == 0 {
		return nil, errors.New("release: no SHA256 file list")
	}
	return r, nil
}

func parseReleaseTime(s string) (time.Time, error) {
	for _, layout := range []string{time.RFC1123, time.RFC1123Z} {
		if t, err := time.Parse(layout, s); err == nil {
			return t, nil
		}
	}
	return time.Time{}, fmt.Errorf("time %q", s)
}
