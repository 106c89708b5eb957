package image

import (
	"context"
	"crypto/tls"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/ballast-os/ballast/apiserver/client"
	"github.com/ballast-os/ballast/tests/qemu"
)

const (
	// crashTx is the transaction the writer stages in, so nothing else pending rides along.
	crashTx = "crash"
	// maxKillDelay bounds the random time the writer gets before the power goes: up to a few
	// dozen commits under TCG. Whatever the delay, the last acknowledged commit is moments old
	// at the cut, well inside ext4's 5 s journal commit interval in which an fsync-less write
	// would still be only in the guest's memory; a longer delay would find nothing more and
	// make every cut slower.
	maxKillDelay = 3 * time.Second
	// apiPoll is how often the remote API is tried while the guest comes up; short, because
	// every boot waits for it.
	apiPoll = 100 * time.Millisecond
)

// crashLedger is what the client knows about the key it writes: the value the server last
// acknowledged as committed, and the value whose commit was sent but not answered when the
// power went. After the cut the disk may hold either, and nothing else: anything older lost an
// acknowledged commit (a missing fsync), anything newer or different is garbage.
type crashLedger struct {
	acked    string
	inFlight string // "" when no commit was outstanding
	next     int    // N of the next value "v<N>"; values are never reused, so stale ones show
}

// check says which of the two values observed is, or why it is neither.
func (l crashLedger) check(observed string) (string, error) {
	switch {
	case observed == l.acked:
		return "acked", nil
	case l.inFlight != "" && observed == l.inFlight:
		return "in flight", nil
	}
	want := strconv.Quote(l.acked)
	if l.inFlight != "" {
		want += " (acknowledged) or " + strconv.Quote(l.inFlight) + " (in flight)"
	} else {
		want += " (acknowledged; no commit was in flight)"
	}
	if observed == "" {
		return "", fmt.Errorf("motd unset after the cut, want %s: acknowledged commits were lost", want)
	}
	if n, ok := strings.CutPrefix(observed, "v"); ok {
		if got, err := strconv.Atoi(n); err == nil {
			if acked, err := strconv.Atoi(strings.TrimPrefix(l.acked, "v")); err == nil && got < acked {
				return "", fmt.Errorf("motd %q after the cut, older than the acknowledged %s: an acknowledged commit was lost", observed, want)
			}
		}
	}
	return "", fmt.Errorf("motd %q after the cut, want %s", observed, want)
}

// commitLoop stages and commits motd = "v<N>" with increasing N until a request fails, keeping
// the ledger as it goes: a value is in flight from the moment its commit is sent until the answer
// arrives. It returns how many commits were acknowledged and the error that stopped it.
func commitLoop(ctx context.Context, c *client.Client, l *crashLedger) (acks int, err error) {
	for ; ; acks++ {
		v := "v" + strconv.Itoa(l.next)
		l.next++
		if err := c.PatchTx(ctx, crashTx, []byte(`{"motd":"`+v+`"}`)); err != nil {
			return acks, fmt.Errorf("PATCH /settings motd=%s: %w", v, err)
		}
		l.inFlight = v
		if _, err := c.CommitAndApplyTx(ctx, crashTx); err != nil {
			return acks, fmt.Errorf("POST /tx/commit_and_apply motd=%s: %w", v, err)
		}
		l.acked, l.inFlight = v, ""
	}
}

