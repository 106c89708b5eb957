// Package variant parses and validates a variant file (variants/<name>.toml): what goes into an image
// and how the disk is laid out. Every error names the file, and the line and key where it can.
package variant

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/ballast-os/ballast/contract"

	"github.com/BurntSushi/toml"
)

// Variant is one image definition.
type Variant struct {
	// Name is the variant's name, the file's (variants/<name>.toml); it names the image, its
	// partitions' UUIDs and the build directory (build/<name>).
	Name string `toml:"name"`
	// Description says in a line what the variant is for.
	Description string `toml:"description"`
	// Dev makes a development image: a console shell (the console-shell program, busybox), the
	// development PKI for the remote API, and a plain /local on machines without a TPM. Never for
	// production.
	Dev bool `toml:"dev"`
	// Archs are the architectures the variant builds for, by their Go and Debian name: `ballast
	// build` builds each (the first into build/<name>, the others into build/<name>-<arch>), and
	// `--arch` one. The [amd64] and [arm64] tables say what differs.
	Archs      []string   `toml:"arch"`
	Kernel     Kernel     `toml:"kernel"`
	Packages   Packages   `toml:"packages"`
	Programs   Programs   `toml:"programs"`
	Partitions Partitions `toml:"partitions"`
	Output     Output     `toml:"output"`
	Updates    Updates    `toml:"updates"`
	SecureBoot SecureBoot `toml:"secure-boot"`
	Local      Local      `toml:"local"`
	Console    Console    `toml:"console"`
	UserData   UserData   `toml:"userdata"`
	AMD64      ArchTable  `toml:"amd64"`
	ARM64      ArchTable  `toml:"arm64"`

	// Path is the file the variant came from.
	Path string `toml:"-"`
	// Target is the architecture ForArch resolved the variant for, "" for the file as written.
	Target contract.Arch `toml:"-"`
}

// ArchTable is an [amd64] or [arm64] table: what the variant does differently on that
// architecture. Its module lists are added to the [kernel] ones.
type ArchTable struct {
	// Serial replaces console.serial on this architecture, whose UART has its own name
	// (QEMU's virt machine has a PL011, ttyAMA0).
	Serial *string `toml:"serial"`
	// Modules are added to kernel.modules on this architecture.
	Modules []string `toml:"modules"`
	// InitramfsModules are added to kernel.initramfs-modules on this architecture.
	InitramfsModules []string `toml:"initramfs-modules"`
	// HardwareModules are added to kernel.hardware-modules on this architecture.
	HardwareModules []string `toml:"hardware-modules"`
	// ESP replaces partitions.esp on this architecture: the ESP holds two UKIs during an update,
	// and arm64's kernel image is not compressed, which makes its UKIs nearly twice amd64's.
	ESP Size `toml:"esp"`
}

// ArchPlaceholder in kernel.package stands for the architecture's Debian name.
const ArchPlaceholder = "{arch}"

// ArchList returns the architectures the variant builds for, in its order.
func (v *Variant) ArchList() []contract.Arch {
	if len(v.Archs) == 0 {
		return []contract.Arch{contract.DefaultArch}
	}
	out := make([]contract.Arch, len(v.Archs))
	for i, a := range v.Archs {
		out[i] = contract.Arch(a) // checked by validate
	}
	return out
}

// table returns the [amd64] or [arm64] table.
func (v *Variant) table(a contract.Arch) *ArchTable {
	switch a {
	case contract.AMD64:
		return &v.AMD64
	case contract.ARM64:
		return &v.ARM64
	}
	return nil
}

// ForArch returns the variant as built for one of its architectures: kernel.package with
// {arch} replaced, the architecture's module lists added and its serial console in place.
func (v *Variant) ForArch(a contract.Arch) (*Variant, error) {
	if !slices.Contains(v.ArchList(), a) {
		return nil, fmt.Errorf("%s: variant %s does not build for %s (arch = %q)", v.Path, v.Name, a, v.ArchList())
	}
	r := *v
	r.Target = a
	r.Kernel.Package = strings.ReplaceAll(v.Kernel.Package, ArchPlaceholder, a.Info().Debian)
	if t := v.table(a); t != nil {
		r.Kernel.Modules = slices.Concat(v.Kernel.Modules, t.Modules)
		r.Kernel.InitramfsModules = slices.Concat(v.Kernel.InitramfsModules, t.InitramfsModules)
		r.Kernel.HardwareModules = slices.Concat(v.Kernel.HardwareModules, t.HardwareModules)
		if t.Serial != nil {
			r.Console.Serial = *t.Serial
		}
		if t.ESP != 0 {
			r.Partitions.ESP = t.ESP
		}
	}
	r.AMD64, r.ARM64 = ArchTable{}, ArchTable{}
	r.Archs = []string{string(a)}
	if err := r.validate(false); err != nil {
		return nil, fmt.Errorf("%s (for %s): %w", v.Path, a, err)
	}
	return &r, nil
}

