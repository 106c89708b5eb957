package api

import (
	"context"
	"slices"
	"sync"

	"github.com/ballast-os/ballast/apiserver/render"
	"github.com/ballast-os/ballast/apiserver/settings"
)

// applyQueue runs applies one at a time, always of the live settings as they are when the apply
// starts, so an apply of older settings can never land after a newer one. Callers that arrive
// while an apply runs share the next one, which covers all their changed keys: under a burst of
// commits the host is brought up to date once per round rather than once per commit.
type applyQueue struct {
	live  func() settings.Settings
	apply ApplyFunc

	mu      sync.Mutex
	next    *applyRound // the round that starts when the running one ends; nil if none
	running bool
}

type applyRound struct {
	keys []string
	done chan struct{}
	res  render.Result
	err  error
}

// run returns once an apply that started after the call, and so saw the caller's commit, has
// finished; its result is shared by every caller in the round.
func (q *applyQueue) run(ctx context.Context, keys []string) (render.Result, error) {
	q.mu.Lock()
	if q.next == nil {
		q.next = &applyRound{done: make(chan struct{})}
	}
	mine := q.next
	mine.keys = append(mine.keys, keys...)
	if !q.running {
		q.running = true
		q.rounds(ctx, mine) // unlocks
	} else {
		q.mu.Unlock()
	}
	<-mine.done
	return mine.res, mine.err
}

// rounds runs rounds until mine is done, then hands the rest to a new goroutine, so that no caller
// waits on later callers' rounds. It is called with q.mu held and returns with it released.
func (q *applyQueue) rounds(ctx context.Context, mine *applyRound) {
	for q.next != nil {
		r := q.next
		q.next = nil
		q.mu.Unlock()
		slices.Sort(r.keys)
		r.res, r.err = q.apply(ctx, q.live(), slices.Compact(r.keys))
		close(r.done)
		q.mu.Lock()
		if r == mine && q.next != nil {
			// The remaining callers' requests may be cancelled by now; their commits stand.
			go func() {
				q.mu.Lock()
				q.rounds(context.WithoutCancel(ctx), nil)
			}()
			q.mu.Unlock()
			return
		}
	}
	q.running = false
	q.mu.Unlock()
}
