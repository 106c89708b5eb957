package image

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ballast-os/ballast/builder/sbom"
	"github.com/ballast-os/ballast/contract"
	spdxjson "github.com/spdx/tools-golang/json"
	"github.com/spdx/tools-golang/spdx/v2/v2_3"
)

func tool(t testing.TB, name, pkg string) string {
	t.Helper()
	for _, p := range []string{name, "/usr/sbin/" + name, "/sbin/" + name} {
		if path, err := exec.LookPath(p); err == nil {
			return path
		}
	}
	t.Fatalf("%s is missing: install the Debian package %s (make deps does)", name, pkg)
	return ""
}

func TestManifest(t *testing.T) {
	m := loadManifest(t)
	if m.Variant != "qemu" || m.Version == "" || len(m.RootHash) != 64 || m.Salt == "" {
		t.Fatalf("manifest: %+v", m)
	}
	var names []string
	prevEnd := int64(0)
	for _, p := range m.Partitions {
		names = append(names, p.Name)
		if p.Offset%(1<<20) != 0 || p.Offset < prevEnd || p.Size <= 0 || p.UUID == "" || p.TypeGUID == "" {
			t.Errorf("partition %+v: misaligned, overlapping or incomplete", p)
		}
		prevEnd = p.Offset + p.Size
	}
	if got := strings.Join(names, ","); got != "esp,root-a,verity-a,root-b,verity-b,data" {
		t.Errorf("partitions %s", got)
	}
	if !strings.Contains(m.Cmdline, "roothash="+m.RootHash) {
		t.Errorf("cmdline %q lacks the root hash", m.Cmdline)
	}
}

func TestGPTIsValid(t *testing.T) {
	out, err := exec.Command(tool(t, "sgdisk", "gdisk"), "-v", filepath.Join(buildDir, "disk.raw")).CombinedOutput()
	if err != nil || !strings.Contains(string(out), "No problems found") {
		t.Fatalf("sgdisk -v: %v\n%s", err, out)
	}
}

func TestESPIsCleanFAT32WithUKI(t *testing.T) {
	m := loadManifest(t)
	off, size := partition(t, m, "esp")
	esp := extract(t, filepath.Join(buildDir, "disk.raw"), off, size)
	if out, err := exec.Command(tool(t, "fsck.fat", "dosfstools"), "-n", esp).CombinedOutput(); err != nil {
		t.Fatalf("fsck.fat -n: %v\n%s", err, out)
	}
	get := func(path string) string {
		t.Helper()
		got := filepath.Join(t.TempDir(), filepath.Base(path))
		if out, err := exec.Command(tool(t, "mcopy", "mtools"), "-i", esp, "::/"+path, got).CombinedOutput(); err != nil {
			t.Fatalf("mcopy %s: %v\n%s", path, err, out)
		}
		return got
	}
	sameAs := func(path, file string) {
		t.Helper()
		b, _ := os.ReadFile(path)
		sum := sha256.Sum256(b)
		if want := m.Files[file]; int64(len(b)) != want.Size || hex.EncodeToString(sum[:]) != want.SHA256 {
			t.Fatalf("%s on the ESP (%d bytes) is not the built %s (%d bytes)", filepath.Base(path), len(b), file, want.Size)
		}
	}
	// The removable-media loader is systemd-boot; slot a's UKI is the only boot entry, blessed.
	sameAs(get(contract.AMD64.ESPLoaderPath()), "systemd-boot")
	e, err := contract.ParseEntry(m.Entry)
	if err != nil || e.Slot != contract.SlotA || e.Counting || e.Version != m.Version {
		t.Fatalf("manifest entry %q (%+v, %v): want slot a, version %s, no boot counter", m.Entry, e, err, m.Version)
	}
	out, err := exec.Command(tool(t, "mdir", "mtools"), "-i", esp, "-b", "::/"+contract.ESPEntries).CombinedOutput()
	if err != nil || strings.TrimSpace(string(out)) != "::/"+contract.ESPEntries+"/"+m.Entry {
		t.Fatalf("entries on the ESP: %v\n%s", err, out)
	}
	uki := get(contract.ESPEntries + "/" + m.Entry)
	sameAs(uki, "uki")
	if out, err = exec.Command(tool(t, "objdump", "binutils"), "-h", uki).CombinedOutput(); err != nil {
		t.Fatalf("objdump: %v\n%s", err, out)
	}
	for _, s := range []string{".osrel", ".cmdline", ".linux", ".initrd"} {
		if !strings.Contains(string(out), s) {
			t.Errorf("UKI lacks section %s:\n%s", s, out)
		}
	}
	conf := get(contract.ESPLoaderConf)
	if b, _ := os.ReadFile(conf); !strings.Contains(string(b), "editor no") {
		t.Errorf("loader.conf lets the menu edit the command line:\n%s", b)
	}
}

