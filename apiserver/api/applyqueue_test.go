package api

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ballast-os/ballast/apiserver/render"
	"github.com/ballast-os/ballast/apiserver/settings"
)

// TestApplyQueue commits (bumps a generation) and applies from many goroutines: every caller
// must get the result of an apply that saw its commit, applies never overlap, and bursts share
// rounds.
func TestApplyQueue(t *testing.T) {
	var gen atomic.Int64
	var running, rounds atomic.Int32
	q := &applyQueue{
		live: func() settings.Settings {
			motd := fmt.Sprint(gen.Load())
			return settings.Settings{Motd: &motd}
		},
		apply: func(_ context.Context, s settings.Settings, keys []string) (render.Result, error) {
			if running.Add(1) != 1 {
				t.Error("applies overlap")
			}
			defer running.Add(-1)
			rounds.Add(1)
			time.Sleep(2 * time.Millisecond)
			return render.Result{Files: []string{*s.Motd}}, nil
		},
	}
	const n = 40
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			mine := gen.Add(1)
			res, err := q.run(context.Background(), []string{fmt.Sprintf("settings.k%d", i)})
			if err != nil {
				t.Error(err)
				return
			}
			var seen int64
			fmt.Sscan(res.Files[0], &seen)
			if seen < mine {
				t.Errorf("caller %d (generation %d) got an apply of generation %d", i, mine, seen)
			}
		})
	}
	wg.Wait()
	if r := rounds.Load(); r >= n {
		t.Errorf("%d rounds for %d callers; bursts should share rounds", r, n)
	}
	t.Logf("%d callers in %d rounds", n, rounds.Load())
}
