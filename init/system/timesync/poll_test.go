package timesync

import (
	"testing"
	"time"
)

// Each case feeds the poller a sequence of outcomes and checks the waits it asks for.
func TestPoller(t *testing.T) {
	const s = time.Second
	type outcome struct {
		ok      bool
		offset  time.Duration
		stepped bool
		rate    bool
	}
	good := func(offset time.Duration) outcome { return outcome{ok: true, offset: offset} }
	step := outcome{ok: true, offset: 5 * s, stepped: true}
	fail := outcome{}
	rate := outcome{rate: true}
	tests := []struct {
		name     string
		outcomes []outcome
		waits    []time.Duration
	}{
		{"boot: step, confirm, back off to the maximum", []outcome{step, good(ms), good(ms), good(ms), good(ms), good(ms), good(ms), good(ms)},
			[]time.Duration{2 * s, 64 * s, 128 * s, 256 * s, 512 * s, 1024 * s, 2048 * s, 2048 * s}},
		{"unreachable at boot: quick retries up to the minimum", []outcome{fail, fail, fail, fail, fail, fail, fail},
			[]time.Duration{2 * s, 4 * s, 8 * s, 16 * s, 32 * s, 32 * s, 32 * s}},
		{"synced, then failing: the minimum", []outcome{good(ms), good(ms), good(ms), fail, fail},
			[]time.Duration{64 * s, 128 * s, 256 * s, 32 * s, 32 * s}},
		{"a middling offset keeps the interval", []outcome{good(ms), good(100 * ms), good(100 * ms)},
			[]time.Duration{64 * s, 64 * s, 64 * s}},
		{"a large offset halves it", []outcome{good(ms), good(ms), good(ms), good(200 * ms), good(-200 * ms), good(-300 * ms)},
			[]time.Duration{64 * s, 128 * s, 256 * s, 128 * s, 64 * s, 32 * s}},
		{"a step resets to the minimum", []outcome{good(ms), good(ms), step, good(ms)},
			[]time.Duration{64 * s, 128 * s, 2 * s, 64 * s}},
		{"rate limited: double, up to the maximum", []outcome{rate, rate, good(ms), rate, rate, rate, rate, rate},
			[]time.Duration{64 * s, 128 * s, 256 * s, 512 * s, 1024 * s, 2048 * s, 2048 * s, 2048 * s}},
		{"many failures do not overflow", make([]outcome, 100), nil},
	}
	for _, tt := range tests {
		p := newPoller(DefaultMinPoll, DefaultMaxPoll)
		for i, o := range tt.outcomes {
			var got time.Duration
			if o.ok {
				got = p.succeeded(o.offset, o.stepped)
			} else {
				got = p.failed(o.rate)
			}
			if got < firstRetry || got > DefaultMaxPoll {
				t.Errorf("%s: outcome %d: wait %v out of bounds", tt.name, i, got)
			}
			if tt.waits != nil && got != tt.waits[i] {
				t.Errorf("%s: outcome %d (%+v): wait %v, want %v", tt.name, i, o, got, tt.waits[i])
			}
		}
	}
}
