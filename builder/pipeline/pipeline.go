// Package pipeline turns a variant into a bootable disk image: packages → root tree → EROFS → dm-verity
// → initramfs → UKI → GPT disk, plus a manifest. It runs as an ordinary user: no loop devices, no root.
package pipeline

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/ballast-os/ballast/apiserver/pki"
	"github.com/ballast-os/ballast/builder/progress"
	"github.com/ballast-os/ballast/builder/rootfs"
	"github.com/ballast-os/ballast/builder/sbom"
	"github.com/ballast-os/ballast/builder/variant"
	"github.com/ballast-os/ballast/images/disk"
	"github.com/ballast-os/ballast/images/fat"
	"github.com/ballast-os/ballast/images/format"
	"github.com/ballast-os/ballast/images/initrd"
	"github.com/ballast-os/ballast/images/uki"
	"github.com/ballast-os/ballast/images/verity"
	"github.com/ballast-os/ballast/packages/debian"
	"github.com/ballast-os/ballast/packages/gocomponents"
)

// Options say what to build and where.
type Options struct {
	Repo     string // repository root: variants/, packages/, selinux/
	Variant  string // variant name (variants/<name>.toml)
	Out      string // output directory; default <repo>/build/<variant>
	CacheDir string // download cache; default debian.CacheDir()
	Mirror   string // Debian mirror; default debian.DefaultMirror
	Log      func(format string, args ...any)
	Progress *progress.Reporter // when set, used instead of Log, with download byte counts
	Force    bool               // build even when the outputs match the inputs
	Formats  []string           // disk formats to write; empty means the variant's output.formats
}

// Manifest is build/<variant>/manifest.json.
type Manifest struct {
	Variant    string                   `json:"variant"`
	Version    string                   `json:"version"`
	Kernel     string                   `json:"kernel"`
	RootHash   string                   `json:"roothash"`
	Salt       string                   `json:"salt"`
	DataBlocks uint64                   `json:"data_blocks"`
	Cmdline    string                   `json:"cmdline"`
	Partitions []disk.ManifestPartition `json:"partitions"`
	Files      map[string]FileInfo      `json:"files"`   // intermediate artifacts under work/
	Outputs    map[string]FileInfo      `json:"outputs"` // files in the output directory
	Inputs     string                   `json:"inputs"`  // digest of everything the build read
	Packages   []debian.Package         `json:"packages"`
}

// FileInfo records an output's size and sha256.
type FileInfo struct {
	Size   int64  `json:"size"`
	SHA256 string `json:"sha256"`
}

const stubPath = "usr/lib/systemd/boot/efi/linuxx64.efi.stub"

type builder struct {
	Options
	v       *variant.Variant
	lock    *debian.Lock
	fetch   *debian.Fetcher
	work    string
	version string
	epoch   int64
	start   time.Time
	// licenses maps Debian package names to SPDX expressions, for the SBOM.
	licenses map[string]string
}

// Build runs the whole pipeline and returns the manifest it wrote.
func Build(ctx context.Context, o Options) (*Manifest, error) {
	b := &builder{Options: o, start: time.Now(), licenses: map[string]string{}}
	if b.Log == nil {
		b.Log = func(string, ...any) {}
	}
	if b.CacheDir == "" {
		b.CacheDir = debian.CacheDir()
	}
	if b.Out == "" {
		b.Out = filepath.Join(b.Repo, "build", b.Variant)
	}
	b.work = filepath.Join(b.Out, "work")
	if err := os.MkdirAll(b.work, 0o755); err != nil {
		return nil, err
	}
	return b.run(ctx)
}

func (b *builder) step(format string, args ...any) {
	if b.Progress != nil {
		b.Progress.Step(format, args...)
		return
	}
	b.Log("[%6.1fs] %s", time.Since(b.start).Seconds(), fmt.Sprintf(format, args...))
}