// Kernel says which Debian kernel package to use and what of it to include.
type Kernel struct {
	// Package is the Debian kernel package (linux-image-*), pinned in packages/debian.lock.
	Package string `toml:"package"`
	// Modules go into the root filesystem and are loaded by the system init.
	Modules []string `toml:"modules"`
	// OptionalModules go into the root filesystem but are loaded only when asked for: by the
	// kernel's own requests (through Ballast's modprobe), or at boot by
	// settings.kernel.modules.<name>.autoload.
	OptionalModules []string `toml:"optional-modules"`
	// InitramfsModules go into the initramfs: what it takes to reach the verity root.
	InitramfsModules []string `toml:"initramfs-modules"`
	// HardwareModules are device drivers loaded on demand: they go, with their dependencies,
	// into the initramfs and the root, and each is loaded only when a device its aliases match
	// is there (the initramfs and the system init walk sysfs for modaliases). A machine loads
	// the drivers of its own hardware and no others.
	HardwareModules []string `toml:"hardware-modules"`
	// Cmdline words come before the ones the builder adds (roothash=, ballast.*).
	Cmdline []string `toml:"cmdline"`
}

// Console is the [console] table: where the kernel and Ballast's milestone lines are printed.
// Without it, console= words in kernel.cmdline say so; with it they are refused.
type Console struct {
	// Serial is the serial console as console= takes it ("ttyS0,115200n8"); "" for none.
	// When both are on, the serial port is /dev/console, where the milestones go.
	Serial string `toml:"serial"`
	// VGA adds the screen (console=tty0).
	VGA bool `toml:"vga"`

	// given says the file has a [console] table.
	given bool
}

// ConsoleParams returns the console= words [console] asks for, none without it: the screen first
// and the serial port last, since the kernel makes the last console= /dev/console.
func (v *Variant) ConsoleParams() contract.Cmdline {
	var out contract.Cmdline
	if v.Console.VGA {
		out = append(out, contract.KV("console", "tty0"))
	}
	if v.Console.Serial != "" {
		out = append(out, contract.KV("console", v.Console.Serial))
	}
	return out
}

// UserData is the [userdata] table: where the host looks for its user data.
type UserData struct {
	// Sources are read in this order, later ones winning key by key; without the table the
	// apiserver's default order applies.
	Sources []string `toml:"sources"`

	// given says the file has a [userdata] table.
	given bool
}

// Packages lists what else goes into the root: Debian packages (with their dependencies, from
// packages/debian.lock) and Go components built from pinned sources (packages/go-components.toml).
type Packages struct {
	// Debian packages go into the root with their dependencies, as packages/debian.lock pins them.
	Debian []string `toml:"debian"`
	// Go components are built from the sources packages/go-components.toml pins.
	Go []string `toml:"go"`
}

// Programs lists the programs of contract.Programs the image holds besides the ones every image
// has (the two inits); a program's service, if it has one, runs on the host.
type Programs struct {
	// Include names the programs of the program table (contract/programs.go) the image holds; a
	// program from a package or component needs it in packages.debian or packages.go.
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
	// ESP is the EFI system partition: systemd-boot and each slot's UKI.
	ESP Size `toml:"esp"`
	// Root is each slot's root partition, the EROFS root.
	Root Size `toml:"root"`
	// Verity is each slot's dm-verity hash partition.
	Verity Size `toml:"verity"`
	// Data is the data partition (/local) as written; the initramfs grows it to the disk's end.
	Data Size `toml:"data"`
}

// Output lists what the build writes.
type Output struct {
	// Formats are written into the build directory: disk.raw always, the others beside it.
	// "ami" is made from the vmdk; "iso" and "netboot" are the installer.
	Formats []string `toml:"formats"`
}

