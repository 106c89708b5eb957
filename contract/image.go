package contract

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
)

// Image is /usr/lib/ballast/image.json: what the builder tells the system init about the image.
type Image struct {
	Variant  string   `json:"variant"`
	Version  string   `json:"version"`
	Dev      bool     `json:"dev"`
	Services []string `json:"services"` // services to run, by ID (Programs), in start order
	Modules  []string `json:"modules"`  // kernel modules to load at boot
	Kernel   string   `json:"kernel"`   // the kernel release the modules are for
	Arch     string   `json:"arch,omitempty"`
	// DatastoreFormat is the settings datastore format this image writes.
	DatastoreFormat int          `json:"datastore_format,omitempty"`
	Updates         UpdatePolicy `json:"updates"`
	// Signed reports that the build signs the boot chain with the owner's keys (Secure Boot and
	// the PCR 11 policy), so a boot without Secure Boot is a machine not set up as it should be.
	Signed bool `json:"signed,omitempty"`
	// Local is how the initramfs protects /local (the same words are on the command line).
	Local *LocalPolicyJSON `json:"local,omitempty"`
	// UserDataSources are the user data sources the apiserver reads, in order (UserDataSources
	// names them); empty means the default list.
	UserDataSources []string `json:"userdata_sources,omitempty"`
}

// LocalPolicyJSON is LocalPolicy as image.json spells it.
type LocalPolicyJSON struct {
	Encryption LocalEncryption `json:"encryption"`
	WithoutTPM WithoutTPM      `json:"without_tpm"`
}

// Marshal is image.json's bytes: indented, with a final newline.
func (img Image) Marshal() ([]byte, error) {
	b, err := json.MarshalIndent(img, "", "  ")
	if err != nil {
		return nil, fmt.Errorf("image.json: %w", err)
	}
	return append(b, '\n'), nil
}

// ReadImage reads image.json from the root at root ("/" on a running host). Unknown fields are
// allowed, so a builder can add one before the init reads it.
func ReadImage(root string) (Image, error) {
	path := filepath.Join(root, ImageInfoPath)
	b, err := os.ReadFile(path)
	if err != nil {
		return Image{}, fmt.Errorf("image description: %w", err)
	}
	var img Image
	if err := json.Unmarshal(b, &img); err != nil {
		return Image{}, fmt.Errorf("image description %s: %w", path, err)
	}
	return img, nil
}

// OSRelease is the part of os-release(5) Ballast writes and reads.
type OSRelease struct {
	Version string // VERSION_ID
	Variant string // VARIANT_ID
	BuildID string // BUILD_ID
}

// HomeURL is os-release's HOME_URL.
const HomeURL = "https://github.com/ballast-os/ballast"

// Format writes /usr/lib/os-release. The UKIs carry other bytes in their .osrel section:
// EntryOSRelease.
func (r OSRelease) Format() []byte {
	return []byte(fmt.Sprintf(`NAME=Ballast
ID=ballast
PRETTY_NAME="Ballast %s (%s)"
VERSION_ID=%s
VARIANT_ID=%s
BUILD_ID=%s
HOME_URL="%s"
`, r.Version, r.Variant, r.Version, r.Variant, r.BuildID, HomeURL))
}

// EntryOSRelease is the .osrel section of the slot's UKI, what systemd-boot names its entry by:
// a title and a version, and neither ID nor IMAGE_ID. With either, systemd-boot would order the
// entries by it and their versions instead of by file name, and the generation in the name
// (Entry) would no longer pick the entry to boot.
func (r OSRelease) EntryOSRelease(slot Slot) []byte {
	return []byte(fmt.Sprintf("PRETTY_NAME=\"Ballast %s (%s, slot %s)\"\nVERSION=%s\n", r.Version, r.Variant, slot, r.Version))
}

