package pipeline

import (
	"fmt"
	"os"
	"path/filepath"

	"github.com/ballast-os/ballast/apiserver/pki"
)

// devAPIListen is where dev images serve the remote API; `make run` and the image tests forward a
// host port to it.
const devAPIListen = ":50443"

// devPKI returns the development PKI for the remote API of dev variants. It is made once per machine
// and variant in the cache, not per build, so two builds of one commit stay byte-identical; it is
// never used for production variants.
func (b *builder) devPKI() (string, error) {
	dir := filepath.Join(b.CacheDir, "pki", b.v.Name)
	if _, err := os.Stat(filepath.Join(dir, pki.ClientKey)); err == nil {
		return dir, nil
	}
	tmp := dir + ".tmp"
	os.RemoveAll(tmp)
	if err := pki.GenerateDev(tmp, []string{"127.0.0.1", "localhost", "ballast"}); err != nil {
		return "", fmt.Errorf("dev pki: %w", err)
	}
	if err := os.Rename(tmp, dir); err != nil {
		return "", fmt.Errorf("dev pki: %w", err)
	}
	return dir, nil
}

// copyPKI puts the client side of the dev PKI where `apiclient --pki build/<variant>/pki` finds it.
func copyPKI(src, dst string) error {
	if err := os.MkdirAll(dst, 0o700); err != nil {
		return err
	}
	for _, n := range []string{pki.CACert, pki.ClientCert, pki.ClientKey} {
		b, err := os.ReadFile(filepath.Join(src, n))
		if err != nil {
			return err
		}
		if err := os.WriteFile(filepath.Join(dst, n), b, 0o600); err != nil {
			return err
		}
	}
	return nil
}
