package image

import (
	"context"
	"crypto/tls"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ballast-os/ballast/apiserver/apitypes"
	"github.com/ballast-os/ballast/apiserver/client"
	"github.com/ballast-os/ballast/builder/pipeline"
	"github.com/ballast-os/ballast/contract"
	"github.com/ballast-os/ballast/tests/qemu"
	"github.com/ballast-os/ballast/updates/manifest"
	"github.com/ballast-os/ballast/updates/tufrepo"
)

// The update tests' timing: a healthy boot is blessed after updateBless; a boot that is not
// healthy by updateHealthTimeout is given up. The timeout leaves a slow CI machine (TCG, ready
// in 10-20 s here) a wide margin, so only the broken version ever reaches it.
const (
	updateBless         = "10s"
	updateHealthTimeout = "60s"
	repoHost            = "10.0.2.100" // the repository, as the guest reaches it (guestfwd)
)

// updateLab is a signed update repository served on loopback, with images of one variant built
// in several versions for it.
type updateLab struct {
	repoRoot string // the Ballast repository (../..)
	dir      string // the TUF repository (tufrepo)
	srv      *http.Server
	addr     string
	served   atomic.Int64 // bytes the server sent
	mu       sync.Mutex
	perPath  map[string]int64 // bytes the server sent, by URL path
	variants string           // where the test's variant files are
	builds   map[string]string
	tcpcat   string
}

// newUpdateLab initialises a TUF repository and serves it.
func newUpdateLab(t testing.TB) *updateLab {
	t.Helper()
	repoRoot, err := filepath.Abs("../..")
	if err != nil {
		t.Fatal(err)
	}
	l := &updateLab{repoRoot: repoRoot, dir: filepath.Join(t.TempDir(), "tuf"), variants: t.TempDir(), builds: map[string]string{}, perPath: map[string]int64{}}
	if err := tufrepo.Init(l.dir, tufrepo.Options{Keys: 1, Threshold: 1, Expiry: tufrepo.DefaultExpiry()}); err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	files := http.FileServer(http.Dir(filepath.Join(l.dir, "repository")))
	l.srv = &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		cw := &countingWriter{ResponseWriter: w, n: &l.served}
		files.ServeHTTP(cw, r)
		l.mu.Lock()
		l.perPath[r.URL.Path] += cw.mine
		l.mu.Unlock()
	})}
	go l.srv.Serve(ln)
	t.Cleanup(func() { l.srv.Close() })
	l.addr = ln.Addr().String()
	return l
}

type countingWriter struct {
	http.ResponseWriter
	n    *atomic.Int64
	mine int64
}

func (w *countingWriter) Write(b []byte) (int, error) {
	n, err := w.ResponseWriter.Write(b)
	w.n.Add(int64(n))
	w.mine += int64(n)
	return n, err
}

// servedFor is what the server sent of the files whose names end in suffix.
func (l *updateLab) servedFor(suffix string) int64 {
	l.mu.Lock()
	defer l.mu.Unlock()
	var n int64
	for p, b := range l.perPath {
		if strings.HasSuffix(p, suffix) {
			n += b
		}
	}
	return n
}

