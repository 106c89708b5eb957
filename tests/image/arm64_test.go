package image

import (
	"debug/pe"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ballast-os/ballast/apiserver/client"
	"github.com/ballast-os/ballast/builder/pipeline"
	"github.com/ballast-os/ballast/builder/sbom"
	"github.com/ballast-os/ballast/contract"
	"github.com/ballast-os/ballast/tests/qemu"
	"github.com/ballast-os/ballast/trust/sbkeys"
)

// archBuildDir is where the Makefile built a variant for another architecture: build/<name>-<arch>
// beside buildDir's build/qemu.
func archBuildDir(t testing.TB, variant string, arch contract.Arch) (string, *pipeline.Manifest) {
	t.Helper()
	dir := filepath.Join(filepath.Dir(buildDir), pipeline.OutName(variant, arch))
	b, err := os.ReadFile(filepath.Join(dir, "manifest.json"))
	if err != nil {
		t.Fatalf("the %s %s image is not built (make test builds it: ballast build --variant %s --arch %s): %v", variant, arch, variant, arch, err)
	}
	var m pipeline.Manifest
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatalf("%s/manifest.json: %v", dir, err)
	}
	if m.Arch != arch || m.Variant != variant {
		t.Fatalf("%s/manifest.json says %s %s, want %s %s", dir, m.Variant, m.Arch, variant, arch)
	}
	return dir, &m
}

// peMachine returns the COFF machine of an EFI binary.
func peMachine(t testing.TB, path string) uint16 {
	t.Helper()
	f, err := pe.Open(path)
	if err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	defer f.Close()
	return f.FileHeader.Machine
}

// espGet copies a file out of a disk image's ESP with mtools.
func espGet(t testing.TB, disk string, m *pipeline.Manifest, path string) string {
	t.Helper()
	var off int64 = -1
	for _, p := range m.Partitions {
		if p.Name == string(contract.PartESP) {
			off = p.Offset
		}
	}
	if off < 0 {
		t.Fatal("manifest has no esp")
	}
	got := filepath.Join(t.TempDir(), filepath.Base(path))
	if out, err := exec.Command(tool(t, "mcopy", "mtools"), "-i", fmt.Sprintf("%s@@%d", disk, off), "::/"+path, got).CombinedOutput(); err != nil {
		t.Fatalf("mcopy %s: %v\n%s", path, err, out)
	}
	return got
}

// TestARM64Builds checks the arm64 builds of qemu, aws and metal from outside: the manifest's
// architecture, the DPS arm64 root and verity partition types as sgdisk names them, an aarch64
// systemd-boot as the ESP's removable-media loader and an aarch64 UKI, aarch64 programs in the
// root, and the AMI description's architecture.
func TestARM64Builds(t *testing.T) {
	for _, variant := range []string{"qemu", "aws", "metal"} {
		t.Run(variant, func(t *testing.T) {
			dir, m := archBuildDir(t, variant, contract.ARM64)
			disk := filepath.Join(dir, "disk.raw")
			if out, err := exec.Command(tool(t, "sgdisk", "gdisk"), "-v", disk).CombinedOutput(); err != nil || !strings.Contains(string(out), "No problems found") {
				t.Fatalf("sgdisk -v: %v\n%s", err, out)
			}
			for i, p := range m.Partitions {
				want := map[string]string{
					string(contract.PartRootA): "Linux ARM64 root (/)", string(contract.PartRootB): "Linux ARM64 root (/)",
					string(contract.PartVerityA): "Linux ARM64 root verity", string(contract.PartVerityB): "Linux ARM64 root verity",
				}[p.Name]
				if want == "" {
					continue
				}
				out, err := exec.Command(tool(t, "sgdisk", "gdisk"), "-i", fmt.Sprint(i+1), disk).CombinedOutput()
				if err != nil || !strings.Contains(string(out), "("+want+")") {
					t.Errorf("partition %d (%s): want type %q: %v\n%s", i+1, p.Name, want, err, out)
				}
			}
			loader := espGet(t, disk, m, contract.ARM64.ESPLoaderPath())
			uki := espGet(t, disk, m, contract.ESPEntries+"/"+m.Entry)
			for _, f := range []string{loader, uki} {
				if mach := peMachine(t, f); mach != contract.ARM64.Info().PEMachine {
					t.Errorf("%s: PE machine %#x, want arm64's %#x", filepath.Base(f), mach, contract.ARM64.Info().PEMachine)
				}
			}
			if m.Signing != nil {
				// Signed as the firmware checks it: an arm64 UKI with a gap between its sections
				// was refused by AAVMF ("Access Denied") while our own verifier agreed with itself.
				sbverify := tool(t, "sbverify", "sbsigntool")
				for _, f := range []string{loader, uki} {
					if o, err := exec.Command(sbverify, "--cert", filepath.Join(repoRoot(), "build", "keys", sbkeys.DBCert), f).CombinedOutput(); err != nil {
						t.Errorf("sbverify %s: %v\n%s", filepath.Base(f), err, o)
					}
				}
			}
			var img contract.Image
			if err := readJSONFile(filepath.Join(dir, "work", "rootfs", strings.TrimPrefix(contract.ImageInfoPath, "/")), &img); err != nil {
				t.Fatal(err)
			}
			if img.Arch != string(contract.ARM64) {
				t.Errorf("image.json arch %q", img.Arch)
			}
			out, err := exec.Command("file", "-b", filepath.Join(dir, "work", "rootfs", "usr", "bin", "apiserver")).CombinedOutput()
			if err != nil || !strings.Contains(string(out), "ARM aarch64") || !strings.Contains(string(out), "statically linked") {
				t.Errorf("apiserver in the root: %v %s", err, out)
			}
			// Every output the variant asks for is there, as the manifest records it.
			want := map[string][]string{"qemu": {"disk.qcow2", "disk.vmdk", "disk.vhd", "disk.tar.gz"},
				"aws": {"disk.vmdk", "ami.json"}, "metal": {"installer.iso", "netboot/installer.efi", "netboot/disk.raw.zst"}}[variant]
			for _, name := range append(want, "disk.raw", "sbom.spdx.json", "update/payload.json") {
				fi, ok := m.Outputs[name]
				st, err := os.Stat(filepath.Join(dir, name))
				if !ok || err != nil || st.Size() != fi.Size {
					t.Errorf("output %s: in the manifest %v (%d bytes), on disk %v", name, ok, fi.Size, err)
				}
			}
			if variant == "metal" {
				// The installer's ESP (the ISO's El Torito image) boots arm64's systemd-boot.
				efi := filepath.Join(dir, "netboot", "installer.efi")
				if mach := peMachine(t, efi); mach != contract.ARM64.Info().PEMachine {
					t.Errorf("netboot installer UKI: PE machine %#x", mach)
				}
			}
			var doc sbom.Document
			if err := readJSONFile(filepath.Join(dir, "sbom.spdx.json"), &doc); err != nil {
				t.Fatal(err)
			}
			if err := doc.Check(); err != nil {
				t.Fatalf("sbom.spdx.json: %v", err)
			}
			var kernel bool
			for _, p := range doc.Packages {
				kernel = kernel || strings.HasPrefix(p.Name, "linux-image-") && strings.HasSuffix(p.Name, "-arm64")
			}
			if !kernel {
				t.Errorf("the SBOM names no arm64 kernel package")
			}
			if variant == "aws" {
				var ami struct {
					RegisterImage struct {
						Architecture string `json:"Architecture"`
					} `json:"register_image"`
				}
				if err := readJSONFile(filepath.Join(dir, "ami.json"), &ami); err != nil {
					t.Fatal(err)
				}
				if ami.RegisterImage.Architecture != "arm64" {
					t.Errorf("ami.json RegisterImage.Architecture %q, want arm64", ami.RegisterImage.Architecture)
				}
			}
		})
	}
}

