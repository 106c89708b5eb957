package installer

import (
	"context"
	"encoding/binary"
	"os"
	"path/filepath"
	"time"

	"golang.org/x/sys/unix"

	"github.com/ballast-os/ballast/init/console"
)

// dropCache makes the target's next reads come from the device: BLKFLSBUF writes back and
// drops a block device's buffer cache; fadvise drops the pages of a file (the tests' disks).
func dropCache(f *os.File) error {
	if err := f.Sync(); err != nil {
		return err
	}
	if st, err := f.Stat(); err == nil && st.Mode()&os.ModeDevice != 0 {
		if err := unix.IoctlSetInt(int(f.Fd()), unix.BLKFLSBUF, 0); err != nil {
			return err
		}
	}
	return unix.Fadvise(int(f.Fd()), 0, 0, unix.FADV_DONTNEED)
}

// reread asks the kernel to read a block device's partition table again.
func reread(f *os.File) error {
	if st, err := f.Stat(); err != nil || st.Mode()&os.ModeDevice == 0 {
		return err
	}
	return unix.IoctlSetInt(int(f.Fd()), unix.BLKRRPART, 0)
}

func reboot() error {
	unix.Sync()
	return unix.Reboot(unix.LINUX_REBOOT_CMD_RESTART)
}

// halt repeats msg on the console every repeat until ctx ends, so whoever looks at the screen
// later still sees why the machine stopped. A press of the power button, when the kernel has an
// input device for it, powers the machine off.
func halt(ctx context.Context, con *console.Writer, msg string, repeat time.Duration) {
	watchPowerButton(ctx, con)
	t := time.NewTicker(repeat)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			con.Milestone("install", "halted: %s", msg)
			con.Milestone("install", "press the power button to power off")
		}
	}
}

// Input event codes from linux/input-event-codes.h.
const (
	evKey    = 1
	keyPower = 116
)

// watchPowerButton powers off on a KEY_POWER press from any /dev/input/event* device.
func watchPowerButton(ctx context.Context, con *console.Writer) {
	devs, _ := filepath.Glob("/dev/input/event*")
	for _, d := range devs {
		f, err := os.Open(d)
		if err != nil {
			continue
		}
		go func() {
			<-ctx.Done()
			f.Close()
		}()
		go func() {
			// struct input_event on 64-bit: a timeval, then type, code (u16) and value (s32).
			ev := make([]byte, 24)
			for {
				if _, err := f.Read(ev); err != nil {
					return
				}
				le := binary.LittleEndian
				if le.Uint16(ev[16:]) == evKey && le.Uint16(ev[18:]) == keyPower && le.Uint32(ev[20:]) == 1 {
					con.Milestone("install", "power button: powering off")
					unix.Sync()
					unix.Reboot(unix.LINUX_REBOOT_CMD_POWER_OFF)
				}
			}
		}()
	}
}