// Updates is the [updates] table: the update repository the image trusts and how its boots are
// judged. Every key is optional; contract.DefaultUpdatePolicy fills in what is left out.
type Updates struct {
	// Root is the update repository's trusted root.json, relative to the variant file's
	// directory. The image carries it at contract.TUFRootPath; without it the image trusts no
	// repository and cannot update.
	Root string `toml:"root"`
	// MetadataBaseURL is the default of settings.updates.metadata-base-url: where the
	// repository's metadata is. Needs updates.root.
	MetadataBaseURL string `toml:"metadata-base-url"`
	// TargetsBaseURL is the default of settings.updates.targets-base-url: where the
	// repository's payloads are. Needs updates.root.
	TargetsBaseURL string `toml:"targets-base-url"`
	// Tries is the boot count an activated entry starts with, 1 to MaxTries.
	Tries *int `toml:"tries"`
	// HealthTimeout is how long a boot has to become healthy ("5m", "90s"); a boot not healthy
	// by then is given up and the host reboots.
	HealthTimeout *contract.Duration `toml:"health-timeout"`
	// BlessAfter is how long a trial boot must stay healthy to be blessed ("60s").
	BlessAfter *contract.Duration `toml:"bless-after"`

	// RootJSON is the content of Root, read and checked when the variant is parsed.
	RootJSON []byte `toml:"-"`
}

// Bounds of the [updates] keys. systemd-boot counts tries in the entry's file name; more than a
// handful of failed boots in a row only delays the rollback. The health timeout must leave a slow
// (emulated) boot time to come up; a day is long enough for anything.
const (
	MaxTries         = 15
	MinHealthTimeout = 10 * time.Second
	MaxDuration      = 24 * time.Hour
	maxRootJSON      = 1 << 20
)

// UpdatePolicy is what image.json says about updates: the [updates] table over the defaults.
func (v *Variant) UpdatePolicy() contract.UpdatePolicy {
	p := contract.DefaultUpdatePolicy()
	u := v.Updates
	p.MetadataBaseURL, p.TargetsBaseURL = u.MetadataBaseURL, u.TargetsBaseURL
	if u.Tries != nil {
		p.Tries = *u.Tries
	}
	if u.HealthTimeout != nil {
		p.HealthTimeout = *u.HealthTimeout
	}
	if u.BlessAfter != nil {
		p.BlessAfter = *u.BlessAfter
	}
	p.HasRoot = len(u.RootJSON) > 0
	return p
}

// RootPath is the file updates.root names, "" when there is none.
func (v *Variant) RootPath() string { return v.relative(v.Updates.Root) }

// relative resolves a path the variant file names relative to its own directory; "" stays "".
func (v *Variant) relative(p string) string {
	if p == "" || filepath.IsAbs(p) {
		return p
	}
	return filepath.Join(filepath.Dir(v.Path), p)
}

// SecureBoot is the [secure-boot] table: the owner's key directory (made by `ballast keys init`).
// With it the build signs systemd-boot and every UKI for Secure Boot, signs each UKI's
// predicted PCR 11 for the TPM, and puts the enrollment files on the ESP; production variants
// must have it.
type SecureBoot struct {
	// Keys is the key directory, relative to the variant file's directory.
	Keys string `toml:"keys"`
}

// KeysPath is the directory secure-boot.keys names, "" when there is none.
func (v *Variant) KeysPath() string { return v.relative(v.SecureBoot.Keys) }

// Local is the [local] table: how the initramfs protects the data partition.
type Local struct {
	// Encryption is "tpm" (LUKS2, the key sealed to the TPM; the default) or "plain".
	Encryption string `toml:"encryption"`
	// WithoutTPM is what a "tpm" image does on a machine without a TPM: "plain" (the default for
	// dev variants) or "refuse" (the default for production variants).
	WithoutTPM string `toml:"without-tpm"`
}

// LocalPolicy is the [local] table over the defaults.
func (v *Variant) LocalPolicy() contract.LocalPolicy {
	p := contract.DefaultLocalPolicy()
	if !v.Dev {
		p.WithoutTPM = contract.WithoutTPMRefuse
	}
	if v.Local.Encryption != "" {
		p.Encryption = contract.LocalEncryption(v.Local.Encryption)
	}
	if v.Local.WithoutTPM != "" {
		p.WithoutTPM = contract.WithoutTPM(v.Local.WithoutTPM)
	}
	return p
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

// KnownFormats are the output formats the builder writes: disk images (raw, qcow2, vmdk, vhd,
// gce), a VMware appliance (ova), an EC2 image (ami, made from the vmdk), and the metal
// installer as a bootable ISO (iso) and a network boot directory (netboot).
var KnownFormats = []string{"raw", "qcow2", "vmdk", "vhd", "gce", "ova", "ami", "iso", "netboot"}

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
	// A serial console as console= takes it: a device (not tty<N>, which is a screen), then
	// optionally the speed, parity and bits ("ttyS0,115200n8").
	serialRE = regexp.MustCompile(`^([A-Za-z]+[A-Za-z0-9]*[0-9]+)(,[0-9]+([noe][5-8]?)?r?)?$`)
	vtRE     = regexp.MustCompile(`^tty[0-9]+$`)
	debRE    = regexp.MustCompile(`^[a-z0-9][a-z0-9+.-]+$`)
)

