package image

import (
	"bytes"
	"crypto/aes"
	"crypto/tls"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"golang.org/x/crypto/xts"

	"github.com/ballast-os/ballast/apiserver/client"
	"github.com/ballast-os/ballast/builder/pipeline"
	"github.com/ballast-os/ballast/contract"
	"github.com/ballast-os/ballast/images/gpt"
	"github.com/ballast-os/ballast/tests/qemu"
	"github.com/ballast-os/ballast/tests/testutil"
	"github.com/ballast-os/ballast/trust/sbkeys"
)

// bootReport is GET /report/boot as this test reads it.
type bootReport struct {
	SecureBoot         string               `json:"secure_boot"`
	Lockdown           string               `json:"lockdown"`
	KernelLockdown     string               `json:"kernel_lockdown"`
	Signed             bool                 `json:"signed"`
	TPM                *contract.TPMRecord  `json:"tpm"`
	Local              contract.LocalRecord `json:"local"`
	RecoveryKey        string               `json:"recovery_key"`
	RecoveryKeyPending bool                 `json:"recovery_key_pending"`
}

// sbMachine is one machine with Secure Boot firmware, its NVRAM and its TPM, booted again and
// again from one disk.
type sbMachine struct {
	disk, vars, tpm, seed string
	tls                   *tls.Config
	boots                 int
	vm                    *qemu.VM
	c                     *client.Client
}