func (b *builder) run(ctx context.Context) (*Manifest, error) {
	var err error
	if b.v, err = variant.Load(filepath.Join(b.Repo, "variants", b.Variant+".toml")); err != nil {
		return nil, err
	}
	if b.lock, err = debian.LoadLock(filepath.Join(b.Repo, "packages", "debian.lock")); err != nil {
		return nil, err
	}
	ver, err := os.ReadFile(filepath.Join(b.Repo, "VERSION"))
	if err != nil {
		return nil, fmt.Errorf("version: %w", err)
	}
	b.version = strings.TrimSpace(string(ver))
	b.epoch = sourceDateEpoch(b.Repo)
	b.fetch = &debian.Fetcher{Mirror: b.Mirror, Sources: b.lock.Sources, CacheDir: b.CacheDir}
	if b.Progress != nil {
		b.fetch.Progress = b.Progress.Bytes
	}
	inputs, err := b.inputsHash()
	if err != nil {
		return nil, err
	}
	if m, ok := b.upToDate(inputs); ok && !b.Force {
		b.step("up to date: %s (roothash %s)", filepath.Join(b.Out, "disk.raw"), m.RootHash)
		return m, nil
	}

	// 1. Packages: the kernel and the UKI stub are build inputs (only their files are used, so their
	// dependencies are not); the variant's packages go into the root with their whole closure.
	rootPkgs, err := b.lock.Closure(b.v.Packages.Debian)
	if err != nil {
		return nil, fmt.Errorf("variant %s: %w (run `make lock`)", b.v.Path, err)
	}
	var pinned []debian.Package
	for _, n := range []string{b.v.Kernel.Package, "systemd-boot-efi"} {
		p, err := b.lock.Find(n)
		if err != nil {
			return nil, fmt.Errorf("variant %s: %w (run `make lock`)", b.v.Path, err)
		}
		pinned = append(pinned, p)
	}
	pinned = append(pinned, rootPkgs...)
	b.step("fetch: %d Debian packages (kernel %s, systemd-boot-efi, %d for the root)", len(pinned), b.v.Kernel.Package, len(rootPkgs))
	debs := map[string]string{}
	for _, p := range pinned {
		path, err := b.fetch.Path(ctx, p)
		if err != nil {
			return nil, err
		}
		debs[p.Name] = path
	}
	kp, _ := b.lock.Find(b.v.Kernel.Package)
	kdir, err := unpackCached(b.CacheDir, debs[kp.Name], kp.SHA256)
	if err != nil {
		return nil, fmt.Errorf("kernel %s: %w", kp.Name, err)
	}
	k, err := openKernel(kdir)
	if err != nil {
		return nil, err
	}

	// 2. Ballast's programs.
	progs := append([]string{"initramfs-init", "system-init"}, b.v.Programs.Include...)
	b.step("programs: go build %s", strings.Join(progs, " "))
	bin := filepath.Join(b.work, "bin")
	if err := buildPrograms(ctx, b.Repo, bin, progs, b.version); err != nil {
		return nil, err
	}

	// 3. Go components from pinned sources (cached by a hash of their inputs).
	comps, err := b.buildComponents(ctx)
	if err != nil {
		return nil, err
	}

	// 4. Root tree and EROFS.
	b.step("rootfs: stage tree")
	rootImg, err := b.buildRoot(k, bin, debs, rootPkgs, comps)
	if err != nil {
		return nil, err
	}

	// 4. dm-verity.
	rootSize := fileSize(rootImg)
	if rootSize > int64(b.v.Partitions.Root) {
		return nil, fmt.Errorf("rootfs: %d MiB does not fit partitions.root = %d MiB in %s", rootSize>>20, int64(b.v.Partitions.Root)>>20, b.v.Path)
	}
	rootSum, err := fileSHA256(rootImg)
	if err != nil {
		return nil, err
	}
	salt := derive("verity-salt", rootSum)
	b.step("verity: hash %d MiB", rootSize>>20)
	hashImg := filepath.Join(b.work, "verity.img")
	vres, err := b.buildVerity(rootImg, rootSize, hashImg, salt)
	if err != nil {
		return nil, err
	}
	if vres.HashSize > int64(b.v.Partitions.Verity) {
		return nil, fmt.Errorf("verity: tree of %d bytes does not fit partitions.verity in %s", vres.HashSize, b.v.Path)
	}
	rootHash := hex.EncodeToString(vres.RootHash)

	// 5. Disk layout (partition UUIDs come from the root hash, and the command line names them).
	layout, err := disk.Plan(disk.Sizes{
		ESP: int64(b.v.Partitions.ESP), Root: int64(b.v.Partitions.Root),
		Verity: int64(b.v.Partitions.Verity), Data: int64(b.v.Partitions.Data),
	}, vres.RootHash)
	if err != nil {
		return nil, err
	}
	cmdline := b.cmdline(layout, rootHash, salt, vres.DataBlocks)

	// 6. Initramfs and UKI.
	b.step("initramfs: init + %d boot modules", len(b.v.Kernel.InitramfsModules))
	initrd, err := b.buildInitramfs(k, bin)
	if err != nil {
		return nil, err
	}
	b.step("uki: kernel %s, initramfs %d KiB", k.Version, len(initrd)>>10)
	ukiBytes, err := b.buildUKI(k, debs["systemd-boot-efi"], initrd, cmdline)
	if err != nil {
		return nil, err
	}
	if err := os.WriteFile(filepath.Join(b.work, "initramfs.cpio.zst"), initrd, 0o644); err != nil {
		return nil, err
	}
	if err := os.WriteFile(filepath.Join(b.work, "BOOTX64.EFI"), ukiBytes, 0o644); err != nil {
		return nil, err
	}

	// 7. Data partition and disk.
	b.step("disk: esp, root-a, verity-a, root-b, verity-b, data")
	dataImg := filepath.Join(b.work, "data.ext4")
	if err := b.mkfsData(dataImg, layout); err != nil {
		return nil, err
	}
	diskPath := filepath.Join(b.Out, "disk.raw")
	if err := b.writeDisk(diskPath, layout, ukiBytes, rootImg, hashImg, dataImg); err != nil {
		return nil, err
	}

	m := &Manifest{
		Variant: b.v.Name, Version: b.version, Kernel: k.Version,
		RootHash: rootHash, Salt: hex.EncodeToString(salt), DataBlocks: vres.DataBlocks,
		Cmdline: cmdline, Partitions: layout.Manifest(), Packages: pinned,
		Files: map[string]FileInfo{}, Outputs: map[string]FileInfo{}, Inputs: inputs,
	}
	for name, p := range map[string]string{"root.erofs": rootImg, "uki": filepath.Join(b.work, "BOOTX64.EFI"), "initramfs": filepath.Join(b.work, "initramfs.cpio.zst")} {
		if m.Files[name], err = fileInfo(p); err != nil {
			return nil, err
		}
	}
	if m.Outputs["disk.raw"], err = fileInfo(diskPath); err != nil {
		return nil, err
	}
	if err := b.convert(ctx, diskPath, m); err != nil {
		return nil, err
	}
	b.step("sbom: %d Debian packages, %d Ballast programs, %d Go components", len(pinned), len(progs), len(comps))
	if err := b.writeSBOM(m, k, kdir, pinned, bin, progs, comps); err != nil {
		return nil, err
	}
	if m.Outputs["sbom.spdx.json"], err = fileInfo(filepath.Join(b.Out, "sbom.spdx.json")); err != nil {
		return nil, err
	}
	mj, _ := json.MarshalIndent(m, "", "  ")
	if err := os.WriteFile(filepath.Join(b.Out, "manifest.json"), append(mj, '\n'), 0o644); err != nil {
		return nil, err
	}
	b.step("done: %s (roothash %s)", diskPath, rootHash)
	return m, nil
}

