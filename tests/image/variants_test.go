package image

import (
	"bytes"
	"crypto/tls"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/BurntSushi/toml"

	"github.com/ballast-os/ballast/apiserver/apitypes"
	"github.com/ballast-os/ballast/apiserver/client"
	"github.com/ballast-os/ballast/builder/devpki"
	"github.com/ballast-os/ballast/builder/pipeline"
	"github.com/ballast-os/ballast/contract"
	"github.com/ballast-os/ballast/tests/qemu"
	"github.com/ballast-os/ballast/tests/testutil"
	"github.com/ballast-os/ballast/trust/sbkeys"
)

// The production variants of bare metal and the clouds. Each is signed, has no shell and seals
// /local to the TPM (a machine without one does not boot it), and carries no remote API PKI:
// the tests give the host theirs in user data, through the variant's own user data source.

// variantBuildDir is build/<name> beside buildDir (the Makefile builds every variant there), built
// now when it holds no build yet. A signed variant names ../build/keys; a clone without them gets
// them as `make keys` makes them.
func variantBuildDir(t *testing.T, name string) string {
	t.Helper()
	dir := filepath.Join(filepath.Dir(buildDir), name)
	if _, err := os.Stat(filepath.Join(dir, "manifest.json")); err == nil {
		return dir
	}
	repo := testutil.RepoRoot(t)
	keys := filepath.Join(repo, "build", "keys")
	if _, err := os.Stat(filepath.Join(keys, "db.crt")); os.IsNotExist(err) {
		t.Logf("making the development signing keys in %s (make keys)", keys)
		if err := sbkeys.Init(keys, "Ballast development", time.Now()); err != nil {
			t.Fatal(err)
		}
	}
	t.Logf("building variants/%s.toml into %s", name, dir)
	start := time.Now()
	_, err := pipeline.Build(t.Context(), pipeline.Options{Repo: repo, Variant: name, Out: dir,
		Log: func(f string, a ...any) { t.Logf("ballast: "+f, a...) }})
	if err != nil {
		t.Fatalf("build %s: %v", name, err)
	}
	t.Logf("built %s in %.0fs", name, time.Since(start).Seconds())
	return dir
}

// variantEdited builds a variant file edited by edit (its signing keys those of
// variantBuildDir's builds) into a directory of the test's, raw disk only, and returns it.
func variantEdited(t *testing.T, name string, edit func(string) string) string {
	t.Helper()
	variantBuildDir(t, name) // the keys, and a build whose downloads the edited one shares
	repo := testutil.RepoRoot(t)
	b, err := os.ReadFile(filepath.Join(repo, "variants", name+".toml"))
	if err != nil {
		t.Fatal(err)
	}
	const keys = `keys = "../build/keys"`
	text := string(b)
	if !strings.Contains(text, keys) {
		t.Fatalf("variants/%s.toml has no %s", name, keys)
	}
	text = edit(strings.Replace(text, keys, fmt.Sprintf("keys = %q", filepath.Join(repo, "build", "keys")), 1))
	dir := t.TempDir()
	vf := filepath.Join(dir, name+".toml")
	if err := os.WriteFile(vf, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(dir, "build")
	start := time.Now()
	if _, err := pipeline.Build(t.Context(), pipeline.Options{Repo: repo, VariantFile: vf, Out: out, Formats: []string{"raw"}}); err != nil {
		t.Fatalf("build edited %s: %v", name, err)
	}
	t.Logf("built the edited %s in %.0fs", name, time.Since(start).Seconds())
	return out
}

// copyVariantDisk makes a sparse copy of a variant's disk.raw grown to size bytes.
func copyVariantDisk(t testing.TB, dir string, size int64) string {
	t.Helper()
	disk := copyFile(t, filepath.Join(dir, "disk.raw"))
	if err := os.Truncate(disk, size); err != nil {
		t.Fatal(err)
	}
	return disk
}

// prodPKI is a PKI for a production host's remote API: the test keeps the client side, the host
// gets the server side in user data.
type prodPKI struct {
	tls *tls.Config
	// remote is the [settings.api.remote] table that turns the API on with the server side.
	remote string
}

func newProdPKI(t testing.TB) prodPKI {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "pki")
	if err := devpki.GenerateDev(dir, []string{"127.0.0.1", "localhost"}); err != nil {
		t.Fatal(err)
	}
	remote, err := devpki.RemoteAPIDefaults(dir, contract.DevAPIListen)
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := client.LoadPKI(dir)
	if err != nil {
		t.Fatal(err)
	}
	return prodPKI{tls: cfg, remote: string(remote)}
}

