package qemu

import (
	"bytes"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"
)

func TestNormalizer(t *testing.T) {
	tests := []struct {
		name string
		in   string
		want string
	}{
		{"crlf", "one\r\ntwo\r\n", "one\ntwo\n"},
		{"colours", "\x1b[1m\x1b[33m\x1b[40mShell> \x1b[0m\x1b[37m\x1b[40m", "Shell> "},
		{"clear screen", "\x1b[2J\x1b[01;01H\x1b[=3h\x1b[2J\x1b[01;01HBdsDxe: x\r\n", "BdsDxe: x\n"},
		{
			// OVMF's shell repositions the cursor after every echoed key.
			"shell echo",
			"\x1b[08;01HShell> \x1b[08;08He\x1b[08;09H\x1b[08;09Hc\x1b[08;10H\x1b[08;10Hh\x1b[08;11H\x1b[08;11Ho\x1b[08;12H\r\nhi\r\n",
			"Shell> echo\nhi\n",
		},
		{
			// A countdown rewritten in place becomes one line per tick.
			"rewrite in place",
			"\x1b[07;01HPress ESC in 2 seconds\x1b[07;01HPress ESC in 1 seconds\r\n",
			"Press ESC in 2 seconds\nPress ESC in 1 seconds\n",
		},
		{"cursor jumps right", "\x1b[3;1Ha\x1b[3;5Hb\r\n", "a   b\n"},
		{"breaks within one write", "x\x1b[2J\x1b[01;01Habc\x1b[01;04Hd\b\be\r\n", "x\nabe\n"},
		{"new row", "\x1b[3;1Habc\x1b[4;1Hdef\r\n", "abc\ndef\n"},
		{"backspace", "Press Ctrl-B...\b \b\b \b\b \bok\r\n", "Press Ctrl-Bok\n"},
		{"backspace stops at line start", "a\n\b\bb\n", "a\nb\n"},
		{"backspace over utf-8", "x\u00e9\b\n", "x\n"},
		{"osc title", "\x1b]0;title\x07text\x1b]2;t\x1b\\more\n", "textmore\n"},
		{"charset designation", "\x1b(Bplain\x1b)0\n", "plain\n"},
		{"control bytes", "a\x00b\x07c\td\x7f\n", "abc\td\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			// At once and a byte at a time: escapes arrive split under TCG.
			var n normalizer
			if got := string(n.append(nil, 0, []byte(tt.in))); got != tt.want {
				t.Errorf("whole: got %q, want %q", got, tt.want)
			}
			c := newConsole()
			for i := range len(tt.in) {
				if _, err := c.Write([]byte{tt.in[i]}); err != nil {
					t.Fatal(err)
				}
			}
			if got := c.String(); got != tt.want {
				t.Errorf("bytewise: got %q, want %q", got, tt.want)
			}
		})
	}
}

func TestConsoleSinksGetCompleteLines(t *testing.T) {
	var sink bytes.Buffer
	c := newConsole(&sink)
	for _, chunk := range []string{"first li", "ne\r\nsec", "ond\r\nprompt> "} {
		if _, err := c.Write([]byte(chunk)); err != nil {
			t.Fatal(err)
		}
	}
	if got, want := sink.String(), "first line\nsecond\n"; got != want {
		t.Fatalf("before close: sink got %q, want %q", got, want)
	}
	c.close()
	if got, want := sink.String(), "first line\nsecond\nprompt> \n"; got != want {
		t.Fatalf("after close: sink got %q, want %q", got, want)
	}
}

func TestConsoleLook(t *testing.T) {
	later := func() time.Time { return time.Now().Add(time.Hour) }
	tests := []struct {
		name    string
		chunks  []string
		re      string
		eager   bool
		eof     bool
		now     func() time.Time
		want    []string // nil: no match
		recheck bool     // want a timed re-look
	}{
		{name: "line", chunks: []string{"a\nballast: ready version=1.2\n"}, re: `ready version=(\S+)`, want: []string{"ready version=1.2", "1.2"}},
		{name: "anchors are per line", chunks: []string{"x ready\nready\n"}, re: `^ready$`, want: []string{"ready"}},
		{name: "no cross-line match", chunks: []string{"foo\nbar\n"}, re: `foo.bar`},
		// The partial line may still grow: a match up to its end must wait.
		{name: "partial waits", chunks: []string{"ballast: ready version=1."}, re: `version=(\S+)`, now: time.Now, recheck: true},
		{name: "partial after quiet", chunks: []string{"Shell> "}, re: `^Shell> $`, now: later, want: []string{"Shell> "}},
		{name: "partial at eof", chunks: []string{"# "}, re: `# $`, eof: true, now: time.Now, want: []string{"# "}},
		{name: "partial ending early", chunks: []string{"BdsDxe: failed to lo"}, re: `BdsDxe`, now: time.Now, want: []string{"BdsDxe"}},
		{name: "eager partial", chunks: []string{"ballast: err"}, re: `ballast: err`, eager: true, now: time.Now, want: []string{"ballast: err"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := newConsole()
			for _, ch := range tt.chunks {
				if _, err := c.Write([]byte(ch)); err != nil {
					t.Fatal(err)
				}
			}
			if tt.eof {
				c.eof = true // as close would, but without completing the line
			}
			now := time.Now()
			if tt.now != nil {
				now = tt.now()
			}
			r := c.look(&scanner{re: regexp.MustCompile(tt.re), consume: true, eager: tt.eager}, now)
			if !slices.Equal(r.sub, tt.want) || r.found != (tt.want != nil) {
				t.Errorf("look() = %q (found %v), want %q", r.sub, r.found, tt.want)
			}
			if (r.recheck > 0) != tt.recheck {
				t.Errorf("recheck = %s, want one: %v", r.recheck, tt.recheck)
			}
		})
	}
}