// TestCrashCommitsSurvivePowerCuts cuts the power (SIGKILL to QEMU) at random moments while a
// client commits a setting over the remote API as fast as it can, on one disk across all the
// cuts, and after each reboot reads the setting back: it must be the last acknowledged value or
// the one in flight, and the host must reach its ready line (so the datastore opened).
//
// A killed QEMU loses what the guest had not yet handed to the virtual disk, i.e. its page cache,
// which is what a missing fsync leaves unwritten; writes the disk had completed survive in the
// host's page cache, so this does not model a disk that drops its own volatile cache.
//
// BALLAST_CRASH_CUTS sets the number of cuts (default 20); BALLAST_CRASH_SEED repeats a run's kill
// delays.
func TestCrashCommitsSurvivePowerCuts(t *testing.T) {
	t.Parallel() // boots QEMU: see main_test.go
	cuts := envInt(t, "BALLAST_CRASH_CUTS", 20)
	seed := int64(envInt(t, "BALLAST_CRASH_SEED", int(time.Now().UnixNano())))
	t.Logf("seed %d (BALLAST_CRASH_SEED=%d repeats these kill delays)", seed, seed)
	rng := rand.New(rand.NewPCG(uint64(seed), 0))

	if err := qemu.Available(); err != nil {
		t.Fatalf("QEMU is needed for image tests: %v", err)
	}
	tlsCfg, err := client.LoadPKI(filepath.Join(buildDir, "pki"))
	if err != nil {
		t.Fatalf("dev PKI of the image: %v", err)
	}
	disk := copyDisk(t, 2<<30)
	// One UEFI variable store across the cuts too, like a machine's NVRAM: it is what a real
	// host keeps, and OVMF reaches the boot loader a little sooner once its boot options exist.
	vars, err := os.ReadFile(qemu.DefaultOVMFVarsTemplate)
	if err != nil {
		t.Fatalf("UEFI variable store template: %v", err)
	}
	nvram := filepath.Join(t.TempDir(), "OVMF_VARS.fd")
	if err := os.WriteFile(nvram, vars, 0o600); err != nil {
		t.Fatal(err)
	}
	var vm *qemu.VM
	t.Cleanup(func() {
		if vm == nil {
			return
		}
		_ = vm.Kill()
		if t.Failed() {
			t.Logf("console of the last boot:\n%s", vm.Console())
		}
	})

	l := crashLedger{next: 1}
	seen := map[string]int{}
	var totalAcks int
	begin := time.Now()
	for round := 0; round <= cuts; round++ {
		bootStart := time.Now()
		c := crashBoot(t, disk, nvram, tlsCfg, &vm)
		booted := time.Since(bootStart)
		if round == 0 {
			// A known first value, so every later check compares against a "v<N>".
			if err := c.PatchTx(t.Context(), crashTx, []byte(`{"motd":"v0"}`)); err != nil {
				t.Fatal(err)
			}
			if _, err := c.CommitAndApplyTx(t.Context(), crashTx); err != nil {
				t.Fatal(err)
			}
			l.acked = "v0"
			t.Logf("boot  0: ready and API up in %4.1fs (first boot)", booted.Seconds())
		} else {
			got, err := remoteMotd(t.Context(), c)
			if err != nil {
				t.Fatalf("after cut %d: %v", round, err)
			}
			kind, err := l.check(got)
			if err != nil {
				t.Fatalf("after cut %d: %v", round, err)
			}
			seen[kind]++
			// The system init printed the motd it read from the datastore at boot.
			if _, err := vm.Expect(regexp.MustCompile(`^`+regexp.QuoteMeta(got)+`$`), 10*time.Second); err != nil {
				t.Fatalf("after cut %d: console motd: %v", round, err)
			}
			t.Logf("boot %2d: ready and API up in %4.1fs, motd %s = %s", round, booted.Seconds(), got, kind)
			// What the disk holds is now the truth the next cut is judged against.
			l.acked, l.inFlight = got, ""
		}
		if round == cuts {
			break
		}

		delay := time.Duration(rng.Int64N(int64(maxKillDelay)))
		type result struct {
			acks int
			err  error
			at   time.Time
		}
		ctx, cancel := context.WithCancel(t.Context())
		done := make(chan result, 1)
		go func() {
			acks, err := commitLoop(ctx, c, &l)
			done <- result{acks, err, time.Now()}
		}()
		timer := time.NewTimer(delay)
		select {
		case <-timer.C:
		case r := <-done:
			cancel()
			t.Fatalf("boot %d: the writer stopped after %d commits, before the cut: %v", round, r.acks, r.err)
		}
		killAt := time.Now()
		if err := vm.Kill(); err != nil {
			cancel()
			t.Fatal(err)
		}
		// The kill closes the forwarded connection, so the request in progress fails at once;
		// the cancel only guards against a transport that would not notice.
		var r result
		select {
		case r = <-done:
		case <-time.After(30 * time.Second):
			cancel()
			r = <-done
		}
		cancel()
		c.Close()
		if r.at.Before(killAt) {
			t.Fatalf("boot %d: the writer failed before the cut: %v", round, r.err)
		}
		totalAcks += r.acks
		outstanding := "none"
		if l.inFlight != "" {
			outstanding = l.inFlight
		}
		t.Logf("cut %2d: after %4.2fs and %3d acknowledged commits; acked %s, in flight %s", round+1, delay.Seconds(), r.acks, l.acked, outstanding)
	}
	if err := vm.Kill(); err != nil {
		t.Error(err)
	}
	t.Logf("%d cuts in %s, %d commits acknowledged; after the cuts the disk held the acknowledged value %d times, the one in flight %d times",
		cuts, time.Since(begin).Round(time.Second), totalAcks, seen["acked"], seen["in flight"])
	if totalAcks < cuts {
		t.Errorf("only %d commits acknowledged over %d boots: the cuts hardly ever caught a writer at work", totalAcks, cuts)
	}
}