func (b *builder) buildRoot(k *kernelTree, bin string, debs map[string]string, pkgs []debian.Package, comps []gocomponents.Built) (string, error) {
	t, err := baseTree()
	if err != nil {
		return "", err
	}
	if err := t.AddHostFile("/usr/sbin/init", filepath.Join(bin, "system-init"), 0o755, "ballast"); err != nil {
		return "", err
	}
	for _, p := range b.v.Programs.Include {
		if err := t.AddHostFile("/usr/bin/"+p, filepath.Join(bin, p), 0o755, "ballast"); err != nil {
			return "", err
		}
	}
	for _, p := range pkgs {
		c, err := addDeb(t, p.Name, debs[p.Name])
		if err != nil {
			return "", fmt.Errorf("package %s: %w", p.Name, err)
		}
		b.licenses[p.Name] = sbom.DebianLicense(c)
	}
	if err := maintainerWork(t); err != nil {
		return "", err
	}
	for _, c := range comps {
		for _, bin := range c.Binaries {
			if err := t.AddHostFile(bin.InstallPath, bin.HostPath, 0o755, c.Component.Name+" "+c.Component.Version); err != nil {
				return "", err
			}
		}
	}
	if b.v.Dev {
		if err := addDevShell(t); err != nil {
			return "", fmt.Errorf("%s: %w", b.v.Path, err)
		}
		dir, err := b.devPKI()
		if err != nil {
			return "", err
		}
		defaults, err := pki.RemoteAPIDefaults(dir, devAPIListen)
		if err != nil {
			return "", fmt.Errorf("dev pki: %w", err)
		}
		// Holds the server key: readable by root only.
		if err := t.AddFile("/usr/share/ballast/defaults.toml", defaults, 0o600, "ballast"); err != nil {
			return "", err
		}
		if err := copyPKI(dir, filepath.Join(b.Out, "pki")); err != nil {
			return "", fmt.Errorf("dev pki: %w", err)
		}
	} else if err := t.CheckNoInterpreters(); err != nil {
		return "", fmt.Errorf("variant %s (production): %w", b.v.Path, err)
	}
	mods, dep, err := k.modules("kernel.modules", b.v.Kernel.Modules)
	if err != nil {
		return "", fmt.Errorf("%s: %w", b.v.Path, err)
	}
	if err := addModules(t, k, "/usr/lib/modules/"+k.Version, mods, dep); err != nil {
		return "", err
	}
	if err := addFactoryEtc(t, b.v.Dev); err != nil {
		return "", err
	}
	if err := t.AddFile("/usr/lib/os-release", osRelease(b.v.Name, b.version, b.buildID()), 0o644, "ballast"); err != nil {
		return "", err
	}
	info, err := imageJSON(ImageInfo{Variant: b.v.Name, Version: b.version, Dev: b.v.Dev,
		Services: b.v.Programs.Services, Modules: b.v.Kernel.Modules, Kernel: k.Version})
	if err != nil {
		return "", err
	}
	if err := t.AddFile("/usr/lib/ballast/image.json", info, 0o644, "ballast"); err != nil {
		return "", err
	}
	stage := filepath.Join(b.work, "rootfs")
	if err := t.Write(stage); err != nil {
		return "", err
	}
	b.step("rootfs: mkfs.erofs (%d entries)", len(t.Paths()))
	out := filepath.Join(b.work, "root.erofs")
	err = rootfs.MkfsErofs(stage, out, rootfs.ErofsOptions{
		FileContexts: filepath.Join(b.Repo, "selinux", "file_contexts"),
		UUID:         uuidString(derive("erofs-uuid", b.v.Name+"\x00"+b.version)),
		Epoch:        b.epoch,
		Compression:  "lz4hc",
	})
	return out, err
}