// Load reads and validates a variant file of variants/: its name is the file's name.
func Load(path string) (*Variant, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("variant: %w", err)
	}
	return Parse(path, data)
}

// LoadFile reads and validates a variant file kept anywhere (one a test writes, say): its name
// need not be the file's.
func LoadFile(path string) (*Variant, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("variant: %w", err)
	}
	return parse(path, data, false)
}

// Parse validates variant text; path is used in messages, for the name check, and to find the
// files the variant names (updates.root), which are read and checked too.
func Parse(path string, data []byte) (*Variant, error) { return parse(path, data, true) }

func parse(path string, data []byte, nameIsFile bool) (*Variant, error) {
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
	v.Console.given = md.IsDefined("console")
	v.UserData.given = md.IsDefined("userdata")
	err = v.validate(nameIsFile)
	if err == nil {
		err = v.readRoot()
	}
	if err != nil {
		var ke *keyError
		if errors.As(err, &ke) {
			// A missing key has no line: name its table's, else the file alone.
			k := strings.Split(ke.key, ".")
			line := keyLine(data, k)
			if line == 0 && len(k) > 1 {
				line = keyLine(data, k[:len(k)-1])
			}
			if line > 0 {
				return nil, fmt.Errorf("%s:%d: key %q: %s", path, line, ke.key, ke.msg)
			}
			return nil, fmt.Errorf("%s: key %q: %s", path, ke.key, ke.msg)
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

func (v *Variant) validate(nameIsFile bool) error {
	base := strings.TrimSuffix(filepath.Base(v.Path), ".toml")
	switch {
	case v.Name == "":
		return bad("name", "missing")
	case !nameRE.MatchString(v.Name):
		return bad("name", "%q: use lower-case letters, digits and dashes", v.Name)
	case nameIsFile && v.Name != base && strings.HasSuffix(v.Path, ".toml"):
		return bad("name", "%q does not match the file name %q", v.Name, base)
	case v.Kernel.Package == "":
		return bad("kernel.package", "missing")
	}
	if err := v.validateArchs(); err != nil {
		return err
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
	if err := v.validateHardware(); err != nil {
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
		if v.Console.given && strings.HasPrefix(w, "console=") {
			return bad("kernel.cmdline", "word %d %q: the consoles are [console]'s to set (serial, vga); remove it here", i+1, w)
		}
	}
	if err := v.validateConsole(); err != nil {
		return err
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
		// Another component may install the same path (containerd-cri for containerd); which
		// one does is for the builder to check, with the pin file at hand.
		if p.Component != "" && len(v.Packages.Go) == 0 {
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
	if err := checkList("output.formats", v.Output.Formats, nil, KnownFormats); err != nil {
		return err
	}
	if err := v.validateUserData(); err != nil {
		return err
	}
	if err := v.validateFormats(); err != nil {
		return err
	}
	if err := v.validateTrust(); err != nil {
		return err
	}
	return v.Updates.validate()
}

// validateArchs checks arch and the architecture tables: known names, each once; a table only
// for a listed architecture; one kernel package per architecture.
func (v *Variant) validateArchs() error {
	names := make([]string, 0, len(contract.Archs()))
	for _, a := range contract.Archs() {
		names = append(names, string(a))
	}
	if v.Archs != nil && len(v.Archs) == 0 {
		return bad("arch", "empty: list at least one of %s, or leave arch out for %q", strings.Join(names, ", "), contract.DefaultArch)
	}
	if err := checkList("arch", v.Archs, nil, names); err != nil {
		return err
	}
	archs := v.ArchList()
	n := strings.Count(v.Kernel.Package, ArchPlaceholder)
	if len(archs) > 1 && n == 0 {
		return bad("kernel.package", "%q names one package for %d architectures: write %s where the architecture goes (\"linux-image-6.1.0-50-cloud-%s\")", v.Kernel.Package, len(archs), ArchPlaceholder, ArchPlaceholder)
	}
	if strings.ContainsAny(strings.ReplaceAll(v.Kernel.Package, ArchPlaceholder, ""), "{}") {
		return bad("kernel.package", "%q: the only placeholder is %s", v.Kernel.Package, ArchPlaceholder)
	}
	for _, a := range contract.Archs() {
		t := v.table(a)
		key := string(a)
		given := t.Serial != nil || t.Modules != nil || t.InitramfsModules != nil || t.HardwareModules != nil || t.ESP != 0
		if given && !slices.Contains(archs, a) {
			return bad(key, "[%s] is given but arch does not list %q", key, key)
		}
		for _, l := range []struct {
			key  string
			list []string
		}{{"modules", t.Modules}, {"initramfs-modules", t.InitramfsModules}, {"hardware-modules", t.HardwareModules}} {
			if err := checkList(key+"."+l.key, l.list, moduleRE, nil); err != nil {
				return err
			}
		}
		if t.Serial != nil && !v.Console.given {
			return bad(key+".serial", "replaces console.serial: give a [console] table")
		}
	}
	return nil
}

// validateHardware checks kernel.hardware-modules: valid names, each listed once and in no other
// module list (those load their modules at boot or keep them for explicit requests).
func (v *Variant) validateHardware() error {
	if err := checkList("kernel.hardware-modules", v.Kernel.HardwareModules, moduleRE, nil); err != nil {
		return err
	}
	for _, m := range v.Kernel.HardwareModules {
		for _, other := range []struct {
			key  string
			list []string
			why  string
		}{
			{"kernel.initramfs-modules", v.Kernel.InitramfsModules, "which loads it at every boot"},
			{"kernel.modules", v.Kernel.Modules, "which loads it at every boot"},
			{"kernel.optional-modules", v.Kernel.OptionalModules, "which loads it only when asked for"},
		} {
			if slices.ContainsFunc(other.list, func(n string) bool { return contract.ModuleName(n) == contract.ModuleName(m) }) {
				return bad("kernel.hardware-modules", "%s is in %s too, %s", m, other.key, other.why)
			}
		}
	}
	return nil
}

func (v *Variant) validateConsole() error {
	c := v.Console
	if !c.given {
		return nil
	}
	serials := []struct{ key, val string }{{"console.serial", c.Serial}}
	for _, a := range contract.Archs() {
		if t := v.table(a); t.Serial != nil {
			serials = append(serials, struct{ key, val string }{string(a) + ".serial", *t.Serial})
		}
	}
	for _, s := range serials[1:] {
		if s.val != "" {
			if err := checkSerial(s.key, s.val); err != nil {
				return err
			}
		} else if !c.VGA {
			return bad(s.key, "no console: set a serial port, or console.vga = true")
		}
	}
	if c.Serial != "" {
		if err := checkSerial("console.serial", c.Serial); err != nil {
			return err
		}
	}
	if c.Serial == "" && !c.VGA {
		return bad("console", "no console: set serial, or vga = true (a host that prints nowhere cannot say why it did not boot)")
	}
	return nil
}

func checkSerial(key, val string) error {
	{
		m := serialRE.FindStringSubmatch(val)
		switch {
		case m == nil:
			return bad(key, "%q: want a device and its settings as console= takes them, e.g. \"ttyS0,115200n8\", or \"\" for none", val)
		case vtRE.MatchString(m[1]):
			return bad(key, "%q is a screen, not a serial port: use vga = true", val)
		}
	}
	return nil
}

func (v *Variant) validateUserData() error {
	u := v.UserData
	if !u.given {
		return nil
	}
	if len(u.Sources) == 0 {
		return bad("userdata.sources", "missing or empty: list the sources to read (%s), or leave [userdata] out for the default order",
			strings.Join(contract.UserDataSources(), ", "))
	}
	return checkList("userdata.sources", u.Sources, nil, contract.UserDataSources())
}

// validateFormats checks what output formats need of each other and of the variant.
func (v *Variant) validateFormats() error {
	f := v.Output.Formats
	if slices.Contains(f, "ami") && !slices.Contains(f, "vmdk") {
		return bad("output.formats", "\"ami\" is imported from the vmdk: add \"vmdk\"")
	}
	for _, installer := range []string{"iso", "netboot"} {
		// The installer hands the installed disk its user data as a NoCloud seed.
		if slices.Contains(f, installer) && v.UserData.given && !slices.Contains(v.UserData.Sources, contract.UserDataNoCloud) {
			return bad("output.formats", "%q installs with user data in a NoCloud seed partition: add %q to userdata.sources", installer, contract.UserDataNoCloud)
		}
	}
	return nil
}

func (v *Variant) validateTrust() error {
	p := v.LocalPolicy()
	if p.Encryption != contract.LocalTPM && p.Encryption != contract.LocalPlain {
		return bad("local.encryption", "%q: want %q or %q", p.Encryption, contract.LocalTPM, contract.LocalPlain)
	}
	if p.WithoutTPM != contract.WithoutTPMPlain && p.WithoutTPM != contract.WithoutTPMRefuse {
		return bad("local.without-tpm", "%q: want %q or %q", p.WithoutTPM, contract.WithoutTPMPlain, contract.WithoutTPMRefuse)
	}
	if k := v.SecureBoot.Keys; k != "" && strings.TrimSpace(k) != k {
		return bad("secure-boot.keys", "%q: leading or trailing space", k)
	}
	if !v.Dev && v.SecureBoot.Keys == "" {
		return bad("secure-boot.keys", "missing: a production variant (dev = false) is always signed for Secure Boot; make keys with `ballast keys init DIR` and name DIR here")
	}
	return nil
}

func (u *Updates) validate() error {
	for _, k := range []struct{ key, val string }{
		{"updates.metadata-base-url", u.MetadataBaseURL}, {"updates.targets-base-url", u.TargetsBaseURL},
	} {
		if k.val == "" {
			continue
		}
		if err := checkURL(k.key, k.val); err != nil {
			return err
		}
		if u.Root == "" {
			return bad(k.key, "set without updates.root: an image that trusts no root.json cannot check the repository")
		}
	}
	if u.Root != "" && strings.TrimSpace(u.Root) != u.Root {
		return bad("updates.root", "%q: leading or trailing space", u.Root)
	}
	if u.Tries != nil && (*u.Tries < 1 || *u.Tries > MaxTries) {
		return bad("updates.tries", "%d: want 1 to %d boots", *u.Tries, MaxTries)
	}
	for _, d := range []struct {
		key string
		val *contract.Duration
		min time.Duration
	}{{"updates.health-timeout", u.HealthTimeout, MinHealthTimeout}, {"updates.bless-after", u.BlessAfter, 0}} {
		if d.val == nil {
			continue
		}
		if v := time.Duration(*d.val); v < d.min || v > MaxDuration {
			return bad(d.key, "%s: want %s to %s", v, d.min, MaxDuration)
		}
	}
	return nil
}

// checkURL accepts an absolute http or https URL that file names can be appended to.
func checkURL(key, s string) error {
	u, err := url.Parse(s)
	switch {
	case err != nil:
		return bad(key, "%q: %v", s, err)
	case u.Scheme != "http" && u.Scheme != "https":
		return bad(key, "%q: want an http:// or https:// URL", s)
	case u.Host == "":
		return bad(key, "%q: no host", s)
	case u.User != nil:
		return bad(key, "%q: credentials do not belong in an image", s)
	case u.RawQuery != "" || u.Fragment != "" || u.ForceQuery:
		return bad(key, "%q: a base URL has no query or fragment (file names are appended to it)", s)
	}
	return nil
}

// readRoot reads the root.json updates.root names and checks it is a TUF root metadata file;
// its signatures are the updater's to check, against itself.
func (v *Variant) readRoot() error {
	p := v.RootPath()
	if p == "" {
		return nil
	}
	st, err := os.Stat(p)
	if err != nil {
		return bad("updates.root", "%v", err)
	}
	if !st.Mode().IsRegular() || st.Size() > maxRootJSON {
		return bad("updates.root", "%s: not a regular file of at most %d bytes", p, maxRootJSON)
	}
	b, err := os.ReadFile(p)
	if err != nil {
		return bad("updates.root", "%v", err)
	}
	var root struct {
		Signed struct {
			Type string `json:"_type"`
		} `json:"signed"`
		Signatures []json.RawMessage `json:"signatures"`
	}
	if err := json.Unmarshal(b, &root); err != nil {
		return bad("updates.root", "%s: %v", p, err)
	}
	if root.Signed.Type != "root" || len(root.Signatures) == 0 {
		return bad("updates.root", "%s: not a signed TUF root (signed._type %q, %d signatures)", p, root.Signed.Type, len(root.Signatures))
	}
	v.Updates.RootJSON = b
	return nil
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