// userData is one TOML document of the remote API's table and the test's settings (a TOML
// document of its own): the two are merged table by table, so both may open [settings].
func (p prodPKI) userData(t testing.TB, settings string) string {
	t.Helper()
	merged := map[string]any{}
	for _, doc := range []string{p.remote, settings} {
		var m map[string]any
		if _, err := toml.Decode(doc, &m); err != nil {
			t.Fatalf("user data part: %v\n%s", err, doc)
		}
		mergeTables(merged, m)
	}
	var b bytes.Buffer
	if err := toml.NewEncoder(&b).Encode(merged); err != nil {
		t.Fatal(err)
	}
	return b.String()
}

// mergeTables copies src into dst, descending into tables both have.
func mergeTables(dst, src map[string]any) {
	for k, v := range src {
		if sub, ok := v.(map[string]any); ok {
			if d, ok := dst[k].(map[string]any); ok {
				mergeTables(d, sub)
				continue
			}
		}
		dst[k] = v
	}
}

// prodMachine is a production host booted once: its VM and a client of its remote API.
type prodMachine struct {
	vm  *qemu.VM
	c   *client.Client
	log string
}

// bootProd boots cfg (Disk, buses, NICs and user data media as the test chose) as a new machine:
// OVMF's Secure Boot build with a variable store of its own in setup mode, a software TPM of its
// own, and the remote API forwarded from a loopback port on the user network. It waits for the
// ready line and the API. A signed image's systemd-boot enrolls the owner's keys on that first
// boot and resets, so the machine may reboot in place (with the plain OVMF, which keeps no
// authenticated variables, it would enroll and reset at every boot). The console is logged when
// the test fails.
func bootProd(t *testing.T, name string, cfg qemu.Config, pki prodPKI) *prodMachine {
	t.Helper()
	testutil.Tool(t, "swtpm", "swtpm")
	if err := qemu.Available(); err != nil {
		t.Fatalf("QEMU is needed for image tests: %v", err)
	}
	port := freePort(t)
	if cfg.TPMState == "" {
		cfg.TPMState = filepath.Join(t.TempDir(), "tpm")
	}
	testutil.Need(t, fileExists(qemu.SecureBootOVMFCode), "%s (Debian package ovmf)", qemu.SecureBootOVMFCode)
	cfg.SecureBoot, cfg.AllowReboot = true, true
	if cfg.OVMFVars == "" {
		cfg.OVMFVars = copyFile(t, qemu.DefaultOVMFVarsTemplate)
	}
	cfg.LogFile = filepath.Join(t.TempDir(), name+".log")
	if cfg.Timeout == 0 {
		cfg.Timeout = 6 * time.Minute
	}
	cfg.HostFwd = append(cfg.HostFwd, fmt.Sprintf("tcp:127.0.0.1:%d-:%d", port, contract.DevAPIPort))
	start := time.Now()
	vm, err := startVM(t, cfg)
	if err != nil {
		t.Fatal(err)
	}
	m := &prodMachine{vm: vm, log: cfg.LogFile}
	t.Cleanup(func() {
		vm.Kill()
		if t.Failed() {
			b, _ := os.ReadFile(cfg.LogFile)
			t.Logf("%s: console (%s):\n%s", name, cfg.LogFile, b)
		}
	})
	// A failed boot reboots in place (AllowReboot) and would fail again until the timeout.
	sub, err := vm.Expect(regexp.MustCompile(readyRE.String()+`|ballast: error: boot failed`), 4*time.Minute)
	if err != nil {
		t.Fatalf("%s: no ready line: %v", name, err)
	}
	if !readyRE.MatchString(sub[0]) {
		t.Fatalf("%s: %s", name, sub[0])
	}
	t.Logf("%s: ready %.0fs after QEMU started", name, time.Since(start).Seconds())
	if m.c, err = client.NewRemote(fmt.Sprintf("https://127.0.0.1:%d", port), pki.tls); err != nil {
		t.Fatal(err)
	}
	waitAPI(t, m.c, 1)
	return m
}

