// Package entropy gets the kernel's random pool initialised early in the boot and keeps a random
// seed on /local, so the host can make keys and TLS handshakes soon after power-on even on a
// virtual CPU without RDRAND and without a virtio-rng device.
//
// The kernel can gather entropy by itself, from the jitter of its own execution
// (try_to_generate_entropy), but only while a task waits in wait_for_random_bytes with no signal
// pending. Go programs do not get that far: their getrandom calls are retried after every signal
// the runtime receives, and a task with signals arriving never waits long enough, so on such a
// machine the pool stays empty for minutes. Gather does the wait on a thread of its own with every
// signal blocked; measured under TCG with -cpu qemu64 and no virtio-rng, the pool is ready within
// about a second.
package entropy

import (
	"context"
	"fmt"
	"runtime"
	"time"

	"golang.org/x/sys/unix"
)

// Ready reports whether the kernel's random pool is initialised, without waiting.
func Ready() bool {
	var b [1]byte
	_, err := unix.Getrandom(b[:], unix.GRND_NONBLOCK)
	return err == nil
}

// Gather waits until the kernel's random pool is initialised, making the kernel gather entropy
// meanwhile, and returns how long that took. It runs the wait on a locked OS thread with every
// signal blocked, so the kernel's jitter collection is not cut short; ctx only stops the waiting
// for the result (the thread goes on until the pool is ready, which costs nothing afterwards).
func Gather(ctx context.Context) (time.Duration, error) {
	start := time.Now()
	if Ready() {
		return 0, nil
	}
	done := make(chan error, 1)
	go func() {
		// The thread is left locked on purpose: it ends with the goroutine, its signal mask with it.
		runtime.LockOSThread()
		var all unix.Sigset_t
		for i := range all.Val {
			all.Val[i] = ^uint64(0)
		}
		if err := unix.PthreadSigmask(unix.SIG_BLOCK, &all, nil); err != nil {
			done <- fmt.Errorf("entropy: block signals: %w", err)
			return
		}
		var b [1]byte
		for {
			// A blocking getrandom is the kernel's wait_for_random_bytes, which gathers jitter
			// entropy while it waits.
			_, err := unix.Getrandom(b[:], 0)
			if err == unix.EINTR {
				continue
			}
			if err != nil {
				done <- fmt.Errorf("entropy: getrandom: %w", err)
				return
			}
			done <- nil
			return
		}
	}()
	select {
	case err := <-done:
		return time.Since(start), err
	case <-ctx.Done():
		return time.Since(start), ctx.Err()
	}
}
