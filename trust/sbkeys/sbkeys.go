// Package sbkeys makes and reads the owner's Secure Boot key directory: PK, KEK and db keys with
// their certificates, signature lists and the authenticated payloads systemd-boot enrolls from the
// ESP, and the key that signs the expected TPM PCR 11 policies.
package sbkeys

import (
	"bytes"
	"crypto"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"fmt"
	"io/fs"
	"math/big"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/ballast-os/ballast/trust/efisig"
)

// The files of a key directory.
const (
	PKKey     = "PK.key"
	PKCert    = "PK.crt"
	PKESL     = "PK.esl"
	PKAuth    = "PK.auth"
	KEKKey    = "KEK.key"
	KEKCert   = "KEK.crt"
	KEKESL    = "KEK.esl"
	KEKAuth   = "KEK.auth"
	DBKey     = "db.key"
	DBCert    = "db.crt"
	DBESL     = "db.esl"
	DBAuth    = "db.auth"
	PCRKey    = "pcr.key"
	PCRPub    = "pcr.pub.pem"
	OwnerGUID = "owner.guid"
	Readme    = "README.txt"
)

// allFiles are the files Init writes; any of them already there stops it.
// BuildFiles are the files Load reads: what a build needs, and all of its key inputs. PK.key and
// KEK.key are not among them: they belong offline.
var BuildFiles = []string{DBKey, DBCert, PCRKey, PKAuth, KEKAuth, DBAuth}

func allFiles() []string {
	return []string{PKKey, PKCert, PKESL, PKAuth, KEKKey, KEKCert, KEKESL, KEKAuth, DBKey, DBCert, DBESL, DBAuth, PCRKey, PCRPub, OwnerGUID, Readme}
}

const (
	keyBits  = 2048 // what firmware is required to support for PK, KEK and db
	validity = 20   // years
)

// Keys is what an image build needs from the key directory.
type Keys struct {
	DBCert *x509.Certificate
	DBKey  crypto.Signer // signs the boot loader and UKIs
	PCRKey crypto.Signer // signs the expected PCR 11 policies
	// The EFI_VARIABLE_AUTHENTICATION_2 payloads systemd-boot enrolls from /loader/keys/NAME/.
	PKAuth, KEKAuth, DBAuth []byte
}

// Auth returns the enrollment payload of an ESP key file name ("PK.auth", "KEK.auth", "db.auth").
func (k *Keys) Auth(name string) ([]byte, error) {
	switch name {
	case PKAuth:
		return k.PKAuth, nil
	case KEKAuth:
		return k.KEKAuth, nil
	case DBAuth:
		return k.DBAuth, nil
	}
	return nil, fmt.Errorf("sbkeys: no enrollment file %q", name)
}

// PCRPublicPEM is the pcr key's public half as PEM SubjectPublicKeyInfo, as the UKI's .pcrpkey
// section carries it.
func (k *Keys) PCRPublicPEM() ([]byte, error) {
	der, err := x509.MarshalPKIXPublicKey(k.PCRKey.Public())
	if err != nil {
		return nil, fmt.Errorf("sbkeys: pcr public key: %w", err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der}), nil
}

// Fingerprint is the hex SHA-256 of the db certificate's DER, naming the key images are signed
// with in the build manifest.
func (k *Keys) Fingerprint() string {
	sum := sha256.Sum256(k.DBCert.Raw)
	return hex.EncodeToString(sum[:])
}

// Init makes a new key directory dir for owner commonName, its certificates valid from now for
// 20 years and its .auth payloads stamped now. It refuses a directory that already holds any of
// the files it writes, so no key is ever overwritten.
func Init(dir, commonName string, now time.Time) error {
	if strings.TrimSpace(commonName) == "" {
		return errors.New("sbkeys: no owner name")
	}
	for _, f := range allFiles() {
		if _, err := os.Lstat(filepath.Join(dir, f)); err == nil {
			return fmt.Errorf("sbkeys: %s already exists: refusing to overwrite keys (use a new directory)", filepath.Join(dir, f))
		} else if !errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("sbkeys: %w", err)
		}
	}
	files, err := generate(commonName, now)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("sbkeys: %w", err)
	}
	if err := os.Chmod(dir, 0o700); err != nil {
		return fmt.Errorf("sbkeys: %w", err)
	}
	var written []string
	for _, f := range files {
		p := filepath.Join(dir, f.name)
		if err := writeNew(p, f.data, f.mode); err != nil {
			for _, w := range written {
				os.Remove(w)
			}
			return fmt.Errorf("sbkeys: %w", err)
		}
		written = append(written, p)
	}
	return nil
}

