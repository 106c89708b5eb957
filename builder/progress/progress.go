// Package progress reports build steps: on a terminal one line per step that updates in place with
// bytes done; elsewhere (CI, logs) plain lines only, so logs stay readable.
package progress

import (
	"fmt"
	"io"
	"os"
	"sync"
	"time"
)

// Reporter prints steps and byte progress.
type Reporter struct {
	mu       sync.Mutex
	w        io.Writer
	tty      bool
	start    time.Time
	lastDraw time.Time
	pending  bool // a byte-progress line is drawn and not yet ended
}

// New reports to w; tty enables in-place updates.
func New(w io.Writer, tty bool) *Reporter {
	return &Reporter{w: w, tty: tty, start: time.Now()}
}

// ForStderr reports to stderr, in place only when it is a terminal and CI is not set.
func ForStderr() *Reporter {
	tty := false
	if st, err := os.Stderr.Stat(); err == nil && st.Mode()&os.ModeCharDevice != 0 && os.Getenv("CI") == "" {
		tty = true
	}
	return New(os.Stderr, tty)
}

func (r *Reporter) prefix() string {
	return fmt.Sprintf("ballast: [%6.1fs] ", time.Since(r.start).Seconds())
}

// Step prints one step line.
func (r *Reporter) Step(format string, args ...any) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.endLine()
	fmt.Fprintf(r.w, "%s%s\n", r.prefix(), fmt.Sprintf(format, args...))
}

// Bytes reports done of total bytes for what; the line is redrawn at most 10 times a second on a
// terminal, and printed once at completion elsewhere.
func (r *Reporter) Bytes(what string, done, total int64) {
	r.mu.Lock()
	defer r.mu.Unlock()
	finished := total > 0 && done >= total
	if !r.tty {
		if finished {
			fmt.Fprintf(r.w, "%s%s: %s\n", r.prefix(), what, human(total))
		}
		return
	}
	if !finished && time.Since(r.lastDraw) < 100*time.Millisecond {
		return
	}
	r.lastDraw = time.Now()
	fmt.Fprintf(r.w, "\r\x1b[K%s%s: %s / %s", r.prefix(), what, human(done), human(total))
	r.pending = true
	if finished {
		r.endLine()
	}
}

func (r *Reporter) endLine() {
	if r.pending {
		fmt.Fprintln(r.w)
		r.pending = false
	}
}

func human(n int64) string {
	switch {
	case n >= 1<<30:
		return fmt.Sprintf("%.1f GiB", float64(n)/(1<<30))
	case n >= 1<<20:
		return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20))
	case n >= 1<<10:
		return fmt.Sprintf("%.1f KiB", float64(n)/(1<<10))
	}
	return fmt.Sprintf("%d B", n)
}