func (b *builder) buildVerity(rootImg string, size int64, hashImg string, salt []byte) (verity.Result, error) {
	in, err := os.Open(rootImg)
	if err != nil {
		return verity.Result{}, err
	}
	defer in.Close()
	out, err := os.Create(hashImg)
	if err != nil {
		return verity.Result{}, err
	}
	defer out.Close()
	var id [16]byte
	copy(id[:], derive("verity-uuid", hex.EncodeToString(salt)))
	res, err := verity.Build(in, size, out, verity.Params{Salt: salt, UUID: id})
	if err != nil {
		return res, fmt.Errorf("verity: %s: %w", rootImg, err)
	}
	return res, out.Close()
}

func (b *builder) cmdline(l disk.Layout, rootHash string, salt []byte, blocks uint64) string {
	words := slices.Clone(b.v.Kernel.Cmdline)
	words = append(words,
		"roothash="+rootHash,
		"ballast.slot=a",
		"ballast.root="+l.UUID("root-a"),
		"ballast.verity="+l.UUID("verity-a"),
		"ballast.verity.blocks="+strconv.FormatUint(blocks, 10),
		"ballast.verity.salt="+hex.EncodeToString(salt),
		"ballast.data="+l.UUID("data"),
	)
	return strings.Join(words, " ")
}

