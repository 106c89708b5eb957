// Package kmsg reads the kernel's log from /dev/kmsg: its records (priority, sequence number,
// timestamp, message), a Reader that follows the log as the kernel writes it, and Snapshot for
// what the kernel's buffer holds now (dmesg). It is shared by the system init, which keeps the
// kernel's lines in the host logs, and the API server, whose support bundle includes dmesg.
package kmsg

import (
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// Record is one record of the kernel log.
type Record struct {
	Priority int           // syslog priority: facility*8 + level
	Seq      uint64        // sequence number; a gap means records were lost
	Time     time.Duration // when it was logged, since boot (the kernel's timestamp)
	// Flags is '-' for a whole message, 'c' or '+' for pieces of a continued line (older kernels).
	Flags byte
	// Message is the text with the kernel's \xNN escapes undone; it may hold any byte.
	Message string
	// Dict holds the record's KEY=value continuation lines (SUBSYSTEM=, DEVICE=), unescaped.
	Dict []string
}

// Level is the syslog level (0 emergency ... 7 debug).
func (r Record) Level() int { return r.Priority & 7 }

// Parse reads one record as read(2) on /dev/kmsg returns it:
//
//	<priority>,<seq>,<usec>,<flags>[,<more fields>];<message>\n[ KEY=value\n]...
func Parse(b []byte) (Record, error) {
	s := string(b)
	head, rest, ok := strings.Cut(s, ";")
	if !ok {
		return Record{}, fmt.Errorf("kmsg record %.40q: no ';'", s)
	}
	f := strings.Split(head, ",")
	if len(f) < 4 {
		return Record{}, fmt.Errorf("kmsg record %.40q: %d header fields, want 4", s, len(f))
	}
	prio, err := strconv.Atoi(f[0])
	if err != nil || prio < 0 {
		return Record{}, fmt.Errorf("kmsg record %.40q: priority %q", s, f[0])
	}
	seq, err := strconv.ParseUint(f[1], 10, 64)
	if err != nil {
		return Record{}, fmt.Errorf("kmsg record %.40q: sequence %q", s, f[1])
	}
	usec, err := strconv.ParseUint(f[2], 10, 63)
	if err != nil {
		return Record{}, fmt.Errorf("kmsg record %.40q: timestamp %q", s, f[2])
	}
	r := Record{Priority: prio, Seq: seq, Time: time.Duration(usec) * time.Microsecond, Flags: '-'}
	if len(f[3]) > 0 {
		r.Flags = f[3][0]
	}
	rest = strings.TrimSuffix(rest, "\n")
	lines := strings.Split(rest, "\n")
	r.Message = unescape(lines[0])
	for _, l := range lines[1:] {
		// Continuation lines start with a space; anything else is not the kernel's.
		if kv, ok := strings.CutPrefix(l, " "); ok && kv != "" {
			r.Dict = append(r.Dict, unescape(kv))
		}
	}
	return r, nil
}

// unescape undoes the kernel's \xNN escapes (it escapes control bytes, bytes from 0x7f up and the
// backslash itself); anything else is kept as it is.
func unescape(s string) string {
	if !strings.Contains(s, `\x`) {
		return s
	}
	var b strings.Builder
	b.Grow(len(s))
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+3 < len(s) && s[i+1] == 'x' {
			if v, err := strconv.ParseUint(s[i+2:i+4], 16, 8); err == nil {
				b.WriteByte(byte(v))
				i += 3
				continue
			}
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

// maxRecord is the largest record read(2) returns (the kernel's CONSOLE_EXT_LOG_MAX); a smaller
// buffer gets EINVAL.
const maxRecord = 8192

// Reader reads records from /dev/kmsg in order, from the oldest the kernel still holds.
type Reader struct {
	f    io.ReadCloser
	buf  []byte
	next uint64 // the sequence number expected next; 0 before the first record
}

// Open opens the kernel log at path (/dev/kmsg).
func Open(path string) (*Reader, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("kernel log: %w", err)
	}
	return NewReader(f), nil
}

// NewReader reads records from f, which returns one record per Read as /dev/kmsg does.
func NewReader(f io.ReadCloser) *Reader { return &Reader{f: f, buf: make([]byte, maxRecord)} }

// Next returns the next record, waiting for one when there is none, and how many records were
// lost before it: overwritten in the kernel's buffer before they could be read (read(2) says so
// with EPIPE, then goes on with the oldest record left). It returns an error when the reader is
// closed or the device fails.
func (r *Reader) Next() (rec Record, lost uint64, err error) {
	for {
		n, err := r.f.Read(r.buf)
		if errors.Is(err, syscall.EPIPE) {
			continue // the sequence numbers tell how many
		}
		if err != nil {
			return Record{}, 0, fmt.Errorf("kernel log: %w", err)
		}
		rec, err := Parse(r.buf[:n])
		if err != nil {
			continue // not a record: nothing to keep, and the next one may be fine
		}
		if r.next != 0 && rec.Seq > r.next {
			lost = rec.Seq - r.next
		}
		r.next = rec.Seq + 1
		return rec, lost, nil
	}
}

// Close ends a Next that is waiting.
func (r *Reader) Close() error { return r.f.Close() }

// Snapshot returns the records the kernel's buffer holds now, oldest first, without waiting for
// more: what dmesg prints.
func Snapshot(path string) ([]Record, error) {
	fd, err := syscall.Open(path, syscall.O_RDONLY|syscall.O_NONBLOCK|syscall.O_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("kernel log %s: %w", path, err)
	}
	defer syscall.Close(fd)
	var recs []Record
	buf := make([]byte, maxRecord)
	for {
		n, err := syscall.Read(fd, buf)
		switch {
		case errors.Is(err, syscall.EPIPE), errors.Is(err, syscall.EINTR):
			continue
		case errors.Is(err, syscall.EAGAIN), err == nil && n == 0:
			return recs, nil
		case err != nil:
			return recs, fmt.Errorf("kernel log %s: %w", path, err)
		}
		if rec, err := Parse(buf[:n]); err == nil {
			recs = append(recs, rec)
		}
	}
}
