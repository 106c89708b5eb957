package timesync

import "time"

// Poll intervals. The shortest lies between RFC 5905's smallest (16 s) and default (64 s) minimum:
// quick enough to settle a fresh clock, slow enough for public servers. At the longest the
// kernel's error estimate, which grows by 500 ppm of the time since the last update, stays near
// one second.
const (
	DefaultMinPoll = 32 * time.Second
	DefaultMaxPoll = 2048 * time.Second
)

const (
	// firstRetry is the wait after a failed poll before the clock was ever set: at boot the
	// network may still be coming up, and a host with a wrong clock should not wait long.
	firstRetry = 2 * time.Second
	// confirmAfterStep is the wait before the poll that checks a step took.
	confirmAfterStep = 2 * time.Second
	// Offsets below stableOffset lengthen the interval, above unstableOffset shorten it: the
	// kernel's PLL keeps a stable clock close between polls, so a steady small offset means polling
	// more often buys nothing.
	stableOffset   = 50 * time.Millisecond
	unstableOffset = 150 * time.Millisecond
)

// poller decides when to poll next from how the last poll went.
type poller struct {
	min, max time.Duration
	interval time.Duration // the interval while synchronised, between min and max
	failures int           // consecutive failed polls
	synced   bool          // a poll has succeeded since the service started
}

func newPoller(min, max time.Duration) *poller {
	return &poller{min: min, max: max, interval: min}
}

// succeeded returns the wait after a poll that corrected the clock by offset (a step when stepped).
func (p *poller) succeeded(offset time.Duration, stepped bool) time.Duration {
	p.failures, p.synced = 0, true
	switch a := offset.Abs(); {
	case stepped:
		p.interval = p.min
		return confirmAfterStep
	case a < stableOffset:
		p.interval = min(2*p.interval, p.max)
	case a > unstableOffset:
		p.interval = max(p.interval/2, p.min)
	}
	return p.interval
}

// failed returns the wait after a poll that found no usable server. A server's RATE kiss doubles
// the interval, as it asks; otherwise the next poll comes sooner: quickly, backing off, before the
// clock was ever set, at the shortest interval after that.
func (p *poller) failed(rateLimited bool) time.Duration {
	p.failures++
	switch {
	case rateLimited:
		p.interval = min(2*p.interval, p.max)
		return p.interval
	case !p.synced:
		return min(firstRetry<<min(p.failures-1, 16), p.min)
	}
	p.interval = p.min
	return p.interval
}