// TestARM64BootUserDataPersistenceAndTamper boots the arm64 qemu image under AAVMF on QEMU's
// virt machine: it reaches the ready line with its user data, answers the API over mutual TLS
// saying it is arm64, keeps a setting across a reboot, and a copy with one root byte flipped
// stops at dm-verity.
func TestARM64BootUserDataPersistenceAndTamper(t *testing.T) {
	t.Parallel() // boots QEMU: see main_test.go
	dir, m := archBuildDir(t, "qemu", contract.ARM64)
	disk := filepath.Join(t.TempDir(), "disk.raw")
	if out, err := exec.Command("cp", "--sparse=always", filepath.Join(dir, "disk.raw"), disk).CombinedOutput(); err != nil {
		t.Fatalf("copy disk: %v %s", err, out)
	}
	if err := os.Truncate(disk, 2<<30); err != nil {
		t.Fatal(err)
	}
	cidata := makeCidata(t, "[settings]\nmotd = \"hello arm64 from user data\"\n")
	cfg, err := client.LoadPKI(filepath.Join(dir, "pki"))
	if err != nil {
		t.Fatal(err)
	}
	start := func() (*qemu.VM, *client.Client) {
		t.Helper()
		began := time.Now()
		vm, endpoint := bootRemoteArch(t, contract.ARM64, disk, cidata)
		t.Logf("QEMU start → ready line in %.1fs", time.Since(began).Seconds())
		if r := readyRE.FindStringSubmatch(vm.Console()); r == nil || r[1] != m.Version || r[2] != "qemu" || r[4] != m.RootHash {
			t.Fatalf("ready line %q does not match the manifest (version %s, roothash %s)", r, m.Version, m.RootHash)
		}
		return vm, remoteClient(t, endpoint, cfg)
	}

	vm, c := start()
	expect(t, vm, `^hello arm64 from user data$`)
	info, err := c.OS(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if info.Arch != string(contract.ARM64) || info.Variant != "qemu" || info.Version != m.Version {
		t.Fatalf("GET /os: %+v, want qemu %s on arm64", info, m.Version)
	}
	if _, err := c.Set(t.Context(), []string{"motd=kept across an arm64 reboot"}); err != nil {
		t.Fatal(err)
	}
	powerdown(t, vm)
	vm, c = start()
	expect(t, vm, `^kept across an arm64 reboot$`)
	got, err := c.Get(t.Context(), "settings.motd")
	if err != nil || !strings.Contains(fmt.Sprint(got), "kept across an arm64 reboot") {
		t.Fatalf("settings.motd after the reboot: %v %v", got, err)
	}
	powerdown(t, vm)

	t.Run("tampered root", func(t *testing.T) {
		flipRootByte(t, dir, m, disk)
		vm, err := startVM(t, qemu.Config{Arch: contract.ARM64, Disk: disk, Timeout: 5 * time.Minute})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { vm.Kill() })
		failsClosed(t, vm)
	})
}
