package debian

import (
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/ProtonMail/go-crypto/openpgp"
)

// Keyring is the set of OpenPGP public keys trusted to sign archive indexes.
type Keyring struct {
	entities openpgp.EntityList
	from     string // where the keys came from, for error messages
}

// LoadKeyring reads every ASCII-armored *.asc file in dir (packages/keys). An empty directory is
// an error: a keyring that trusts nothing would fail later with a less helpful message.
func LoadKeyring(dir string) (*Keyring, error) {
	files, err := filepath.Glob(filepath.Join(dir, "*.asc"))
	if err != nil {
		return nil, fmt.Errorf("keys %s: %w", dir, err)
	}
	sort.Strings(files)
	k := &Keyring{from: dir}
	for _, f := range files {
		if err := k.addFile(f); err != nil {
			return nil, err
		}
	}
	if len(k.entities) == 0 {
		return nil, fmt.Errorf("keys %s: no *.asc public keys found", dir)
	}
	return k, nil
}

func (k *Keyring) addFile(path string) error {
	fh, err := os.Open(path)
	if err != nil {
		return fmt.Errorf("keys: %w", err)
	}
	defer fh.Close()
	list, err := openpgp.ReadArmoredKeyRing(fh)
	if err != nil {
		return fmt.Errorf("keys %s: %w", path, err)
	}
	for _, e := range list {
		if e.PrivateKey != nil {
			return fmt.Errorf("keys %s: key %s holds a private key; only public keys belong here", path, e.PrimaryKey.KeyIdString())
		}
	}
	k.entities = append(k.entities, list...)
	return nil
}

// Fingerprints lists the primary key fingerprints, upper-case hex, for logs and reports.
func (k *Keyring) Fingerprints() []string {
	out := make([]string, len(k.entities))
	for i, e := range k.entities {
		out[i] = strings.ToUpper(fmt.Sprintf("%x", e.PrimaryKey.Fingerprint))
	}
	return out
}