// ParseOSRelease reads os-release(5): KEY=value lines, values bare, 'single-quoted' or
// "double-quoted" with backslash escapes; blank lines and # comments are skipped. A line that is
// none of these is an error naming it.
func ParseOSRelease(b []byte) (map[string]string, error) {
	vars := map[string]string{}
	sc := bufio.NewScanner(bytes.NewReader(b))
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		key, val, ok := strings.Cut(line, "=")
		if !ok || key == "" || strings.ContainsAny(key, " \t") {
			return nil, fmt.Errorf("os-release: line %d: not KEY=value: %q", n, line)
		}
		v, err := unquoteShell(val)
		if err != nil {
			return nil, fmt.Errorf("os-release: line %d: %s: %w", n, key, err)
		}
		vars[key] = v
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("os-release: %w", err)
	}
	return vars, nil
}

// unquoteShell undoes the shell quoting os-release(5) allows: "..." with \-escapes, or '...'.
func unquoteShell(s string) (string, error) {
	if s == "" {
		return "", nil
	}
	switch s[0] {
	case '\'':
		if len(s) < 2 || s[len(s)-1] != '\'' {
			return "", fmt.Errorf("unterminated quote in %s", s)
		}
		return s[1 : len(s)-1], nil
	case '"':
		var b strings.Builder
		for i := 1; i < len(s); i++ {
			switch c := s[i]; {
			case c == '"':
				if i != len(s)-1 {
					return "", fmt.Errorf("text after the closing quote in %s", s)
				}
				return b.String(), nil
			case c == '\\' && i+1 < len(s) && strings.IndexByte("\"\\$`", s[i+1]) >= 0:
				b.WriteByte(s[i+1])
				i++
			default:
				b.WriteByte(c)
			}
		}
		return "", fmt.Errorf("unterminated quote in %s", s)
	}
	return s, nil
}

// Identity is what a booted host is: its image (from os-release) and what it booted (from the
// kernel command line). The ready line and GET /os both come from it, so they cannot disagree.
type Identity struct {
	Version  string
	Variant  string
	BuildID  string
	Slot     string
	RootHash string
}

// ReadIdentity reads os-release and the kernel command line under root ("/" on a running host).
func ReadIdentity(root string) (Identity, error) {
	b, err := os.ReadFile(filepath.Join(root, OSReleasePath))
	if err != nil {
		return Identity{}, fmt.Errorf("os-release: %w", err)
	}
	rel, err := ParseOSRelease(b)
	if err != nil {
		return Identity{}, err
	}
	c, err := os.ReadFile(filepath.Join(root, "proc/cmdline"))
	if err != nil {
		return Identity{}, fmt.Errorf("kernel command line: %w", err)
	}
	return IdentityFrom(rel, ParseCmdline(string(c))), nil
}

// IdentityFrom combines parsed os-release variables and a parsed command line.
func IdentityFrom(osRelease map[string]string, c Cmdline) Identity {
	return Identity{
		Version:  osRelease["VERSION_ID"],
		Variant:  osRelease["VARIANT_ID"],
		BuildID:  osRelease["BUILD_ID"],
		Slot:     c.Value(ParamSlot),
		RootHash: c.Value(ParamRootHash),
	}
}

// ReadyLine is the details of the console's ready line, "ballast: ready <ReadyLine>": the system
// init prints it once every enabled API listener serves. Unknown fields print as "unknown".
func (id Identity) ReadyLine() string {
	v := func(s string) string {
		if s == "" {
			return "unknown"
		}
		return s
	}
	return fmt.Sprintf("version=%s variant=%s slot=%s roothash=%s", v(id.Version), v(id.Variant), v(id.Slot), v(id.RootHash))
}

// ParseReadyLine reads the fields of a ready line (the text after "ready "); a missing field is an
// error naming it.
func ParseReadyLine(s string) (Identity, error) {
	f := map[string]string{}
	for _, w := range strings.Fields(s) {
		if k, v, ok := strings.Cut(w, "="); ok {
			f[k] = v
		}
	}
	var id Identity
	for _, x := range []struct {
		key string
		dst *string
	}{{"version", &id.Version}, {"variant", &id.Variant}, {"slot", &id.Slot}, {"roothash", &id.RootHash}} {
		v, ok := f[x.key]
		if !ok {
			return Identity{}, fmt.Errorf("ready line %q: no %s=", s, x.key)
		}
		*x.dst = v
	}
	return id, nil
}