// os checks GET /os: the variant booted, signed, from slot A.
func (m *prodMachine) checkOS(t *testing.T, variant string) apitypes.OS {
	t.Helper()
	o, err := m.c.OS(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if o.Variant != variant || o.Slot != string(contract.SlotA) {
		t.Errorf("GET /os: variant %s slot %s, want %s slot %s", o.Variant, o.Slot, variant, contract.SlotA)
	}
	return o
}

// userDataFrom checks GET /userdata: user data applied, and from source (a contract name).
func (m *prodMachine) userDataFrom(t *testing.T, source string) apitypes.UserData {
	t.Helper()
	ud, err := m.c.UserData(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	var applied []string
	for _, s := range ud.Sources {
		if s.State == apitypes.UserDataApplied {
			applied = append(applied, s.Name)
		}
	}
	if ud.State != apitypes.UserDataApplied || strings.Join(applied, ",") != source {
		t.Errorf("GET /userdata: state %s, applied from %v, want applied from %s only: %+v", ud.State, applied, source, ud)
	}
	return ud
}

// network polls GET /network until ok accepts it.
func (m *prodMachine) network(t *testing.T, what string, ok func(apitypes.Network) bool) apitypes.Network {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	var last apitypes.Network
	var err error
	for time.Now().Before(deadline) {
		if last, err = m.c.Network(t.Context()); err == nil && ok(last) {
			return last
		}
		time.Sleep(500 * time.Millisecond)
	}
	t.Fatalf("GET /network: no %s within a minute (last error %v): %+v", what, err, last)
	return last
}

// makeISO writes an ISO9660 volume (Rock Ridge) labelled label holding files (name: content),
// as xorriso makes one for a cloud's or hypervisor's CD-ROM.
func makeISO(t *testing.T, label string, files map[string]string) string {
	t.Helper()
	xorriso := testutil.Tool(t, "xorriso", "xorriso")
	dir := t.TempDir()
	root := filepath.Join(dir, "root")
	if err := os.MkdirAll(root, 0o755); err != nil {
		t.Fatal(err)
	}
	for n, content := range files {
		if err := os.WriteFile(filepath.Join(root, n), []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	iso := filepath.Join(dir, "volume.iso")
	testutil.Run(t, xorriso, "-as", "mkisofs", "-quiet", "-R", "-V", label, "-o", iso, root)
	return iso
}

// blankDisk is a sparse empty disk of size bytes.
func blankDisk(t *testing.T, size int64) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "blank.raw")
	if err := os.WriteFile(p, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Truncate(p, size); err != nil {
		t.Fatal(err)
	}
	return p
}

// onDemandRE is the system init's milestone naming the drivers it loaded for the machine's devices.
var onDemandRE = regexp.MustCompile(`ballast: modules .*on demand \(([^)]*)\)`)

// onDemandModules returns the modules the on-demand milestones name: the initramfs's (at its
// start, and again while it waits for disks behind a controller it loaded a driver for) and the
// system init's, all printed before the ready line.
func onDemandModules(t *testing.T, m *prodMachine) []string {
	t.Helper()
	var mods []string
	for _, sub := range onDemandRE.FindAllStringSubmatch(m.vm.Console(), -1) {
		mods = append(mods, strings.FieldsFunc(sub[1], func(r rune) bool { return r == ',' || r == ' ' })...)
	}
	if len(mods) == 0 {
		t.Fatalf("the console has no line matching %q", onDemandRE)
	}
	return mods
}

// qemuImgCompare checks that an image in another format holds the same disk as raw.
func qemuImgCompare(t *testing.T, img, raw string) {
	t.Helper()
	qimg := testutil.Tool(t, "qemu-img", "qemu-utils")
	if out, err := exec.Command(qimg, "compare", img, raw).CombinedOutput(); err != nil {
		t.Errorf("qemu-img compare %s %s: %v\n%s", img, raw, err, out)
	}
}

// rootOn checks the initramfs's partitions milestone: the root partition is partition N of a disk
// whose name matches disk (a regular expression), e.g. nvme0n2p or sd[a-z] (SATA and SCSI disks
// are named in the order the kernel's asynchronous scans find them, not by port).
func (m *prodMachine) rootOn(t *testing.T, disk string) {
	t.Helper()
	sub := regexp.MustCompile(`ballast: partitions root=/dev/(\S+) `).FindStringSubmatch(m.vm.Console())
	if sub == nil || !regexp.MustCompile(`^(`+disk+`)\d+$`).MatchString(sub[1]) {
		t.Errorf("partitions milestone %q, want the root on a disk matching %s", sub, disk)
	}
}