func TestVerityMatchesVeritysetup(t *testing.T) {
	m := loadManifest(t)
	disk := filepath.Join(buildDir, "disk.raw")
	ro, rs := partition(t, m, "root-a")
	vo, vs := partition(t, m, "verity-a")
	root := extract(t, disk, ro, int64(m.DataBlocks)*4096)
	hash := extract(t, disk, vo, vs)
	_ = rs
	out, err := exec.Command(tool(t, "veritysetup", "cryptsetup-bin"), "verify", root, hash, m.RootHash).CombinedOutput()
	if err != nil {
		t.Fatalf("veritysetup verify: %v\n%s", err, out)
	}
}

func TestSBOM(t *testing.T) {
	m := loadManifest(t)
	raw, err := os.ReadFile(filepath.Join(buildDir, "sbom.spdx.json"))
	if err != nil {
		t.Fatal(err)
	}
	var doc sbom.Document
	if err := json.Unmarshal(raw, &doc); err != nil {
		t.Fatalf("sbom.spdx.json: %v", err)
	}
	if err := doc.Check(); err != nil {
		t.Fatalf("sbom.spdx.json: %v", err)
	}
	if doc.SPDXVersion != "SPDX-2.3" {
		t.Errorf("spdxVersion %q", doc.SPDXVersion)
	}
	want := map[string]bool{"linux-image-6.1.0-50-cloud-amd64": false, "busybox-static": false, "github.com/BurntSushi/toml": false, "/usr/bin/apiserver": false, "/usr/sbin/init": false}
	imageSum := false
	for _, p := range doc.Packages {
		if _, ok := want[p.Name]; ok {
			want[p.Name] = true
		}
		for _, c := range p.Checksums {
			if c.Value == m.Outputs["disk.raw"].SHA256 {
				imageSum = true
			}
		}
	}
	for name, seen := range want {
		if !seen {
			t.Errorf("SBOM lacks %s", name)
		}
	}
	if !imageSum {
		t.Error("SBOM does not carry the image's sha256")
	}
}

// minDeclaredLicences is the share of Debian packages whose SBOM entry must declare a licence. The
// rest have a copyright file that names no single licence for the package (glibc's and GCC's prose,
// see sbom.DebianLicense) or none in the package itself (libgcc-s1's doc directory is a link).
const minDeclaredLicences = 0.9

// TestSBOMWithSPDXTools reads the SBOM with the SPDX project's own Go library, as a consumer would,
// and checks the licences it declares.
func TestSBOMWithSPDXTools(t *testing.T) {
	m := loadManifest(t)
	raw, err := os.ReadFile(filepath.Join(buildDir, "sbom.spdx.json"))
	if err != nil {
		t.Fatal(err)
	}
	// The reader converts older versions to the one asked for, so look at what the file says.
	var head struct {
		SPDXVersion string `json:"spdxVersion"`
	}
	if err := json.Unmarshal(raw, &head); err != nil || head.SPDXVersion != v2_3.Version {
		t.Fatalf("sbom.spdx.json: spdxVersion %q (%v), want %q", head.SPDXVersion, err, v2_3.Version)
	}
	var doc v2_3.Document
	if err := spdxjson.ReadInto(bytes.NewReader(raw), &doc); err != nil {
		t.Fatalf("sbom.spdx.json does not read as SPDX: %v", err)
	}

	kernelDeb := "linux-image-" + m.Kernel
	var debs, undeclared []string
	kernels := 0
	for _, p := range doc.Packages {
		switch {
		case p.PackageName == "linux" && p.PackageVersion == m.Kernel, p.PackageName == kernelDeb:
			kernels++
			if p.PackageLicenseDeclared != "GPL-2.0-only" {
				t.Errorf("%s %s: declared licence %q, want GPL-2.0-only", p.PackageName, p.PackageVersion, p.PackageLicenseDeclared)
			}
		}
		if !isDebianPackage(p) {
			continue
		}
		debs = append(debs, p.PackageName)
		if lic := p.PackageLicenseDeclared; lic == "" || lic == "NOASSERTION" || lic == "NONE" {
			undeclared = append(undeclared, p.PackageName)
		}
	}
	if kernels != 2 {
		t.Errorf("SBOM has %d of the kernel (linux %s) and its package %s, want both", kernels, m.Kernel, kernelDeb)
	}
	if len(debs) < len(m.Packages) {
		t.Fatalf("SBOM has %d Debian packages, the manifest %d", len(debs), len(m.Packages))
	}
	declared := len(debs) - len(undeclared)
	t.Logf("%d of %d Debian packages (%.1f%%) declare a licence; not: %s",
		declared, len(debs), 100*float64(declared)/float64(len(debs)), strings.Join(undeclared, ", "))
	if float64(declared) < minDeclaredLicences*float64(len(debs)) {
		t.Errorf("only %d of %d Debian packages declare a licence, want at least %.0f%%; NOASSERTION: %s",
			declared, len(debs), 100*minDeclaredLicences, strings.Join(undeclared, ", "))
	}
}