func (b *builder) buildInitramfs(k *kernelTree, bin string) ([]byte, error) {
	mods, dep, err := k.modules("kernel.initramfs-modules", b.v.Kernel.InitramfsModules)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", b.v.Path, err)
	}
	initBin, err := os.ReadFile(filepath.Join(bin, "initramfs-init"))
	if err != nil {
		return nil, err
	}
	files := []initrd.File{{Path: "init", Data: initBin, Mode: 0o755}}
	base := "lib/modules/" + k.Version + "/"
	for _, m := range mods {
		data, err := os.ReadFile(filepath.Join(k.ModDir, filepath.FromSlash(m.Path)))
		if err != nil {
			return nil, err
		}
		files = append(files, initrd.File{Path: base + m.Path, Data: data, Mode: 0o644})
	}
	files = append(files, initrd.File{Path: base + "modules.dep", Data: dep, Mode: 0o644})
	var buf bytes.Buffer
	if err := initrd.Build(&buf, files); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

func (b *builder) buildUKI(k *kernelTree, stubDeb string, initrd []byte, cmdline string) ([]byte, error) {
	sp, _ := b.lock.Find("systemd-boot-efi")
	sdir, err := unpackCached(b.CacheDir, stubDeb, sp.SHA256)
	if err != nil {
		return nil, fmt.Errorf("systemd-boot-efi: %w", err)
	}
	stub, err := os.ReadFile(filepath.Join(sdir, stubPath))
	if err != nil {
		return nil, fmt.Errorf("systemd-boot-efi: %w", err)
	}
	linux, err := os.ReadFile(k.Vmlinuz)
	if err != nil {
		return nil, err
	}
	var out bytes.Buffer
	err = uki.Build(&out, stub, uki.Sections{
		Linux: linux, Initrd: initrd, Cmdline: cmdline,
		OSRelease: osRelease(b.v.Name, b.version, b.buildID()), Uname: k.Version,
	})
	if err != nil {
		return nil, fmt.Errorf("uki: %w", err)
	}
	return out.Bytes(), nil
}

// mkfsData formats the data partition as ext4 into a file, rootless, with a fixed UUID and hash seed.
// Bookworm's mke2fs (1.47.0) stamps inodes and superblocks with the wall clock and knows no
// SOURCE_DATE_EPOCH, so it runs under libfaketime with the clock frozen at the build's epoch.
func (b *builder) mkfsData(path string, l disk.Layout) error {
	bin, err := exec.LookPath("mkfs.ext4")
	if err != nil {
		return fmt.Errorf("data: mkfs.ext4 not found: install the Debian package e2fsprogs")
	}
	faketime, err := exec.LookPath("faketime")
	if err != nil {
		return fmt.Errorf("data: faketime not found (needed for a reproducible ext4): install the Debian package faketime")
	}
	os.Remove(path)
	uuid := l.UUID("data")
	size := int64(b.v.Partitions.Data)
	frozen := time.Unix(b.epoch, 0).UTC().Format("2006-01-02 15:04:05")
	cmd := exec.Command(faketime, "-f", frozen, bin, "-q", "-F", "-L", "BALLAST-DATA", "-U", uuid,
		"-E", "root_owner=0:0,hash_seed="+uuid+",lazy_itable_init=1,lazy_journal_init=1",
		path, strconv.FormatInt(size>>10, 10)+"k")
	cmd.Env = append(os.Environ(), "TZ=UTC", "MKE2FS_DEVICE_SECTSIZE=512")
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("data: mkfs.ext4: %w\n%s", err, out)
	}
	return nil
}

