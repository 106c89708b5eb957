// Package clock is the time the network service's DHCP clients live by: the real one, and a fake
// one whose time jumps straight to whatever a client waits for, so a test walks through a day of
// lease life in microseconds and in a fixed order.
package clock

import (
	"context"
	"errors"
	"slices"
	"sync"
	"time"
)

// Clock tells the time and waits.
type Clock interface {
	Now() time.Time
	// Wait returns nil at t or as soon as wake has a value (or is closed), and ctx's error when
	// ctx is done first. A nil wake never fires.
	Wait(ctx context.Context, t time.Time, wake <-chan struct{}) error
}

// Real is the system clock.
type Real struct{}

// Now is time.Now.
func (Real) Now() time.Time { return time.Now() }

// Wait waits on a timer.
func (Real) Wait(ctx context.Context, t time.Time, wake <-chan struct{}) error {
	timer := time.NewTimer(time.Until(t))
	defer timer.Stop()
	select {
	case <-timer.C:
		return nil
	case <-wake:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// ErrEnd is what a Fake's Wait returns once its time would pass End: the end of a test's story.
var ErrEnd = errors.New("clock: end of fake time")

// Fake is a clock for tests: Wait moves the time forward to what is waited for at once, running
// the functions scheduled with At on the way, at their times. It is meant for one goroutine that
// waits (the client under test); At and Now may be called from anywhere.
type Fake struct {
	mu     sync.Mutex
	now    time.Time
	end    time.Time
	events []event
}

type event struct {
	at time.Time
	fn func()
}

// NewFake returns a fake clock at start whose Wait returns ErrEnd rather than pass end.
func NewFake(start, end time.Time) *Fake {
	return &Fake{now: start, end: end}
}

// Now returns the fake time.
func (f *Fake) Now() time.Time {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.now
}

// At schedules fn to run, on the waiting goroutine, when the fake time reaches t.
func (f *Fake) At(t time.Time, fn func()) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.events = append(f.events, event{at: t, fn: fn})
	slices.SortStableFunc(f.events, func(a, b event) int { return a.at.Compare(b.at) })
}

// Wait jumps to t, or to the first scheduled function before it if that wakes the waiter.
func (f *Fake) Wait(ctx context.Context, t time.Time, wake <-chan struct{}) error {
	for {
		select {
		case <-wake:
			return nil
		default:
		}
		if err := ctx.Err(); err != nil {
			return err
		}
		f.mu.Lock()
		if len(f.events) > 0 && !f.events[0].at.After(t) && !f.events[0].at.After(f.end) {
			ev := f.events[0]
			f.events = f.events[1:]
			if ev.at.After(f.now) {
				f.now = ev.at
			}
			f.mu.Unlock()
			ev.fn()
			continue
		}
		if t.After(f.end) {
			f.now = f.end
			f.mu.Unlock()
			return ErrEnd
		}
		if t.After(f.now) {
			f.now = t
		}
		f.mu.Unlock()
		return nil
	}
}
