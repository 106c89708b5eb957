package logind

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"

	"github.com/godbus/dbus/v5"
)

// maxMessage bounds a message a client may send: the calls served take a few short strings.
// dbus-daemon allows far more; a client of this bus has no reason to.
const maxMessage = 64 << 10

// maxAuthLines bounds the SASL exchange: a client that has not begun after this many lines is
// not one this bus serves.
const maxAuthLines = 16

// maxAuthLine bounds one SASL line ("AUTH EXTERNAL <hex uid>" is about 30 bytes).
const maxAuthLine = 512

// authenticate runs the server side of the D-Bus SASL exchange (EXTERNAL only): the client
// proves nothing beyond what the kernel says about the socket's peer, uid, and an identity it
// names must be that uid. It returns whether the client negotiated Unix fd passing. w gets the
// answers; r must be the reader the messages are then read from (it may have read ahead).
func authenticate(r *bufio.Reader, w io.Writer, peerUID uint32, guid string) (unixFD bool, err error) {
	nul, err := r.ReadByte()
	if err != nil {
		return false, fmt.Errorf("auth: %w", err)
	}
	if nul != 0 {
		return false, fmt.Errorf("auth: first byte %#x, not NUL", nul)
	}
	send := func(s string) error {
		_, err := io.WriteString(w, s+"\r\n")
		return err
	}
	authed := false
	for range maxAuthLines {
		line, err := readAuthLine(r)
		if err != nil {
			return false, err
		}
		cmd, arg, _ := strings.Cut(line, " ")
		switch {
		case cmd == "AUTH" && !authed:
			mech, id, hasID := strings.Cut(arg, " ")
			switch {
			case mech != "EXTERNAL":
				err = send("REJECTED EXTERNAL")
			case !hasID:
				err = send("DATA") // an empty challenge: the client may name its identity
				if err == nil {
					authed, err = externalData(r, w, peerUID, guid)
				}
			default:
				authed, err = external(w, id, peerUID, guid)
			}
		case cmd == "NEGOTIATE_UNIX_FD" && authed:
			unixFD = true
			err = send("AGREE_UNIX_FD")
		case cmd == "BEGIN" && authed:
			return unixFD, nil
		case cmd == "CANCEL" || cmd == "ERROR":
			authed = false
			err = send("REJECTED EXTERNAL")
		default:
			err = send("ERROR")
		}
		if err != nil {
			return false, fmt.Errorf("auth: %w", err)
		}
	}
	return false, fmt.Errorf("auth: no BEGIN after %d lines", maxAuthLines)
}

// externalData reads the client's DATA line after an empty challenge.
func externalData(r *bufio.Reader, w io.Writer, peerUID uint32, guid string) (bool, error) {
	line, err := readAuthLine(r)
	if err != nil {
		return false, err
	}
	cmd, id, _ := strings.Cut(line, " ")
	if cmd != "DATA" {
		_, err := io.WriteString(w, "REJECTED EXTERNAL\r\n")
		return false, err
	}
	return external(w, id, peerUID, guid)
}

// external accepts an EXTERNAL identity (hex-encoded decimal uid; empty: the peer's own) that is
// the peer's uid.
func external(w io.Writer, idHex string, peerUID uint32, guid string) (bool, error) {
	ok := idHex == ""
	if !ok {
		id, err := hex.DecodeString(idHex)
		ok = err == nil && string(id) == strconv.FormatUint(uint64(peerUID), 10)
	}
	if !ok {
		// EXTERNAL is the only mechanism: a client refused it has nothing else to try.
		if _, err := io.WriteString(w, "REJECTED EXTERNAL\r\n"); err != nil {
			return false, err
		}
		return false, fmt.Errorf("identity %q is not the peer's uid %d", idHex, peerUID)
	}
	_, err := io.WriteString(w, "OK "+guid+"\r\n")
	return err == nil, err
}

func readAuthLine(r *bufio.Reader) (string, error) {
	var line []byte
	for {
		b, err := r.ReadByte()
		if err != nil {
			return "", fmt.Errorf("auth: %w", err)
		}
		if b == '\n' {
			break
		}
		if len(line) >= maxAuthLine {
			return "", fmt.Errorf("auth: a line longer than %d bytes", maxAuthLine)
		}
		line = append(line, b)
	}
	s, ok := strings.CutSuffix(string(line), "\r")
	if !ok {
		return "", errors.New("auth: a line without CR LF")
	}
	return s, nil
}

// readMessage reads one message. Its size is checked from the fixed header before anything more
// is read, so a client cannot make the bus hold more than maxMessage for it.
func readMessage(r io.Reader) (*dbus.Message, error) {
	var fixed [16]byte
	if _, err := io.ReadFull(r, fixed[:]); err != nil {
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
	body := uint64(order.Uint32(fixed[4:8]))
	fields := uint64(order.Uint32(fixed[12:16]))
	total := 16 + (fields+7)&^7 + body
	if total > maxMessage {
		return nil, fmt.Errorf("message: %d bytes, more than %d", total, maxMessage)
	}
	buf := make([]byte, total)
	copy(buf, fixed[:])
	if _, err := io.ReadFull(r, buf[16:]); err != nil {
		return nil, fmt.Errorf("message: %w", err)
	}
	m, err := dbus.DecodeMessage(bytes.NewReader(buf))
	if err != nil {
		return nil, fmt.Errorf("message: %w", err)
	}
	return m, nil
}

// encodeMessage encodes m with serial in little-endian order and returns the fds its body passes.
func encodeMessage(m *dbus.Message, serial uint32) ([]byte, []int, error) {
	var b bytes.Buffer
	fds, err := m.EncodeToWithFDs(&b, binary.LittleEndian)
	if err != nil {
		return nil, nil, err
	}
	out := b.Bytes()
	// godbus keeps a Message's serial to its own connections; the fixed header holds it at 8.
	binary.LittleEndian.PutUint32(out[8:12], serial)
	return out, fds, nil
}

// header returns a string-valued header field ("" when absent or of another type).
func header(m *dbus.Message, f dbus.HeaderField) string {
	v, ok := m.Headers[f]
	if !ok {
		return ""
	}
	switch s := v.Value().(type) {
	case string:
		return s
	case dbus.ObjectPath:
		return string(s)
	}
	return ""
}

// signature is the message body's signature.
func signature(m *dbus.Message) string {
	if v, ok := m.Headers[dbus.FieldSignature]; ok {
		if s, ok := v.Value().(dbus.Signature); ok {
			return s.String()
		}
	}
	return ""
}

// strings returns the body's strings when its signature is exactly n of them.
func bodyStrings(m *dbus.Message, n int) ([]string, bool) {
	if signature(m) != strings.Repeat("s", n) || len(m.Body) != n {
		return nil, false
	}
	out := make([]string, n)
	for i, v := range m.Body {
		s, ok := v.(string)
		if !ok {
			return nil, false
		}
		out[i] = s
	}
	return out, true
}