// crashBoot boots disk with the remote API forwarded and returns once the host printed its ready
// line and the API answers over mutual TLS. The VM goes into *vm as soon as it runs, so that the
// test's cleanup kills it and shows its console whatever fails.
func crashBoot(t *testing.T, disk, nvram string, tlsCfg *tls.Config, vm **qemu.VM) *client.Client {
	t.Helper()
	port := freePort(t)
	var err error
	*vm, err = startVM(t, qemu.Config{Disk: disk, OVMFVars: nvram, Timeout: 5 * time.Minute,
		HostFwd: []string{fmt.Sprintf("tcp:127.0.0.1:%d-:50443", port)}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := (*vm).Expect(readyRE, 0); err != nil {
		t.Fatalf("no ready line (did the datastore open?): %v", err)
	}
	c, err := client.NewRemote(fmt.Sprintf("https://127.0.0.1:%d", port), tlsCfg)
	if err != nil {
		t.Fatal(err)
	}
	// The ready line means the API socket answers; the remote listener also needs the guest's
	// DHCP lease, which usually comes within a second of it.
	deadline := time.Now().Add(60 * time.Second)
	for {
		ctx, cancel := context.WithTimeout(t.Context(), 2*time.Second)
		_, err := c.OS(ctx)
		cancel()
		if err == nil {
			return c
		}
		if time.Now().After(deadline) {
			t.Fatalf("remote API on port %d: %v", port, err)
		}
		time.Sleep(apiPoll)
	}
}

// remoteMotd reads settings.motd over the API, "" when it is unset.
func remoteMotd(ctx context.Context, c *client.Client) (string, error) {
	s, err := c.Settings(ctx)
	if err != nil {
		return "", fmt.Errorf("GET /settings: %w", err)
	}
	if s.Motd == nil {
		return "", nil
	}
	return *s.Motd, nil
}

func envInt(t *testing.T, name string, def int) int {
	t.Helper()
	v := os.Getenv(name)
	if v == "" {
		return def
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < 0 {
		t.Fatalf("%s=%q: want a non-negative integer", name, v)
	}
	return n
}

// TestCrashLedger checks the verdict the crash test relies on, without booting: only the
// acknowledged value or the one in flight passes.
func TestCrashLedger(t *testing.T) {
	tests := []struct {
		name     string
		ledger   crashLedger
		observed string
		want     string // the verdict, or a substring of the error
		ok       bool
	}{
		{"acknowledged", crashLedger{acked: "v7", inFlight: "v8"}, "v7", "acked", true},
		{"in flight landed", crashLedger{acked: "v7", inFlight: "v8"}, "v8", "in flight", true},
		{"acknowledged, nothing in flight", crashLedger{acked: "v7"}, "v7", "acked", true},
		{"lost acknowledged commit", crashLedger{acked: "v7", inFlight: "v8"}, "v6", "an acknowledged commit was lost", false},
		{"lost, nothing in flight", crashLedger{acked: "v7"}, "v3", "an acknowledged commit was lost", false},
		{"never written", crashLedger{acked: "v7", inFlight: "v8"}, "v9", `want "v7" (acknowledged) or "v8" (in flight)`, false},
		{"staged, not committed", crashLedger{acked: "v7"}, "v8", "no commit was in flight", false},
		{"torn", crashLedger{acked: "v17", inFlight: "v18"}, "v1", "lost", false},
		{"garbage", crashLedger{acked: "v7", inFlight: "v8"}, "v7\x00\x00", "want", false},
		{"unset", crashLedger{acked: "v7", inFlight: "v8"}, "", "motd unset after the cut", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := tt.ledger.check(tt.observed)
			switch {
			case tt.ok && (err != nil || got != tt.want):
				t.Fatalf("check(%q) = %q, %v; want %q", tt.observed, got, err, tt.want)
			case !tt.ok && (err == nil || !strings.Contains(err.Error(), tt.want)):
				t.Fatalf("check(%q) = %q, %v; want an error containing %q", tt.observed, got, err, tt.want)
			}
		})
	}
}