// TestSecureBootAndEncryptedLocal builds qemu signed with fresh owner keys, and takes one machine
// (OVMF's Secure Boot build in setup mode, swtpm) through: enrollment on the first boot and a
// reboot into Secure Boot; /local encrypted with the key sealed to the TPM; a setting surviving a
// reboot that unlocks with the TPM; a UKI with a changed command line refused by the firmware; a
// replaced TPM that does not unlock; and the recovery key opening /local with cryptsetup here.
func TestSecureBootAndEncryptedLocal(t *testing.T) {
	t.Parallel() // boots QEMU: see main_test.go
	testutil.Root(t, "boots QEMU guests")
	testutil.Tool(t, "swtpm", "swtpm")
	cryptsetup := testutil.Tool(t, "cryptsetup", "cryptsetup-bin")
	testutil.Tool(t, "sbverify", "sbsigntool")
	testutil.Tool(t, "e2fsck", "e2fsprogs")
	testutil.Need(t, fileExists(qemu.SecureBootOVMFCode), "%s (Debian package ovmf)", qemu.SecureBootOVMFCode)

	out, keys := buildSigned(t)
	m := loadManifestAt(t, out)

	// The boot chain is signed with the db key: sbverify checks each PE like the firmware does.
	for _, f := range []string{"systemd-bootx64.efi", "uki-a.efi", "uki-b.efi"} {
		p := filepath.Join(out, "work", f)
		if o, err := exec.Command("sbverify", "--cert", filepath.Join(keys, sbkeys.DBCert), p).CombinedOutput(); err != nil {
			t.Fatalf("sbverify %s: %v\n%s", f, err, o)
		}
	}
	if m.Signing == nil || len(m.PCR11[contract.SlotA]) != 64 {
		t.Fatalf("manifest: signing %+v, pcr11 %v", m.Signing, m.PCR11)
	}
	// Signing keeps builds reproducible: the same keys and inputs give the same bytes.
	again := rebuildSigned(t, out)
	for _, f := range []string{"disk.raw", "work/uki-a.efi", "work/uki-b.efi", "work/systemd-bootx64.efi"} {
		a, _ := os.ReadFile(filepath.Join(out, f))
		b, _ := os.ReadFile(filepath.Join(again, f))
		if len(a) == 0 || !bytes.Equal(a, b) {
			t.Errorf("%s differs between two signed builds", f)
		}
	}

	// A machine without a TPM does not boot this image (without-tpm = "refuse") and writes nothing.
	t.Run("no TPM", func(t *testing.T) {
		disk := copyFile(t, filepath.Join(out, "disk.raw"))
		vm, err := startVM(t, qemu.Config{Disk: disk, AllowReboot: true, NoNetwork: true, Timeout: 4 * time.Minute})
		if err != nil {
			t.Fatal(err)
		}
		defer vm.Kill()
		if _, err := vm.Expect(regexp.MustCompile(`ballast: error: local: .*has no TPM.*nothing was written`), 3*time.Minute); err != nil {
			t.Errorf("no TPM: %v\n%s", err, vm.Console())
		}
		if strings.Contains(vm.Console(), "ballast: ready") {
			t.Errorf("no TPM: the host became ready")
		}
	})

	mc := newSBMachine(t, out)
	motd := fmt.Sprintf("sealed-%d", time.Now().UnixNano())

	// Boot 1: systemd-boot enrolls db, KEK and PK (a 15 s countdown) and resets; the firmware
	// is then in user mode and boots the signed chain; the initramfs encrypts /local.
	mc.start(t, true)
	if _, err := mc.vm.Expect(regexp.MustCompile(`Enrolling secure boot keys from directory`), 2*time.Minute); err != nil {
		t.Fatalf("no enrollment: %v", err)
	}
	formatted := mc.expect(t, `ballast: local encrypted \(LUKS2, .*\) in ([0-9.]+)s`)
	recovery := mc.expect(t, `ballast: local:     ([cbdefghijklnrtuv]{8}(?:-[cbdefghijklnrtuv]{8}){7})`)[1]
	mc.ready(t)
	rep := mc.report(t)
	// The kernel locked itself down because Secure Boot is on, before Ballast raised anything.
	if rep.SecureBoot != "enabled" || rep.KernelLockdown != "integrity" || rep.Lockdown != "integrity" && rep.Lockdown != "confidentiality" || !rep.Signed {
		t.Errorf("boot 1: secure boot %q, kernel lockdown %q, lockdown %q, signed %v", rep.SecureBoot, rep.KernelLockdown, rep.Lockdown, rep.Signed)
	}
	if rep.Local.State != contract.LocalEncrypted || !rep.Local.Formatted || fmt.Sprint(rep.Local.SealedPCRs) != "[7 11]" {
		t.Errorf("boot 1: /local %+v", rep.Local)
	}
	if rep.TPM == nil || !rep.TPM.PCR11Signed || !rep.TPM.LeftInitrd || rep.TPM.PCRs[11] != m.PCR11[contract.SlotA] {
		t.Errorf("boot 1: TPM %+v; manifest predicts PCR 11 %s", rep.TPM, m.PCR11[contract.SlotA])
	}
	if rep.RecoveryKey != recovery || !rep.RecoveryKeyPending {
		t.Errorf("boot 1: recovery key in the report %q (pending %v), console %q", rep.RecoveryKey, rep.RecoveryKeyPending, recovery)
	}
	osInfo, err := mc.c.OS(t.Context())
	if err != nil || osInfo.SecureBoot != "enabled" {
		t.Errorf("GET /os: %+v %v", osInfo, err)
	}
	if _, err := mc.c.Set(t.Context(), []string{"settings.motd=" + motd}); err != nil {
		t.Fatal(err)
	}
	t.Logf("boot 1: enrolled, encrypted /local in %ss", formatted[1])
	mc.stop(t)

	// Boot 2: the TPM unseals, the setting is there, the recovery key is still offered until
	// acknowledged.
	mc.start(t, false)
	mc.expect(t, `ballast: local unlocked with the TPM`)
	mc.ready(t)
	if s, err := mc.c.Get(t.Context(), "settings.motd"); err != nil || !strings.Contains(fmt.Sprint(s), "motd:"+motd+"]") {
		t.Errorf("boot 2: motd %v %v, want %s", s, err, motd)
	}
	rep = mc.report(t)
	if rep.Local.State != contract.LocalEncrypted || rep.Local.Formatted || rep.RecoveryKey != recovery {
		t.Errorf("boot 2: /local %+v, recovery key %q", rep.Local, rep.RecoveryKey)
	}
	if _, err := mc.c.Do(t.Context(), "POST", "/actions/report/boot/acknowledge-recovery-key", nil); err != nil {
		t.Fatalf("acknowledge the recovery key: %v", err)
	}
	if rep = mc.report(t); rep.RecoveryKey != "" || rep.RecoveryKeyPending {
		t.Errorf("after acknowledging: recovery key %q pending %v", rep.RecoveryKey, rep.RecoveryKeyPending)
	}
	mc.stop(t)

	// A UKI with one changed byte in its command line: the firmware refuses it.
	tampered := copyFile(t, mc.disk)
	tamperCmdline(t, tampered, m)
	func() {
		saved := mc.disk
		mc.disk = tampered
		defer func() { mc.disk = saved }()
		mc.start(t, false)
		if _, err := mc.vm.Expect(regexp.MustCompile(`(?i)(access denied|security violation)`), 2*time.Minute); err != nil {
			t.Errorf("tampered UKI: the firmware did not refuse it: %v", err)
		}
		if strings.Contains(mc.vm.Console(), "ballast: initramfs") {
			t.Errorf("tampered UKI: the initramfs ran")
		}
		mc.vm.Kill()
	}()

	// A new TPM (the disk moved to another machine, or the TPM cleared): /local stays locked,
	// the boot stops with the reason, and nothing is lost.
	mc.tpm = filepath.Join(t.TempDir(), "other-tpm")
	mc.start(t, false)
	if _, err := mc.vm.Expect(regexp.MustCompile(`ballast: error: .*stays locked: .*TPM cannot load the sealed disk key`), 3*time.Minute); err != nil {
		t.Errorf("replaced TPM: %v", err)
	}
	if _, err := mc.vm.Expect(regexp.MustCompile(`ballast: ready`), 5*time.Second); err == nil {
		t.Errorf("replaced TPM: the host became ready")
	}
	mc.vm.Kill()

	// The recovery key opens /local with cryptsetup, and what it opens is the file system with the
	// setting in it.
	// The partition as the first boot grew it: the GPT on the disk, not the manifest.
	off, size := grownPartition(t, mc.disk, string(contract.PartData))
	data := extract(t, mc.disk, off, size)
	keyFile := filepath.Join(t.TempDir(), "recovery")
	os.WriteFile(keyFile, []byte(recovery), 0o600)
	if o, err := exec.Command(cryptsetup, "open", "--test-passphrase", "--key-file", keyFile, data).CombinedOutput(); err != nil {
		t.Fatalf("cryptsetup accepts no recovery key: %v\n%s", err, o)
	}
	dump, err := exec.Command(cryptsetup, "luksDump", "--dump-volume-key", "--batch-mode", "--key-file", keyFile, data).CombinedOutput()
	if err != nil {
		t.Fatalf("cryptsetup luksDump --dump-volume-key: %v\n%s", err, dump)
	}
	plain := decryptLUKS2(t, data, volumeKey(t, string(dump)))
	if o, err := exec.Command("e2fsck", "-fn", plain).CombinedOutput(); err != nil {
		t.Errorf("e2fsck of /local opened with the recovery key: %v\n%s", err, o)
	}
	if b, _ := os.ReadFile(plain); !bytes.Contains(b, []byte(motd)) {
		t.Errorf("/local opened with the recovery key lacks the setting %q", motd)
	}
	if b, _ := os.ReadFile(data); bytes.Contains(b, []byte(motd)) {
		t.Errorf("the data partition holds the setting %q in clear", motd)
	}
}

