package image

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ballast-os/ballast/builder/pipeline"
	"github.com/ballast-os/ballast/contract"
	"github.com/ballast-os/ballast/images/gpt"
	"github.com/ballast-os/ballast/images/iso"
	"github.com/ballast-os/ballast/tests/qemu"
	"github.com/ballast-os/ballast/tests/testutil"
)

var (
	installDoneRE    = regexp.MustCompile(`ballast: install done, rebooting`)
	installStoppedRE = regexp.MustCompile(`ballast: install (stopped|failed): [^\n]*`)
)

// runInstaller boots an installer machine until the installer says it is done (the machine
// would reboot into the target now; the test boots the target alone instead) and returns the
// console. A stop or failure of the installer fails the test.
func runInstaller(t *testing.T, cfg qemu.Config) string {
	t.Helper()
	cfg.LogFile = filepath.Join(t.TempDir(), "installer.log")
	if cfg.Timeout == 0 {
		cfg.Timeout = 8 * time.Minute
	}
	start := time.Now()
	vm, err := startVM(t, cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer vm.Kill()
	sub, err := vm.Expect(regexp.MustCompile(installDoneRE.String()+"|"+installStoppedRE.String()), 7*time.Minute)
	if err != nil || !installDoneRE.MatchString(sub[0]) {
		b, _ := os.ReadFile(cfg.LogFile)
		t.Fatalf("installer: %v %q\nconsole:\n%s", err, sub, b)
	}
	t.Logf("installer done %.0fs after QEMU started", time.Since(start).Seconds())
	return vm.Console()
}

// checkInstalledDisk reads the target's GPT from the host: sgdisk finds nothing wrong, the
// backup GPT is at the disk's real end, and the seed partition holds a NoCloud volume.
func checkInstalledDisk(t *testing.T, target string, wantSeed bool) {
	t.Helper()
	out, err := exec.Command(testutil.Tool(t, "sgdisk", "gdisk"), "-v", target).CombinedOutput()
	if err != nil || !strings.Contains(string(out), "No problems found") {
		t.Errorf("sgdisk -v %s: %v\n%s", target, err, out)
	}
	f, err := os.Open(target)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	tbl, err := gpt.ReadPrimary(f, 512)
	if err != nil {
		t.Fatal(err)
	}
	var seed *gpt.Partition
	for _, p := range tbl.Partitions() {
		if p.Name == contract.SeedPartitionName {
			seed = &p
		}
	}
	switch {
	case !wantSeed && seed != nil:
		t.Errorf("a seed partition without user data: %+v", seed)
	case wantSeed && seed == nil:
		t.Errorf("no %s partition: %+v", contract.SeedPartitionName, tbl.Partitions())
	case wantSeed && (seed.FirstLBA != contract.SeedFirstLBA || seed.LastLBA != contract.SeedLastLBA):
		t.Errorf("seed partition at LBA %d-%d, want %d-%d", seed.FirstLBA, seed.LastLBA, contract.SeedFirstLBA, contract.SeedLastLBA)
	}
}

// TestInstallerISO installs the metal variant the way a person with a CD or USB stick does: the
// machine (UEFI in setup mode, an empty NVMe disk, the user data on a cidata CD-ROM) boots the
// installer ISO, whose systemd-boot enrolls the owner's keys, then runs the installer under Secure
// Boot. The target disk then boots alone and reaches ready with the user data applied.
func TestInstallerISO(t *testing.T) {
	t.Parallel() // boots QEMU: see main_test.go
	dir := variantBuildDir(t, "metal")
	iso := filepath.Join(dir, "installer.iso")
	testutil.Need(t, fileExists(qemu.SecureBootOVMFCode), "%s (Debian package ovmf)", qemu.SecureBootOVMFCode)
	pki := newProdPKI(t)
	want := "installed from the ISO"
	cidata := makeISO(t, "cidata", map[string]string{
		"user-data": pki.userData(t, fmt.Sprintf("[settings]\nmotd = %q\n", want)),
		"meta-data": "instance-id: iso-install-1\n",
	})
	target := blankDisk(t, 3<<30)
	vars := copyFile(t, qemu.DefaultOVMFVarsTemplate)
	con := runInstaller(t, qemu.Config{
		SecureBoot: true, OVMFVars: vars, AllowReboot: true, NoNetwork: true,
		Drives: []qemu.Drive{
			{Path: iso, Bus: qemu.BusAHCI, CDROM: true, Boot: true},
			{Path: target, Bus: qemu.BusNVMe},
			{Path: cidata, Bus: qemu.BusAHCI, CDROM: true},
		},
	})
	for _, re := range []string{
		`ballast: install source /dev/sr\d \(` + contract.InstallVolumeID + `\): metal `,
		`ballast: install target /dev/nvme0n1 `,
		`ballast: install verified \d+ regions`,
		`ballast: install seed user-data \(\d+ bytes from NoCloud volume /dev/sr\d\)`,
	} {
		if !regexp.MustCompile(re).MatchString(con) {
			t.Errorf("installer console has no line matching %q", re)
		}
	}
	checkInstalledDisk(t, target, true)

	// The target alone, on the same firmware (the keys the installer's boot enrolled).
	m := bootProd(t, "installed", qemu.Config{Disk: target, DiskBus: qemu.BusNVMe, OVMFVars: vars}, pki)
	m.checkOS(t, "metal")
	m.userDataFrom(t, contract.UserDataNoCloud)
	if got := motd(t, m.c); got != want {
		t.Errorf("motd %q, want %q from the user data the installer seeded", got, want)
	}
}

// TestInstallerNetbootWipe starts the installer the way a network boot does (the firmware runs
// the netboot UKI with the words iPXE would pass): first without ballast.install.wipe on a machine
// whose only disk holds an ext4 file system, which the installer refuses, naming what it found,
// without writing a byte; then with the wipe asked for, the image fetched over HTTP from the
// netboot directory and the user data on the command line. The installed disk boots alone.
func TestInstallerNetbootWipe(t *testing.T) {
	t.Parallel() // boots QEMU: see main_test.go
	dir := variantBuildDir(t, "metal")
	uki := filepath.Join(dir, "netboot", contract.InstallerUKIFile)
	m := loadVariantManifest(t, dir)
	target := blankDisk(t, 3<<30)
	testutil.Run(t, testutil.Tool(t, "mkfs.ext4", "e2fsprogs"), "-q", "-F", "-L", "precious", target)
	before := sha256File(t, target)

	// 1. The UKI's own command line: the ISO as the medium, no wipe. The installer must stop.
	log := filepath.Join(t.TempDir(), "refuse.log")
	vm, err := startVM(t, qemu.Config{Kernel: uki, NoNetwork: true, LogFile: log, Timeout: 4 * time.Minute,
		Drives: []qemu.Drive{
			{Path: target, Bus: qemu.BusAHCI},
			{Path: filepath.Join(dir, "installer.iso"), Bus: qemu.BusAHCI, CDROM: true},
		}})
	if err != nil {
		t.Fatal(err)
	}
	sub, err := vm.Expect(regexp.MustCompile(installDoneRE.String()+"|"+installStoppedRE.String()), 3*time.Minute)
	vm.Kill()
	if err != nil {
		b, _ := os.ReadFile(log)
		t.Fatalf("no refusal: %v\n%s", err, b)
	}
	for _, want := range []string{"install stopped", "ext2/3/4 file system", `label "precious"`, contract.ParamInstallWipe, "nothing was written"} {
		if !strings.Contains(sub[0], want) {
			t.Errorf("refusal %q does not say %q", sub[0], want)
		}
	}
	if after := sha256File(t, target); after != before {
		t.Fatal("the refused target changed")
	}

	// 2. Network install with the wipe asked for.
	var mu sync.Mutex
	served := map[string]int{}
	files := http.FileServer(http.Dir(filepath.Join(dir, "netboot")))
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		served[r.URL.Path]++
		mu.Unlock()
		files.ServeHTTP(w, r)
	}))
	defer srv.Close()
	// The kernel's command line holds 2 KiB, too little for the remote API's PKI: this user data
	// is a setting alone, checked in the seed the installer wrote.
	userData := "[settings]\nmotd = \"installed over the network\"\n"
	ud := base64.StdEncoding.EncodeToString([]byte(userData))
	const host = "10.0.2.100"
	cmdline := strings.Join([]string{m.Cmdline, contract.ParamInstall, contract.ParamInstallWipe,
		contract.ParamInstallSource + "=http://" + host + "/" + contract.InstallManifestFile,
		contract.ParamUserData + "=" + ud}, " ")
	con := runInstaller(t, qemu.Config{Kernel: uki, Append: cmdline, NIC: qemu.NICE1000e,
		GuestFwd: []string{fmt.Sprintf("tcp:%s:80-cmd:%s %s", host, goProgram(t, "./tests/qemu/cmd/tcpcat"), srv.Listener.Addr())},
		Drives:   []qemu.Drive{{Path: target, Bus: qemu.BusAHCI}}})
	mu.Lock()
	if served["/"+contract.InstallManifestFile] == 0 || served["/"+contract.InstallImageFile] == 0 {
		t.Errorf("the installer did not fetch install.json and the image over HTTP: %v", served)
	}
	mu.Unlock()
	for _, re := range []string{`ballast: install source http://`, `ballast: install verified`, `ballast: install seed .*` + contract.ParamUserData} {
		if !regexp.MustCompile(re).MatchString(con) {
			t.Errorf("installer console has no line matching %q", re)
		}
	}
	checkInstalledDisk(t, target, true)
	if got := seedUserData(t, target); got != userData {
		t.Errorf("the seed's user-data is %q, want the command line's %q", got, userData)
	}

	// The installed disk boots alone (Secure Boot firmware in setup mode: its systemd-boot
	// enrolls the keys and resets; a TPM for /local) and applies the seed (the console says so).
	log = filepath.Join(t.TempDir(), "installed.log")
	vm, err = startVM(t, qemu.Config{Disk: target, DiskBus: qemu.BusAHCI, SecureBoot: true, AllowReboot: true,
		OVMFVars: copyFile(t, qemu.DefaultOVMFVarsTemplate), TPMState: filepath.Join(t.TempDir(), "tpm"),
		NoNetwork: true, LogFile: log, Timeout: 6 * time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	defer vm.Kill()
	if sub, err := vm.Expect(regexp.MustCompile(readyRE.String()+`|ballast: error: boot failed`), 5*time.Minute); err != nil || !readyRE.MatchString(sub[0]) {
		b, _ := os.ReadFile(log)
		t.Fatalf("installed disk: no ready line: %v %q\n%s", err, sub, b)
	}
}

// seedUserData reads user-data from the seed partition's NoCloud volume, with Ballast's reader
// and, as a cross-check, xorriso's.
func seedUserData(t *testing.T, target string) string {
	t.Helper()
	f, err := os.Open(target)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	vol := io.NewSectionReader(f, contract.SeedFirstLBA*512, (contract.SeedLastLBA-contract.SeedFirstLBA+1)*512)
	im, err := iso.Open(vol)
	if err != nil {
		t.Fatalf("seed volume: %v", err)
	}
	if im.VolumeID() != contract.SeedLabel {
		t.Errorf("seed volume label %q, want %q", im.VolumeID(), contract.SeedLabel)
	}
	b, err := im.ReadFile("user-data", 1<<20)
	if err != nil {
		t.Fatalf("seed volume: %v", err)
	}
	img := filepath.Join(t.TempDir(), "seed.iso")
	raw := make([]byte, vol.Size())
	if _, err := vol.ReadAt(raw, 0); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(img, raw, 0o644); err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(t.TempDir(), "user-data")
	testutil.Run(t, testutil.Tool(t, "xorriso", "xorriso"), "-osirrox", "on", "-indev", img, "-extract", "/user-data", out)
	if x, err := os.ReadFile(out); err != nil || string(x) != string(b) {
		t.Errorf("xorriso reads the seed's user-data as %q (%v), Ballast's reader %q", x, err, b)
	}
	return string(b)
}

// loadVariantManifest reads a variant build's manifest.json.
func loadVariantManifest(t *testing.T, dir string) *pipeline.Manifest {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(dir, "manifest.json"))
	if err != nil {
		t.Fatal(err)
	}
	var m pipeline.Manifest
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatalf("%s/manifest.json: %v", dir, err)
	}
	return &m
}

