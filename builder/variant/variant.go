// Package variant parses and validates a variant file (variants/<name>.toml): what goes into an image
// and how the disk is laid out. Every error names the file, and the line and key where it can.
package variant

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"

	"github.com/ballast-os/ballast/contract"

	"github.com/BurntSushi/toml"
)

// Variant is one image definition.
type Variant struct {
	Name        string     `toml:"name"`
	Description string     `toml:"description"`
	Dev         bool       `toml:"dev"` // dev images get a console shell; never production
	Kernel      Kernel     `toml:"kernel"`
	Packages    Packages   `toml:"packages"`
	Programs    Programs   `toml:"programs"`
	Partitions  Partitions `toml:"partitions"`
	Output      Output     `toml:"output"`

	// Path is the file the variant came from.
	Path string `toml:"-"`
}

// Kernel says which Debian kernel package to use and what of it to include.
type Kernel struct {
	Package string `toml:"package"`
	// Modules go into the root filesystem and are loaded by the system init.
	Modules []string `toml:"modules"`
	// OptionalModules go into the root filesystem but are loaded only when asked for: by the
	// kernel's own requests (through Ballast's modprobe), or at boot by
	// settings.kernel.modules.<name>.autoload.
	OptionalModules []string `toml:"optional-modules"`
	// InitramfsModules go into the initramfs: what it takes to reach the verity root.
	InitramfsModules []string `toml:"initramfs-modules"`
	// Cmdline words come before the ones the builder adds (roothash=, ballast.*).
	Cmdline []string `toml:"cmdline"`
}

// Packages lists what else goes into the root: Debian packages (with their dependencies, from
// packages/debian.lock) and Go components built from pinned sources (packages/go-components.toml).
type Packages struct {
	Debian []string `toml:"debian"`
	Go     []string `toml:"go"`
}

// Programs lists the programs of contract.Programs the image holds besides the ones every image
// has (the two inits); a program's service, if it has one, runs on the host.
type Programs struct {
	Include []string `toml:"include"`
}

// ProgramList returns the table entries of every program of the image, the inits included, in table
// order.
func (v *Variant) ProgramList() []contract.Program {
	var out []contract.Program
	for _, p := range contract.Programs() {
		if p.Always || slices.Contains(v.Programs.Include, p.Name) {
			out = append(out, p)
		}
	}
	return out
}

// Services returns the IDs of the services the image runs, in start order.
func (v *Variant) Services() []string { return contract.ServicesOf(v.Programs.Include) }

// Partitions holds sizes such as "128MiB"; each must be a whole number of MiB.
type Partitions struct {
	ESP    Size `toml:"esp"`
	Root   Size `toml:"root"`
	Verity Size `toml:"verity"`
	Data   Size `toml:"data"`
}

// Output lists the disk formats to write.
type Output struct {
	Formats []string `toml:"formats"`
}

// Size is a byte count written with a binary unit in the variant file.
type Size int64

const mib = 1 << 20

// UnmarshalText accepts "64MiB", "1GiB", "512KiB" or a plain byte count.
func (s *Size) UnmarshalText(b []byte) error {
	t := strings.TrimSpace(string(b))
	mult := int64(1)
	for _, u := range []struct {
		suffix string
		mult   int64
	}{{"KiB", 1 << 10}, {"MiB", 1 << 20}, {"GiB", 1 << 30}} {
		if strings.HasSuffix(t, u.suffix) {
			t, mult = strings.TrimSuffix(t, u.suffix), u.mult
			break
		}
	}
	n, err := strconv.ParseInt(strings.TrimSpace(t), 10, 64)
	if err != nil || n <= 0 {
		return fmt.Errorf("size %q: want a positive number with KiB, MiB or GiB", string(b))
	}
	if n > (1<<50)/mult {
		return fmt.Errorf("size %q is too large", string(b))
	}
	*s = Size(n * mult)
	return nil
}

// KnownFormats are the disk formats the builder writes.
var KnownFormats = []string{"raw", "qcow2", "vmdk", "vhd", "gce"}

