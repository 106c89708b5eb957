// Command system-init is Ballast's PID 1 on the real root, installed as /usr/sbin/init; the
// initramfs switches to it. The work is in package system; this only refuses to run as
// anything but PID 1 and makes sure PID 1 never returns.
package main

import (
	"context"
	"fmt"
	"os"
	"time"

	"github.com/ballast-os/ballast/init/console"
	"github.com/ballast-os/ballast/init/system"
)

func main() {
	if os.Getpid() != 1 {
		// It would mount over the host's /tmp, kill every process and reboot it.
		fmt.Fprintln(os.Stderr, "system-init: refusing to run: not PID 1")
		os.Exit(2)
	}
	defer func() {
		// PID 1 exiting, panic included, panics the kernel; the reaper and the services keep
		// running in their goroutines, so staying up leaves a machine that still works.
		if r := recover(); r != nil {
			console.Errorf("system init: panic: %v", r)
			hang()
		}
	}()
	system.New(system.Config{}).Run(context.Background())
	// Run returns only when its context ends, which this one never does.
	hang()
}

// hang blocks forever. A timer, unlike an empty select, keeps the Go runtime from declaring a
// deadlock and exiting.
func hang() {
	for {
		time.Sleep(time.Hour)
	}
}