// TestInstallerISOWithUserData: `ballast iso` writes a copy of the metal build's installer ISO
// that carries a site's user data, checked first as the host will parse it.
func TestInstallerISOWithUserData(t *testing.T) {
	dir := variantBuildDir(t, "metal")
	out := filepath.Join(t.TempDir(), "site.iso")
	ud := "[settings]\nmotd = \"site\"\n"
	if err := pipeline.InstallerISO(dir, []byte(ud), "site.toml", out); err != nil {
		t.Fatal(err)
	}
	f, err := os.Open(out)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	im, err := iso.Open(f)
	if err != nil {
		t.Fatal(err)
	}
	if got, err := im.ReadFile(contract.InstallUserDataFile, 1<<20); err != nil || string(got) != ud {
		t.Errorf("user-data %q (%v), want %q", got, err, ud)
	}
	orig, err := os.Open(filepath.Join(dir, "installer.iso"))
	if err != nil {
		t.Fatal(err)
	}
	defer orig.Close()
	oim, err := iso.Open(orig)
	if err != nil {
		t.Fatal(err)
	}
	a, _ := oim.ReadFile(contract.InstallManifestFile, 1<<20)
	b, _ := im.ReadFile(contract.InstallManifestFile, 1<<20)
	if len(a) == 0 || string(a) != string(b) {
		t.Error("the copy's install.json differs from the build's")
	}
	if o, err := exec.Command(testutil.Tool(t, "sgdisk", "gdisk"), "-v", out).CombinedOutput(); err != nil || !strings.Contains(string(o), "No problems found") {
		t.Errorf("sgdisk -v: %v\n%s", err, o)
	}
	// User data the host would refuse is refused now, naming the key, and nothing is written.
	bad := filepath.Join(t.TempDir(), "bad.iso")
	err = pipeline.InstallerISO(dir, []byte("[settings]\nno-such-setting = 1\n"), "site.toml", bad)
	if err == nil || !strings.Contains(err.Error(), "no-such-setting") || !strings.Contains(err.Error(), "site.toml") {
		t.Errorf("bad user data: %v", err)
	}
	if _, err := os.Stat(bad); err == nil {
		t.Error("an ISO was written for bad user data")
	}
}
