package progress

import (
	"bytes"
	"strings"
	"testing"
)

func TestPlainAndTerminal(t *testing.T) {
	cases := []struct {
		tty        bool
		wantLines  int
		wantInline bool
	}{
		{false, 2, false},
		{true, 2, true},
	}
	for _, c := range cases {
		var buf bytes.Buffer
		r := New(&buf, c.tty)
		r.Step("fetch: %s", "kernel")
		r.Bytes("kernel.deb", 10, 100)
		r.Bytes("kernel.deb", 100, 100)
		out := buf.String()
		if n := strings.Count(out, "\n"); n != c.wantLines {
			t.Errorf("tty=%v: %d lines:\n%q", c.tty, n, out)
		}
		if strings.Contains(out, "\r") != c.wantInline {
			t.Errorf("tty=%v: in-place updates = %v:\n%q", c.tty, !c.wantInline, out)
		}
		if !strings.Contains(out, "kernel.deb: ") || !strings.Contains(out, "100 B") {
			t.Errorf("tty=%v: no byte count:\n%q", c.tty, out)
		}
	}
}
