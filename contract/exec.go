package contract

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net/url"
	"strconv"
	"strings"
)

// Exec stream protocol: after the upgrade each side sends frames of a type byte, a big-endian
// uint32 length and that many bytes. The client sends stdin, stdin's end and terminal sizes; the
// manager sends stdout, stderr, then exactly one exit or error frame, and closes.
const (
	ExecUpgrade      = "ballast-exec/1" // the Upgrade header's protocol
	ExecFrameStdin   = 0
	ExecFrameStdout  = 1
	ExecFrameStderr  = 2
	ExecFrameExit    = 3 // payload: the exit status as a decimal number
	ExecFrameError   = 4 // payload: why the process could not run
	ExecFrameEOF     = 5 // the client's stdin is done
	ExecFrameResize  = 6 // payload: "<rows> <cols>"
	ExecMaxFrameSize = 1 << 20
)

// ExecRequest is what POST /exec asks for, in its query (Query, ParseExecQuery).
type ExecRequest struct {
	Service string   `json:"service"`
	Command []string `json:"command"`
	TTY     bool     `json:"tty,omitempty"`
	Rows    uint16   `json:"rows,omitempty"`
	Cols    uint16   `json:"cols,omitempty"`
	Env     []string `json:"env,omitempty"`
}

// Query is the request as the query of POST /exec.
func (r ExecRequest) Query() url.Values {
	q := url.Values{"service": {r.Service}, "command": r.Command}
	if r.TTY {
		q.Set("tty", "true")
	}
	if r.Rows > 0 && r.Cols > 0 {
		q.Set("rows", strconv.Itoa(int(r.Rows)))
		q.Set("cols", strconv.Itoa(int(r.Cols)))
	}
	if len(r.Env) > 0 {
		q["env"] = r.Env
	}
	return q
}

// ParseExecQuery reads an exec request from the query of POST /exec: service, command (repeated,
// in order), tty, rows, cols and env (repeated).
func ParseExecQuery(q map[string][]string) (ExecRequest, error) {
	get := func(k string) string {
		if v := q[k]; len(v) > 0 {
			return v[0]
		}
		return ""
	}
	req := ExecRequest{Service: get("service"), Command: q["command"], Env: q["env"]}
	if req.Service == "" {
		return req, errors.New("service: which container")
	}
	if len(req.Command) == 0 || req.Command[0] == "" {
		return req, errors.New("command: what to run")
	}
	if t := get("tty"); t != "" {
		v, err := strconv.ParseBool(t)
		if err != nil {
			return req, fmt.Errorf("tty: %q is not true or false", t)
		}
		req.TTY = v
	}
	for _, f := range []struct {
		key string
		v   *uint16
	}{{"rows", &req.Rows}, {"cols", &req.Cols}} {
		if s := get(f.key); s != "" {
			n, err := strconv.ParseUint(s, 10, 16)
			if err != nil {
				return req, fmt.Errorf("%s: %q is not a terminal size", f.key, s)
			}
			*f.v = uint16(n)
		}
	}
	for _, e := range req.Env {
		if k, _, ok := strings.Cut(e, "="); !ok || k == "" {
			return req, fmt.Errorf("env: %q is not KEY=VALUE", e)
		}
	}
	return req, nil
}

// WriteFrame writes one frame of the exec stream protocol.
func WriteFrame(w io.Writer, typ byte, payload []byte) error {
	if len(payload) > ExecMaxFrameSize {
		return fmt.Errorf("exec: frame of %d bytes, more than %d", len(payload), ExecMaxFrameSize)
	}
	var hdr [5]byte
	hdr[0] = typ
	binary.BigEndian.PutUint32(hdr[1:], uint32(len(payload)))
	if _, err := w.Write(append(hdr[:], payload...)); err != nil {
		return err
	}
	return nil
}

// ReadFrame reads one frame of the exec stream protocol.
func ReadFrame(r io.Reader) (byte, []byte, error) {
	var hdr [5]byte
	if _, err := io.ReadFull(r, hdr[:]); err != nil {
		return 0, nil, err
	}
	n := binary.BigEndian.Uint32(hdr[1:])
	if n > ExecMaxFrameSize {
		return 0, nil, fmt.Errorf("exec: frame of %d bytes, more than %d", n, ExecMaxFrameSize)
	}
	payload := make([]byte, n)
	if _, err := io.ReadFull(r, payload); err != nil {
		return 0, nil, fmt.Errorf("exec: frame: %w", err)
	}
	return hdr[0], payload, nil
}
