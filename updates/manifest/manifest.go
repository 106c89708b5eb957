// Package manifest is the per-variant, per-architecture versions manifest of the update
// repository, the TUF target manifests/<variant>.json (manifests/<variant>.<arch>.json for an
// architecture other than amd64): which versions exist, the newest any host may take (max_version),
// each release's waves, datastore format and update payload, and the choice of the release a
// host takes now.
package manifest

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/ballast-os/ballast/contract"
)

// MaxSeed is the largest host seed: hosts draw a seed in 0..MaxSeed at first boot, and waves
// split that range.
const MaxSeed = 2047

// TargetName is the TUF target name of a variant's manifest for an architecture (as a payload
// names it): manifests/<variant>.json for amd64, the name from before there were others, and
// manifests/<variant>.<arch>.json for the rest, so each architecture's releases are published
// and chosen apart, and one version can be released for each.
func TargetName(variant, arch string) string {
	if a := ArchOf(arch); a != string(contract.AMD64) {
		return "manifests/" + variant + "." + a + ".json"
	}
	return "manifests/" + variant + ".json"
}

// ArchOf is a payload's architecture as Ballast names it: "" (payloads from before there were
// others) and x86_64 are amd64, aarch64 is arm64; a name Ballast does not build for stays as it is.
func ArchOf(arch string) string {
	if arch == "" {
		return string(contract.AMD64)
	}
	if a, err := contract.ParseArch(arch); err == nil {
		return string(a)
	}
	return arch
}

// Manifest is manifests/<variant>.json.
type Manifest struct {
	Variant string `json:"variant"`
	// MaxVersion caps what any host takes: releases newer than it are listed but never chosen.
	// Empty means no cap.
	MaxVersion string    `json:"max_version,omitempty"`
	Releases   []Release `json:"releases"`
}

// Release is one version of the variant.
type Release struct {
	Version  string    `json:"version"`
	Arch     string    `json:"arch"`
	Released time.Time `json:"released"`
	Notes    string    `json:"notes"`
	// Waves, sorted by seed bound, say when hosts may take the release; none means all at once.
	Waves           []Wave `json:"waves"`
	DatastoreFormat int    `json:"datastore_format"`
	// Migrations describe the datastore format changes from the previous release.
	Migrations []string         `json:"migrations"`
	Payload    contract.Payload `json:"payload"`
}

// Wave is one step of a release's rollout: hosts whose seed is at most Seeds (and above the
// previous wave's bound) may take the release from Start on.
type Wave struct {
	Seeds int       `json:"seeds"`
	Start time.Time `json:"start"`
}

var (
	variantPattern     = regexp.MustCompile(`^[a-z0-9][a-z0-9_-]{0,63}$`)
	archPattern        = regexp.MustCompile(`^[a-z0-9_]{1,32}$`)
	payloadNamePattern = regexp.MustCompile(`^([0-9a-f]{64})\.[a-z0-9-]{1,32}\.zst$`)
	hexPattern         = regexp.MustCompile(`^[0-9a-f]+$`)
)

// Parse reads a manifest strictly: unknown fields, trailing data and invalid values are errors
// naming the field and the release.
func Parse(data []byte) (*Manifest, error) {
	var top struct {
		Variant    string            `json:"variant"`
		MaxVersion string            `json:"max_version"`
		Releases   []json.RawMessage `json:"releases"`
	}
	if err := decodeStrict(data, &top); err != nil {
		return nil, fmt.Errorf("manifest: %w", err)
	}
	m := &Manifest{Variant: top.Variant, MaxVersion: top.MaxVersion, Releases: make([]Release, 0, len(top.Releases))}
	for i, raw := range top.Releases {
		var r Release
		if err := decodeStrict(raw, &r); err != nil {
			return nil, fmt.Errorf("manifest: releases[%d]%s: %w", i, versionHint(raw), err)
		}
		m.Releases = append(m.Releases, r)
	}
	if err := m.Validate(); err != nil {
		return nil, err
	}
	return m, nil
}

// versionHint names a release that failed to decode by its version, when that much can be read.
func versionHint(raw []byte) string {
	var v struct {
		Version string `json:"version"`
	}
	if json.Unmarshal(raw, &v) == nil && v.Version != "" {
		return fmt.Sprintf(" (version %q)", v.Version)
	}
	return ""
}

func decodeStrict(data []byte, v any) error {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return err
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return errors.New("trailing data after the JSON object")
	}
	return nil
}

