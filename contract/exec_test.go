package contract

import (
	"bytes"
	"reflect"
	"strings"
	"testing"
)

func TestExecQueryRoundTrip(t *testing.T) {
	for _, req := range []ExecRequest{
		{Service: "admin", Command: []string{"sh", "-c", "echo a b"}},
		{Service: "c", Command: []string{"/bin/top"}, TTY: true, Rows: 24, Cols: 80, Env: []string{"A=1", "B="}},
	} {
		got, err := ParseExecQuery(req.Query())
		if err != nil || !reflect.DeepEqual(got, req) {
			t.Errorf("ParseExecQuery(%v) = %+v, %v; want %+v", req.Query(), got, err, req)
		}
	}
}

func TestParseExecQueryRefuses(t *testing.T) {
	for _, tt := range []struct {
		q    map[string][]string
		want string
	}{
		{map[string][]string{"command": {"sh"}}, "service"},
		{map[string][]string{"service": {"a"}}, "command"},
		{map[string][]string{"service": {"a"}, "command": {""}}, "command"},
		{map[string][]string{"service": {"a"}, "command": {"sh"}, "tty": {"maybe"}}, "tty"},
		{map[string][]string{"service": {"a"}, "command": {"sh"}, "rows": {"70000"}}, "rows"},
		{map[string][]string{"service": {"a"}, "command": {"sh"}, "env": {"NOEQUALS"}}, "env"},
	} {
		if _, err := ParseExecQuery(tt.q); err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("ParseExecQuery(%v) = %v, want an error about %s", tt.q, err, tt.want)
		}
	}
}

func TestFrames(t *testing.T) {
	var b bytes.Buffer
	frames := []struct {
		typ     byte
		payload string
	}{{ExecFrameStdout, "hello"}, {ExecFrameEOF, ""}, {ExecFrameExit, "7"}}
	for _, f := range frames {
		if err := WriteFrame(&b, f.typ, []byte(f.payload)); err != nil {
			t.Fatal(err)
		}
	}
	for _, f := range frames {
		typ, p, err := ReadFrame(&b)
		if err != nil || typ != f.typ || string(p) != f.payload {
			t.Errorf("ReadFrame = %d %q %v, want %d %q", typ, p, err, f.typ, f.payload)
		}
	}
	if _, _, err := ReadFrame(&b); err == nil {
		t.Error("ReadFrame past the end succeeded")
	}
	// A length beyond the limit is refused before anything is allocated.
	if _, _, err := ReadFrame(bytes.NewReader([]byte{1, 0xff, 0xff, 0xff, 0xff})); err == nil || !strings.Contains(err.Error(), "more than") {
		t.Errorf("oversized frame: %v", err)
	}
	if err := WriteFrame(&b, 1, make([]byte, ExecMaxFrameSize+1)); err == nil {
		t.Error("WriteFrame of an oversized frame succeeded")
	}
	// A frame cut short is an error, not a short payload.
	if _, _, err := ReadFrame(bytes.NewReader([]byte{1, 0, 0, 0, 5, 'a'})); err == nil {
		t.Error("ReadFrame of a truncated frame succeeded")
	}
}
