package image

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/ballast-os/ballast/builder/pipeline"
	"github.com/ballast-os/ballast/tests/qemu"
	"github.com/ballast-os/ballast/tests/testutil"
	"github.com/ballast-os/ballast/trust/sbkeys"
)

var readyUptimeRE = regexp.MustCompile(`\[\s*([0-9.]+)\] ballast: ready version=`)

// BenchmarkSecureBootBoot boots one signed image side by side on two machines under TCG: one with
// Secure Boot on and a TPM (/local unlocked with the sealed key), one with neither (plain /local).
// It reports each machine's second boot to the ready line (wall clock from QEMU's start, and the
// kernel's uptime at the line) and the first boot's encryption of /local.
func BenchmarkSecureBootBoot(b *testing.B) {
	testutil.Root(b, "boots QEMU guests")
	testutil.Tool(b, "swtpm", "swtpm")
	dir := b.TempDir()
	keys := filepath.Join(dir, "keys")
	if err := sbkeys.Init(keys, "Ballast bench", time.Unix(1767225600, 0)); err != nil {
		b.Fatal(err)
	}
	repo := testutil.RepoRoot(b)
	v, err := os.ReadFile(filepath.Join(repo, "variants", "qemu.toml"))
	if err != nil {
		b.Fatal(err)
	}
	vf := filepath.Join(dir, "qemu.toml")
	os.WriteFile(vf, []byte(string(v)+fmt.Sprintf("\n[secure-boot]\nkeys = %q\n", keys)), 0o644)
	out := filepath.Join(dir, "build")
	if _, err := pipeline.Build(b.Context(), pipeline.Options{Repo: repo, VariantFile: vf, Out: out, Formats: []string{"raw"}}); err != nil {
		b.Fatal(err)
	}
	for range b.N {
		var format, unlock float64
		type result struct{ wall, uptime float64 }
		boot := func(secure bool) result {
			d := b.TempDir()
			disk := filepath.Join(d, "disk.raw")
			if o, err := exec.Command("cp", "--sparse=always", filepath.Join(out, "disk.raw"), disk).CombinedOutput(); err != nil {
				b.Fatalf("copy: %v %s", err, o)
			}
			os.Truncate(disk, 1<<30)
			vars := filepath.Join(d, "vars.fd")
			tmpl, _ := os.ReadFile(qemu.DefaultOVMFVarsTemplate)
			os.WriteFile(vars, tmpl, 0o600)
			cfg := qemu.Config{Disk: disk, OVMFVars: vars, NoNetwork: true, Timeout: 5 * time.Minute}
			if secure {
				cfg.SecureBoot, cfg.TPMState = true, filepath.Join(d, "tpm")
			}
			var last result
			// A machine in setup mode (both firmware builds start so) enrolls the owner's keys
			// at its first boot and resets; then the first boot proper, then the measured one.
			ready := 0
			for i := 0; ready < 2; i++ {
				if i == 4 {
					b.Fatalf("secure=%v: %d boots, %d ready", secure, i, ready)
				}
				start := time.Now()
				vm, err := qemu.Start(b.Context(), cfg)
				if err != nil {
					b.Fatal(err)
				}
				m, err := vm.Expect(readyUptimeRE, 3*time.Minute)
				if err != nil {
					con := vm.Console()
					vm.Kill()
					if strings.Contains(con, "Enrolling secure boot keys") && i == 0 {
						continue
					}
					b.Fatalf("secure=%v boot %d: %v\n%s", secure, i, err, con)
				}
				ready++
				last = result{time.Since(start).Seconds(), 0}
				last.uptime, _ = strconv.ParseFloat(m[1], 64)
				con := vm.Console()
				if f := regexp.MustCompile(`ballast: local encrypted .* in ([0-9.]+)s`).FindStringSubmatch(con); f != nil {
					format, _ = strconv.ParseFloat(f[1], 64)
				}
				if f := regexp.MustCompile(`ballast: local unlocked with the TPM in ([0-9.]+)s`).FindStringSubmatch(con); f != nil {
					unlock, _ = strconv.ParseFloat(f[1], 64)
				}
				if ready == 2 && secure != strings.Contains(con, "ballast: local unlocked") {
					b.Fatalf("secure=%v: second boot and /local:\n%s", secure, con)
				}
				vm.Kill()
			}
			return last
		}
		on, off := boot(true), boot(false)
		b.ReportMetric(on.wall, "s-ready-sb+tpm")
		b.ReportMetric(off.wall, "s-ready-plain")
		b.ReportMetric(on.wall-off.wall, "s-extra")
		b.ReportMetric(on.uptime, "s-uptime-sb+tpm")
		b.ReportMetric(off.uptime, "s-uptime-plain")
		b.ReportMetric(format, "s-encrypt-first-boot")
		b.ReportMetric(unlock, "s-unlock")
		summary, _ := json.Marshal(map[string]float64{"ready_sb_tpm": on.wall, "ready_plain": off.wall, "uptime_sb_tpm": on.uptime, "uptime_plain": off.uptime, "encrypt": format, "unlock": unlock})
		b.Logf("%s", summary)
	}
}
