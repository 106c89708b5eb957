// Package console writes Ballast's boot milestones to the console in one shape,
// "[uptime] ballast: <stage> <details>", so a boot timeline can be drawn from a serial log.
package console

import (
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"sync"
)

// Writer prints milestone lines. The zero value writes to os.Stdout, which is the console for PID 1
// and for the initramfs init.
type Writer struct {
	mu  sync.Mutex
	Out io.Writer
	// Uptime returns seconds since boot; nil reads /proc/uptime.
	Uptime func() float64
}

// Default is the writer the init programs share; tests build their own Writer.
var Default = &Writer{}

// Milestone prints "[uptime] ballast: <stage> <details>".
func (w *Writer) Milestone(stage, format string, args ...any) {
	w.line(stage, fmt.Sprintf(format, args...))
}

// Errorf prints "[uptime] ballast: error: <details>".
func (w *Writer) Errorf(format string, args ...any) {
	w.line("error:", fmt.Sprintf(format, args...))
}

// Raw prints text as-is (for the motd, which is the user's text, not a milestone).
func (w *Writer) Raw(text string) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if !strings.HasSuffix(text, "\n") {
		text += "\n"
	}
	io.WriteString(w.out(), text)
}

func (w *Writer) line(stage, details string) {
	w.mu.Lock()
	defer w.mu.Unlock()
	up := w.Uptime
	if up == nil {
		up = ReadUptime
	}
	msg := fmt.Sprintf("[%10.6f] ballast: %s", up(), stage)
	if details != "" {
		msg += " " + details
	}
	io.WriteString(w.out(), msg+"\n")
}

func (w *Writer) out() io.Writer {
	if w.Out == nil {
		return os.Stdout
	}
	return w.Out
}

// Milestone prints a milestone through Default.
func Milestone(stage, format string, args ...any) { Default.Milestone(stage, format, args...) }

// Errorf prints an error line through Default.
func Errorf(format string, args ...any) { Default.Errorf(format, args...) }

// ReadUptime returns the kernel's uptime in seconds, or 0 when /proc is not mounted yet.
func ReadUptime() float64 {
	b, err := os.ReadFile("/proc/uptime")
	if err != nil {
		return 0
	}
	f := strings.Fields(string(b))
	if len(f) == 0 {
		return 0
	}
	v, err := strconv.ParseFloat(f[0], 64)
	if err != nil {
		return 0
	}
	return v
}