type file struct {
	name string
	data []byte
	mode os.FileMode
}

// generate makes every file of a key directory in memory, so that a failure leaves nothing half
// made.
func generate(name string, now time.Time) ([]file, error) {
	now = now.UTC().Truncate(time.Second)
	type role struct {
		name string
		key  *rsa.PrivateKey
		cert *x509.Certificate
	}
	roles := make([]*role, 3)
	for i, r := range []string{"PK", "KEK", "db"} {
		key, cert, err := newKey(name+" "+r, now)
		if err != nil {
			return nil, fmt.Errorf("sbkeys: %s: %w", r, err)
		}
		roles[i] = &role{r, key, cert}
	}
	pk, kek := roles[0], roles[1]
	pcr, err := rsa.GenerateKey(rand.Reader, keyBits)
	if err != nil {
		return nil, fmt.Errorf("sbkeys: pcr: %w", err)
	}
	owner := ownerGUID(pk.cert)

	var files []file
	signers := map[string]*role{"PK": pk, "KEK": pk, "db": kek} // who may write each variable
	vendors := map[string]efisig.GUID{"PK": efisig.GlobalVariable, "KEK": efisig.GlobalVariable, "db": efisig.ImageSecurityDatabase}
	for _, r := range roles {
		keyPEM, err := privatePEM(r.key)
		if err != nil {
			return nil, fmt.Errorf("sbkeys: %s: %w", r.name, err)
		}
		esl, err := efisig.X509List(owner, r.cert)
		if err != nil {
			return nil, fmt.Errorf("sbkeys: %s: %w", r.name, err)
		}
		s := signers[r.name]
		auth, err := efisig.Auth2(r.name, vendors[r.name], efisig.SecureBootAttrs, now, esl, s.cert, s.key)
		if err != nil {
			return nil, fmt.Errorf("sbkeys: %s: %w", r.name, err)
		}
		files = append(files,
			file{r.name + ".key", keyPEM, 0o600},
			file{r.name + ".crt", pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: r.cert.Raw}), 0o644},
			file{r.name + ".esl", esl, 0o644},
			file{r.name + ".auth", auth, 0o644},
		)
	}
	pcrPEM, err := privatePEM(pcr)
	if err != nil {
		return nil, fmt.Errorf("sbkeys: pcr: %w", err)
	}
	spki, err := x509.MarshalPKIXPublicKey(&pcr.PublicKey)
	if err != nil {
		return nil, fmt.Errorf("sbkeys: pcr: %w", err)
	}
	return append(files,
		file{PCRKey, pcrPEM, 0o600},
		file{PCRPub, pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: spki}), 0o644},
		file{OwnerGUID, []byte(owner.String() + "\n"), 0o644},
		file{Readme, readme(owner, now), 0o644},
	), nil
}

// newKey makes an RSA key and a self-signed certificate for it; firmware checks neither the
// chain nor the validity period of Secure Boot certificates, so self-signed is all they need.
func newKey(cn string, now time.Time) (*rsa.PrivateKey, *x509.Certificate, error) {
	key, err := rsa.GenerateKey(rand.Reader, keyBits)
	if err != nil {
		return nil, nil, err
	}
	// A random positive serial of up to 127 bits, as RFC 5280 asks for unpredictable ones.
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127))
	if err != nil {
		return nil, nil, err
	}
	serial.Add(serial, big.NewInt(1))
	tmpl := &x509.Certificate{
		SerialNumber:          serial,
		Subject:               pkix.Name{CommonName: cn},
		NotBefore:             now,
		NotAfter:              now.AddDate(validity, 0, 0),
		KeyUsage:              x509.KeyUsageDigitalSignature,
		BasicConstraintsValid: true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return nil, nil, err
	}
	cert, err := x509.ParseCertificate(der)
	return key, cert, err
}

