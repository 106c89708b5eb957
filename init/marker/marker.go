// Package marker is a boot event as a file: one program creates it when something is done, others
// wait for it without polling. A file survives the waiter's restarts, which a pipe or a signal
// would not.
package marker

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"golang.org/x/sys/unix"
)

// Set creates the marker at path with content, atomically: a waiter never sees it half written.
func Set(path string, content []byte) error {
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, content, 0o644); err != nil {
		return fmt.Errorf("marker %s: %w", path, err)
	}
	if err := os.Rename(tmp, path); err != nil {
		os.Remove(tmp)
		return fmt.Errorf("marker %s: %w", path, err)
	}
	return nil
}

// Wait returns once path exists, or ctx's error when it is done first. The marker's directory
// must exist.
func Wait(ctx context.Context, path string) error {
	if _, err := os.Stat(path); err == nil {
		return nil
	}
	fd, err := unix.InotifyInit1(unix.IN_CLOEXEC | unix.IN_NONBLOCK)
	if err != nil {
		return fmt.Errorf("marker %s: inotify: %w", path, err)
	}
	// Non-blocking, so reads go through the runtime's poller and Close interrupts them.
	f := os.NewFile(uintptr(fd), "inotify")
	defer f.Close()
	dir := filepath.Dir(path)
	if _, err := unix.InotifyAddWatch(fd, dir, unix.IN_CREATE|unix.IN_MOVED_TO); err != nil {
		return fmt.Errorf("marker %s: watch %s: %w", path, dir, err)
	}
	stop := context.AfterFunc(ctx, func() { f.Close() })
	defer stop()
	buf := make([]byte, 4096)
	for {
		// Checked after the watch is in place, so a marker set in between is not missed.
		if _, err := os.Stat(path); err == nil {
			return nil
		}
		if _, err := f.Read(buf); err != nil {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			if errors.Is(err, os.ErrClosed) {
				return fmt.Errorf("marker %s: %w", path, err)
			}
			return fmt.Errorf("marker %s: read events: %w", path, err)
		}
	}
}
