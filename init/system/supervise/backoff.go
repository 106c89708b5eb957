package supervise

import "time"

// Backoff spaces restarts: the first waits Initial, each further one twice the previous up to
// Max, and an instance that stayed up for Reset or longer starts the sequence over, so a service
// that crashes once a day does not wait 30 s.
type Backoff struct {
	Initial time.Duration
	Max     time.Duration
	Reset   time.Duration
}

// Ballast's defaults, from the system init's contract.
const (
	DefaultBackoffInitial = 100 * time.Millisecond
	DefaultBackoffMax     = 30 * time.Second
	DefaultBackoffReset   = 30 * time.Second
)

// withDefaults fills zero fields with Ballast's defaults.
func (b Backoff) withDefaults() Backoff {
	if b.Initial <= 0 {
		b.Initial = DefaultBackoffInitial
	}
	if b.Max <= 0 {
		b.Max = DefaultBackoffMax
	}
	if b.Max < b.Initial {
		b.Max = b.Initial
	}
	if b.Reset <= 0 {
		b.Reset = DefaultBackoffReset
	}
	return b
}

// Next returns the delay before the next restart, given the previous delay (0 if there was none)
// and how long the instance that just exited was up.
func (b Backoff) Next(prev, uptime time.Duration) time.Duration {
	if prev <= 0 || uptime >= b.Reset {
		return b.Initial
	}
	next := prev * 2
	if next > b.Max || next <= 0 {
		next = b.Max
	}
	return next
}
