package clock

import (
	"context"
	"errors"
	"testing"
	"time"
)

func TestFake(t *testing.T) {
	t0 := time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)
	f := NewFake(t0, t0.Add(time.Hour))
	ctx := context.Background()
	if err := f.Wait(ctx, t0.Add(time.Minute), nil); err != nil || !f.Now().Equal(t0.Add(time.Minute)) {
		t.Fatalf("Wait 1m: %v, now %v", err, f.Now())
	}
	// A scheduled function runs at its time; one that wakes the waiter ends the wait there.
	wake := make(chan struct{}, 1)
	var ran []time.Duration
	f.At(t0.Add(3*time.Minute), func() { ran = append(ran, f.Now().Sub(t0)); wake <- struct{}{} })
	f.At(t0.Add(2*time.Minute), func() { ran = append(ran, f.Now().Sub(t0)) })
	if err := f.Wait(ctx, t0.Add(10*time.Minute), wake); err != nil || !f.Now().Equal(t0.Add(3*time.Minute)) {
		t.Fatalf("Wait woken: %v, now %v", err, f.Now())
	}
	if len(ran) != 2 || ran[0] != 2*time.Minute || ran[1] != 3*time.Minute {
		t.Fatalf("scheduled functions ran at %v", ran)
	}
	// Time never goes back, and a wait past the end is the end.
	if err := f.Wait(ctx, t0, nil); err != nil || !f.Now().Equal(t0.Add(3*time.Minute)) {
		t.Fatalf("Wait for the past: %v, now %v", err, f.Now())
	}
	if err := f.Wait(ctx, t0.Add(2*time.Hour), nil); !errors.Is(err, ErrEnd) || !f.Now().Equal(t0.Add(time.Hour)) {
		t.Fatalf("Wait past the end: %v, now %v", err, f.Now())
	}
	cctx, cancel := context.WithCancel(ctx)
	cancel()
	if err := f.Wait(cctx, t0, nil); !errors.Is(err, context.Canceled) {
		t.Fatalf("Wait with a done context: %v", err)
	}
}

func TestReal(t *testing.T) {
	var c Real
	start := time.Now()
	if err := c.Wait(context.Background(), start.Add(20*time.Millisecond), nil); err != nil || time.Since(start) < 20*time.Millisecond {
		t.Fatalf("Wait: %v after %v", err, time.Since(start))
	}
	wake := make(chan struct{})
	close(wake)
	if err := c.Wait(context.Background(), start.Add(time.Hour), wake); err != nil {
		t.Fatalf("Wait woken: %v", err)
	}
}
