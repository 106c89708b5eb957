// Package powerbutton watches the ACPI power button through evdev, which is how a hypervisor's
// "power off" (QEMU system_powerdown, cloud "stop") reaches a system without acpid.
package powerbutton

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"golang.org/x/sys/unix"
)

// From linux/input-event-codes.h.
const (
	EvKey    = 0x01
	KeyPower = 116
)

// DeviceName is what the kernel's ACPI button driver calls its input device.
const DeviceName = "Power Button"

// Event mirrors struct input_event; its size follows the architecture's struct timeval (24
// bytes on 64-bit machines).
type Event struct {
	Time  unix.Timeval
	Type  uint16
	Code  uint16
	Value int32
}

// PowerPress reports whether the event is the power key going down (1; 0 is release, 2 repeat).
func (e Event) PowerPress() bool {
	return e.Type == EvKey && e.Code == KeyPower && e.Value == 1
}

// ReadEvent reads one event; a short read is io.ErrUnexpectedEOF.
func ReadEvent(r io.Reader) (Event, error) {
	var ev Event
	err := binary.Read(r, binary.NativeEndian, &ev)
	return ev, err
}

// WaitPress reads events until the power key is pressed (nil) or the stream fails.
func WaitPress(r io.Reader) error {
	for {
		ev, err := ReadEvent(r)
		if err != nil {
			return err
		}
		if ev.PowerPress() {
			return nil
		}
	}
}

// Find returns the event devices (devDir/eventN) whose name under sysDir/eventN/device/name is
// DeviceName. sysDir is usually /sys/class/input, devDir /dev/input.
func Find(sysDir, devDir string) ([]string, error) {
	names, err := filepath.Glob(filepath.Join(sysDir, "event*", "device", "name"))
	if err != nil {
		return nil, fmt.Errorf("powerbutton: %w", err)
	}
	var devs []string
	for _, n := range names {
		b, err := os.ReadFile(n)
		if err != nil {
			continue // unplugged meanwhile
		}
		if strings.TrimSpace(string(b)) == DeviceName {
			event := filepath.Base(filepath.Dir(filepath.Dir(n)))
			devs = append(devs, filepath.Join(devDir, event))
		}
	}
	return devs, nil
}

// Watcher finds the power button and reports presses.
type Watcher struct {
	SysDir string        // [/sys/class/input]
	DevDir string        // [/dev/input]
	Poll   time.Duration // between searches while the button driver loads [500 ms]
	GiveUp time.Duration // stop searching after this long [60 s]
}

// Watch calls press for every press of any power button until ctx is done or reading fails.
// The device appears some time after the button and evdev modules load, hence the search.
func (w Watcher) Watch(ctx context.Context, press func()) error {
	sysDir, devDir := w.SysDir, w.DevDir
	if sysDir == "" {
		sysDir = "/sys/class/input"
	}
	if devDir == "" {
		devDir = "/dev/input"
	}
	poll, giveUp := w.Poll, w.GiveUp
	if poll <= 0 {
		poll = 500 * time.Millisecond
	}
	if giveUp <= 0 {
		giveUp = 60 * time.Second
	}

	var devs []string
	deadline := time.Now().Add(giveUp)
	for {
		var err error
		if devs, err = Find(sysDir, devDir); err != nil {
			return err
		}
		if len(devs) > 0 {
			break
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("powerbutton: no %q input device after %v (modules button and evdev loaded?)", DeviceName, giveUp)
		}
		t := time.NewTimer(poll)
		select {
		case <-ctx.Done():
			t.Stop()
			return ctx.Err()
		case <-t.C:
		}
	}

	var files []*os.File
	for _, d := range devs {
		f, err := openDevice(ctx, d, poll, deadline)
		if err != nil {
			for _, f := range files {
				f.Close()
			}
			return err
		}
		files = append(files, f)
	}
	return watchFiles(ctx, files, press)
}

// openDevice opens an event node, waiting for devtmpfs to create it.
func openDevice(ctx context.Context, path string, poll time.Duration, deadline time.Time) (*os.File, error) {
	for {
		f, err := os.Open(path)
		if err == nil {
			return f, nil
		}
		if !errors.Is(err, os.ErrNotExist) || time.Now().After(deadline) {
			return nil, fmt.Errorf("powerbutton: %w", err)
		}
		t := time.NewTimer(poll)
		select {
		case <-ctx.Done():
			t.Stop()
			return nil, ctx.Err()
		case <-t.C:
		}
	}
}

// watchFiles reads all files until ctx is done (nil) or one fails; it closes them.
func watchFiles(ctx context.Context, files []*os.File, press func()) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var wg sync.WaitGroup
	errc := make(chan error, len(files))
	for _, f := range files {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				err := WaitPress(f)
				if err != nil {
					if ctx.Err() == nil {
						errc <- fmt.Errorf("powerbutton: %s: %w", f.Name(), err)
					}
					return
				}
				press()
			}
		}()
	}
	var err error
	select {
	case <-ctx.Done():
	case err = <-errc:
	}
	// Closing unblocks the readers.
	cancel()
	for _, f := range files {
		f.Close()
	}
	wg.Wait()
	return err
}