// ownerGUID derives the signature owner GUID from the PK certificate, so that the same keys
// always name the same owner: the first 16 bytes of its SHA-256 marked as an RFC 9562 version 8
// (custom) UUID.
func ownerGUID(pk *x509.Certificate) efisig.GUID {
	h := sha256.Sum256(pk.Raw)
	h[6] = h[6]&0x0f | 0x80
	h[8] = h[8]&0x3f | 0x80
	g, err := efisig.ParseGUID(fmt.Sprintf("%x-%x-%x-%x-%x", h[0:4], h[4:6], h[6:8], h[8:10], h[10:16]))
	if err != nil { // cannot happen: the text is well formed
		return efisig.GUID(h[:16])
	}
	return g
}

func privatePEM(key *rsa.PrivateKey) ([]byte, error) {
	der, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return nil, err
	}
	return pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}), nil
}

// writeNew writes a file that must not exist yet.
func writeNew(p string, data []byte, mode os.FileMode) error {
	f, err := os.OpenFile(p, os.O_WRONLY|os.O_CREATE|os.O_EXCL, mode)
	if err != nil {
		return err
	}
	if _, err := f.Write(data); err != nil {
		f.Close()
		return fmt.Errorf("%s: %w", p, err)
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return fmt.Errorf("%s: %w", p, err)
	}
	return f.Close()
}

func readme(owner efisig.GUID, now time.Time) []byte {
	ts := now.Format("2006-01-02 15:04:05")
	return []byte(`Ballast Secure Boot keys
========================

What the image build needs
  db.key, db.crt   sign the boot loader and the unified kernel images
  pcr.key          signs the expected TPM PCR 11 policies (pcr.pub.pem is its public half)
  PK.auth, KEK.auth, db.auth
                   the signed variable updates systemd-boot enrolls from the ESP
                   (/loader/keys/NAME/) when the firmware is in setup mode

Nothing else. Move PK.key and KEK.key offline now (an encrypted USB stick in a safe, a
hardware token): whoever holds them can replace the keys every enrolled machine trusts.
The build works without them. Keep db.key and pcr.key where builds run, and no further.

Files
  PK.*, KEK.*, db.*   key (private, 0600), certificate, EFI signature list, .auth payload
  PK.auth             self-signed by PK;  KEK.auth signed by PK;  db.auth signed by KEK
  owner.guid          the signature owner GUID in the lists (` + owner.String() + `)
  The .auth files carry the timestamp ` + ts + ` UTC; firmware takes an update to a
  variable only with a later timestamp than the one it holds.

Re-making the .auth files (with efitools; needs PK.key and KEK.key, so do it offline)
  T="$(date -u '+%Y-%m-%d %H:%M:%S')"; G=$(cat owner.guid)
  sign-efi-sig-list -t "$T" -g $G -c PK.crt  -k PK.key  PK  PK.esl  PK.auth
  sign-efi-sig-list -t "$T" -g $G -c PK.crt  -k PK.key  KEK KEK.esl KEK.auth
  sign-efi-sig-list -t "$T" -g $G -c KEK.crt -k KEK.key db  db.esl  db.auth

Losing db.key or pcr.key means making a new db key, a new db.auth (signed with KEK.key) and
re-enrolling; losing PK.key means a machine's keys can only be reset from its firmware setup.
`)
}

// Load reads what a build needs from the key directory dir and checks that it fits together:
// each key matches its certificate, and db.auth, signed by the KEK that KEK.auth enrolls, enrolls
// db.crt. PK.key and KEK.key are not needed and may be (and should be) elsewhere.
func Load(dir string) (*Keys, error) {
	k := &Keys{}
	var err error
	if k.DBCert, err = readCert(dir, DBCert); err != nil {
		return nil, err
	}
	if k.DBKey, err = readKey(dir, DBKey); err != nil {
		return nil, err
	}
	if !publicEqual(k.DBKey.Public(), k.DBCert.PublicKey) {
		return nil, fmt.Errorf("sbkeys: %s does not belong to %s", filepath.Join(dir, DBKey), filepath.Join(dir, DBCert))
	}
	if k.PCRKey, err = readKey(dir, PCRKey); err != nil {
		return nil, err
	}
	var enrolled [3][]*x509.Certificate
	for i, a := range []struct {
		name   string
		dst    *[]byte
		vendor efisig.GUID
	}{{"PK", &k.PKAuth, efisig.GlobalVariable}, {"KEK", &k.KEKAuth, efisig.GlobalVariable}, {"db", &k.DBAuth, efisig.ImageSecurityDatabase}} {
		p := filepath.Join(dir, a.name+".auth")
		b, err := os.ReadFile(p)
		if err != nil {
			return nil, fmt.Errorf("sbkeys: %w", err)
		}
		if enrolled[i], err = checkAuth(b, a.name, a.vendor, enrolled); err != nil {
			return nil, fmt.Errorf("sbkeys: %s: %w", p, err)
		}
		*a.dst = b
	}
	found := false
	for _, c := range enrolled[2] {
		found = found || c.Equal(k.DBCert)
	}
	if !found {
		return nil, fmt.Errorf("sbkeys: %s does not enroll %s: images signed with db.key would not boot", filepath.Join(dir, DBAuth), filepath.Join(dir, DBCert))
	}
	return k, nil
}

