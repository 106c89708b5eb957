package contract

import (
	"strings"
	"testing"
	"time"
)

func TestLogRecordFormat(t *testing.T) {
	at := time.Date(2025, 1, 2, 3, 4, 5, 123456789, time.FixedZone("CET", 3600))
	tests := []struct {
		rec  LogRecord
		want string
	}{
		{LogRecord{Time: at, Mono: 1234567 * time.Microsecond, Priority: NoPriority, Text: "hello"},
			"2025-01-02T02:04:05.123456Z [    1.234567] hello\n"},
		{LogRecord{Time: at, Mono: 0, Priority: 6, Text: "Linux version 6.1"},
			"2025-01-02T02:04:05.123456Z [    0.000000] <6> Linux version 6.1\n"},
		{LogRecord{Time: at, Mono: 123456 * time.Second, Priority: NoPriority, Text: "tab\there\nnew\x00\x7fé"},
			"2025-01-02T02:04:05.123456Z [123456.000000] tab\there\\x0anew\\x00\\x7fé\n"},
		{LogRecord{Time: at, Mono: -time.Second, Priority: NoPriority}, "2025-01-02T02:04:05.123456Z [    0.000000] \n"},
	}
	for _, tt := range tests {
		got := tt.rec.Format()
		if got != tt.want {
			t.Errorf("Format(%+v) = %q, want %q", tt.rec, got, tt.want)
			continue
		}
		back, err := ParseLogRecord(got)
		if err != nil {
			t.Errorf("ParseLogRecord(%q): %v", got, err)
			continue
		}
		if !back.Time.Equal(tt.rec.Time.Truncate(time.Microsecond)) || back.Priority != tt.rec.Priority ||
			back.Mono != max(tt.rec.Mono, 0) || (!strings.ContainsAny(tt.rec.Text, "\n\x00\x7f") && back.Text != tt.rec.Text) {
			t.Errorf("ParseLogRecord(Format(%+v)) = %+v", tt.rec, back)
		}
	}
	long := LogRecord{Time: at, Priority: NoPriority, Text: strings.Repeat("x", MaxLogText+10)}
	if n := len(long.Format()); n > MaxLogText+64 {
		t.Errorf("a long record formats to %d bytes", n)
	}
}

func TestParseLogRecordRefuses(t *testing.T) {
	for _, line := range []string{
		"",
		"hello world",
		"2025-01-02T02:04:05.123456Z hello",
		"2025-01-02T02:04:05.123456Z [   1.23] short fraction",
		"2025-01-02T02:04:05.12 [x] bad",
		"2025-01-02T02:04:05.123456Z [    1.234567",
		"yesterday [    1.234567] text",
	} {
		if r, err := ParseLogRecord(line); err == nil {
			t.Errorf("ParseLogRecord(%q) = %+v, want an error", line, r)
		}
	}
	// A line cut short by a power cut after its bracket still parses; the text is what is left.
	if r, err := ParseLogRecord("2025-01-02T02:04:05.123456Z [    1.234567] hal"); err != nil || r.Text != "hal" {
		t.Errorf("cut line: %+v, %v", r, err)
	}
}

func TestLogFileNames(t *testing.T) {
	for _, tt := range []struct {
		source string
		n      int
		name   string
	}{{"kernel", 0, "kernel.log"}, {"apiserver", 1, "apiserver.log.1"}, {"a.b", 12, "a.b.log.12"}} {
		if got := LogFileName(tt.source, tt.n); got != tt.name {
			t.Errorf("LogFileName(%q, %d) = %q", tt.source, tt.n, got)
		}
		if s, n, ok := ParseLogFileName(tt.name); !ok || s != tt.source || n != tt.n {
			t.Errorf("ParseLogFileName(%q) = %q, %d, %v", tt.name, s, n, ok)
		}
	}
	for _, bad := range []string{"kernel", ".log", "kernel.log.0", "kernel.log.01", "kernel.log.x", "kernel.log.-1", "../x.log", "a..b.log", "notes.txt", "kernel.log.1.tmp"} {
		if s, n, ok := ParseLogFileName(bad); ok {
			t.Errorf("ParseLogFileName(%q) = %q, %d, ok", bad, s, n)
		}
	}
	for _, bad := range []string{"", "../etc", "a/b", "x..y", ".hidden", strings.Repeat("a", 65)} {
		if ValidLogSource(bad) == nil {
			t.Errorf("ValidLogSource(%q) accepted", bad)
		}
	}
}

func TestBootMarker(t *testing.T) {
	m := BootMarker("0c6bd2b8-7c5a-4d8e-9f7a-1b2c3d4e5f60", "0.3.0")
	id, v, ok := ParseBootMarker(m)
	if !ok || id != "0c6bd2b8-7c5a-4d8e-9f7a-1b2c3d4e5f60" || v != "0.3.0" {
		t.Errorf("ParseBootMarker(%q) = %q, %q, %v", m, id, v, ok)
	}
	for _, bad := range []string{"", "-- boot --", "-- boot x --", "boot x version y", "-- boot a b version 1 --"} {
		if _, _, ok := ParseBootMarker(bad); ok {
			t.Errorf("ParseBootMarker(%q) accepted", bad)
		}
	}
}