// buildSigned makes owner keys and builds the qemu variant signed with them, /local refused
// without a TPM.
func buildSigned(t *testing.T) (out, keys string) {
	t.Helper()
	repo := testutil.RepoRoot(t)
	dir := t.TempDir()
	keys = filepath.Join(dir, "keys")
	if err := sbkeys.Init(keys, "Ballast test owner", time.Unix(1767225600, 0)); err != nil {
		t.Fatal(err)
	}
	v, err := os.ReadFile(filepath.Join(repo, "variants", "qemu.toml"))
	if err != nil {
		t.Fatal(err)
	}
	text := strings.Replace(string(v), `without-tpm = "plain"`, `without-tpm = "refuse"`, 1)
	text += fmt.Sprintf("\n[secure-boot]\nkeys = %q\n", keys)
	vf := filepath.Join(dir, "qemu.toml")
	if err := os.WriteFile(vf, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	out = filepath.Join(dir, "build")
	start := time.Now()
	if _, err := pipeline.Build(t.Context(), pipeline.Options{Repo: repo, VariantFile: vf, Out: out, Formats: []string{"raw"}}); err != nil {
		t.Fatalf("build signed: %v", err)
	}
	t.Logf("built the signed image in %.1fs", time.Since(start).Seconds())
	return out, keys
}

// rebuildSigned builds the signed variant of out again into a directory of its own.
func rebuildSigned(t *testing.T, out string) string {
	t.Helper()
	again := filepath.Join(t.TempDir(), "again")
	vf := filepath.Join(filepath.Dir(out), "qemu.toml")
	if _, err := pipeline.Build(t.Context(), pipeline.Options{Repo: testutil.RepoRoot(t), VariantFile: vf, Out: again, Formats: []string{"raw"}}); err != nil {
		t.Fatalf("build signed again: %v", err)
	}
	return again
}

func loadManifestAt(t testing.TB, dir string) *pipeline.Manifest {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(dir, "manifest.json"))
	if err != nil {
		t.Fatal(err)
	}
	var m pipeline.Manifest
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatal(err)
	}
	return &m
}

