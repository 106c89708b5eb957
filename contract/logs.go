package contract

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"
)

// Host logs (written by the system init, read by the apiserver).
//
// The system init keeps one log per source: the kernel (KernelLogSource, read from /dev/kmsg),
// its own console lines (InitLogSource) and each service by its ID. A source's log is the files
//
//	<source>.log.<N> ... <source>.log.2, <source>.log.1, <source>.log
//
// oldest first: <source>.log is written (appended to), and rotation renames it to .1, .1 to .2
// and so on, dropping the oldest. They live in PersistentLogDir, which survives reboots; a
// source whose persistent log cannot be written goes on in LogDir (tmpfs, this boot only), so a
// reader takes PersistentLogDir's files first, then LogDir's.
//
// Each line is one LogRecord (LogRecord.Format, ParseLogRecord):
//
//	2025-01-02T03:04:05.123456Z [    1.234567] text                 a service's or the init's line
//	2025-01-02T03:04:05.123456Z [    1.234567] <6> text             a kernel line, with its syslog priority
//	2025-01-02T03:04:05.123456Z [    1.234567] -- boot <boot id> version <v> --   BootMarker
//
// The wall clock time is UTC with microseconds; the bracket is the time since boot
// (CLOCK_MONOTONIC; for kernel lines the kernel's own timestamp, and the wall time is derived
// from it). Every boot starts a source's lines with a BootMarker. Control bytes in the text are
// written as \xNN, so a record is always one line. After a power cut the last line of a log may
// be cut short; readers take it as it is.
const (
	KernelLogSource = "kernel" // the kernel's messages
	InitLogSource   = "init"   // the system init's console lines

	// ConsolePrefix starts the milestone lines a service prints for the operator: the system init
	// logs them with the rest of the service's output and also prints them on the console.
	ConsolePrefix = "ballast: "

	// NoPriority is LogRecord.Priority of a line that is not the kernel's.
	NoPriority = -1
	// MaxLogText bounds a record's text; longer text is cut.
	MaxLogText = 16 << 10
)

// ValidLogSource checks a source name: it becomes a file name, so 1-64 letters, digits, '_', '.',
// '-', starting with a letter or digit, without "..". (Checked by hand: regexp would add half a
// megabyte to PID 1.)
func ValidLogSource(name string) error {
	ok := len(name) >= 1 && len(name) <= 64 && !strings.Contains(name, "..")
	for i := 0; ok && i < len(name); i++ {
		c := name[i]
		alnum := 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9'
		ok = alnum || i > 0 && (c == '_' || c == '.' || c == '-')
	}
	if !ok {
		return fmt.Errorf("%q is not a log source name", name)
	}
	return nil
}

// LogFileName is the name of a source's file: the current one for n = 0, the n-th newest rotated
// one for n > 0.
func LogFileName(source string, n int) string {
	if n == 0 {
		return source + ".log"
	}
	return source + ".log." + strconv.Itoa(n)
}

// ParseLogFileName is LogFileName's inverse; ok is false for a name that is not a log file.
func ParseLogFileName(name string) (source string, n int, ok bool) {
	if s, found := strings.CutSuffix(name, ".log"); found {
		return s, 0, ValidLogSource(s) == nil
	}
	i := strings.LastIndex(name, ".log.")
	if i <= 0 {
		return "", 0, false
	}
	n, err := strconv.Atoi(name[i+len(".log."):])
	if err != nil || n <= 0 || strconv.Itoa(n) != name[i+len(".log."):] {
		return "", 0, false
	}
	source = name[:i]
	return source, n, ValidLogSource(source) == nil
}

// LogRecord is one line of a log.
type LogRecord struct {
	Time     time.Time     // wall clock
	Mono     time.Duration // time since boot
	Priority int           // syslog priority (facility*8 + level) of a kernel line, or NoPriority
	Text     string
}

// logTimeLayout is RFC 3339 with microseconds; in UTC it has a fixed width and sorts as text.
const logTimeLayout = "2006-01-02T15:04:05.000000Z07:00"

// Format returns the record as one line, with its newline.
func (r LogRecord) Format() string {
	var b strings.Builder
	b.Grow(len(r.Text) + 48)
	b.WriteString(r.Time.UTC().Format(logTimeLayout))
	mono := r.Mono
	if mono < 0 {
		mono = 0
	}
	fmt.Fprintf(&b, " [%5d.%06d] ", mono/time.Second, (mono%time.Second)/time.Microsecond)
	if r.Priority >= 0 {
		fmt.Fprintf(&b, "<%d> ", r.Priority)
	}
	text := r.Text
	if len(text) > MaxLogText {
		text = text[:MaxLogText]
	}
	for i := 0; i < len(text); i++ {
		c := text[i]
		if c < 0x20 && c != '\t' || c == 0x7f {
			fmt.Fprintf(&b, `\x%02x`, c)
			continue
		}
		b.WriteByte(c)
	}
	b.WriteByte('\n')
	return b.String()
}

// ParseLogRecord reads one line (with or without its newline) as LogRecord.Format writes it. The
// text is returned as stored, control bytes escaped.
func ParseLogRecord(line string) (LogRecord, error) {
	line = strings.TrimSuffix(line, "\n")
	ts, rest, ok := strings.Cut(line, " [")
	if !ok {
		return LogRecord{}, errors.New("log line: no time")
	}
	t, err := time.Parse(time.RFC3339Nano, ts)
	if err != nil {
		return LogRecord{}, fmt.Errorf("log line: time: %w", err)
	}
	mono, rest, ok := strings.Cut(rest, "] ")
	if !ok {
		// A line that is only a time and a bracket: the text is empty.
		mono, ok = strings.CutSuffix(rest, "]")
		if !ok {
			return LogRecord{}, errors.New("log line: no time since boot")
		}
	}
	secs, frac, ok := strings.Cut(strings.TrimSpace(mono), ".")
	s, err1 := strconv.ParseUint(secs, 10, 63)
	us, err2 := strconv.ParseUint(frac, 10, 32)
	if !ok || err1 != nil || err2 != nil || len(frac) != 6 {
		return LogRecord{}, fmt.Errorf("log line: time since boot %q", mono)
	}
	r := LogRecord{Time: t, Mono: time.Duration(s)*time.Second + time.Duration(us)*time.Microsecond, Priority: NoPriority, Text: rest}
	if p, text, ok := strings.Cut(rest, "> "); ok && strings.HasPrefix(p, "<") {
		if n, err := strconv.Atoi(p[1:]); err == nil && n >= 0 && n < 1<<13 {
			r.Priority, r.Text = n, text
		}
	}
	return r, nil
}

// BootMarker is the text of the record that starts each boot's lines in a log.
func BootMarker(bootID, version string) string {
	return "-- boot " + bootID + " version " + version + " --"
}

// ParseBootMarker returns what a BootMarker holds; ok is false for other text.
func ParseBootMarker(text string) (bootID, version string, ok bool) {
	inner, found := strings.CutPrefix(text, "-- boot ")
	if !found {
		return "", "", false
	}
	if inner, found = strings.CutSuffix(inner, " --"); !found {
		return "", "", false
	}
	bootID, version, ok = strings.Cut(inner, " version ")
	if !ok || bootID == "" || strings.Contains(bootID, " ") {
		return "", "", false
	}
	return bootID, version, true
}