func (b *builder) writeDisk(path string, l disk.Layout, ukiBytes []byte, rootImg, hashImg, dataImg string) error {
	fsTime := time.Unix(b.epoch, 0).UTC()
	contents := map[string]disk.Content{
		"esp": func(w io.WriterAt, size int64) error {
			var id [4]byte
			copy(id[:], derive("esp-volume-id", l.UUID("esp")))
			return fat.Write(w, size, fat.Options{Label: "ESP", VolumeID: uint32(id[0])<<24 | uint32(id[1])<<16 | uint32(id[2])<<8 | uint32(id[3]), Time: fsTime},
				[]fat.File{{Path: "EFI/BOOT/BOOTX64.EFI", Data: ukiBytes, ModTime: fsTime}})
		},
		"root-a":   disk.FromFile(rootImg),
		"verity-a": disk.FromFile(hashImg),
		"data":     disk.FromFile(dataImg),
	}
	return disk.Write(path, l, contents)
}

// writeSBOM writes sbom.spdx.json: every Debian package, the kernel, and the Go modules linked into
// every Go binary of the image, read back from the binaries themselves.
func (b *builder) writeSBOM(m *Manifest, k *kernelTree, kdir string, pinned []debian.Package, bin string, progs []string, comps []gocomponents.Built) error {
	in := sbom.Input{
		Image:   sbom.Image{Variant: m.Variant, Version: m.Version, FileName: "disk.raw", SHA256: m.Outputs["disk.raw"].SHA256},
		Created: time.Unix(b.epoch, 0).UTC(),
		Kernel:  sbom.Kernel{Package: b.v.Kernel.Package, Release: k.Version},
	}
	for _, p := range pinned {
		lic, ok := b.licenses[p.Name]
		if !ok { // build inputs (kernel, UKI stub) are unpacked in the cache, not into the root
			dir := kdir
			if p.Name != b.v.Kernel.Package {
				dir = filepath.Join(b.CacheDir, "unpacked", p.SHA256)
			}
			c, _ := os.ReadFile(filepath.Join(dir, "usr/share/doc", p.Name, "copyright"))
			lic = sbom.DebianLicense(c)
		}
		mirror, _ := b.fetch.BaseURL(p)
		in.Debian = append(in.Debian, sbom.DebianPackage{Name: p.Name, Version: p.Version, SHA256: p.SHA256, Filename: p.Filename, License: lic, Mirror: mirror})
	}
	install := map[string]string{"initramfs-init": "/init (initramfs)", "system-init": "/usr/sbin/init"}
	for _, p := range progs {
		path, ok := install[p]
		if !ok {
			path = "/usr/bin/" + p
		}
		in.Go = append(in.Go, sbom.GoBinary{Path: path, HostPath: filepath.Join(bin, p), DevelVersion: b.version})
	}
	for _, c := range comps {
		for _, cb := range c.Binaries {
			// Built from the module directory, so the binary records its main module as (devel).
			in.Go = append(in.Go, sbom.GoBinary{Path: cb.InstallPath, HostPath: cb.HostPath, DevelVersion: c.Component.Version})
		}
	}
	f, err := os.Create(filepath.Join(b.Out, "sbom.spdx.json"))
	if err != nil {
		return err
	}
	defer f.Close()
	if err := sbom.Write(f, in); err != nil {
		return fmt.Errorf("sbom: %w", err)
	}
	return f.Close()
}

