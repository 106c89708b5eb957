package pipeline

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"time"

	"github.com/ballast-os/ballast/apiserver/userdata"
	"github.com/ballast-os/ballast/contract"
	"github.com/ballast-os/ballast/images/installer"
	"github.com/ballast-os/ballast/images/uki"
)

// Output formats that are the installer rather than a conversion of disk.raw.
const (
	FormatISO     = "iso"     // installer.iso: the hybrid installer ISO
	FormatNetboot = "netboot" // netboot/: the installer UKI, install.json and the image, for HTTP boot or iPXE
)

// installerConf is the installer ISO's loader.conf: boot the installer at once, but let a user
// who holds a key edit its command line (ballast.install.disk=, ballast.userdata=), which
// systemd-stub honours only without Secure Boot.
const installerConf = `timeout 0
editor yes
auto-entries no
auto-firmware no
random-seed-mode off
`

// installerESP is the installer ESP image under work/.
const installerESP = "installer-esp.img"

// InstallerISO writes a copy of the installer ISO of the build in buildDir that carries user
// data (checked as the host will parse it) for every host it installs.
func InstallerISO(buildDir string, userData []byte, userDataName, out string) error {
	if _, err := userdata.Parse(userDataName, userData); err != nil {
		return err
	}
	work := filepath.Join(buildDir, "work")
	esp, err := os.ReadFile(filepath.Join(work, installerESP))
	if err != nil {
		return fmt.Errorf("%s is not the output of a build with the iso format: %w", buildDir, err)
	}
	manifest, err := os.ReadFile(filepath.Join(work, contract.InstallManifestFile))
	if err != nil {
		return err
	}
	// The copy's time stamps are fixed: the same build and user data give the same ISO.
	return installer.WriteISO(out, esp, manifest, filepath.Join(work, contract.InstallImageFile),
		installer.ISOOptions{Time: time.Unix(0, 0).UTC(), UserData: userData})
}

func (b *builder) formats() []string {
	if len(b.Formats) > 0 {
		return b.Formats
	}
	return b.v.Output.Formats
}

// writeInstaller writes the installer's artifacts when the formats ask for them: install.json
// and disk.raw.zst, the installer UKI (slot A's kernel and initramfs; its command line adds
// ballast.install), installer.iso, and netboot/.
func (b *builder) writeInstaller(context.Context) error {
	fs := b.formats()
	wantISO, wantNet := slices.Contains(fs, FormatISO), slices.Contains(fs, FormatNetboot)
	if !wantISO && !wantNet {
		return nil
	}
	b.step("installer: install.json, %s%s%s", contract.InstallImageFile,
		map[bool]string{true: ", installer.iso"}[wantISO], map[bool]string{true: ", netboot/"}[wantNet])
	var parts []installer.Region
	for _, p := range b.layout.Partitions {
		parts = append(parts, installer.Region{Name: string(p.Name), Offset: p.Offset, Size: p.Size})
	}
	zst := filepath.Join(b.work, contract.InstallImageFile)
	m, err := installer.Compress(b.diskPath, zst, installer.ImageOptions{Variant: b.v.Name, Version: b.version, Arch: b.arch, Partitions: parts})
	if err != nil {
		return err
	}
	manifest, err := installer.MarshalManifest(m)
	if err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(b.work, contract.InstallManifestFile), manifest, 0o644); err != nil {
		return err
	}
	if err := b.record(b.manifest.Files, contract.InstallImageFile, zst); err != nil {
		return err
	}

	isoUKI, err := b.installerUKI("")
	if err != nil {
		return err
	}
	t := time.Unix(b.epoch, 0).UTC()
	if wantISO {
		boot, err := b.installerBoot(isoUKI)
		if err != nil {
			return err
		}
		esp, err := installer.ESP(b.arch, boot, t, installer.VolumeID("installer-esp:"+b.rootHash))
		if err != nil {
			return err
		}
		// Kept for `ballast iso`, which writes copies that carry user data.
		if err := os.WriteFile(filepath.Join(b.work, installerESP), esp, 0o644); err != nil {
			return err
		}
		out := filepath.Join(b.Out, "installer.iso")
		if err := installer.WriteISO(out, esp, manifest, zst, installer.ISOOptions{Time: t}); err != nil {
			return err
		}
		if err := b.record(b.manifest.Outputs, "installer.iso", out); err != nil {
			return err
		}
	}
	if wantNet {
		netUKI := isoUKI
		if b.NetbootURL != "" {
			if netUKI, err = b.installerUKI(b.NetbootURL); err != nil {
				return err
			}
		}
		dir := filepath.Join(b.Out, "netboot")
		if err := os.RemoveAll(dir); err != nil {
			return err
		}
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return err
		}
		files := map[string][]byte{
			contract.InstallerUKIFile:    netUKI,
			contract.InstallManifestFile: manifest,
			"boot.ipxe":                  []byte(installer.IPXEScript(b.installerCmdline(""))),
		}
		for name, data := range files {
			if err := os.WriteFile(filepath.Join(dir, name), data, 0o644); err != nil {
				return err
			}
		}
		if err := installer.Copy(filepath.Join(dir, contract.InstallImageFile), zst); err != nil {
			return err
		}
		for _, name := range []string{contract.InstallerUKIFile, contract.InstallManifestFile, "boot.ipxe", contract.InstallImageFile} {
			if err := b.record(b.manifest.Outputs, "netboot/"+name, filepath.Join(dir, name)); err != nil {
				return err
			}
		}
	}
	return nil
}