func TestConsoleLookConsumes(t *testing.T) {
	c := newConsole()
	if _, err := c.Write([]byte("step 1\nother\nstep 2\nstep 3 partial")); err != nil {
		t.Fatal(err)
	}
	re := regexp.MustCompile(`step (\d)`)
	var got []string
	for range 3 {
		r := c.look(&scanner{re: re, consume: true}, time.Now())
		if !r.found {
			break
		}
		got = append(got, r.sub[1])
	}
	if want := []string{"1", "2", "3"}; !slices.Equal(got, want) {
		t.Fatalf("successive matches %q, want %q", got, want)
	}
	// ExpectNot-style looks do not consume.
	c2 := newConsole()
	if _, err := c2.Write([]byte("x\n")); err != nil {
		t.Fatal(err)
	}
	for range 2 {
		if r := c2.look(&scanner{re: regexp.MustCompile("x")}, time.Now()); !r.found {
			t.Fatal("a non-consuming look consumed the line")
		}
	}
}

func TestTailLines(t *testing.T) {
	tests := []struct {
		in   string
		n    int
		want string
	}{
		{"a\nb\nc\n", 2, "b\nc"},
		{"a\nb\nc", 2, "b\nc"},
		{"a\nb\n", 5, "a\nb"},
		{"", 3, ""},
	}
	for _, tt := range tests {
		if got := tailLines(tt.in, tt.n); got != tt.want {
			t.Errorf("tailLines(%q, %d) = %q, want %q", tt.in, tt.n, got, tt.want)
		}
	}
}

// consoleVM is a VM without QEMU: just enough to exercise Expect's waiting.
func consoleVM() *VM {
	return &VM{
		con:    newConsole(),
		stderr: &tailWriter{max: 1024},
		cfg:    Config{LogFile: "/logs/console.log"},
		exited: make(chan struct{}),
		done:   make(chan struct{}),
	}
}

func TestExpectWaitsForWholeLine(t *testing.T) {
	v := consoleVM()
	go func() {
		// Split mid-value, as a TCG guest's UART often delivers it.
		_, _ = v.con.Write([]byte("ballast: ready version=1."))
		time.Sleep(50 * time.Millisecond)
		_, _ = v.con.Write([]byte("2.3 variant=qemu\r\n"))
	}()
	sub, err := v.Expect(regexp.MustCompile(`ready version=(\S+)`), 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if sub[1] != "1.2.3" {
		t.Fatalf("version %q, want 1.2.3", sub[1])
	}
}

func TestExpectPrompt(t *testing.T) {
	v := consoleVM()
	_, _ = v.con.Write([]byte("boot\r\n/ # "))
	start := time.Now()
	if _, err := v.Expect(regexp.MustCompile(`^/ # $`), 5*time.Second); err != nil {
		t.Fatal(err)
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Fatalf("prompt took %s to match", d)
	}
}

func TestExpectErrors(t *testing.T) {
	t.Run("timeout", func(t *testing.T) {
		v := consoleVM()
		for i := range 50 {
			_, _ = v.con.Write([]byte("line " + string(rune('A'+i%26)) + "\n"))
		}
		_, err := v.Expect(regexp.MustCompile(`never`), 50*time.Millisecond)
		if err == nil {
			t.Fatal("Expect matched nothing yet returned no error")
		}
		msg := err.Error()
		for _, want := range []string{`"never"`, "within 50ms", "console log: /logs/console.log", "last 40 console lines"} {
			if !strings.Contains(msg, want) {
				t.Errorf("error lacks %q:\n%s", want, msg)
			}
		}
		if n := strings.Count(msg, "\nline "); n != consoleTailLines {
			t.Errorf("error carries %d console lines, want %d", n, consoleTailLines)
		}
	})
	t.Run("exit", func(t *testing.T) {
		v := consoleVM()
		_, _ = v.stderr.Write([]byte("qemu-system-x86_64: something broke\n"))
		_, _ = v.con.Write([]byte("[ 1.0] ballast: error: no root partition\n"))
		close(v.exited)
		v.con.close()
		close(v.done)
		_, err := v.Expect(regexp.MustCompile(`ballast: ready`), time.Minute)
		if err == nil {
			t.Fatal("Expect succeeded on a dead VM")
		}
		for _, want := range []string{"QEMU exited", "exit status 0", "no root partition", "something broke"} {
			if !strings.Contains(err.Error(), want) {
				t.Errorf("error lacks %q:\n%s", want, err)
			}
		}
	})
}

func TestExpectNot(t *testing.T) {
	v := consoleVM()
	_, _ = v.con.Write([]byte("ballast: ready\n"))
	if err := v.ExpectNot(regexp.MustCompile(`ballast: error`), 20*time.Millisecond); err != nil {
		t.Fatal(err)
	}
	go func() {
		time.Sleep(10 * time.Millisecond)
		_, _ = v.con.Write([]byte("ballast: error: boom"))
	}()
	if err := v.ExpectNot(regexp.MustCompile(`ballast: error`), 5*time.Second); err == nil {
		t.Fatal("ExpectNot missed the error line")
	}
	// Nothing was consumed: Expect still sees the ready line.
	if _, err := v.Expect(regexp.MustCompile(`ballast: ready`), time.Second); err != nil {
		t.Fatal(err)
	}
}
