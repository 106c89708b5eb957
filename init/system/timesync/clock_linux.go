package timesync

import (
	"fmt"
	"math/bits"
	"time"

	"golang.org/x/sys/unix"
)

// System is the kernel's clock (CLOCK_REALTIME), corrected the way chrony and systemd-timesyncd
// do it: steps with ADJ_SETOFFSET, which moves the clock relative to itself in the kernel so no
// time passes between reading and setting it, and slews through the kernel's PLL (ADJ_OFFSET with
// STA_PLL), which also trims the clock's frequency. Clearing STA_UNSYNC is what makes adjtimex(2)
// report the clock synchronised (TIME_OK) to its readers.
type System struct{}

// Now reads the clock.
func (System) Now() time.Time { return time.Now() }

// Step moves the clock by offset.
func (System) Step(offset time.Duration) error {
	tx := unix.Timex{Modes: unix.ADJ_SETOFFSET | unix.ADJ_NANO, Time: stepTimeval(offset)}
	if _, err := unix.Adjtimex(&tx); err != nil {
		return fmt.Errorf("adjtimex ADJ_SETOFFSET %v: %w", offset, err)
	}
	return nil
}

// stepTimeval is offset as ADJ_SETOFFSET|ADJ_NANO wants it: whole seconds, rounded down, and
// nanoseconds (in the Usec field) from 0 to 999999999, so -1.25 s is {-2, 750000000}.
func stepTimeval(offset time.Duration) unix.Timeval {
	sec, nsec := int64(offset/time.Second), int64(offset%time.Second)
	if nsec < 0 {
		sec, nsec = sec-1, nsec+int64(time.Second)
	}
	return unix.Timeval{Sec: sec, Usec: nsec}
}

// maxPhase is the largest offset the kernel's PLL takes (MAXPHASE); it clamps larger ones.
const maxPhase = 500 * time.Millisecond

// Slew hands offset to the kernel's PLL and marks the clock synchronised.
func (System) Slew(offset, poll, maxError, estError time.Duration) error {
	tx := slewTimex(offset, poll, maxError, estError)
	if _, err := unix.Adjtimex(&tx); err != nil {
		return fmt.Errorf("adjtimex ADJ_OFFSET %v: %w", offset, err)
	}
	return nil
}

func slewTimex(offset, poll, maxError, estError time.Duration) unix.Timex {
	offset = min(max(offset, -maxPhase), maxPhase)
	return unix.Timex{
		Modes: unix.ADJ_OFFSET | unix.ADJ_STATUS | unix.ADJ_NANO | unix.ADJ_TIMECONST |
			unix.ADJ_MAXERROR | unix.ADJ_ESTERROR,
		Offset: int64(offset),
		// STA_PLL alone: the PLL on, STA_UNSYNC (and the leap bits) off.
		Status: unix.STA_PLL,
		// The PLL's time constant follows the poll interval, as RFC 5905's does: log2 of the
		// interval in seconds, less 4, which is what systemd-timesyncd passes.
		Constant: int64(min(max(bits.Len64(uint64(poll/time.Second))-1-4, 0), 10)),
		Maxerror: maxError.Microseconds(),
		Esterror: estError.Microseconds(),
	}
}
