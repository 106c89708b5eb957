package debian

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
)

const lockHeader = `# Debian packages pinned for Ballast images: exact version, source, pool file and sha256.
# Written by ` + "`make lock`" + ` from the archive's signed InRelease and Packages index, verified with
# packages/keys. Only the [[source]] tables are meant for hand edits; the next refresh keeps them
# and rewrites the rest. The build fetches these files as-is and refuses any whose sha256 differs.

`

// WriteLock writes l to path as TOML, byte for byte the same for the same lock: packages sorted
// by name and architecture, architectures and sources in their given order. The file is replaced atomically.
func WriteLock(path string, l *Lock) error {
	if err := l.check(); err != nil {
		return fmt.Errorf("lock %s: %w", path, err)
	}
	data := formatLock(l)
	tmp, err := os.CreateTemp(filepath.Dir(path), ".lock-*")
	if err != nil {
		return fmt.Errorf("lock %s: %w", path, err)
	}
	defer os.Remove(tmp.Name())
	if _, err := tmp.Write(data); err != nil {
		tmp.Close()
		return fmt.Errorf("lock %s: %w", path, err)
	}
	if err := tmp.Chmod(0o644); err != nil {
		tmp.Close()
		return fmt.Errorf("lock %s: %w", path, err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("lock %s: %w", path, err)
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return fmt.Errorf("lock %s: %w", path, err)
	}
	return nil
}

func formatLock(l *Lock) []byte {
	var b strings.Builder
	b.WriteString(lockHeader)
	if l.Suite != "" {
		fmt.Fprintf(&b, "suite = %s\n", tomlString(l.Suite))
	}
	archs := make([]string, len(l.Architectures))
	for i, a := range l.Architectures {
		archs[i] = string(a)
	}
	fmt.Fprintf(&b, "architectures = %s\n", tomlStrings(archs))
	if len(l.Exclude) > 0 {
		fmt.Fprintf(&b, "exclude = %s\n", tomlStrings(l.Exclude))
	}
	if len(l.Wanted) > 0 {
		b.WriteString("\n[wanted]\n")
		for _, a := range l.Architectures {
			if w, ok := l.Wanted[a]; ok {
				fmt.Fprintf(&b, "%s = %s\n", a, tomlStrings(w))
			}
		}
	}
	for _, s := range l.Sources {
		b.WriteString("\n[[source]]\n")
		fmt.Fprintf(&b, "name = %s\n", tomlString(s.Name))
		fmt.Fprintf(&b, "url = %s\n", tomlString(s.URL))
		fmt.Fprintf(&b, "suite = %s\n", tomlString(s.Suite))
		fmt.Fprintf(&b, "component = %s\n", tomlString(s.Component))
	}
	pkgs := slices.Clone(l.Packages)
	sortPackages(pkgs)
	for _, p := range pkgs {
		b.WriteString("\n[[package]]\n")
		fmt.Fprintf(&b, "name = %s\n", tomlString(p.Name))
		fmt.Fprintf(&b, "arch = %s\n", tomlString(p.Arch))
		fmt.Fprintf(&b, "version = %s\n", tomlString(p.Version))
		if p.Source != "" {
			fmt.Fprintf(&b, "source = %s\n", tomlString(p.Source))
		}
		fmt.Fprintf(&b, "filename = %s\n", tomlString(p.Filename))
		fmt.Fprintf(&b, "size = %d\n", p.Size)
		fmt.Fprintf(&b, "sha256 = %s\n", tomlString(p.SHA256))
		if len(p.RequiredBy) > 0 {
			fmt.Fprintf(&b, "required_by = %s\n", tomlStrings(p.RequiredBy))
		}
	}
	return []byte(b.String())
}

// tomlString quotes s as a TOML basic string. Go's %q is not used because its \x escapes are
// not TOML.
func tomlString(s string) string {
	var b strings.Builder
	b.WriteByte('"')
	for _, r := range s {
		switch {
		case r == '"' || r == '\\':
			b.WriteByte('\\')
			b.WriteRune(r)
		case r < 0x20 || r == 0x7f:
			b.WriteString(`\u00`)
			b.WriteString(strconv.FormatInt(int64(r)|0x100, 16)[1:])
		default:
			b.WriteRune(r)
		}
	}
	b.WriteByte('"')
	return b.String()
}

func tomlStrings(list []string) string {
	q := make([]string, len(list))
	for i, s := range list {
		q[i] = tomlString(s)
	}
	return "[" + strings.Join(q, ", ") + "]"
}