// includable are the programs a variant may list: the table's, but for those every image has.
func includable() []string {
	var names []string
	for _, p := range contract.Programs() {
		if !p.Always {
			names = append(names, p.Name)
		}
	}
	return names
}

var (
	typeErrRE = regexp.MustCompile(`^toml: line (\d+) \(last key "([^"]*)"\): (.*)$`)
	nameRE    = regexp.MustCompile(`^[a-z0-9][a-z0-9-]{0,31}$`)
	moduleRE  = regexp.MustCompile(`^[A-Za-z0-9_-]+$`)
	debRE     = regexp.MustCompile(`^[a-z0-9][a-z0-9+.-]+$`)
)

// Load reads and validates a variant file.
func Load(path string) (*Variant, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("variant: %w", err)
	}
	return Parse(path, data)
}

// Parse validates variant text; path is only used in messages and for the name check.
func Parse(path string, data []byte) (*Variant, error) {
	var v Variant
	md, err := toml.NewDecoder(bytes.NewReader(data)).Decode(&v)
	if err != nil {
		var pe toml.ParseError
		var ppe *toml.ParseError
		if errors.As(err, &ppe) {
			pe = *ppe
		} else if !errors.As(err, &pe) {
			// Type mismatches come back as plain errors carrying the line and key in their text.
			if m := typeErrRE.FindStringSubmatch(err.Error()); m != nil {
				return nil, fmt.Errorf("%s:%s: key %q: %s", path, m[1], m[2], m[3])
			}
			return nil, fmt.Errorf("%s: %w", path, err)
		}
		msg := pe.Message
		if pe.LastKey != "" && !strings.Contains(msg, pe.LastKey) {
			msg = fmt.Sprintf("key %q: %s", pe.LastKey, msg)
		}
		return nil, fmt.Errorf("%s:%d: %s", path, pe.Position.Line, msg)
	}
	if u := md.Undecoded(); len(u) > 0 {
		k := u[0].String()
		return nil, fmt.Errorf("%s:%d: unknown key %q", path, keyLine(data, u[0]), k)
	}
	v.Path = path
	if err := v.validate(); err != nil {
		var ke *keyError
		if errors.As(err, &ke) {
			return nil, fmt.Errorf("%s:%d: key %q: %s", path, keyLine(data, strings.Split(ke.key, ".")), ke.key, ke.msg)
		}
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return &v, nil
}

type keyError struct{ key, msg string }

func (e *keyError) Error() string { return e.key + ": " + e.msg }

func bad(key, format string, args ...any) error {
	return &keyError{key: key, msg: fmt.Sprintf(format, args...)}
}

func (v *Variant) validate() error {
	base := strings.TrimSuffix(filepath.Base(v.Path), ".toml")
	switch {
	case v.Name == "":
		return bad("name", "missing")
	case !nameRE.MatchString(v.Name):
		return bad("name", "%q: use lower-case letters, digits and dashes", v.Name)
	case v.Name != base && strings.HasSuffix(v.Path, ".toml"):
		return bad("name", "%q does not match the file name %q", v.Name, base)
	case v.Kernel.Package == "":
		return bad("kernel.package", "missing")
	}
	if err := checkList("kernel.modules", v.Kernel.Modules, moduleRE, nil); err != nil {
		return err
	}
	if err := checkList("kernel.optional-modules", v.Kernel.OptionalModules, moduleRE, nil); err != nil {
		return err
	}
	for _, m := range v.Kernel.OptionalModules {
		if slices.ContainsFunc(v.Kernel.Modules, func(n string) bool { return contract.ModuleName(n) == contract.ModuleName(m) }) {
			return bad("kernel.optional-modules", "%s is in kernel.modules too, which loads it at every boot", m)
		}
	}
	if len(v.Kernel.InitramfsModules) == 0 {
		return bad("kernel.initramfs-modules", "missing: the initramfs needs at least the disk, dm-verity and EROFS drivers")
	}
	if err := checkList("kernel.initramfs-modules", v.Kernel.InitramfsModules, moduleRE, nil); err != nil {
		return err
	}
	for i, w := range v.Kernel.Cmdline {
		for _, reserved := range []string{"roothash=", "ballast.", "root=", "init="} {
			if strings.HasPrefix(w, reserved) {
				return bad("kernel.cmdline", "word %d %q: %s is set by the builder", i+1, w, reserved)
			}
		}
		if w == "" || strings.ContainsAny(w, " \t\n\"") {
			return bad("kernel.cmdline", "word %d %q: one word per entry, no spaces or quotes", i+1, w)
		}
	}
	if err := checkList("packages.debian", v.Packages.Debian, debRE, nil); err != nil {
		return err
	}
	if err := checkList("packages.go", v.Packages.Go, debRE, nil); err != nil {
		return err
	}
	if err := checkList("programs.include", v.Programs.Include, nil, includable()); err != nil {
		return err
	}
	for _, name := range v.Programs.Include {
		p, err := contract.FindProgram(name)
		if err != nil {
			return bad("programs.include", "%v", err)
		}
		if p.DevOnly && !v.Dev {
			return bad("programs.include", "%s is for dev variants only (dev = true)", name)
		}
		if p.Package != "" && !slices.Contains(v.Packages.Debian, p.Package) {
			return bad("programs.include", "%s comes from the Debian package %s: add it to packages.debian", name, p.Package)
		}
		if p.Component != "" && !slices.Contains(v.Packages.Go, p.Component) {
			return bad("programs.include", "%s comes from the Go component %s: add it to packages.go", name, p.Component)
		}
	}
	for _, p := range []struct {
		key string
		val Size
		min int64
	}{
		{"partitions.esp", v.Partitions.ESP, 40 * mib}, // FAT32 needs 65525 clusters
		{"partitions.root", v.Partitions.Root, 16 * mib},
		{"partitions.verity", v.Partitions.Verity, 1 * mib},
		{"partitions.data", v.Partitions.Data, 16 * mib},
	} {
		switch {
		case p.val == 0:
			return bad(p.key, "missing")
		case int64(p.val)%mib != 0:
			return bad(p.key, "%d bytes is not a whole number of MiB", p.val)
		case int64(p.val) < p.min:
			return bad(p.key, "%d MiB is below the minimum of %d MiB", p.val/mib, p.min/mib)
		}
	}
	if len(v.Output.Formats) == 0 {
		return bad("output.formats", "missing: list at least \"raw\"")
	}
	return checkList("output.formats", v.Output.Formats, nil, KnownFormats)
}

func checkList(key string, list []string, re *regexp.Regexp, known []string) error {
	seen := map[string]bool{}
	for _, s := range list {
		if re != nil && !re.MatchString(s) {
			return bad(key, "%q is not a valid name", s)
		}
		if known != nil && !slices.Contains(known, s) {
			return bad(key, "unknown %q (known: %s)", s, strings.Join(known, ", "))
		}
		if seen[s] {
			return bad(key, "%q listed twice", s)
		}
		seen[s] = true
	}
	return nil
}

// keyLine finds the line that defines key, tracking [table] headers; 0 if not found.
// The TOML decoder does not expose key positions, so this is a small scanner of its own.
func keyLine(data []byte, key toml.Key) int {
	if len(key) == 0 {
		return 0
	}
	table := ""
	want := strings.Join(key, ".")
	sc := bufio.NewScanner(bytes.NewReader(data))
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if strings.HasPrefix(line, "[") {
			table = strings.Trim(strings.TrimSpace(strings.SplitN(line, "#", 2)[0]), "[] ")
			if table == want {
				return n
			}
			continue
		}
		k, _, ok := strings.Cut(line, "=")
		if !ok || strings.HasPrefix(line, "#") {
			continue
		}
		full := strings.Trim(strings.TrimSpace(k), `"`)
		if table != "" {
			full = table + "." + full
		}
		if full == want {
			return n
		}
	}
	return 0
}
