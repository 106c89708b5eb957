package system

import (
	"errors"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/ballast-os/ballast/contract"
	"github.com/ballast-os/ballast/init/kmsg"
	"github.com/ballast-os/ballast/init/system/logs"
)

// openLogs starts writing the host logs, once the data partition is mounted, with this boot's
// marker, and starts keeping the kernel's messages. What was logged before waited in memory.
func (i *Init) openLogs() {
	bootID := "unknown"
	if b, err := os.ReadFile(i.path(contract.BootID)); err == nil {
		bootID = strings.TrimSpace(string(b))
	} else {
		i.console.Errorf("logs: boot id: %v", err)
	}
	if err := i.logs.Open(bootID, i.image.Version); err != nil {
		i.console.Errorf("%v", err)
	}
	src, err := i.logs.Source(contract.KernelLogSource)
	if err != nil {
		i.console.Errorf("%v", err)
		return
	}
	r, err := kmsg.Open(i.kmsg)
	if err != nil {
		i.console.Errorf("logs: %v", err)
		return
	}
	i.kernelLog = r
	i.writeDenials() // 0 until the kernel log says otherwise: counted, not unknown
	go i.logKernel(r, src)
}

// logKernel copies the kernel's records into its log until the reader is closed. The kernel
// stamps a record with the time since boot when it logs it, which may be long before it is read
// (everything before PID 1 started): the wall time is the boot's wall time plus that.
func (i *Init) logKernel(r *kmsg.Reader, src *logs.Source) {
	var booted time.Time
	for {
		rec, lost, err := r.Next()
		if err != nil {
			if !errors.Is(err, os.ErrClosed) {
				i.console.Errorf("logs: %v", err)
			}
			return
		}
		wall, mono := i.logs.Now()
		// Two readings of the clocks differ by the time between them, which would make records
		// logged at one moment differ by microseconds; only a step of the wall clock (NTP, the
		// RTC set) moves the boot's wall time.
		if b := wall.Add(-mono); booted.IsZero() || b.Sub(booted).Abs() > clockStep {
			booted = b
		}
		if lost > 0 {
			src.Record(contract.LogRecord{Time: wall, Mono: mono, Priority: contract.NoPriority,
				Text: fmt.Sprintf("-- %d kernel messages lost: overwritten before they were read --", lost)})
		}
		src.Record(contract.LogRecord{Time: booted.Add(rec.Time), Mono: rec.Time, Priority: rec.Priority, Text: rec.Message})
		i.seeKernelRecord(rec.Message)
	}
}

// clockStep is the smallest change of the wall clock against the monotonic one taken as the wall
// clock being set rather than the time between two readings.
const clockStep = 10 * time.Millisecond

// closeLogs syncs and closes the log files before the data partition is unmounted; later lines
// (the last milestones) only reach the console.
func (i *Init) closeLogs() {
	if i.kernelLog != nil {
		i.kernelLog.Close()
	}
	if err := i.logs.Close(); err != nil {
		i.console.Errorf("shutdown: %v", err)
	}
}
