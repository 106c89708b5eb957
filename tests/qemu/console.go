package qemu

import (
	"bytes"
	"io"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"time"
	"unicode/utf8"
)

// quietPeriod is how long a partial line must stay unchanged before a match
// that runs to its end is trusted: under TCG a line such as
// "ballast: ready version=1.2.3" can arrive a few bytes at a time, and
// matching it early would truncate the submatches. Prompts ("Shell> ", "# ")
// never get a newline, so they are matched once the output pauses.
const quietPeriod = 300 * time.Millisecond

// maxPad bounds the spaces a rightward cursor jump becomes, so a garbled
// sequence cannot blow up the console buffer.
const maxPad = 256

// Escape-sequence parser states.
const (
	stText    = iota
	stEsc     // after ESC
	stCSI     // after ESC [
	stOSC     // after ESC ], until BEL or ESC \
	stOSCEsc  // ESC seen inside an OSC
	stCharset // after ESC ( and friends: one more byte follows
)

// normalizer turns a raw terminal byte stream into plain text lines. It keeps
// state between writes because escape sequences are split across reads.
type normalizer struct {
	state  int
	params []byte // parameter bytes of the CSI sequence being read
	row    int    // terminal row of the current line as far as known, 0 if not
}

// append normalizes p onto text and returns the result. lineStart is the
// offset in text where the current (unterminated) line begins; backspaces
// never reach past it.
func (n *normalizer) append(text []byte, lineStart int, p []byte) []byte {
	for _, b := range p {
		switch n.state {
		case stEsc:
			switch b {
			case '[':
				n.state = stCSI
				n.params = n.params[:0]
			case ']':
				n.state = stOSC
			case '(', ')', '*', '+', '-', '.', '/', '#', '%':
				n.state = stCharset
			default:
				n.state = stText
			}
			continue
		case stCSI:
			switch {
			case b >= 0x40 && b <= 0x7e:
				n.state = stText
				text, lineStart = n.csi(text, lineStart, b)
			case b < 0x20 || b > 0x7e:
				n.state = stText // malformed: resync on the next byte
			default:
				n.params = append(n.params, b)
			}
			continue
		case stOSC:
			switch b {
			case 0x07:
				n.state = stText
			case 0x1b:
				n.state = stOSCEsc
			}
			continue
		case stOSCEsc:
			n.state = stOSC
			if b == '\\' {
				n.state = stText
			}
			continue
		case stCharset:
			n.state = stText
			continue
		}
		switch b {
		case 0x1b:
			n.state = stEsc
		case '\n':
			text = append(text, '\n')
			lineStart = len(text)
			if n.row > 0 {
				n.row++
			}
		case '\t':
			text = append(text, b)
		case '\b':
			if len(text) > lineStart {
				_, size := utf8.DecodeLastRune(text[lineStart:])
				text = text[:len(text)-size]
			}
		default:
			if b >= 0x20 && b != 0x7f {
				text = append(text, b)
			}
			// Other control bytes (\r, NUL, BEL, ...) carry nothing to match.
		}
	}
	return text
}

// csi applies a finished CSI sequence with the given final byte. OVMF draws
// its screen with cursor positioning: "\x1b[8;1H" starts the prompt's row,
// "\x1b[8;9H" follows every echoed key on that row, "\x1b[7;1H" rewrites a
// countdown in place. Moves to another row or back along the row end the
// current line; a move to where the cursor already is (or to the right) does
// not, so typed commands stay one line. Everything else (colours, erasing)
// carries nothing to match.
func (n *normalizer) csi(text []byte, lineStart int, final byte) ([]byte, int) {
	breakLine := func() {
		if len(text) > lineStart {
			text = append(text, '\n')
			lineStart = len(text)
		}
	}
	switch final {
	case 'H', 'f':
		row, col := 1, 1
		parts := strings.SplitN(string(n.params), ";", 2)
		if v, err := strconv.Atoi(parts[0]); err == nil && v > 0 {
			row = v
		}
		if len(parts) == 2 {
			if v, err := strconv.Atoi(parts[1]); err == nil && v > 0 {
				col = v
			}
		}
		cur := 1 + utf8.RuneCount(text[lineStart:])
		switch {
		case row == n.row && col == cur:
		case row == n.row && col > cur && col-cur <= maxPad:
			text = append(text, bytes.Repeat([]byte{' '}, col-cur)...)
		default:
			breakLine()
		}
		n.row = row
	case 'J':
		breakLine()
	}
	return text, lineStart
}