// installerCmdline is slot A's command line with ballast.install, and the install source when
// one is baked in. The root words stay: they are what the initramfs checks its own image by.
func (b *builder) installerCmdline(source string) string {
	line := contract.ParseCmdline(b.cmdlines[contract.SlotA])
	line = append(line, contract.Flag(contract.ParamInstall))
	if source != "" {
		line = append(line, contract.KV(contract.ParamInstallSource, source))
	}
	s, err := line.Format()
	if err != nil {
		// Every word came from a line that formatted before.
		return b.cmdlines[contract.SlotA] + " " + contract.ParamInstall
	}
	return s
}

// installerUKI builds the installer's UKI: the same stub, kernel and initramfs as slot A's,
// signed the same way, with the installer's command line.
func (b *builder) installerUKI(netbootURL string) ([]byte, error) {
	source := ""
	if netbootURL != "" {
		source = netbootURL + "/" + contract.InstallManifestFile
	}
	stub, err := os.ReadFile(filepath.Join(b.stubDir, b.arch.SystemdStubFile()))
	if err != nil {
		return nil, fmt.Errorf("%s: %w", stubPackage, err)
	}
	linux, err := os.ReadFile(b.kernel.Vmlinuz)
	if err != nil {
		return nil, err
	}
	secs := uki.Sections{Linux: linux, Initrd: b.initrd, Cmdline: b.installerCmdline(source),
		OSRelease: b.osReleaseFields().EntryOSRelease(contract.SlotA), Uname: b.kernel.Version}
	if b.keys != nil {
		if secs.PCRPKey, err = b.keys.PCRPublicPEM(); err != nil {
			return nil, err
		}
	}
	img, err := b.signedUKI(stub, secs)
	if err != nil {
		return nil, fmt.Errorf("installer uki: %w", err)
	}
	return img, nil
}

// installerBoot is the installer ESP's content: systemd-boot (signed like the disk's), the
// installer UKI, and the enrollment files of a signed build, so a virtual machine in setup mode
// takes the owner's keys already at the installer's boot.
func (b *builder) installerBoot(ukiImg []byte) (installer.Boot, error) {
	loader, err := os.ReadFile(filepath.Join(b.work, b.loaderFile()))
	if err != nil {
		return installer.Boot{}, err
	}
	boot := installer.Boot{Loader: loader, LoaderConf: installerConf, UKI: ukiImg}
	if b.keys != nil {
		boot.LoaderConf += "secure-boot-enroll force\n"
		boot.Enroll = map[string][]byte{}
		for _, name := range contract.EnrollFiles {
			data, err := b.keys.Auth(name)
			if err != nil {
				return installer.Boot{}, err
			}
			boot.Enroll[name] = data
		}
	}
	return boot, nil
}