// isDebianPackage tells the SBOM's Debian packages by their package URL.
func isDebianPackage(p *v2_3.Package) bool {
	for _, r := range p.PackageExternalReferences {
		if r.RefType == "purl" && strings.HasPrefix(r.Locator, "pkg:deb/debian/") {
			return true
		}
	}
	return false
}

// TestFormats cross-checks every converted disk against disk.raw with qemu-img.
// TestFormats checks each disk format against disk.raw with qemu-img, for amd64 and for arm64.
func TestFormats(t *testing.T) {
	t.Run("amd64", func(t *testing.T) { checkFormats(t, buildDir) })
	t.Run("arm64", func(t *testing.T) {
		dir, _ := archBuildDir(t, "qemu", contract.ARM64)
		checkFormats(t, dir)
	})
}

func checkFormats(t *testing.T, buildDir string) {
	qimg := tool(t, "qemu-img", "qemu-utils")
	raw := filepath.Join(buildDir, "disk.raw")
	cases := []struct {
		file, format string
		check        bool
	}{
		{"disk.qcow2", "qcow2", true},
		{"disk.vmdk", "vmdk", true},
		{"disk.vhd", "vpc", false},
	}
	for _, c := range cases {
		t.Run(c.format, func(t *testing.T) {
			p := filepath.Join(buildDir, c.file)
			if c.check {
				if out, err := exec.Command(qimg, "check", "-f", c.format, p).CombinedOutput(); err != nil {
					t.Fatalf("qemu-img check: %v\n%s", err, out)
				}
			}
			args := []string{"compare", "-f", "raw", "-F", c.format, raw, p}
			if c.format == "vpc" {
				// Plain qemu-img sizes a VHD from an unknown creator by its CHS geometry; the disk's
				// size is one the geometry describes exactly, so it sees the whole disk.
				info, err := exec.Command(qimg, "info", "--output=json", "-f", "vpc", p).CombinedOutput()
				st, serr := os.Stat(raw)
				if err != nil || serr != nil || !strings.Contains(string(info), fmt.Sprintf(`"virtual-size": %d,`, st.Size())) {
					t.Errorf("qemu-img info -f vpc: %v %v\n%s", err, serr, info)
				}
			}
			if out, err := exec.Command(qimg, args...).CombinedOutput(); err != nil || !strings.Contains(string(out), "Images are identical") {
				t.Fatalf("qemu-img compare: %v\n%s", err, out)
			}
		})
	}
	t.Run("gce", func(t *testing.T) {
		dir := t.TempDir()
		if out, err := exec.Command("tar", "-xzf", filepath.Join(buildDir, "disk.tar.gz"), "-C", dir).CombinedOutput(); err != nil {
			t.Fatalf("tar: %v %s", err, out)
		}
		if out, err := exec.Command("cmp", raw, filepath.Join(dir, "disk.raw")).CombinedOutput(); err != nil {
			t.Fatalf("disk.raw in disk.tar.gz differs: %v %s", err, out)
		}
	})
}