// console collects a VM's serial output, normalized, and wakes waiters when
// it grows. Complete lines are copied to the sinks (log file, stdout).
type console struct {
	mu        sync.Mutex
	norm      normalizer
	text      []byte
	lineStart int // start of the unterminated last line in text
	flushed   int // text[:flushed] has gone to the sinks
	consumed  int // Expect has matched up to here
	lastWrite time.Time
	eof       bool
	changed   chan struct{} // closed and replaced on every change
	sinks     []io.Writer
}

func newConsole(sinks ...io.Writer) *console {
	return &console{changed: make(chan struct{}), sinks: sinks}
}

// Write implements io.Writer for QEMU's stdout.
func (c *console) Write(p []byte) (int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.text = c.norm.append(c.text, c.lineStart, p)
	if i := bytes.LastIndexByte(c.text[c.lineStart:], '\n'); i >= 0 {
		c.lineStart += i + 1
	}
	c.lastWrite = time.Now()
	c.flush(c.lineStart)
	c.broadcast()
	// Never fail: an error here would stop exec's copy and block QEMU on a
	// full pipe, turning a log problem into a hung test.
	return len(p), nil
}

// close marks the end of output and flushes the unterminated last line.
func (c *console) close() {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.eof {
		return
	}
	if c.lineStart < len(c.text) {
		c.text = append(c.text, '\n')
		c.lineStart = len(c.text)
	}
	c.flush(len(c.text))
	c.eof = true
	c.broadcast()
}

func (c *console) flush(upto int) {
	if upto <= c.flushed {
		return
	}
	for _, w := range c.sinks {
		// Copies are best effort: the console itself stays complete and
		// goes into every Expect error.
		_, _ = w.Write(c.text[c.flushed:upto])
	}
	c.flushed = upto
}

func (c *console) broadcast() {
	close(c.changed)
	c.changed = make(chan struct{})
}

// String returns everything so far.
func (c *console) String() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return string(c.text)
}

// tail returns the last n lines, the unterminated one included.
func (c *console) tail(n int) string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return tailLines(string(c.text), n)
}

func tailLines(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// matchResult is one look at the console for a pattern.
type matchResult struct {
	sub     []string
	found   bool
	eof     bool
	changed <-chan struct{} // closed when there is more to look at
	recheck time.Duration   // >0: look again after this long even without new output
}

// scanner remembers how far one wait has looked, so each new byte costs a
// look at the unterminated line only, not at the whole boot log again.
type scanner struct {
	re      *regexp.Regexp
	consume bool // advance the console's consumed offset on a match (Expect)
	eager   bool // accept a match in the unterminated line at once (ExpectNot)
	checked int  // complete lines before this offset did not match
	started bool
}

// look matches s.re against the unconsumed console text line by line. A
// match in the unterminated last line counts when it ends before the line
// does, when the output has been quiet for quietPeriod, or at EOF.
func (c *console) look(s *scanner, now time.Time) matchResult {
	c.mu.Lock()
	defer c.mu.Unlock()
	if !s.started || s.checked < c.consumed {
		s.checked, s.started = c.consumed, true
	}
	res := matchResult{eof: c.eof, changed: c.changed}
	for s.checked < c.lineStart {
		nl := bytes.IndexByte(c.text[s.checked:c.lineStart], '\n')
		line := c.text[s.checked : s.checked+nl]
		if loc := s.re.FindSubmatchIndex(line); loc != nil {
			res.sub, res.found = submatches(line, loc), true
			if s.consume {
				c.consumed = s.checked + nl + 1
			}
			return res
		}
		s.checked += nl + 1
	}
	line := c.text[s.checked:]
	loc := s.re.FindSubmatchIndex(line)
	if loc == nil {
		return res
	}
	quiet := now.Sub(c.lastWrite)
	if s.eager || loc[1] < len(line) || quiet >= quietPeriod || c.eof {
		res.sub, res.found = submatches(line, loc), true
		if s.consume {
			c.consumed = s.checked + loc[1]
		}
		return res
	}
	res.recheck = quietPeriod - quiet
	return res
}

func submatches(line []byte, loc []int) []string {
	sub := make([]string, len(loc)/2)
	for i := range sub {
		if loc[2*i] >= 0 {
			sub[i] = string(line[loc[2*i]:loc[2*i+1]])
		}
	}
	return sub
}
