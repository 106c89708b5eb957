package logind

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"strings"
	"unicode/utf8"
)

// The D-Bus wire format (specification, "Message Protocol"), as far as this bus needs it: it
// reads method calls whose arguments are strings and writes replies, errors and one signal. It
// is its own, not a general marshaller's, because it runs in PID 1 on what any root process
// sends: every length is checked against the bytes at hand before it is used, so a client can
// make the bus neither allocate more than maxMessage nor panic.

// maxMessage bounds a message a client may send: the calls served take a few short strings.
// dbus-daemon allows far more; a client of this bus has no reason to.
const maxMessage = 64 << 10

// maxArgs bounds the string arguments decoded (Inhibit has the most, 4).
const maxArgs = 8

// Message types.
const (
	typeMethodCall   = 1
	typeMethodReturn = 2
	typeError        = 3
	typeSignal       = 4
)

// flagNoReplyExpected is the caller's "do not answer".
const flagNoReplyExpected = 0x1

// Header field codes and the one type each must have.
const (
	fieldPath        = 1
	fieldInterface   = 2
	fieldMember      = 3
	fieldErrorName   = 4
	fieldReplySerial = 5
	fieldDestination = 6
	fieldSender      = 7
	fieldSignature   = 8
	fieldUnixFDs     = 9
)

var fieldTypes = [...]byte{
	fieldPath: 'o', fieldInterface: 's', fieldMember: 's', fieldErrorName: 's', fieldReplySerial: 'u',
	fieldDestination: 's', fieldSender: 's', fieldSignature: 'g', fieldUnixFDs: 'u',
}

// message is a message read or to be written. Body holds a read message's arguments when they
// are all strings (args is false otherwise); a written one's body comes encoded in body.
type message struct {
	typ, flags   byte
	serial       uint32
	path, iface  string
	member       string
	errName      string
	replySerial  uint32
	dest, sender string
	sig          string
	unixFDs      uint32

	args []string // a read message's string arguments
	body []byte   // a written message's encoded body (little-endian, from offset 0)
}

// reader reads values from a message's bytes, aligned relative to its start.
type reader struct {
	b     []byte
	pos   int
	order binary.ByteOrder
	err   error
}

func (r *reader) fail(format string, args ...any) {
	if r.err == nil {
		r.err = fmt.Errorf("offset %d: %s", r.pos, fmt.Sprintf(format, args...))
	}
}

func (r *reader) align(n int) {
	p := (r.pos + n - 1) &^ (n - 1)
	if p > len(r.b) {
		r.fail("past the end")
		return
	}
	for _, c := range r.b[r.pos:p] {
		if c != 0 {
			r.fail("padding not zero")
			return
		}
	}
	r.pos = p
}

func (r *reader) take(n int) []byte {
	if r.err != nil {
		return nil
	}
	if n < 0 || n > len(r.b)-r.pos {
		r.fail("%d bytes past the end", n)
		return nil
	}
	out := r.b[r.pos : r.pos+n]
	r.pos += n
	return out
}

func (r *reader) u8() byte {
	b := r.take(1)
	if b == nil {
		return 0
	}
	return b[0]
}

func (r *reader) u32() uint32 {
	r.align(4)
	b := r.take(4)
	if b == nil {
		return 0
	}
	return r.order.Uint32(b)
}

// text reads the bytes of a string or signature of length n and its NUL.
func (r *reader) text(n int) string {
	b := r.take(n + 1)
	if b == nil {
		return ""
	}
	s := string(b[:n])
	if b[n] != 0 || strings.IndexByte(s, 0) >= 0 || !utf8.ValidString(s) {
		r.fail("a string that is not NUL-terminated UTF-8")
		return ""
	}
	return s
}

func (r *reader) str() string {
	n := r.u32()
	if r.err != nil {
		return ""
	}
	return r.text(int(min(n, maxMessage+1)))
}

func (r *reader) signature() string { return r.text(int(r.u8())) }

// readMessage reads one message. Its size is checked from the fixed header before anything more
// is read, so a client cannot make the bus hold more than maxMessage for it.
func readMessage(rd io.Reader) (*message, error) {
	var fixed [16]byte
	if _, err := io.ReadFull(rd, fixed[:]); err != nil {
		return nil, err
	}
	var order binary.ByteOrder
	switch fixed[0] {
	case 'l':
		order = binary.LittleEndian
	case 'B':
		order = binary.BigEndian
	default:
		return nil, fmt.Errorf("message: byte order %#x", fixed[0])
	}
	if fixed[3] != 1 {
		return nil, fmt.Errorf("message: protocol version %d", fixed[3])
	}
	bodyLen := uint64(order.Uint32(fixed[4:8]))
	fieldsLen := uint64(order.Uint32(fixed[12:16]))
	total := 16 + (fieldsLen+7)&^7 + bodyLen
	if total > maxMessage {
		return nil, fmt.Errorf("message: %d bytes, more than %d", total, maxMessage)
	}
	buf := make([]byte, total)
	copy(buf, fixed[:])
	if _, err := io.ReadFull(rd, buf[16:]); err != nil {
		return nil, fmt.Errorf("message: %w", err)
	}
	m, err := parseMessage(buf, order, int(fieldsLen), int(bodyLen))
	if err != nil {
		return nil, fmt.Errorf("message: %w", err)
	}
	return m, nil
}