// grownPartition reads a partition's extent from the disk's primary GPT.
func grownPartition(t *testing.T, disk, name string) (offset, size int64) {
	t.Helper()
	f, err := os.Open(disk)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	tbl, err := gpt.ReadPrimary(f, 512)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range tbl.Partitions() {
		if p.Name == name {
			return int64(p.FirstLBA) * 512, int64(p.Sectors()) * 512
		}
	}
	t.Fatalf("%s: no partition %s", disk, name)
	return 0, 0
}

func fileExists(p string) bool { _, err := os.Stat(p); return err == nil }

func copyFile(t testing.TB, src string) string {
	t.Helper()
	dst := filepath.Join(t.TempDir(), filepath.Base(src))
	if o, err := exec.Command("cp", "--sparse=always", src, dst).CombinedOutput(); err != nil {
		t.Fatalf("copy %s: %v %s", src, err, o)
	}
	return dst
}

func newSBMachine(t *testing.T, out string) *sbMachine {
	t.Helper()
	dir := t.TempDir()
	mc := &sbMachine{disk: filepath.Join(dir, "disk.raw"), vars: filepath.Join(dir, "vars.fd"), tpm: filepath.Join(dir, "tpm")}
	if o, err := exec.Command("cp", "--sparse=always", filepath.Join(out, "disk.raw"), mc.disk).CombinedOutput(); err != nil {
		t.Fatalf("copy disk: %v %s", err, o)
	}
	if err := os.Truncate(mc.disk, 1<<30); err != nil {
		t.Fatal(err)
	}
	// A new machine: OVMF's variable store without keys, so the firmware is in setup mode.
	vars, err := os.ReadFile(qemu.DefaultOVMFVarsTemplate)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(mc.vars, vars, 0o600); err != nil {
		t.Fatal(err)
	}
	tlsCfg, err := client.LoadPKI(filepath.Join(out, "pki"))
	if err != nil {
		t.Fatal(err)
	}
	mc.tls = tlsCfg
	mc.seed = makeSeed(t, "[settings]\nmotd = \"first boot\"\n", nil)
	return mc
}

