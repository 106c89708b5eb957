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
	tee    func(line string)
}

// SetTee makes f get every line the writer prints, without the uptime (the system init keeps
// its console in its log); nil stops it. f is called without the writer's lock held, in the
// order the lines were printed only as far as their writers were ordered.
func (w *Writer) SetTee(f func(line string)) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.tee = f
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
	if !strings.HasSuffix(text, "\n") {
		text += "\n"
	}
	io.WriteString(w.out(), text)
	tee := w.tee
	w.mu.Unlock()
	if tee != nil {
		for _, l := range strings.Split(strings.TrimSuffix(text, "\n"), "\n") {
			tee(l)
		}
	}
}

// Relay prints a milestone line a service wrote ("ballast: userdata: ..."), with the uptime.
func (w *Writer) Relay(text string) { w.print(strings.TrimSuffix(text, "\n")) }

func (w *Writer) line(stage, details string) {
	msg := "ballast: " + stage
	if details != "" {
		msg += " " + details
	}
	w.print(msg)
}

func (w *Writer) print(msg string) {
	w.mu.Lock()
	up := w.Uptime
	if up == nil {
		up = ReadUptime
	}
	io.WriteString(w.out(), fmt.Sprintf("[%10.6f] %s\n", up(), msg))
	tee := w.tee
	w.mu.Unlock()
	if tee != nil {
		tee(msg)
	}
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