// parseMessage decodes a whole message of the given lengths.
func parseMessage(buf []byte, order binary.ByteOrder, fieldsLen, bodyLen int) (*message, error) {
	m := &message{typ: buf[1], flags: buf[2], serial: order.Uint32(buf[8:12])}
	if m.typ < typeMethodCall || m.typ > typeSignal {
		return nil, fmt.Errorf("type %d", m.typ)
	}
	if m.serial == 0 {
		return nil, errors.New("serial 0")
	}
	r := &reader{b: buf[:16+fieldsLen], pos: 16, order: order}
	seen := map[byte]bool{}
	for r.err == nil && r.pos < len(r.b) {
		r.align(8)
		code := r.u8()
		typ := r.signature()
		if r.err != nil {
			break
		}
		if int(code) >= len(fieldTypes) || fieldTypes[code] == 0 {
			// Unknown fields are to be ignored, but skipping one means decoding any type; no
			// client of this bus sends them.
			return nil, fmt.Errorf("header field %d: not known here", code)
		}
		if typ != string(fieldTypes[code]) {
			return nil, fmt.Errorf("header field %d of type %q, want %q", code, typ, fieldTypes[code])
		}
		if seen[code] {
			return nil, fmt.Errorf("header field %d twice", code)
		}
		seen[code] = true
		switch code {
		case fieldPath:
			m.path = r.str()
		case fieldInterface:
			m.iface = r.str()
		case fieldMember:
			m.member = r.str()
		case fieldErrorName:
			m.errName = r.str()
		case fieldReplySerial:
			m.replySerial = r.u32()
		case fieldDestination:
			m.dest = r.str()
		case fieldSender:
			m.sender = r.str()
		case fieldSignature:
			m.sig = r.signature()
		case fieldUnixFDs:
			m.unixFDs = r.u32()
		}
	}
	if r.err != nil {
		return nil, fmt.Errorf("header: %w", r.err)
	}
	if r.pos != len(r.b) {
		return nil, errors.New("header fields overrun their array")
	}
	switch {
	case m.typ == typeMethodCall && (m.path == "" || m.member == ""):
		return nil, errors.New("a method call without path or member")
	case m.typ == typeSignal && (m.path == "" || m.iface == "" || m.member == ""):
		return nil, errors.New("a signal without path, interface or member")
	case (m.typ == typeMethodReturn || m.typ == typeError) && m.replySerial == 0:
		return nil, errors.New("a reply without reply serial")
	case m.sig == "" && bodyLen != 0:
		return nil, errors.New("a body without signature")
	}
	// The body: decoded when it is all strings, the only arguments the calls served take.
	if m.sig == "" || strings.Trim(m.sig, "s") != "" || len(m.sig) > maxArgs {
		return m, nil
	}
	start := (16 + fieldsLen + 7) &^ 7
	r = &reader{b: buf[start:], order: order}
	for range len(m.sig) {
		m.args = append(m.args, r.str())
	}
	if r.err != nil {
		return nil, fmt.Errorf("body: %w", r.err)
	}
	if r.pos != len(r.b) {
		return nil, fmt.Errorf("body: %d bytes after the arguments", len(r.b)-r.pos)
	}
	return m, nil
}

// writer encodes values little-endian, aligned relative to its start.
type writer struct{ b []byte }

func (w *writer) align(n int) {
	for len(w.b)%n != 0 {
		w.b = append(w.b, 0)
	}
}

func (w *writer) u8(v byte) { w.b = append(w.b, v) }

func (w *writer) u32(v uint32) {
	w.align(4)
	w.b = binary.LittleEndian.AppendUint32(w.b, v)
}

func (w *writer) u64(v uint64) {
	w.align(8)
	w.b = binary.LittleEndian.AppendUint64(w.b, v)
}

func (w *writer) str(s string) {
	w.u32(uint32(len(s)))
	w.b = append(w.b, s...)
	w.b = append(w.b, 0)
}

func (w *writer) signature(s string) {
	w.b = append(w.b, byte(len(s)))
	w.b = append(w.b, s...)
	w.b = append(w.b, 0)
}

func (w *writer) boolean(v bool) {
	if v {
		w.u32(1)
	} else {
		w.u32(0)
	}
}

// encode returns m's bytes, little-endian. The body starts 8-aligned, so its own alignment
// (relative to offset 0 of m.body) holds in the message.
func (m *message) encode() []byte {
	w := &writer{}
	w.b = append(w.b, 'l', m.typ, m.flags, 1)
	w.u32(uint32(len(m.body)))
	w.u32(m.serial)
	w.u32(0) // the header fields' length, filled in below
	start := len(w.b)
	field := func(code byte) {
		w.align(8)
		w.u8(code)
		w.signature(string(fieldTypes[code]))
	}
	for _, f := range []struct {
		code byte
		val  string
	}{{fieldPath, m.path}, {fieldInterface, m.iface}, {fieldMember, m.member}, {fieldErrorName, m.errName},
		{fieldDestination, m.dest}, {fieldSender, m.sender}} {
		if f.val != "" {
			field(f.code)
			w.str(f.val)
		}
	}
	if m.replySerial != 0 {
		field(fieldReplySerial)
		w.u32(m.replySerial)
	}
	if m.sig != "" {
		field(fieldSignature)
		w.signature(m.sig)
	}
	if m.unixFDs != 0 {
		field(fieldUnixFDs)
		w.u32(m.unixFDs)
	}
	binary.LittleEndian.PutUint32(w.b[12:16], uint32(len(w.b)-start))
	w.align(8)
	return append(w.b, m.body...)
}
