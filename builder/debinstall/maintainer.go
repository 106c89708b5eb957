package debinstall

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/ballast-os/ballast/contract"

	"github.com/ballast-os/ballast/builder/rootfs"
)

// MaintainerWork does, explicitly, the few things Debian maintainer scripts would have done for the
// packages Ballast installs; no script is ever run.
func MaintainerWork(t *rootfs.Tree) error {
	if err := caBundle(t); err != nil {
		return err
	}
	return iptablesLinks(t)
}

// caBundle concatenates the Mozilla CA certificates into the bundle every TLS client looks for
// (update-ca-certificates' job). /etc is a tmpfs filled from the factory copy at boot.
func caBundle(t *rootfs.Tree) error {
	const dir = "/usr/share/ca-certificates/mozilla/"
	var names []string
	for _, p := range t.Paths() {
		if strings.HasPrefix(p, dir) && strings.HasSuffix(p, ".crt") {
			names = append(names, p)
		}
	}
	if len(names) == 0 {
		return nil
	}
	sort.Strings(names)
	var bundle bytes.Buffer
	for _, n := range names {
		e, ok := t.Get(n)
		if !ok {
			return fmt.Errorf("ca-certificates: %s listed but not in the tree", n)
		}
		data := e.Data
		if e.Source != "" {
			b, err := os.ReadFile(e.Source)
			if err != nil {
				return fmt.Errorf("ca-certificates: %s: %w", n, err)
			}
			data = b
		}
		bundle.Write(bytes.TrimRight(data, "\n"))
		bundle.WriteByte('\n')
	}
	if err := t.AddFile(contract.CABundle, bundle.Bytes(), 0o644, "ca-certificates"); err != nil {
		return err
	}
	return nil
}

// iptablesLinks creates the names update-alternatives would point at the nft backend.
func iptablesLinks(t *rootfs.Tree) error {
	const multi = "/usr/sbin/xtables-nft-multi"
	if _, ok := t.Get(multi); !ok {
		return nil
	}
	for _, n := range []string{"iptables", "iptables-save", "iptables-restore", "ip6tables", "ip6tables-save", "ip6tables-restore"} {
		p := filepath.Join("/usr/sbin", n)
		if _, ok := t.Get(p); ok {
			continue
		}
		if err := t.AddSymlink(p, "xtables-nft-multi", "iptables"); err != nil {
			return err
		}
	}
	return nil
}