// variant writes a copy of variants/qemu.toml with the repository's root and the test's timing,
// changed by edit, and returns its path.
func (l *updateLab) variant(t testing.TB, file string, edit func(string) string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(l.repoRoot, "variants", "qemu.toml"))
	if err != nil {
		t.Fatal(err)
	}
	s := string(b) + fmt.Sprintf(`
[updates]
root = %q
tries = %d
health-timeout = %q
bless-after = %q
`, tufrepo.RootPath(l.dir), contract.DefaultTries, updateHealthTimeout, updateBless)
	if edit != nil {
		s = edit(s)
	}
	path := filepath.Join(l.variants, file)
	if err := os.WriteFile(path, []byte(s), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

// build builds the variant file as version into its own directory (raw disk and payload only).
func (l *updateLab) build(t testing.TB, variantFile, version string) string {
	t.Helper()
	out := filepath.Join(l.variants, "build-"+version)
	start := time.Now()
	_, err := pipeline.Build(t.Context(), pipeline.Options{Repo: l.repoRoot, VariantFile: variantFile, Version: version,
		Out: out, Formats: []string{"raw"}})
	if err != nil {
		t.Fatalf("build %s %s: %v", filepath.Base(variantFile), version, err)
	}
	t.Logf("built %s %s in %.1fs", filepath.Base(variantFile), version, time.Since(start).Seconds())
	l.builds[version] = out
	return out
}

// publish adds a built version to the repository, reaching hosts in waves (none: all at once).
func (l *updateLab) publish(t testing.TB, version string, waves ...manifest.Wave) {
	t.Helper()
	if _, err := tufrepo.Add(l.dir, l.builds[version], "release "+version, waves, ""); err != nil {
		t.Fatalf("repo add %s: %v", version, err)
	}
}

// host is one machine: its disk and UEFI variable store, booted again and again.
type host struct {
	lab      *updateLab
	disk     string
	vars     string
	seed     string
	tls      *tls.Config
	vm       *qemu.VM
	c        *client.Client
	boots    int
	consoles []string
	// secureBoot boots the Secure Boot firmware; tpm is the directory of the host's software TPM
	// ("" for none).
	secureBoot bool
	tpm        string
}

func (l *updateLab) newHost(t testing.TB, version, userData string) *host {
	t.Helper()
	dir := t.TempDir()
	h := &host{lab: l, disk: filepath.Join(dir, "disk.raw"), vars: filepath.Join(dir, "vars.fd")}
	if out, err := exec.Command("cp", "--sparse=always", filepath.Join(l.builds[version], "disk.raw"), h.disk).CombinedOutput(); err != nil {
		t.Fatalf("copy disk: %v %s", err, out)
	}
	if err := os.Truncate(h.disk, 2<<30); err != nil {
		t.Fatal(err)
	}
	// The host's NVRAM, kept across its boots like a real machine's.
	vars, err := os.ReadFile(qemu.DefaultOVMFVarsTemplate)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(h.vars, vars, 0o600); err != nil {
		t.Fatal(err)
	}
	cfg, err := client.LoadPKI(filepath.Join(l.builds[version], "pki"))
	if err != nil {
		t.Fatal(err)
	}
	h.tls = cfg
	h.seed = makeSeed(t, userData, nil)
	if l.tcpcat == "" {
		l.tcpcat = goProgram(t, "./tests/qemu/cmd/tcpcat")
	}
	return h
}

// start boots the host once more; the VM exits when the guest reboots.
func (h *host) start(t testing.TB) {
	t.Helper()
	port := freePort(t)
	h.boots++
	log := filepath.Join(t.TempDir(), fmt.Sprintf("console-%d.log", h.boots))
	vm, err := startVM(t, qemu.Config{Disk: h.disk, OVMFVars: h.vars, ExtraDisks: []string{h.seed}, LogFile: log,
		SecureBoot: h.secureBoot, TPMState: h.tpm,
		HostFwd:  []string{fmt.Sprintf("tcp:127.0.0.1:%d-:50443", port)},
		GuestFwd: []string{fmt.Sprintf("tcp:%s:80-cmd:%s %s", repoHost, h.lab.tcpcat, h.lab.addr)},
		Timeout:  8 * time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	h.vm = vm
	boot := h.boots
	t.Cleanup(func() {
		vm.Kill()
		if t.Failed() {
			b, _ := os.ReadFile(log)
			t.Logf("console of boot %d (%s):\n%s", boot, log, b)
		}
	})
	if h.c, err = client.NewRemote(fmt.Sprintf("https://127.0.0.1:%d", port), h.tls); err != nil {
		t.Fatal(err)
	}
}

// ready waits for the ready line of version in slot and for the remote API.
func (h *host) ready(t testing.TB, version string, slot contract.Slot) {
	t.Helper()
	m, err := h.vm.Expect(readyRE, 3*time.Minute)
	if err != nil {
		t.Fatalf("boot %d: no ready line: %v", h.boots, err)
	}
	if m[1] != version || m[3] != string(slot) {
		t.Fatalf("boot %d: ready on version %s slot %s, want %s slot %s", h.boots, m[1], m[3], version, slot)
	}
	waitAPI(t, h.c, h.boots)
}

// waitAPI waits up to a minute for the remote API of a guest that printed its ready line.
func waitAPI(t testing.TB, c *client.Client, boot int) {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for {
		ctx, cancel := context.WithTimeout(t.Context(), 2*time.Second)
		_, err := c.OS(ctx)
		cancel()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("boot %d: remote API: %v", boot, err)
		}
		time.Sleep(apiPoll)
	}
}

// rebooted waits for the guest to reboot (QEMU runs with -no-reboot, so it exits).
func (h *host) rebooted(t testing.TB, why string) {
	t.Helper()
	if err := h.vm.WaitExit(3 * time.Minute); err != nil {
		t.Fatalf("boot %d: %s: the guest did not reboot: %v", h.boots, why, err)
	}
	if r := h.vm.ShutdownReason(); r != "guest-reset" {
		t.Fatalf("boot %d: %s: QEMU stopped for %q, want guest-reset", h.boots, why, r)
	}
}

func (h *host) action(t testing.TB, action string) apitypes.UpdateStatus {
	t.Helper()
	st, err := h.c.UpdateAction(t.Context(), action)
	if err != nil {
		t.Fatalf("update %s: %v\nstatus: %+v", action, err, st)
	}
	return st
}

// refused runs an action that must fail with an error matching re, and returns the error.
func (h *host) refused(t testing.TB, action, re string) string {
	t.Helper()
	_, err := h.c.UpdateAction(t.Context(), action)
	if err == nil || !regexp.MustCompile(re).MatchString(err.Error()) {
		t.Fatalf("update %s = %v, want an error matching %q", action, err, re)
	}
	return err.Error()
}

func (h *host) status(t testing.TB) apitypes.UpdateStatus {
	t.Helper()
	st, err := h.c.UpdateStatus(t.Context())
	if err != nil {
		t.Fatalf("GET /updates/status: %v", err)
	}
	return st
}

// checkOS asks GET /os for the running version and slot.
func (h *host) checkOS(t testing.TB, version string, slot contract.Slot) apitypes.OS {
	t.Helper()
	os, err := h.c.OS(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if os.Version != version || os.Slot != string(slot) {
		t.Fatalf("GET /os: version %s slot %s, want %s slot %s", os.Version, os.Slot, version, slot)
	}
	return os
}

// cutDuring starts an apply and pulls the plug once cut says so. settled tells cut that the
// apply has downloaded nothing for 1.5 s: the downloads are done and it is writing the slot.
func (h *host) cutDuring(t testing.TB, what string, cut func(st apitypes.UpdateStatus, settled bool) bool) {
	t.Helper()
	applied := make(chan error, 1)
	go func() {
		_, err := h.c.UpdateAction(context.Background(), apitypes.UpdateApply)
		applied <- err
	}()
	deadline := time.Now().Add(3 * time.Minute)
	var last int64
	lastChange := time.Now()
	// The apply counts as under way once a status says so: before that the request may still be
	// on its way to a busy guest, and the status still shows the bytes of an earlier cut.
	started := false
	for {
		select {
		case err := <-applied:
			t.Fatalf("power cut during %s: the apply ended first (%v): %+v", what, err, h.status(t))
		default:
		}
		st, err := h.c.UpdateStatus(t.Context())
		if err == nil {
			if st.Busy == apitypes.UpdateApply {
				started = true
			} else if started {
				t.Fatalf("power cut during %s: the apply ended first: %+v (last attempt %+v)", what, st, st.LastAttempt)
			}
			if st.BytesDownloaded != last {
				last, lastChange = st.BytesDownloaded, time.Now()
			}
			if st.Busy == apitypes.UpdateApply && cut(st, last > 0 && time.Since(lastChange) > 1500*time.Millisecond) {
				t.Logf("power cut during %s, %d bytes downloaded", what, st.BytesDownloaded)
				break
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("power cut during %s: the moment never came: %+v %v", what, st, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
	h.vm.Kill()
	<-applied
}

// update checks, applies and activates want, then reboots into it.
func (h *host) update(t testing.TB, want string) {
	t.Helper()
	if st := h.action(t, apitypes.UpdateCheck); st.Chosen == nil || st.Chosen.Version != want {
		t.Fatalf("check chose %+v, want %s", st.Chosen, want)
	}
	st := h.action(t, apitypes.UpdateApply)
	if st.Staged == nil || st.Staged.Version != want {
		t.Fatalf("apply: staged %+v, want %s (status %+v)", st.Staged, want, st)
	}
	if st = h.action(t, apitypes.UpdateActivate); st.Activated == nil || st.Activated.Version != want || st.State != apitypes.UpdateReady {
		t.Fatalf("activate: %+v", st)
	}
	if err := h.c.Reboot(t.Context()); err != nil {
		t.Fatal(err)
	}
	h.rebooted(t, "reboot into "+want)
}

// blessed waits for the health gate to bless the running trial boot.
func (h *host) blessed(t testing.TB, version string, slot contract.Slot) {
	t.Helper()
	m, err := h.vm.Expect(regexp.MustCompile(`ballast: boot blessed: (\S+)`), 2*time.Minute)
	if err != nil {
		t.Fatalf("boot %d: not blessed: %v", h.boots, err)
	}
	e, err := contract.ParseEntry(m[1])
	if err != nil || e.Counting || e.Version != version || e.Slot != slot {
		t.Fatalf("blessed entry %s (%+v, %v), want version %s slot %s without a counter", m[1], e, err, version, slot)
	}
	st := h.status(t)
	if st.Running.OnTrial || !strings.EqualFold(st.Running.Entry, m[1]) || st.Running.Version != version {
		t.Fatalf("after blessing: running %+v, want entry %s not on trial", st.Running, m[1])
	}
}

func motd(t testing.TB, c *client.Client) string {
	t.Helper()
	m, err := remoteMotd(t.Context(), c)
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// TestUpdates takes one host through updates built by the test: v1 applies and activates v2,
// which boots from slot b and is blessed; the client refuses an expired timestamp, metadata
// signed by an unknown key, an older metadata version and a tampered target; a power cut in
// the middle of an apply leaves v2 booting; v3, whose userspace never becomes healthy, is given
// up after one boot; v4, whose kernel panics, uses its three tries; both times v2 boots again and
// GET /updates/status says why. The settings made on v1 are there at the end.
func TestUpdates(t *testing.T) {
	t.Parallel() // boots QEMU: see main_test.go
	tb := echoFailures(t)
	lab := newUpdateLab(tb)
	good := lab.variant(tb, "qemu-updates.toml", nil)
	// v3's userspace never becomes healthy: without its API server there is no ready line.
	broken := lab.variant(tb, "qemu-unhealthy.toml", func(s string) string {
		return strings.Replace(s, `include = ["netconf", "apiserver", "apiclient",`, `include = ["netconf", "apiclient",`, 1)
	})
	// v4's kernel panics: its initramfs init is not there.
	panics := lab.variant(tb, "qemu-panics.toml", func(s string) string {
		return strings.Replace(s, `cmdline = ["quiet",`, `cmdline = ["quiet", "rdinit=/no-such-init",`, 1)
	})
	for _, b := range []struct{ file, version string }{{good, "1.0.0"}, {good, "2.0.0"}, {broken, "3.0.0"}, {panics, "4.0.0"}} {
		lab.build(tb, b.file, b.version)
	}
	if b, _ := os.ReadFile(broken); strings.Contains(string(b), `"apiserver"`) {
		tb.Fatal("the unhealthy variant still has the API server")
	}
	if b, _ := os.ReadFile(panics); !strings.Contains(string(b), "rdinit=/no-such-init") {
		tb.Fatal("the panicking variant's command line was not changed")
	}
	lab.publish(tb, "2.0.0")

	h := lab.newHost(tb, "1.0.0", fmt.Sprintf(`[settings]
motd = "set on v1"
[settings.updates]
metadata-base-url = "http://%[1]s/metadata"
targets-base-url = "http://%[1]s/targets"
seed = 100
`, repoHost))

	// v1 → v2.
	h.start(tb)
	h.ready(tb, "1.0.0", contract.SlotA)
	if os := h.checkOS(tb, "1.0.0", contract.SlotA); os.Entry != "ballast-1-a-1.0.0.efi" {
		tb.Fatalf("GET /os entry %q", os.Entry)
	}
	h.update(tb, "2.0.0")
	h.start(tb)
	h.ready(tb, "2.0.0", contract.SlotB)
	if os := h.checkOS(tb, "2.0.0", contract.SlotB); !strings.HasPrefix(os.Entry, "ballast-2-b-2.0.0+2-1.") {
		tb.Fatalf("GET /os entry %q, want the trial entry ballast-2-b-2.0.0+2-1.efi", os.Entry)
	}
	h.refused(tb, apitypes.UpdateApply, `on trial`)
	h.blessed(tb, "2.0.0", contract.SlotB)
	if m := motd(tb, h.c); m != "set on v1" {
		tb.Fatalf("motd after the update = %q", m)
	}

	// The client refuses what the repository must not serve; nothing changes on the host.
	v3Start := lab.served.Load()
	t.Run("refusals", func(t *testing.T) {
		// v3 reaches seeds up to 50 now and the others in a day: this host (seed 100) waits.
		now := time.Now()
		lab.publish(t, "3.0.0", manifest.Wave{Seeds: 50, Start: now.Add(-time.Hour)}, manifest.Wave{Seeds: manifest.MaxSeed, Start: now.Add(24 * time.Hour)})
		st := h.action(t, apitypes.UpdateCheck)
		if st.Chosen == nil || st.Chosen.Version != "3.0.0" || st.Chosen.WaveOpensAt.Before(now.Add(23*time.Hour)) {
			t.Fatalf("check with its wave a day away: %+v", st.Chosen)
		}
		t.Logf("waves: %s", h.refused(t, apitypes.UpdateApply, `wave`))
		if _, err := h.c.Set(t.Context(), []string{"updates.ignore-waves=true"}); err != nil {
			t.Fatal(err)
		}
		if st := h.action(t, apitypes.UpdateCheck); st.Chosen == nil || st.Chosen.Version != "3.0.0" || !st.Chosen.WaveOpensAt.IsZero() {
			t.Fatalf("check ignoring waves: %+v", st.Chosen)
		}
		if err := tufrepo.Expire(lab.dir, "timestamp", time.Now().Add(-time.Hour)); err != nil {
			t.Fatal(err)
		}
		t.Logf("expired timestamp: %s", h.refused(t, apitypes.UpdateCheck, `(?i)expired`))
		if err := tufrepo.Refresh(lab.dir, 0, 0); err != nil {
			t.Fatal(err)
		}
		h.action(t, apitypes.UpdateCheck) // the host has seen the new timestamp's version
		ts := filepath.Join(lab.dir, "repository", "metadata", "timestamp.json")
		seen, err := os.ReadFile(ts)
		if err != nil {
			t.Fatal(err)
		}
		stranger := filepath.Join(t.TempDir(), "stranger")
		if err := tufrepo.Init(stranger, tufrepo.Options{Keys: 1, Threshold: 1, Expiry: tufrepo.DefaultExpiry()}); err != nil {
			t.Fatal(err)
		}
		foreign, err := os.ReadFile(filepath.Join(stranger, "repository", "metadata", "timestamp.json"))
		if err != nil {
			t.Fatal(err)
		}
		os.WriteFile(ts, foreign, 0o644)
		t.Logf("unknown key: %s", h.refused(t, apitypes.UpdateCheck, `(?i)sign|key`))
		os.WriteFile(ts, seen, 0o644)
		if err := tufrepo.Refresh(lab.dir, 0, 0); err != nil {
			t.Fatal(err)
		}
		h.action(t, apitypes.UpdateCheck)
		os.WriteFile(ts, seen, 0o644) // an older version than the host has now seen
		t.Logf("metadata rollback: %s", h.refused(t, apitypes.UpdateCheck, `(?i)older|version`))
		if err := tufrepo.Refresh(lab.dir, 0, 0); err != nil {
			t.Fatal(err)
		}
		// A target whose bytes are not what the signed metadata says.
		st = h.action(t, apitypes.UpdateCheck)
		if st.Chosen == nil || st.Chosen.Version != "3.0.0" {
			t.Fatalf("check chose %+v, want 3.0.0", st.Chosen)
		}
		m, err := tufrepo.Manifest(lab.dir, "qemu", "")
		if err != nil {
			t.Fatal(err)
		}
		verity := m.Release("3.0.0").Payload.Verity
		matches, _ := filepath.Glob(filepath.Join(lab.dir, "repository", "targets", "*"+verity.Name))
		if len(matches) != 1 {
			t.Fatalf("published verity target: %q", matches)
		}
		orig, err := os.ReadFile(matches[0])
		if err != nil {
			t.Fatal(err)
		}
		bad := append([]byte(nil), orig...)
		bad[len(bad)/2] ^= 0xff
		os.WriteFile(matches[0], bad, 0o644)
		t.Logf("tampered target: %s", h.refused(t, apitypes.UpdateApply, `(?i)match|hash`))
		os.WriteFile(matches[0], orig, 0o644)
		if st := h.status(t); st.State != apitypes.UpdateError || st.Staged != nil || st.LastAttempt == nil || st.LastAttempt.Error == "" {
			t.Fatalf("after the refused apply: %+v", st)
		}
		h.checkOS(t, "2.0.0", contract.SlotB)
	})
	if t.Failed() {
		return
	}

	// Power cuts in the middle of applying v3, first while it downloads, then while it writes
	// slot a: each time v2 boots again, and the next apply goes on from what reached the disk.
	h.action(tb, apitypes.UpdateCheck)
	h.cutDuring(tb, "the download", func(st apitypes.UpdateStatus, _ bool) bool { return st.BytesDownloaded > 8<<20 })
	h.start(tb)
	h.ready(tb, "2.0.0", contract.SlotB)
	h.action(tb, apitypes.UpdateCheck)
	m, err := tufrepo.Manifest(lab.dir, "qemu", "")
	if err != nil {
		tb.Fatal(err)
	}
	p := m.Release("3.0.0").Payload
	uki := p.UKI[contract.SlotA]
	h.cutDuring(tb, "the write of slot a", func(_ apitypes.UpdateStatus, settled bool) bool {
		// The UKI, downloaded last, is all there (resumed downloads send only the rest).
		return settled && lab.servedFor(uki.Name) >= uki.Size
	})
	h.start(tb)
	h.ready(tb, "2.0.0", contract.SlotB)
	if st := h.status(tb); st.Staged != nil || st.Activated != nil {
		tb.Fatalf("after the power cuts: staged %+v, activated %+v", st.Staged, st.Activated)
	}
	before := lab.served.Load()
	h.update(tb, "3.0.0")
	tb.Logf("apply after the power cuts: the server sent %d bytes", lab.served.Load()-before)
	// Nothing was downloaded twice: v3's root, verity tree and slot a UKI once, plus the
	// tampered verity tree, the metadata of all those checks, and what the power cut took
	// before it reached the disk (the client syncs a download every 4 MiB).
	need := p.Root.Size + p.Verity.Size + p.UKI[contract.SlotA].Size
	if sent := lab.served.Load() - v3Start; sent > need+p.Verity.Size+(4+2)<<20 {
		tb.Fatalf("v3 took %d bytes from the server, its download is %d: something was downloaded twice", sent, need)
	} else {
		tb.Logf("v3: %d bytes served for a %d-byte download (through a refused target and two power cuts)", sent, need)
	}

	// v3 never becomes healthy: its only boot gives it up, and v2 boots again.
	h.start(tb)
	if _, err := h.vm.Expect(regexp.MustCompile(`ballast: init variant=qemu version=3\.0\.0`), 3*time.Minute); err != nil {
		tb.Fatalf("v3 did not boot: %v", err)
	}
	if _, err := h.vm.Expect(regexp.MustCompile(`boot unhealthy: .*giving up ballast-\d+-a-3\.0\.0`), 3*time.Minute); err != nil {
		tb.Fatalf("v3 was not given up: %v", err)
	}
	h.rebooted(tb, "v3 given up")
	h.start(tb)
	h.ready(tb, "2.0.0", contract.SlotB)
	st := h.status(tb)
	if st.Rollback == nil || st.Rollback.Version != "3.0.0" || !strings.Contains(st.Rollback.Reason, "unhealthy") {
		tb.Fatalf("after v3: rollback %+v, want 3.0.0 unhealthy", st.Rollback)
	}
	tb.Logf("v3 rollback: %+v", *st.Rollback)
	if st.Running.OnTrial {
		tb.Fatalf("back on v2, which is on trial: %+v", st.Running)
	}

	// v4's kernel panics on each of its three tries; then v2 boots again.
	lab.publish(tb, "4.0.0")
	h.update(tb, "4.0.0")
	for try := 1; try <= contract.DefaultTries; try++ {
		h.start(tb)
		if _, err := h.vm.Expect(regexp.MustCompile(`Kernel panic`), 3*time.Minute); err != nil {
			tb.Fatalf("v4 try %d: no kernel panic: %v", try, err)
		}
		h.rebooted(tb, fmt.Sprintf("v4 try %d", try))
	}
	h.start(tb)
	h.ready(tb, "2.0.0", contract.SlotB)
	st = h.status(tb)
	if st.Rollback == nil || st.Rollback.Version != "4.0.0" || !strings.Contains(st.Rollback.Reason, "did not boot") {
		tb.Fatalf("after v4: rollback %+v, want 4.0.0 that did not boot", st.Rollback)
	}
	tb.Logf("v4 rollback: %+v", *st.Rollback)
	h.checkOS(tb, "2.0.0", contract.SlotB)
	if m := motd(tb, h.c); m != "set on v1" {
		tb.Fatalf("motd at the end = %q", m)
	}
	powerdown(tb, h.vm)
}
