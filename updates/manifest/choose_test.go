package manifest

import (
	"strings"
	"testing"
	"time"
)

func TestChoose(t *testing.T) {
	waves := []Wave{{0, t0.Add(time.Hour)}, {1023, t0.Add(2 * time.Hour)}, {2047, t0.Add(10 * time.Hour)}}
	m := &Manifest{Variant: "qemu", MaxVersion: "3.0.0", Releases: []Release{
		release("1.0.0"),
		release("2.0.0"),
		release("2.1.0-rc1", waves...),
		release("2.1.0", waves...),
		release("3.1.0"), // above max_version: listed nowhere
	}}
	for _, tc := range []struct {
		name        string
		current     string
		lock        string
		seed        int
		ignoreWaves bool
		now         time.Time
		update      string // "" = none
		upToDate    bool
		waiting     string
		opens       time.Time
		err         string
	}{
		{name: "latest open release", current: "1.0.0", seed: 500, now: t0, update: "2.0.0", waiting: "2.1.0", opens: t0.Add(2 * time.Hour)},
		{name: "empty lock is latest", current: "1.0.0", lock: "", seed: 0, now: t0.Add(time.Hour), update: "2.1.0"},
		{name: "before any wave nobody", current: "2.0.0", seed: 0, now: t0.Add(59 * time.Minute), waiting: "2.1.0", opens: t0.Add(time.Hour)},
		{name: "first wave at its start", current: "2.0.0", seed: 0, now: t0.Add(time.Hour), update: "2.1.0"},
		{name: "second wave waits", current: "2.0.0", seed: 1, now: t0.Add(time.Hour), waiting: "2.1.0", opens: t0.Add(2 * time.Hour)},
		{name: "bound is inclusive", current: "2.0.0", seed: 1023, now: t0.Add(2 * time.Hour), update: "2.1.0"},
		{name: "last wave", current: "2.0.0", seed: 2047, now: t0.Add(9 * time.Hour), waiting: "2.1.0", opens: t0.Add(10 * time.Hour)},
		{name: "ignore waves", current: "2.0.0", seed: 2047, ignoreWaves: true, now: t0, update: "2.1.0"},
		{name: "up to date", current: "2.1.0", seed: 7, now: t0.Add(24 * time.Hour), upToDate: true},
		{name: "newer than everything open", current: "3.0.0", seed: 7, now: t0.Add(24 * time.Hour), upToDate: true},
		{name: "same version written differently", current: "2.1", seed: 7, now: t0.Add(24 * time.Hour), upToDate: true},
		{name: "rc upgrades to release", current: "2.1.0-rc1", seed: 7, now: t0.Add(24 * time.Hour), update: "2.1.0"},
		{name: "max version holds back", current: "2.1.0", seed: 7, now: t0.Add(24 * time.Hour), upToDate: true},
		{name: "lock older is a downgrade", current: "2.1.0", lock: "1.0.0", seed: 7, now: t0, update: "1.0.0"},
		{name: "lock newer", current: "1.0.0", lock: "2.0", seed: 7, now: t0, update: "2.0.0"},
		{name: "lock current", current: "2.0.0", lock: "2.0.0", seed: 7, now: t0, upToDate: true},
		{name: "lock waits for its wave", current: "1.0.0", lock: "2.1.0", seed: 1500, now: t0.Add(3 * time.Hour), waiting: "2.1.0", opens: t0.Add(10 * time.Hour)},
		{name: "lock ignoring waves", current: "1.0.0", lock: "2.1.0", seed: 1500, ignoreWaves: true, now: t0, update: "2.1.0"},
		{name: "lock above max", current: "1.0.0", lock: "3.1.0", seed: 1, now: t0, err: "above max_version 3.0.0"},
		{name: "lock unknown", current: "1.0.0", lock: "9.9", seed: 1, now: t0, err: "version lock 9.9: no such release"},
		{name: "lock not a version", current: "1.0.0", lock: "newest", seed: 1, now: t0, err: "version lock"},
		{name: "seed out of range", current: "1.0.0", seed: 2048, now: t0, err: "seed 2048"},
		{name: "bad current", current: "one", seed: 1, now: t0, err: "current version"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			lock := tc.lock
			if lock == "" && tc.name != "empty lock is latest" {
				lock = LockLatest
			}
			c, err := m.Choose(tc.current, lock, tc.seed, tc.ignoreWaves, tc.now)
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("Choose() error = %v, want %q", err, tc.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			got := ""
			if c.Update != nil {
				got = c.Update.Version
			}
			if got != tc.update || c.UpToDate != tc.upToDate || c.Waiting != tc.waiting || !c.WaveOpens.Equal(tc.opens) {
				t.Errorf("Choose() = update %q upToDate %v waiting %q opens %v (%s); want %q %v %q %v",
					got, c.UpToDate, c.Waiting, c.WaveOpens, c.Reason, tc.update, tc.upToDate, tc.waiting, tc.opens)
			}
			if want := "2.1.0 2.1.0-rc1 2.0.0 1.0.0"; strings.Join(c.Available, " ") != want {
				t.Errorf("Available = %v, want %s", c.Available, want)
			}
			if c.Reason == "" {
				t.Error("no reason")
			}
		})
	}
}

// TestWaveRollout follows one release through its waves: hosts with different seeds take it at
// different times, each exactly when its wave starts.
func TestWaveRollout(t *testing.T) {
	waves, err := ParseWaves("0@+0h,1024@+4h,2047@+24h", t0)
	if err != nil {
		t.Fatal(err)
	}
	m := &Manifest{Variant: "qemu", Releases: []Release{release("1.0.0"), release("2.0.0", waves...)}}
	seeds := []int{0, 1, 1024, 1025, 2047}
	took := map[int]time.Duration{}
	for after := time.Duration(0); after <= 30*time.Hour; after += 30 * time.Minute {
		for _, seed := range seeds {
			if _, done := took[seed]; done {
				continue
			}
			c, err := m.Choose("1.0.0", LockLatest, seed, false, t0.Add(after))
			if err != nil {
				t.Fatal(err)
			}
			if c.Update != nil {
				took[seed] = after
			} else if c.Waiting != "2.0.0" || c.WaveOpens.Before(t0.Add(after)) {
				t.Errorf("seed %d at +%v: waiting %q opening %v", seed, after, c.Waiting, c.WaveOpens)
			}
		}
	}
	want := map[int]time.Duration{0: 0, 1: 4 * time.Hour, 1024: 4 * time.Hour, 1025: 24 * time.Hour, 2047: 24 * time.Hour}
	for _, seed := range seeds {
		got, ok := took[seed]
		if !ok || got != want[seed] {
			t.Errorf("seed %d took 2.0.0 at +%v (taken: %v), want +%v", seed, got, ok, want[seed])
		}
	}
	// The same hosts ignoring waves all take it at once.
	for _, seed := range seeds {
		if c, _ := m.Choose("1.0.0", LockLatest, seed, true, t0); c.Update == nil {
			t.Errorf("seed %d ignoring waves: no update", seed)
		}
	}
}