// Marshal writes the manifest as indented JSON, releases oldest first.
func (m *Manifest) Marshal() ([]byte, error) {
	if err := m.Validate(); err != nil {
		return nil, err
	}
	c := *m
	c.Releases = slices.Clone(m.Releases)
	sortReleases(c.Releases)
	for i := range c.Releases {
		// Empty lists rather than null, so readers in any language see the same shape.
		if c.Releases[i].Waves == nil {
			c.Releases[i].Waves = []Wave{}
		}
		if c.Releases[i].Migrations == nil {
			c.Releases[i].Migrations = []string{}
		}
	}
	if c.Releases == nil {
		c.Releases = []Release{}
	}
	out, err := json.MarshalIndent(&c, "", "  ")
	if err != nil {
		return nil, fmt.Errorf("manifest %s: %w", m.Variant, err)
	}
	return append(out, '\n'), nil
}

// sortReleases orders valid releases oldest first.
func sortReleases(rs []Release) {
	slices.SortStableFunc(rs, func(a, b Release) int {
		va, _ := ParseVersion(a.Version)
		vb, _ := ParseVersion(b.Version)
		return va.Compare(vb)
	})
}

// Validate checks the whole manifest; errors name the field and the release.
func (m *Manifest) Validate() error {
	if !variantPattern.MatchString(m.Variant) {
		return fmt.Errorf("manifest: variant %q: want lower-case letters, digits, '-' or '_'", m.Variant)
	}
	if m.MaxVersion != "" {
		if _, err := ParseVersion(m.MaxVersion); err != nil {
			return fmt.Errorf("manifest %s: max_version: %w", m.Variant, err)
		}
	}
	seen := map[string]string{}
	for i := range m.Releases {
		r := &m.Releases[i]
		if err := r.validate(m.Variant); err != nil {
			return fmt.Errorf("manifest %s: releases[%d] (version %q): %w", m.Variant, i, r.Version, err)
		}
		v, _ := ParseVersion(r.Version)
		key := canonical(v)
		if other, dup := seen[key]; dup {
			return fmt.Errorf("manifest %s: releases[%d]: version %q is listed twice (as %q too)", m.Variant, i, r.Version, other)
		}
		seen[key] = r.Version
	}
	return nil
}

// canonical is a text equal for versions that compare equal.
func canonical(v Version) string {
	core := slices.Clone(v.core)
	for i := range core {
		if core[i] = strings.TrimLeft(core[i], "0"); core[i] == "" {
			core[i] = "0"
		}
	}
	for len(core) > 1 && core[len(core)-1] == "0" {
		core = core[:len(core)-1]
	}
	return strings.Join(core, ".") + "-" + v.pre
}

func (r *Release) validate(variant string) error {
	if _, err := ParseVersion(r.Version); err != nil {
		return fmt.Errorf("version: %w", err)
	}
	if !archPattern.MatchString(r.Arch) {
		return fmt.Errorf("arch %q: want lower-case letters, digits or '_'", r.Arch)
	}
	if r.Released.IsZero() {
		return errors.New("released: missing")
	}
	if err := ValidateWaves(r.Waves); err != nil {
		return err
	}
	if r.DatastoreFormat < 0 {
		return fmt.Errorf("datastore_format %d: negative", r.DatastoreFormat)
	}
	for i, s := range r.Migrations {
		if strings.TrimSpace(s) == "" {
			return fmt.Errorf("migrations[%d]: empty", i)
		}
	}
	p := &r.Payload
	switch {
	case p.Variant != variant:
		return fmt.Errorf("payload.variant %q: the manifest is %q's", p.Variant, variant)
	case p.Version != r.Version:
		return fmt.Errorf("payload.version %q: the release is %q", p.Version, r.Version)
	case p.Arch != r.Arch:
		return fmt.Errorf("payload.arch %q: the release is %q", p.Arch, r.Arch)
	case p.DatastoreFormat != r.DatastoreFormat:
		return fmt.Errorf("payload.datastore_format %d: the release says %d", p.DatastoreFormat, r.DatastoreFormat)
	}
	if err := ValidatePayload(p); err != nil {
		return fmt.Errorf("payload: %w", err)
	}
	return nil
}

