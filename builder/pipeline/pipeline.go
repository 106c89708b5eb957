// Package pipeline turns a variant into a bootable disk image. The build is a list of named stages
// (Build shows them in order): variant → inputs → packages → programs → components → root →
// verity → layout → initramfs → uki → disk → formats → payload → sbom → manifest. Each stage is a method in
// its own file; an error names the stage it came from. The build runs as an ordinary user: no
// loop devices, no root.
package pipeline

import (
	"context"
	"fmt"
	"github.com/ballast-os/ballast/trust/sbkeys"
	"path/filepath"
	"time"

	"github.com/ballast-os/ballast/builder/kernel"
	"github.com/ballast-os/ballast/builder/progress"
	"github.com/ballast-os/ballast/builder/variant"
	"github.com/ballast-os/ballast/contract"
	"github.com/ballast-os/ballast/images/disk"
	"github.com/ballast-os/ballast/images/verity"
	"github.com/ballast-os/ballast/packages/debian"
	"github.com/ballast-os/ballast/packages/digest"
	"github.com/ballast-os/ballast/packages/gocomponents"
)

// Options say what to build and where.
type Options struct {
	Repo    string // repository root: variants/, packages/, selinux/
	Variant string // variant name (variants/<name>.toml)
	// VariantFile is a variant file kept anywhere, instead of Variant; its name is the variant's.
	VariantFile string
	// Arch is the architecture to build for, one of the variant's; default its first.
	Arch contract.Arch
	// Version is the image's version instead of the repository's VERSION file.
	Version string
	// Out is the output directory; default <repo>/build/<variant>, with -<arch> for an
	// architecture other than amd64 and -<version> with Version set, so building other
	// architectures and versions leaves the default image alone.
	Out      string
	CacheDir string // download cache; default debian.CacheDir()
	// WorkCache holds derived artifacts that are cached by a hash of their inputs (built Go
	// components, unpacked packages); default CacheDir. Pointing it at an empty directory makes
	// every derived step run again while verified downloads stay shared, which is how
	// reproducibility across caches is checked.
	WorkCache string
	Mirror    string // Debian mirror; default debian.DefaultMirror
	Log       func(format string, args ...any)
	Progress  *progress.Reporter // when set, used instead of Log, with download byte counts
	Force     bool               // build even when the outputs match the inputs
	Formats   []string           // disk formats to write; empty means the variant's output.formats
	// NetbootURL, when set, is the URL the netboot directory will be served from: the netboot
	// UKI's signed command line then names its install.json, for firmware that boots it over
	// HTTP without iPXE to pass the words.
	NetbootURL string
	// BenchWithoutSELinux builds an image whose initramfs does not load the SELinux policy, for
	// the benchmark that compares boots with and without it. Refused for production variants.
	BenchWithoutSELinux bool
}

// Manifest is build/<variant>/manifest.json.
type Manifest struct {
	Variant    string                   `json:"variant"`
	Arch       contract.Arch            `json:"arch"`
	Version    string                   `json:"version"`
	Kernel     string                   `json:"kernel"`
	RootHash   string                   `json:"roothash"`
	Salt       string                   `json:"salt"`
	DataBlocks uint64                   `json:"data_blocks"`
	Cmdline    string                   `json:"cmdline"` // slot A's UKI's, the disk's
	Slot       contract.Slot            `json:"slot"`    // the slot the disk boots
	Entry      string                   `json:"entry"`   // its UKI's file name in the ESP's EFI/Linux
	Partitions []disk.ManifestPartition `json:"partitions"`
	Update     Update                   `json:"update"`
	// PCR11 is each slot's UKI's PCR 11 (sha256 bank) as systemd-stub measures it: what the
	// owner's pcr key signed in a signed build, and what a booted host's TPM must show.
	PCR11 map[contract.Slot]string `json:"pcr11"`
	// Signing names the owner's keys of a signed build; nil for an unsigned one.
	Signing  *Signing            `json:"signing,omitempty"`
	Files    map[string]FileInfo `json:"files"`   // intermediate artifacts under work/
	Outputs  map[string]FileInfo `json:"outputs"` // files in the output directory
	Inputs   string              `json:"inputs"`  // digest of everything the build read
	Packages []debian.Package    `json:"packages"`
}

// Update is manifest.json's summary of the update payload.
type Update struct {
	Payload string `json:"payload"` // payload.json, relative to the output directory
	// Size is the compressed bytes of every payload file; Download what one update downloads
	// (root, verity and the UKI of one slot).
	Size     int64 `json:"size"`
	Download int64 `json:"download"`
	// RootImage is the root file system image's bytes (EROFS, itself compressed), RootContent the
	// bytes of the regular files in it.
	RootImage   int64  `json:"root_image"`
	RootContent int64  `json:"root_content"`
	Compression string `json:"compression"` // zstd and the encoder level
}