// checkAuth parses the .auth payload for variable name, checks its signature and that the signer
// is one the firmware would accept (PK signs PK and KEK, a KEK signs db), and returns the
// certificates it enrolls. prev holds those of the variables checked before, PK then KEK.
func checkAuth(b []byte, name string, vendor efisig.GUID, prev [3][]*x509.Certificate) ([]*x509.Certificate, error) {
	a, err := efisig.ParseAuth2(b)
	if err != nil {
		return nil, err
	}
	sigs, err := efisig.ParseLists(a.Data)
	if err != nil {
		return nil, err
	}
	var certs []*x509.Certificate
	for _, s := range sigs {
		if s.Type != efisig.CertX509 {
			continue
		}
		c, err := x509.ParseCertificate(s.Data)
		if err != nil {
			return nil, err
		}
		certs = append(certs, c)
	}
	signer, err := a.Verify(name, vendor, efisig.SecureBootAttrs)
	if err != nil {
		return nil, err
	}
	var allowed []*x509.Certificate
	switch name {
	case "PK":
		allowed = certs // self-signed: setup mode takes any PK, but ours signs itself
	case "KEK":
		allowed = prev[0]
	case "db":
		allowed = prev[1]
	}
	for _, c := range allowed {
		if bytes.Equal(c.Raw, signer.Raw) || publicEqual(c.PublicKey, signer.PublicKey) {
			return certs, nil
		}
	}
	return nil, fmt.Errorf("signed by %q, which the enrolled keys do not allow to write %s", signer.Subject, name)
}

func publicEqual(a, b crypto.PublicKey) bool {
	ak, ok := a.(interface{ Equal(crypto.PublicKey) bool })
	return ok && ak.Equal(b)
}

func readCert(dir, name string) (*x509.Certificate, error) {
	p := filepath.Join(dir, name)
	b, err := os.ReadFile(p)
	if err != nil {
		return nil, fmt.Errorf("sbkeys: %w", err)
	}
	blk, _ := pem.Decode(b)
	if blk == nil || blk.Type != "CERTIFICATE" {
		return nil, fmt.Errorf("sbkeys: %s: not a PEM certificate", p)
	}
	c, err := x509.ParseCertificate(blk.Bytes)
	if err != nil {
		return nil, fmt.Errorf("sbkeys: %s: %w", p, err)
	}
	return c, nil
}

// readKey reads a PEM RSA private key, PKCS#8 as Init writes or PKCS#1 as older tools write.
func readKey(dir, name string) (crypto.Signer, error) {
	p := filepath.Join(dir, name)
	b, err := os.ReadFile(p)
	if err != nil {
		return nil, fmt.Errorf("sbkeys: %w", err)
	}
	blk, _ := pem.Decode(b)
	if blk == nil {
		return nil, fmt.Errorf("sbkeys: %s: not a PEM private key", p)
	}
	var key any
	switch blk.Type {
	case "PRIVATE KEY":
		key, err = x509.ParsePKCS8PrivateKey(blk.Bytes)
	case "RSA PRIVATE KEY":
		key, err = x509.ParsePKCS1PrivateKey(blk.Bytes)
	default:
		return nil, fmt.Errorf("sbkeys: %s: PEM %q, want a private key", p, blk.Type)
	}
	if err != nil {
		return nil, fmt.Errorf("sbkeys: %s: %w", p, err)
	}
	rk, ok := key.(*rsa.PrivateKey)
	if !ok {
		return nil, fmt.Errorf("sbkeys: %s: a %T key, want RSA", p, key)
	}
	return rk, nil
}