// ValidateWaves checks a wave schedule: seed bounds in 0..MaxSeed, strictly increasing, start
// times set and never earlier than the previous wave's.
func ValidateWaves(ws []Wave) error {
	for i, w := range ws {
		if w.Seeds < 0 || w.Seeds > MaxSeed {
			return fmt.Errorf("waves[%d].seeds %d: want 0..%d", i, w.Seeds, MaxSeed)
		}
		if w.Start.IsZero() {
			return fmt.Errorf("waves[%d].start: missing", i)
		}
		if i > 0 {
			if w.Seeds <= ws[i-1].Seeds {
				return fmt.Errorf("waves[%d].seeds %d: not above the previous wave's %d (waves are sorted by seed bound)", i, w.Seeds, ws[i-1].Seeds)
			}
			if w.Start.Before(ws[i-1].Start) {
				return fmt.Errorf("waves[%d].start %s: before the previous wave's %s", i, w.Start.Format(time.RFC3339), ws[i-1].Start.Format(time.RFC3339))
			}
		}
	}
	return nil
}

// ValidatePayload checks an update payload's own fields: its identity, and every file named by
// the sha256 of its compressed bytes (so a name can be used as a path and a TUF target).
func ValidatePayload(p *contract.Payload) error {
	if !variantPattern.MatchString(p.Variant) {
		return fmt.Errorf("variant %q: want lower-case letters, digits, '-' or '_'", p.Variant)
	}
	if _, err := ParseVersion(p.Version); err != nil {
		return fmt.Errorf("version: %w", err)
	}
	if !archPattern.MatchString(p.Arch) {
		return fmt.Errorf("arch %q: want lower-case letters, digits or '_'", p.Arch)
	}
	if len(p.RootHash) != 64 || !hexPattern.MatchString(p.RootHash) {
		return fmt.Errorf("roothash %q: want 64 lower-case hex digits", p.RootHash)
	}
	if p.Salt != "" && p.Salt != "-" && !hexPattern.MatchString(p.Salt) {
		return fmt.Errorf("salt %q: want lower-case hex digits or '-'", p.Salt)
	}
	if p.VerityBlocks == 0 {
		return errors.New("verity_blocks: missing")
	}
	if err := validateFile(p.Root); err != nil {
		return fmt.Errorf("root: %w", err)
	}
	if err := validateFile(p.Verity); err != nil {
		return fmt.Errorf("verity: %w", err)
	}
	for _, s := range []contract.Slot{contract.SlotA, contract.SlotB} {
		f, ok := p.UKI[s]
		if !ok {
			return fmt.Errorf("uki.%s: missing", s)
		}
		if err := validateFile(f); err != nil {
			return fmt.Errorf("uki.%s: %w", s, err)
		}
	}
	if len(p.UKI) != 2 {
		return fmt.Errorf("uki: %d entries, want exactly %q and %q", len(p.UKI), contract.SlotA, contract.SlotB)
	}
	return nil
}

func validateFile(f contract.PayloadFile) error {
	m := payloadNamePattern.FindStringSubmatch(f.Name)
	if m == nil {
		return fmt.Errorf("name %q: want <sha256>.<kind>.zst", f.Name)
	}
	if len(f.SHA256) != 64 || !hexPattern.MatchString(f.SHA256) {
		return fmt.Errorf("%s: sha256 %q: want 64 lower-case hex digits", f.Name, f.SHA256)
	}
	if m[1] != f.SHA256 {
		return fmt.Errorf("%s: the name does not start with its sha256 %s", f.Name, f.SHA256)
	}
	if len(f.RawSHA256) != 64 || !hexPattern.MatchString(f.RawSHA256) {
		return fmt.Errorf("%s: raw_sha256 %q: want 64 lower-case hex digits", f.Name, f.RawSHA256)
	}
	if f.Size <= 0 || f.RawSize <= 0 {
		return fmt.Errorf("%s: size %d, raw_size %d: want both above 0", f.Name, f.Size, f.RawSize)
	}
	return nil
}

// Files are the payload's files: root, verity, then the UKIs of slots a and b.
func Files(p *contract.Payload) []contract.PayloadFile {
	return []contract.PayloadFile{p.Root, p.Verity, p.UKI[contract.SlotA], p.UKI[contract.SlotB]}
}

// Release returns the release of that version (compared as versions), or nil.
func (m *Manifest) Release(version string) *Release {
	v, err := ParseVersion(version)
	if err != nil {
		return nil
	}
	for i := range m.Releases {
		if w, err := ParseVersion(m.Releases[i].Version); err == nil && w.Compare(v) == 0 {
			return &m.Releases[i]
		}
	}
	return nil
}
