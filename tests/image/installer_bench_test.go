package image

import (
	"fmt"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"testing"
	"time"

	"github.com/ballast-os/ballast/tests/qemu"

	"github.com/klauspost/compress/zstd"
)

// BenchmarkInstaller measures the installer ISO of the metal variant: its size, and under TCG
// here the time from the ISO's boot to the installer's end and from there to the installed
// host's ready line (Secure Boot firmware in setup mode, as TestInstallerISO boots it).
func BenchmarkInstaller(b *testing.B) {
	dir := variantBuildDirB(b, "metal")
	iso := filepath.Join(dir, "installer.iso")
	st, err := os.Stat(iso)
	if err != nil {
		b.Fatal(err)
	}
	for range b.N {
		target := filepath.Join(b.TempDir(), "target.raw")
		if err := os.WriteFile(target, nil, 0o644); err != nil {
			b.Fatal(err)
		}
		if err := os.Truncate(target, 3<<30); err != nil {
			b.Fatal(err)
		}
		vars := filepath.Join(b.TempDir(), "vars.fd")
		tmpl, err := os.ReadFile(qemu.DefaultOVMFVarsTemplate)
		if err != nil {
			b.Fatal(err)
		}
		if err := os.WriteFile(vars, tmpl, 0o600); err != nil {
			b.Fatal(err)
		}
		start := time.Now()
		installed := bootUntil(b, qemu.Config{SecureBoot: true, OVMFVars: vars, AllowReboot: true, NoNetwork: true,
			Drives: []qemu.Drive{{Path: iso, Bus: qemu.BusAHCI, CDROM: true, Boot: true}, {Path: target, Bus: qemu.BusNVMe}}},
			installDoneRE)
		install := installed.Sub(start)
		start = time.Now()
		ready := bootUntil(b, qemu.Config{Disk: target, DiskBus: qemu.BusNVMe, SecureBoot: true, OVMFVars: vars,
			AllowReboot: true, NoNetwork: true, TPMState: filepath.Join(b.TempDir(), "tpm")}, readyRE)
		b.ReportMetric(install.Seconds(), "install_s")
		b.ReportMetric(ready.Sub(start).Seconds(), "installed_ready_s")
		b.ReportMetric((install + ready.Sub(start)).Seconds(), "iso_to_ready_s")
	}
	b.ReportMetric(float64(st.Size())/(1<<20), "iso_MiB")
}

// bootUntil starts a VM and returns when its console matched re; the VM is killed then.
func bootUntil(b *testing.B, cfg qemu.Config, re *regexp.Regexp) time.Time {
	b.Helper()
	cfg.LogFile = filepath.Join(b.TempDir(), "console.log")
	cfg.Timeout = 10 * time.Minute
	vm, err := startVM(b, cfg)
	if err != nil {
		b.Fatal(err)
	}
	defer vm.Kill()
	if _, err := vm.Expect(regexp.MustCompile(re.String()+`|ballast: (error: boot failed|install (stopped|failed))`), 8*time.Minute); err != nil {
		log, _ := os.ReadFile(cfg.LogFile)
		b.Fatalf("%v\n%s", err, log)
	}
	if !re.MatchString(vm.Console()) {
		b.Fatalf("no %q:\n%s", re, vm.Console())
	}
	return time.Now()
}

// BenchmarkVariantSizes reports each variant's disk image compressed with zstd (level 3, what a
// download would carry), beside the qemu variant's, and the metal installer ISO.
func BenchmarkVariantSizes(b *testing.B) {
	for _, v := range []string{"qemu", "metal", "aws", "vmware"} {
		dir := variantBuildDirB(b, v)
		f, err := os.Open(filepath.Join(dir, "disk.raw"))
		if err != nil {
			b.Fatal(err)
		}
		var n countWriter
		enc, err := zstd.NewWriter(&n, zstd.WithEncoderLevel(zstd.SpeedDefault))
		if err != nil {
			b.Fatal(err)
		}
		if _, err := io.Copy(enc, f); err != nil {
			b.Fatal(err)
		}
		enc.Close()
		f.Close()
		b.ReportMetric(float64(n)/(1<<20), v+"_zstd_MiB")
	}
}

type countWriter int64

func (c *countWriter) Write(p []byte) (int, error) { *c += countWriter(len(p)); return len(p), nil }

// variantBuildDirB is variantBuildDir for a benchmark: the build must exist (make variants).
func variantBuildDirB(b *testing.B, name string) string {
	b.Helper()
	dir := filepath.Join(filepath.Dir(buildDir), name)
	if name == "qemu" {
		dir = buildDir
	}
	if _, err := os.Stat(filepath.Join(dir, "manifest.json")); err != nil {
		b.Fatal(fmt.Errorf("%s: no build (make variants): %w", dir, err))
	}
	return dir
}