// Signing is manifest.json's record of the keys a signed build used.
type Signing struct {
	DBCert string `json:"db_cert"` // sha256 of the db certificate (Authenticode of systemd-boot and the UKIs)
	PCRKey string `json:"pcr_key"` // sha256 of the pcr public key (the PCR 11 policies), as the .pcrsig's pkfp
}

// FileInfo records an output's size and sha256.
type FileInfo = digest.FileInfo

// builder carries one build's state from stage to stage; each stage fills in its part.
type builder struct {
	Options
	start time.Time
	work  string // Out/work: intermediate artifacts

	// variant, resolved for arch
	v       *variant.Variant
	arch    contract.Arch
	lock    *debian.Lock
	fetch   *debian.Fetcher
	version string
	epoch   int64
	// inputs
	inputs   string
	pkiDir   string // dev variants' PKI
	upToDate *Manifest
	// packages
	pinned   []debian.Package  // every package the build uses, build inputs first
	rootPkgs []debian.Package  // the ones that go into the root
	debs     map[string]string // package → verified .deb
	kernel   *kernel.Tree
	stubDir  string            // unpacked systemd-boot-efi
	licenses map[string]string // package → SPDX licence expression, for the SBOM
	// programs and components
	bins  map[string]string // program → host path of the binary
	comps []gocomponents.Built
	pause string // host path of the pod sandbox image's program; "" without a kubelet
	// root and verity
	rootImg, hashImg string
	rootSize         int64
	rootContent      int64 // bytes of the root's regular files
	salt             []byte
	verity           verity.Result
	rootHash         string
	// layout and boot: one UKI per slot, the disk boots slot A's
	layout   disk.Layout
	boots    map[contract.Slot]contract.Boot
	cmdlines map[contract.Slot]string
	initrd   []byte
	ukis     map[contract.Slot]string // host paths under work/
	keys     *sbkeys.Keys             // the owner's keys; nil for an unsigned (dev) build
	pcr11    map[contract.Slot]string // each UKI's PCR 11 as systemd-stub will measure it, hex
	entry    string                   // slot A's UKI's file name in the ESP
	// outputs
	diskPath string
	manifest *Manifest
}

type stage struct {
	name string
	run  func(context.Context) error
}

func (b *builder) stages() []stage {
	return []stage{
		{"variant", b.loadVariant},
		{"inputs", b.digestInputs},
		{"packages", b.fetchPackages},
		{"programs", b.buildPrograms},
		{"components", b.buildComponents},
		{"root", b.buildRoot},
		{"verity", b.buildVerity},
		{"layout", b.planLayout},
		{"initramfs", b.buildInitramfs},
		{"uki", b.buildUKI},
		{"disk", b.writeDisk},
		{"formats", b.convertFormats},
		{"installer", b.writeInstaller},
		{"payload", b.writePayload},
		{"sbom", b.writeSBOM},
		{"manifest", b.writeManifest},
	}
}

// Build runs the stages in order and returns the manifest of the image, or the one already in
// Out when the outputs match the inputs (unless Force).
func Build(ctx context.Context, o Options) (*Manifest, error) {
	b := &builder{Options: o, start: time.Now()}
	if b.Log == nil {
		b.Log = func(string, ...any) {}
	}
	if b.CacheDir == "" {
		b.CacheDir = debian.CacheDir()
	}
	if b.WorkCache == "" {
		b.WorkCache = b.CacheDir
	}
	for _, s := range b.stages() {
		if err := ctx.Err(); err != nil {
			return nil, fmt.Errorf("%s: %w", s.name, err)
		}
		if err := s.run(ctx); err != nil {
			return nil, fmt.Errorf("%s: %w", s.name, err)
		}
		if b.upToDate != nil {
			b.step("up to date: %s (roothash %s)", filepath.Join(b.Out, "disk.raw"), b.upToDate.RootHash)
			return b.upToDate, nil
		}
	}
	b.step("done: %s (roothash %s)", b.diskPath, b.rootHash)
	return b.manifest, nil
}

func (b *builder) step(format string, args ...any) {
	if b.Progress != nil {
		b.Progress.Step(format, args...)
		return
	}
	b.Log("[%6.1fs] %s", time.Since(b.start).Seconds(), fmt.Sprintf(format, args...))
}
