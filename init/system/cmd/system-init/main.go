// Command system-init is Ballast's PID 1 on the real root, installed as /usr/sbin/init; the
// initramfs switches to it. The work is in package system; this only refuses to run as
// anything but PID 1 and makes sure PID 1 never returns.
package main

import (
	"context"
	"fmt"
	"os"
	"path"
	"strings"
	"time"

	"golang.org/x/sys/unix"

	"github.com/ballast-os/ballast/contract"
	"github.com/ballast-os/ballast/init/console"
	"github.com/ballast-os/ballast/init/efivar"
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
			if onTrial() {
				// A boot on trial that lost its init will never be judged healthy: rebooting
				// spends one of its tries, and the loader goes back to the previous slot when
				// they are gone, instead of the host staying up half-working on a new version.
				console.Errorf("system init: this boot is on trial: rebooting in 10s")
				time.Sleep(10 * time.Second)
				unix.Sync()
				unix.Reboot(unix.LINUX_REBOOT_CMD_RESTART)
			}
			hang()
		}
	}()
	system.New(system.Config{}).Run(context.Background())
	// Run returns only when its context ends, which this one never does.
	hang()
}

// onTrial reports whether the loader booted an entry that still counts its tries (efivarfs is
// mounted early in the boot; before that, nothing says so and the init stays up).
func onTrial() bool {
	p, err := efivar.Loader{}.BootCountPath()
	if err != nil {
		return false
	}
	e, err := contract.ParseEntry(path.Base(strings.ReplaceAll(p, `\`, "/")))
	return err == nil && e.Counting
}

// hang blocks forever. A timer, unlike an empty select, keeps the Go runtime from declaring a
// deadlock and exiting.
func hang() {
	for {
		time.Sleep(time.Hour)
	}
}
