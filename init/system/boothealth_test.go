package system

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/ballast-os/ballast/contract"
	"github.com/ballast-os/ballast/init/efivar"
	"github.com/ballast-os/ballast/init/system/powerbutton"
	"github.com/ballast-os/ballast/init/system/supervise"
	"github.com/ballast-os/ballast/tests/testutil"
)

const (
	prevEntry  = "ballast-1-a-1.0.0.efi"
	trialEntry = "ballast-2-b-2.0.0+2-1.efi"
)

// gateInit is an Init on a UEFI machine whose loader booted the entry booted from the ESP in the
// Init's tree (a trial when LoaderBootCountPath names it), beside the entries in others.
func gateInit(t *testing.T, booted string, trial bool, others []string, timeout, bless time.Duration) (*Init, *fakeKernel, *testutil.Buffer) {
	t.Helper()
	i, k, out := testInit(t)
	uefiMachine(t, i)
	i.healthPoll = 5 * time.Millisecond
	i.image = contract.Image{Version: "2.0.0", Services: []string{"apiserver"},
		Updates: contract.UpdatePolicy{HealthTimeout: contract.Duration(timeout), BlessAfter: contract.Duration(bless)}}
	i.identity = contract.Identity{Version: "2.0.0", Variant: "qemu", Slot: "b", RootHash: strings.Repeat("0f", 32)}
	for _, n := range append([]string{booted}, others...) {
		write(t, i, espFile(n), "UKI "+n)
	}
	if trial {
		setEFIVar(t, i, efivar.LoaderBootCountPath, `\EFI\Linux\`+booted)
	}
	setEFIVar(t, i, efivar.LoaderEntrySelected, booted)
	close(i.bootDone)
	go i.initRandom(context.Background())
	return i, k, out
}

func espFile(name string) string { return filepath.Join(contract.ESPMount, contract.ESPEntries, name) }

// espEntries lists the entry files on the Init's ESP.
func espEntries(t *testing.T, i *Init) []string {
	t.Helper()
	ents, err := os.ReadDir(i.path(filepath.Join(contract.ESPMount, contract.ESPEntries)))
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range ents {
		names = append(names, e.Name())
	}
	return names
}

func history(t *testing.T, i *Init) []contract.BootRecord {
	t.Helper()
	b, err := os.ReadFile(i.path(contract.BootHistoryPath))
	if err != nil {
		t.Fatal(err)
	}
	var h contract.BootHistory
	if err := json.Unmarshal(b, &h); err != nil {
		t.Fatalf("%s: %v", contract.BootHistoryPath, err)
	}
	return h.Boots
}

// judge runs the gate to its verdict, with the API answering when healthy is set, and returns
// how long after the ready line (or the gate's start, without one) the verdict came.
func judge(t *testing.T, i *Init, api bool) time.Duration {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if i.sup == nil {
		startFakeAPIServer(t, i)
	}
	if api {
		fakeAPI(t, i, "")
	}
	i.started = time.Now()
	go i.announce(ctx)
	readyAt := make(chan time.Time, 1)
	go func() {
		select {
		case <-i.ready:
			readyAt <- time.Now()
		case <-ctx.Done():
		}
	}()
	i.watchBoot(ctx)
	if ctx.Err() != nil {
		t.Fatal("no verdict")
	}
	end := time.Now()
	select {
	case r := <-readyAt:
		return end.Sub(r)
	default:
		return end.Sub(i.started)
	}
}

func rebootRequested(i *Init) (shutdownRequest, bool) {
	select {
	case r := <-i.requests:
		return r, true
	default:
		return shutdownRequest{}, false
	}
}

func TestTrialBlessed(t *testing.T) {
	const bless = 300 * time.Millisecond
	i, _, out := gateInit(t, trialEntry, true, []string{prevEntry}, 10*time.Second, bless)
	if took := judge(t, i, true); took < bless {
		t.Errorf("blessed %v after the ready line, before %v of health", took, bless)
	}
	if got := espEntries(t, i); !slices.Equal(got, []string{prevEntry, "ballast-2-b-2.0.0.efi"}) {
		t.Errorf("ESP entries %q", got)
	}
	if b, _ := os.ReadFile(i.path(espFile("ballast-2-b-2.0.0.efi"))); string(b) != "UKI "+trialEntry {
		t.Errorf("the blessed entry holds %q", b)
	}
	if !strings.Contains(out.String(), "ballast: boot blessed: ballast-2-b-2.0.0.efi\n") {
		t.Errorf("console:\n%s", out)
	}
	h := history(t, i)
	if len(h) != 1 || h[0].Result != "blessed" || h[0].Entry != trialEntry || !h[0].Trial || h[0].Slot != "b" ||
		h[0].Version != "2.0.0" || h[0].Reason != "" || h[0].Time.IsZero() {
		t.Errorf("history %+v", h)
	}
	if r, ok := rebootRequested(i); ok {
		t.Errorf("a blessed boot asked for %v", r)
	}
}

func TestTrialNeverHealthy(t *testing.T) {
	const timeout = 400 * time.Millisecond
	i, _, out := gateInit(t, trialEntry, true, []string{prevEntry}, timeout, 100*time.Millisecond)
	if took := judge(t, i, false); took < timeout {
		t.Errorf("given up %v after the start, before the %v timeout", took, timeout)
	}
	if got := espEntries(t, i); !slices.Equal(got, []string{prevEntry, "ballast-2-b-2.0.0+0-3.efi"}) {
		t.Errorf("ESP entries %q", got)
	}
	reason := "not healthy 400ms after the init started: no ready line yet: service apiserver is running"
	if want := "ballast: error: boot unhealthy: " + reason + "; giving up " + trialEntry + " and rebooting\n"; !strings.Contains(out.String(), want) {
		t.Errorf("console lacks %q:\n%s", want, out)
	}
	h := history(t, i)
	if len(h) != 1 || h[0].Result != "unhealthy" || h[0].Reason != reason || !h[0].Trial || h[0].Entry != trialEntry {
		t.Errorf("history %+v", h)
	}
	if r, ok := rebootRequested(i); !ok || r.act != Reboot || r.cause != "boot unhealthy" {
		t.Errorf("reboot request %v %v", r, ok)
	}
}

// A crash loop gives a trial up at once, long before the health timeout.
func TestTrialCrashLoop(t *testing.T) {
	i, _, out := gateInit(t, trialEntry, true, []string{prevEntry}, 20*time.Second, 5*time.Second)
	api := newAPIClient(i.path(contract.APISocket))
	sup, err := supervise.New(supervise.Options{Console: i.console, ProbeInterval: 5 * time.Millisecond,
		Backoff: supervise.Backoff{Initial: time.Millisecond, Max: 10 * time.Millisecond}},
		supervise.Service{ID: "apiserver", Restart: supervise.RestartAlways, Ready: api.ready,
			Runner: &supervise.Exec{Reaper: testReaper, Path: "/bin/sleep", Args: []string{"30"}, Console: i.console}},
		supervise.Service{ID: "worker", Restart: supervise.RestartAlways,
			Runner: &supervise.Exec{Reaper: testReaper, Path: "/bin/sh", Args: []string{"-c", "exit 1"}, Console: i.console}})
	if err != nil {
		t.Fatal(err)
	}
	if err := sup.Start(); err != nil {
		t.Fatal(err)
	}
	i.sup = sup
	t.Cleanup(func() { sup.Stop(context.Background()) })
	if took := judge(t, i, true); took > 10*time.Second {
		t.Errorf("crash loop found after %v", took)
	}
	h := history(t, i)
	if len(h) != 1 || h[0].Result != "unhealthy" || !strings.HasPrefix(h[0].Reason, "service worker is in a crash loop: ") {
		t.Fatalf("history %+v", h)
	}
	if !strings.Contains(out.String(), "boot unhealthy: service worker is in a crash loop") {
		t.Errorf("console:\n%s", out)
	}
	if got := espEntries(t, i); !slices.Contains(got, "ballast-2-b-2.0.0+0-3.efi") {
		t.Errorf("ESP entries %q", got)
	}
	if _, ok := rebootRequested(i); !ok {
		t.Error("no reboot requested")
	}
}

// A crash of a service the ready line waits for starts the bless window over, even when the
// service is back before the next look.
func TestBlessWindowStartsOverAfterACrash(t *testing.T) {
	const bless = 600 * time.Millisecond
	i, _, _ := gateInit(t, trialEntry, true, []string{prevEntry}, 20*time.Second, bless)
	startFakeAPIServer(t, i)
	go func() {
		<-i.ready
		time.Sleep(200 * time.Millisecond)
		for _, st := range i.sup.Statuses() {
			if st.ID == "apiserver" {
				syscall.Kill(st.Pid, syscall.SIGKILL)
			}
		}
	}()
	if took := judge(t, i, true); took < 200*time.Millisecond+bless {
		t.Errorf("blessed %v after the ready line: the crash at 200ms did not start the window over", took)
	}
	if h := history(t, i); len(h) != 1 || h[0].Result != "blessed" {
		t.Errorf("history %+v", h)
	}
}

func TestNotOnTrial(t *testing.T) {
	for _, healthy := range []bool{true, false} {
		t.Run(map[bool]string{true: "healthy", false: "unhealthy"}[healthy], func(t *testing.T) {
			i, _, out := gateInit(t, prevEntry, false, nil, 300*time.Millisecond, 100*time.Millisecond)
			judge(t, i, healthy)
			if got := espEntries(t, i); !slices.Equal(got, []string{prevEntry}) {
				t.Errorf("ESP entries %q: a boot not on trial was renamed", got)
			}
			h := history(t, i)
			want := map[bool]string{true: "healthy", false: "unhealthy"}[healthy]
			if len(h) != 1 || h[0].Result != want || h[0].Trial || h[0].Entry != prevEntry {
				t.Errorf("history %+v", h)
			}
			line := "ballast: boot healthy: " + prevEntry
			if !healthy {
				line = "ballast: error: boot unhealthy: not healthy 300ms after the init started: no ready line yet: service apiserver is running; " + prevEntry + " is not on trial: not rebooting"
			}
			if !strings.Contains(out.String(), line) {
				t.Errorf("console lacks %q:\n%s", line, out)
			}
			if r, ok := rebootRequested(i); ok {
				t.Errorf("a boot not on trial asked for %v", r)
			}
		})
	}
}

// With no other entry to boot, a reboot would only boot the same entry again.
func TestTrialWithoutFallback(t *testing.T) {
	i, _, out := gateInit(t, trialEntry, true, []string{"ballast-1-a-1.0.0+0-3.efi"}, 200*time.Millisecond, 100*time.Millisecond)
	judge(t, i, false)
	if r, ok := rebootRequested(i); ok {
		t.Errorf("asked for %v with nothing else to boot", r)
	}
	if got := espEntries(t, i); !slices.Contains(got, trialEntry) {
		t.Errorf("ESP entries %q", got)
	}
	if h := history(t, i); len(h) != 1 || h[0].Result != "unhealthy" || !strings.Contains(h[0].Reason, "not given up: no other entry is left to boot") {
		t.Errorf("history %+v", h)
	}
	if !strings.Contains(out.String(), "not giving up "+trialEntry) {
		t.Errorf("console:\n%s", out)
	}
}

// The whole way: Run boots an image whose userspace never becomes healthy, the gate gives the
// trial up, and Run's loop reboots through the shutdown sequence.
func TestUnhealthyTrialReboots(t *testing.T) {
	i, k, out := testInit(t)
	uefiMachine(t, i)
	i.healthPoll = 5 * time.Millisecond
	i.button = powerbutton.Watcher{SysDir: i.path("/nothing"), DevDir: i.path("/nothing"), GiveUp: time.Millisecond}
	write(t, i, contract.ImageInfoPath, `{"variant":"qemu","version":"3.0.0","services":[],"modules":[],
		"updates":{"tries":3,"health_timeout":"300ms","bless_after":"100ms","has_root":false}}`)
	write(t, i, contract.OSReleasePath, "VERSION_ID=3.0.0\nVARIANT_ID=qemu\n")
	write(t, i, "/proc/cmdline", "ballast.slot=a "+contract.ParamRoot+"="+testRootUUID+"\n")
	write(t, i, espFile("ballast-3-a-3.0.0+1-2.efi"), "v3")
	write(t, i, espFile("ballast-2-b-2.0.0.efi"), "v2")
	setEFIVar(t, i, efivar.LoaderBootCountPath, `\EFI\Linux\ballast-3-a-3.0.0+1-2.efi`)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		i.Run(ctx)
		close(done)
	}()
	defer func() {
		cancel()
		<-done
	}()
	deadline := time.Now().Add(10 * time.Second)
	for !slices.Contains(k.log(), "reboot 0x1234567") {
		if time.Now().After(deadline) {
			t.Fatalf("no reboot; kernel calls %q\nconsole:\n%s", k.log(), out)
		}
		time.Sleep(10 * time.Millisecond)
	}
	for _, want := range []string{
		"ballast: boot trial of ballast-3-a-3.0.0+1-2.efi",
		"ballast: error: boot unhealthy: not healthy 300ms after the init started: no ready line: no service serves the API; giving up ballast-3-a-3.0.0+1-2.efi and rebooting",
		"ballast: shutdown reboot (boot unhealthy)",
	} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("console lacks %q:\n%s", want, out)
		}
	}
	if got := espEntries(t, i); !slices.Equal(got, []string{"ballast-2-b-2.0.0.efi", "ballast-3-a-3.0.0+0-3.efi"}) {
		t.Errorf("ESP entries %q", got)
	}
	if h := history(t, i); len(h) != 1 || h[0].Version != "3.0.0" || h[0].Slot != "a" || h[0].Result != "unhealthy" {
		t.Errorf("history %+v", h)
	}
}

func TestBootedEntry(t *testing.T) {
	tests := []struct {
		name           string
		countPath, sel string // "" leaves the variable unset
		want           bootedEntry
		err            string
	}{
		{"trial", `\EFI\Linux\` + trialEntry, trialEntry,
			bootedEntry{name: trialEntry, file: "EFI/Linux/" + trialEntry, trial: true,
				entry: contract.Entry{Generation: 2, Slot: "b", Version: "2.0.0", Counting: true, TriesLeft: 2, TriesDone: 1}}, ""},
		{"trial, upper-case path", `\efi\linux\BALLAST-2-B-2.0.0+2-1.EFI`, "",
			bootedEntry{name: "BALLAST-2-B-2.0.0+2-1.EFI", file: "efi/linux/BALLAST-2-B-2.0.0+2-1.EFI", trial: true,
				entry: contract.Entry{Generation: 2, Slot: "b", Version: "2.0.0", Counting: true, TriesLeft: 2, TriesDone: 1}}, ""},
		{"blessed", "", prevEntry, bootedEntry{name: prevEntry}, ""},
		{"no loader", "", "", bootedEntry{}, ""},
		{"outside EFI/Linux", `\EFI\ballast\` + trialEntry, "", bootedEntry{name: trialEntry}, "not an entry in EFI/Linux"},
		{"not Ballast's", `\EFI\Linux\other+2.efi`, "", bootedEntry{name: "other+2.efi"}, "not ballast-"},
		{"a path out of the ESP", `\EFI\..\..\x+1.efi`, "", bootedEntry{}, "not a plain path"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			i, _, _ := testInit(t)
			mkdirs(t, i, contract.EFIVarsMount)
			if tt.countPath != "" {
				setEFIVar(t, i, efivar.LoaderBootCountPath, tt.countPath)
			}
			if tt.sel != "" {
				setEFIVar(t, i, efivar.LoaderEntrySelected, tt.sel)
			}
			got, err := i.bootedEntry()
			if (err == nil) != (tt.err == "") || err != nil && !strings.Contains(err.Error(), tt.err) {
				t.Errorf("error %v, want %q", err, tt.err)
			}
			if got != tt.want {
				t.Errorf("bootedEntry = %+v, want %+v", got, tt.want)
			}
		})
	}
}

func TestEntryName(t *testing.T) {
	e, _ := contract.ParseEntry("BALLAST-2-B-2.0.0-RC1+2-1.efi")
	tests := []struct {
		name string
		to   contract.Entry
		want string
	}{
		{"BALLAST-2-B-2.0.0-RC1+2-1.efi", e.Blessed(), "BALLAST-2-B-2.0.0-RC1.efi"},
		{"BALLAST-2-B-2.0.0-RC1+2-1.efi", e.GiveUp(), "BALLAST-2-B-2.0.0-RC1+0-3.efi"},
		{trialEntry, contract.Entry{Generation: 2, Slot: "b", Version: "2.0.0"}, "ballast-2-b-2.0.0.efi"},
		{"other.efi", e.Blessed(), "ballast-2-b-2.0.0-rc1.efi"},
	}
	for _, tt := range tests {
		if got := entryName(tt.name, tt.to); got != tt.want {
			t.Errorf("entryName(%q, %+v) = %q, want %q", tt.name, tt.to, got, tt.want)
		}
	}
}

func TestHealthTimes(t *testing.T) {
	i, _, _ := testInit(t)
	def := contract.DefaultUpdatePolicy()
	if timeout, bless := i.healthTimes(); timeout != time.Duration(def.HealthTimeout) || bless != time.Duration(def.BlessAfter) {
		t.Errorf("defaults: %v, %v", timeout, bless)
	}
	i.image.Updates = contract.UpdatePolicy{HealthTimeout: contract.Duration(time.Minute)}
	if timeout, bless := i.healthTimes(); timeout != time.Minute || bless != time.Duration(def.BlessAfter) {
		t.Errorf("timeout set: %v, %v", timeout, bless)
	}
}

func TestRecordBoot(t *testing.T) {
	i, _, out := testInit(t)
	machine(t, i, "testdata/mountinfo")
	for n := range contract.MaxBootRecords + 3 {
		if err := i.recordBoot(contract.BootRecord{Version: "v" + string(rune('a'+n)), Result: "healthy"}); err != nil {
			t.Fatal(err)
		}
	}
	h := history(t, i)
	if len(h) != contract.MaxBootRecords || h[0].Version != "vd" || h[len(h)-1].Version != "v"+string(rune('a'+contract.MaxBootRecords+2)) {
		t.Errorf("%d records, first %+v", len(h), h[0])
	}
	if _, err := os.Stat(i.path(contract.BootHistoryPath) + ".new"); !os.IsNotExist(err) {
		t.Errorf("temporary file left: %v", err)
	}

	// A history that cannot be read is kept, not overwritten.
	write(t, i, contract.BootHistoryPath, "{not json")
	if err := i.recordBoot(contract.BootRecord{Version: "new", Result: "blessed"}); err != nil {
		t.Fatal(err)
	}
	if h := history(t, i); len(h) != 1 || h[0].Version != "new" {
		t.Errorf("after a corrupt history: %+v", h)
	}
	if b, _ := os.ReadFile(i.path(contract.BootHistoryPath) + ".corrupt"); string(b) != "{not json" {
		t.Errorf("corrupt history kept as %q", b)
	}
	if !strings.Contains(out.String(), contract.BootHistoryPath) {
		t.Errorf("console does not name the file:\n%s", out)
	}

	// Without the data partition, nothing is written on the root's /local.
	write(t, i, "/proc/self/mountinfo", "20 1 253:0 / / ro,relatime shared:1 - erofs /dev/dm-0 ro\n")
	err := i.recordBoot(contract.BootRecord{Result: "healthy"})
	if err == nil || !strings.Contains(err.Error(), "/local is not mounted") {
		t.Errorf("record without /local: %v", err)
	}
}

// health tells when a service the ready line waits for last crashed, so a crash between two looks
// still starts the bless window over; other services' crashes count only towards a crash loop.
func TestHealthLastCrash(t *testing.T) {
	i, _, _ := testInit(t)
	i.image.Services = []string{"apiserver"}
	dir := t.TempDir()
	// Each crashes once, the worker once the apiserver's crash is seen, and then runs.
	once := func(id, after string) supervise.Service {
		return supervise.Service{ID: id, Restart: supervise.RestartAlways,
			Runner: &supervise.Exec{Reaper: testReaper, Path: "/bin/sh", Console: i.console, Args: []string{"-c",
				`while [ -n "$2" ] && [ ! -e "$2" ]; do sleep 0.01; done; [ -e "$1" ] && exec sleep 30; touch "$1"; exit 1`,
				"sh", filepath.Join(dir, id), after}}}
	}
	sup, err := supervise.New(supervise.Options{Console: i.console, Backoff: supervise.Backoff{Initial: time.Millisecond}},
		once("apiserver", ""), once("worker", filepath.Join(dir, "go")))
	if err != nil {
		t.Fatal(err)
	}
	if err := sup.Start(); err != nil {
		t.Fatal(err)
	}
	i.sup = sup
	t.Cleanup(func() { sup.Stop(context.Background()) })
	crashes := map[string][]time.Time{}
	deadline := time.Now().Add(10 * time.Second)
	for len(crashes["apiserver"]) == 0 || len(crashes["worker"]) == 0 {
		if time.Now().After(deadline) {
			t.Fatalf("no crashes: %+v", sup.Statuses())
		}
		time.Sleep(10 * time.Millisecond)
		for _, st := range sup.Statuses() {
			crashes[st.ID] = st.Crashes
		}
		if len(crashes["apiserver"]) > 0 {
			os.WriteFile(filepath.Join(dir, "go"), nil, 0o644)
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for _, id := range []string{"apiserver", "worker"} {
		if err := sup.WaitReady(ctx, id); err != nil {
			t.Fatal(err)
		}
	}
	close(i.ready)
	reason, loop, last := i.health(time.Now(), time.Minute)
	if reason != "" || loop {
		t.Errorf("health: %q, crash loop %v", reason, loop)
	}
	if !last.Equal(crashes["apiserver"][0]) || !last.Before(crashes["worker"][0]) {
		t.Errorf("last crash %v; the apiserver crashed at %v, the worker at %v", last, crashes["apiserver"][0], crashes["worker"][0])
	}
	// Crashes before the window do not count towards a loop.
	if reason, loop, _ := i.health(time.Now().Add(time.Hour), time.Minute); reason != "" || loop {
		t.Errorf("an hour later: %q, crash loop %v", reason, loop)
	}
}

// A service that failed for good keeps the host from being healthy, ready line or not.
func TestFailedServiceUnhealthy(t *testing.T) {
	i, _, _ := gateInit(t, prevEntry, false, nil, 300*time.Millisecond, 100*time.Millisecond)
	api := newAPIClient(i.path(contract.APISocket))
	sup, err := supervise.New(supervise.Options{Console: i.console, ProbeInterval: 5 * time.Millisecond},
		supervise.Service{ID: "apiserver", Restart: supervise.RestartAlways, Ready: api.ready,
			Runner: &supervise.Exec{Reaper: testReaper, Path: "/bin/sleep", Args: []string{"30"}, Console: i.console}},
		supervise.Service{ID: "oneshot", Restart: supervise.RestartNever,
			Runner: &supervise.Exec{Reaper: testReaper, Path: "/bin/sh", Args: []string{"-c", "exit 3"}, Console: i.console}})
	if err != nil {
		t.Fatal(err)
	}
	if err := sup.Start(); err != nil {
		t.Fatal(err)
	}
	i.sup = sup
	t.Cleanup(func() { sup.Stop(context.Background()) })
	judge(t, i, true)
	h := history(t, i)
	if len(h) != 1 || h[0].Result != "unhealthy" || h[0].Reason != "not healthy 300ms after the init started: service oneshot failed: exited: exit status 3" {
		t.Errorf("history %+v", h)
	}
}

// When nothing acts on the reboot the gate asked for (Run's loop is gone or stuck), the gate
// reboots the machine itself.
func TestRebootWhenShutdownStuck(t *testing.T) {
	i, k, out := gateInit(t, trialEntry, true, []string{prevEntry}, 100*time.Millisecond, 50*time.Millisecond)
	i.rebootGrace = 100 * time.Millisecond
	startFakeAPIServer(t, i)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	i.started = time.Now()
	go i.announce(ctx)
	i.watchBoot(ctx)
	if r, ok := rebootRequested(i); !ok || r.act != Reboot {
		t.Fatalf("no reboot requested: %v", r)
	}
	if slices.Contains(k.log(), "reboot 0x1234567") {
		t.Error("rebooted at once, without giving Run's loop its chance")
	}
	deadline := time.Now().Add(10 * time.Second)
	for !slices.Contains(k.log(), "reboot 0x1234567") {
		if time.Now().After(deadline) {
			t.Fatalf("no reboot; kernel calls %q", k.log())
		}
		time.Sleep(10 * time.Millisecond)
	}
	if !strings.Contains(out.String(), "has not happened; rebooting now") {
		t.Errorf("console:\n%s", out)
	}
}

// Without a look at the ESP, a trial is given up only while the loader has tries of it left, so
// the reboots it causes are bounded.
func TestTrialWithoutESP(t *testing.T) {
	for _, tt := range []struct {
		booted string
		reboot bool
	}{{trialEntry, true}, {"ballast-2-b-2.0.0+0-3.efi", false}} {
		t.Run(tt.booted, func(t *testing.T) {
			i, _, out := gateInit(t, tt.booted, true, nil, 200*time.Millisecond, 100*time.Millisecond)
			if err := os.RemoveAll(i.path(contract.ESPMount)); err != nil {
				t.Fatal(err)
			}
			judge(t, i, false)
			if _, ok := rebootRequested(i); ok != tt.reboot {
				t.Errorf("reboot requested %v, want %v:\n%s", ok, tt.reboot, out)
			}
			if h := history(t, i); len(h) != 1 || h[0].Result != "unhealthy" {
				t.Errorf("history %+v", h)
			}
		})
	}
}