// buildComponents builds (or takes from the cache) the variant's pinned Go components.
func (b *builder) buildComponents(ctx context.Context) ([]gocomponents.Built, error) {
	if len(b.v.Packages.Go) == 0 {
		return nil, nil
	}
	pins, err := gocomponents.Load(filepath.Join(b.Repo, "packages", "go-components.toml"))
	if err != nil {
		return nil, err
	}
	var out []gocomponents.Built
	for _, name := range b.v.Packages.Go {
		c, err := pins.Find(name)
		if err != nil {
			return nil, fmt.Errorf("variant %s: packages.go: %w", b.v.Path, err)
		}
		b.step("go component: %s %s", c.Name, c.Version)
		built, err := gocomponents.Build(ctx, c, gocomponents.Options{CacheDir: b.CacheDir, Log: b.step})
		if err != nil {
			return nil, err
		}
		out = append(out, built)
	}
	return out, nil
}

// formats returns the requested disk formats, checked against the known ones.
func (b *builder) formats() ([]format.Format, error) {
	names := b.Formats
	if len(names) == 0 {
		names = b.v.Output.Formats
	}
	var out []format.Format
	for _, n := range names {
		f, err := format.Parse(n)
		if err != nil {
			return nil, fmt.Errorf("--format: %w", err)
		}
		out = append(out, f)
	}
	return out, nil
}

// convert writes disk.<ext> for every requested format besides raw (which disk.raw already is).
func (b *builder) convert(ctx context.Context, diskPath string, m *Manifest) error {
	fs, err := b.formats()
	if err != nil {
		return err
	}
	var id [16]byte
	copy(id[:], derive("disk-format-uuid", m.RootHash))
	for _, f := range fs {
		if f == format.Raw {
			continue
		}
		name := "disk" + format.Ext(f)
		b.step("format: %s", name)
		out := filepath.Join(b.Out, name)
		// VHD footers count from 2000; a tree without history builds at epoch 0.
		stamp := time.Unix(max(b.epoch, 946684800), 0).UTC()
		if err := format.Convert(ctx, diskPath, out, f, format.Options{Time: stamp, UUID: id}); err != nil {
			return err
		}
		if m.Outputs[name], err = fileInfo(out); err != nil {
			return err
		}
	}
	return nil
}

func (b *builder) buildID() string {
	return hex.EncodeToString(derive("build-id", b.v.Name+"\x00"+b.version))[:12]
}

// derive gives stable bytes for one purpose from the build's inputs, so outputs are reproducible.
func derive(purpose, input string) []byte {
	s := sha256.Sum256([]byte("ballast:" + purpose + ":" + input))
	return s[:]
}

func uuidString(b []byte) string {
	u := slices.Clone(b[:16])
	u[6] = u[6]&0x0f | 0x40
	u[8] = u[8]&0x3f | 0x80
	return fmt.Sprintf("%x-%x-%x-%x-%x", u[0:4], u[4:6], u[6:8], u[8:10], u[10:16])
}

// sourceDateEpoch is SOURCE_DATE_EPOCH, else the last commit's time, else 0.
func sourceDateEpoch(repo string) int64 {
	if s := os.Getenv("SOURCE_DATE_EPOCH"); s != "" {
		if n, err := strconv.ParseInt(s, 10, 64); err == nil {
			return n
		}
	}
	out, err := exec.Command("git", "-C", repo, "log", "-1", "--format=%ct").Output()
	if err == nil {
		if n, err := strconv.ParseInt(strings.TrimSpace(string(out)), 10, 64); err == nil {
			return n
		}
	}
	return 0
}

func fileSize(p string) int64 {
	st, err := os.Stat(p)
	if err != nil {
		return 0
	}
	return st.Size()
}

func fileInfo(p string) (FileInfo, error) {
	sum, err := fileSHA256(p)
	return FileInfo{Size: fileSize(p), SHA256: sum}, err
}

func fileSHA256(p string) (string, error) {
	f, err := os.Open(p)
	if err != nil {
		return "", err
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return "", err
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}
