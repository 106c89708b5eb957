package logind

import (
	"bufio"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
)

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