// start boots the machine; reboots inside the VM are allowed only for the enrollment reset.
func (mc *sbMachine) start(t *testing.T, allowReboot bool) {
	t.Helper()
	port := freePort(t)
	mc.boots++
	log := filepath.Join(t.TempDir(), fmt.Sprintf("console-%d.log", mc.boots))
	vm, err := startVM(t, qemu.Config{Disk: mc.disk, OVMFVars: mc.vars, SecureBoot: true, TPMState: mc.tpm,
		ExtraDisks: []string{mc.seed}, LogFile: log, AllowReboot: allowReboot,
		HostFwd: []string{fmt.Sprintf("tcp:127.0.0.1:%d-:50443", port)}, Timeout: 6 * time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	mc.vm = vm
	boot := mc.boots
	t.Cleanup(func() {
		vm.Kill()
		if t.Failed() {
			b, _ := os.ReadFile(log)
			t.Logf("console of boot %d (%s):\n%s", boot, log, b)
		}
	})
	if mc.c, err = client.NewRemote(fmt.Sprintf("https://127.0.0.1:%d", port), mc.tls); err != nil {
		t.Fatal(err)
	}
}

func (mc *sbMachine) expect(t *testing.T, re string) []string {
	t.Helper()
	m, err := mc.vm.Expect(regexp.MustCompile(re), 3*time.Minute)
	if err != nil {
		t.Fatalf("boot %d: no %q: %v", mc.boots, re, err)
	}
	return m
}

func (mc *sbMachine) ready(t *testing.T) {
	t.Helper()
	mc.expect(t, readyRE.String())
	waitAPI(t, mc.c, mc.boots)
}

func (mc *sbMachine) report(t *testing.T) bootReport {
	t.Helper()
	b, err := mc.c.Do(t.Context(), "GET", "/report/boot", nil)
	if err != nil {
		t.Fatalf("GET /report/boot: %v", err)
	}
	var r bootReport
	if err := json.Unmarshal(b, &r); err != nil {
		t.Fatalf("GET /report/boot: %v\n%s", err, b)
	}
	return r
}

func (mc *sbMachine) stop(t *testing.T) {
	t.Helper()
	if err := mc.vm.Powerdown(); err != nil {
		t.Fatal(err)
	}
	if err := mc.vm.WaitExit(2 * time.Minute); err != nil {
		t.Fatalf("boot %d: power down: %v", mc.boots, err)
	}
}

// tamperCmdline changes one character of slot A's command line where it lies in the ESP.
func tamperCmdline(t *testing.T, disk string, m *pipeline.Manifest) {
	t.Helper()
	off, size := partition(t, m, string(contract.PartESP))
	f, err := os.OpenFile(disk, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	esp := make([]byte, size)
	if _, err := f.ReadAt(esp, off); err != nil {
		t.Fatal(err)
	}
	i := bytes.Index(esp, []byte(m.Cmdline))
	if i < 0 {
		t.Fatal("slot A's command line is not in the ESP")
	}
	j := strings.Index(m.Cmdline, "panic=10")
	if j < 0 {
		t.Fatalf("command line %q lacks panic=10", m.Cmdline)
	}
	// panic=10 → panic=90: a command line an attacker might want, the same length.
	if _, err := f.WriteAt([]byte("9"), off+int64(i+j+len("panic="))); err != nil {
		t.Fatal(err)
	}
}

var volumeKeyRE = regexp.MustCompile(`(?s)MK dump:\s*(.*?)\n\s*\n|Volume key:\s*(.*?)\n\s*\n`)

// volumeKey reads the key cryptsetup luksDump --dump-volume-key printed.
func volumeKey(t *testing.T, dump string) []byte {
	t.Helper()
	m := volumeKeyRE.FindStringSubmatch(dump + "\n\n")
	if m == nil {
		t.Fatalf("no volume key in:\n%s", dump)
	}
	hexText := m[1] + m[2]
	k, err := hex.DecodeString(strings.Join(strings.Fields(hexText), ""))
	if err != nil || len(k) != 64 {
		t.Fatalf("volume key %q: %v", hexText, err)
	}
	return k
}

// decryptLUKS2 decrypts the data segment of the LUKS2 volume in file path (aes-xts-plain64,
// 4096-byte sectors, data at 16 MiB; IVs count 512-byte sectors) into a new file, with the
// standard library's and x/crypto's ciphers, not Ballast's.
func decryptLUKS2(t *testing.T, path string, key []byte) string {
	t.Helper()
	in, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	const offset, sector = 16 << 20, 4096
	c, err := xts.NewCipher(aes.NewCipher, key)
	if err != nil {
		t.Fatal(err)
	}
	data := in[offset:]
	data = data[:len(data)/sector*sector]
	out := make([]byte, len(data))
	for s := 0; s < len(data)/sector; s++ {
		// plain64: the IV is the little-endian 512-byte sector number.
		c.Decrypt(out[s*sector:(s+1)*sector], data[s*sector:(s+1)*sector], uint64(s*sector/512))
	}
	dst := filepath.Join(t.TempDir(), "local.ext4")
	if err := os.WriteFile(dst, out, 0o600); err != nil {
		t.Fatal(err)
	}
	return dst
}

// TestSignedUpdatesUnlock takes a host with Secure Boot and an encrypted /local from v1 to v2,
// both signed with the same owner keys, and then to a v3 whose kernel panics: v2 unlocks /local
// with the same sealed key (its PCR 11 differs, and the owner's pcr key signed it), and so does
// the rollback from v3 to v2.
func TestSignedUpdatesUnlock(t *testing.T) {
	t.Parallel() // boots QEMU: see main_test.go
	testutil.Root(t, "boots QEMU guests")
	testutil.Tool(t, "swtpm", "swtpm")
	keys := filepath.Join(t.TempDir(), "keys")
	if err := sbkeys.Init(keys, "Ballast test owner", time.Unix(1767225600, 0)); err != nil {
		t.Fatal(err)
	}
	lab := newUpdateLab(t)
	signed := func(s string) string {
		return strings.Replace(s, `without-tpm = "plain"`, `without-tpm = "refuse"`, 1) + fmt.Sprintf("\n[secure-boot]\nkeys = %q\n", keys)
	}
	good := lab.variant(t, "qemu-signed.toml", signed)
	panics := lab.variant(t, "qemu-signed-panics.toml", func(s string) string {
		return signed(strings.Replace(s, `cmdline = ["quiet",`, `cmdline = ["quiet", "rdinit=/no-such-init",`, 1))
	})
	for _, b := range []struct{ file, version string }{{good, "1.0.0"}, {good, "2.0.0"}, {panics, "3.0.0"}} {
		lab.build(t, b.file, b.version)
	}
	lab.publish(t, "2.0.0")
	h := lab.newHost(t, "1.0.0", fmt.Sprintf(`[settings]
motd = "set on v1"
[settings.updates]
metadata-base-url = "http://%[1]s/metadata"
targets-base-url = "http://%[1]s/targets"
`, repoHost))
	h.secureBoot, h.tpm = true, filepath.Join(t.TempDir(), "tpm")

	// The first boot enrolls the keys and resets; the next one encrypts /local.
	h.start(t)
	if _, err := h.vm.Expect(regexp.MustCompile(`Enrolling secure boot keys`), 2*time.Minute); err != nil {
		t.Fatalf("no enrollment: %v", err)
	}
	h.rebooted(t, "enrollment")
	h.start(t)
	if _, err := h.vm.Expect(regexp.MustCompile(`ballast: local encrypted`), 3*time.Minute); err != nil {
		t.Fatalf("v1: /local not encrypted: %v", err)
	}
	h.ready(t, "1.0.0", contract.SlotA)

	unlocked := func(version string, slot contract.Slot) {
		t.Helper()
		if _, err := h.vm.Expect(regexp.MustCompile(`ballast: local unlocked with the TPM`), 3*time.Minute); err != nil {
			t.Fatalf("%s: /local not unlocked: %v", version, err)
		}
		h.ready(t, version, slot)
		b, err := h.c.Do(t.Context(), "GET", "/report/boot", nil)
		if err != nil {
			t.Fatal(err)
		}
		var rep bootReport
		if err := json.Unmarshal(b, &rep); err != nil {
			t.Fatal(err)
		}
		want := loadManifestAt(t, lab.builds[version]).PCR11[slot]
		if rep.SecureBoot != "enabled" || rep.TPM == nil || rep.TPM.PCRs[11] != want || !rep.TPM.PCR11Signed {
			t.Fatalf("%s: report %+v, TPM %+v; want PCR 11 %s", version, rep, rep.TPM, want)
		}
		if m := motd(t, h.c); m != "set on v1" {
			t.Fatalf("%s: motd %q", version, m)
		}
	}
	h.update(t, "2.0.0")
	h.start(t)
	unlocked("2.0.0", contract.SlotB)
	h.blessed(t, "2.0.0", contract.SlotB)

	lab.publish(t, "3.0.0")
	h.update(t, "3.0.0")
	for try := 1; try <= contract.DefaultTries; try++ {
		h.start(t)
		if _, err := h.vm.Expect(regexp.MustCompile(`Kernel panic`), 3*time.Minute); err != nil {
			t.Fatalf("v3 try %d: no kernel panic: %v", try, err)
		}
		h.rebooted(t, fmt.Sprintf("v3 try %d", try))
	}
	h.start(t)
	unlocked("2.0.0", contract.SlotB)
	powerdown(t, h.vm)
}
