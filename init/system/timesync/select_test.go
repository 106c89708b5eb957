package timesync

import (
	"errors"
	"net/netip"
	"testing"
	"time"

	"github.com/ballast-os/ballast/init/system/timesync/ntp"
)

const ms = time.Millisecond

func TestFilter(t *testing.T) {
	s := func(offset, delay time.Duration) ntp.Sample { return ntp.Sample{Offset: offset, Delay: delay} }
	tests := []struct {
		name    string
		samples []ntp.Sample
		best    ntp.Sample
		jitter  time.Duration
		ok      bool
	}{
		{"none", nil, ntp.Sample{}, 0, false},
		{"one", []ntp.Sample{s(3*time.Second, 20*ms)}, s(3*time.Second, 20*ms), 0, true},
		// The queued samples are off by half their extra delay; the fastest is right.
		{"least delay wins", []ntp.Sample{s(40*ms, 80*ms), s(10*ms, 20*ms), s(-20*ms, 60*ms), s(30*ms, 40*ms)}, s(10*ms, 20*ms),
			// RMS of 30, -30, 20 ms over the three others
			time.Duration(float64(ms) * 27.0801), true},
		{"first of equals", []ntp.Sample{s(ms, 5*ms), s(2*ms, 5*ms)}, s(ms, 5*ms), ms, true},
	}
	for _, tt := range tests {
		best, jitter, ok := filter(tt.samples)
		if ok != tt.ok || best != tt.best || (jitter-tt.jitter).Abs() > time.Microsecond {
			t.Errorf("%s: filter = %v, %v, %v; want %v, %v, %v", tt.name, best, jitter, ok, tt.best, tt.jitter, tt.ok)
		}
	}
}

func TestChoose(t *testing.T) {
	// c is a candidate with the given offset whose distance is dist (all of it root dispersion).
	c := func(name string, offset, dist time.Duration) candidate {
		return candidate{server: name, addr: netip.MustParseAddrPort("192.0.2.1:123"),
			sample: ntp.Sample{Offset: offset, RootDispersion: dist}}
	}
	tests := []struct {
		name  string
		cands []candidate
		want  string // server chosen, or the error
	}{
		{"none", nil, "no candidates"},
		{"one", []candidate{c("a", 5*time.Second, 10*ms)}, "a"},
		{"two agree: the nearer", []candidate{c("a", 0, 30*ms), c("b", 10*ms, 20*ms)}, "b"},
		{"tie: the first configured", []candidate{c("a", 0, 20*ms), c("b", 10*ms, 20*ms)}, "a"},
		{"two disagree", []candidate{c("a", 0, 10*ms), c("b", 5*time.Second, 10*ms)}, errNoMajority.Error()},
		// The liar is the most precise, but the other two outvote it.
		{"a precise falseticker", []candidate{c("a", 0, 30*ms), c("liar", 5*time.Second, ms), c("b", 20*ms, 40*ms)}, "a"},
		{"touching intervals agree", []candidate{c("a", 0, 10*ms), c("b", 20*ms, 10*ms)}, "a"},
		{"three all apart", []candidate{c("a", 0, ms), c("b", time.Second, ms), c("c", 2*time.Second, ms)}, errNoMajority.Error()},
		// Five servers, two liars in different directions: three still agree.
		{"two liars of five", []candidate{c("l1", -3*time.Second, ms), c("a", 5*ms, 20*ms), c("b", 0, 10*ms),
			c("l2", 4*time.Second, ms), c("c", -5*ms, 30*ms)}, "b"},
	}
	for _, tt := range tests {
		for i := range tt.cands {
			tt.cands[i].order = i
		}
		got, err := choose(tt.cands)
		name := got.server
		if err != nil {
			name = err.Error()
		}
		if name != tt.want {
			t.Errorf("%s: chose %s, want %s", tt.name, name, tt.want)
		}
	}
	if _, err := choose([]candidate{c("a", 0, ms), c("b", time.Second, ms)}); !errors.Is(err, errNoMajority) {
		t.Errorf("err = %v", err)
	}
}

func TestDistance(t *testing.T) {
	c := candidate{sample: ntp.Sample{Delay: 20 * ms, RootDelay: 30 * ms, RootDispersion: 5 * ms}, jitter: 2 * ms}
	if d := c.distance(); d != 32*ms {
		t.Errorf("distance = %v, want (30+20)/2 + 5 + 2 = 32ms", d)
	}
}
