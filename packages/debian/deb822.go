package debian

import (
	"bufio"
	"fmt"
	"io"
	"strings"
)

// stanza is one paragraph of a deb822 file (Release, Packages): field names lower-cased, since
// deb822 field names are case-insensitive, and continuation lines joined with "\n".
type stanza struct {
	fields map[string]string
	line   int // where the paragraph starts, for error messages
}

func (s stanza) get(name string) string { return s.fields[strings.ToLower(name)] }

// maxLine bounds one physical line; the longest in Debian's Packages files are a few KiB.
const maxLine = 1 << 20

// readStanzas calls fn for each paragraph of r in order and stops at the first error.
func readStanzas(r io.Reader, fn func(stanza) error) error {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), maxLine)
	var cur stanza
	var last string // field a continuation line extends
	flush := func() error {
		if cur.fields == nil {
			return nil
		}
		err := fn(cur)
		cur, last = stanza{}, ""
		return err
	}
	n := 0
	for sc.Scan() {
		n++
		line := strings.TrimSuffix(sc.Text(), "\r")
		switch {
		case strings.TrimSpace(line) == "":
			if err := flush(); err != nil {
				return err
			}
		case line[0] == '#':
			// deb822 comment
		case line[0] == ' ' || line[0] == '\t':
			if last == "" {
				return fmt.Errorf("line %d: continuation line without a field", n)
			}
			cur.fields[last] += "\n" + strings.TrimSpace(line)
		default:
			name, value, ok := strings.Cut(line, ":")
			if !ok || name == "" || strings.ContainsAny(name, " \t") {
				return fmt.Errorf("line %d: want \"Field: value\", got %q", n, truncate(line, 60))
			}
			if cur.fields == nil {
				cur = stanza{fields: map[string]string{}, line: n}
			}
			key := strings.ToLower(name)
			if _, dup := cur.fields[key]; dup {
				return fmt.Errorf("line %d: field %s given twice in one paragraph", n, name)
			}
			cur.fields[key] = strings.TrimSpace(value)
			last = key
		}
	}
	if err := sc.Err(); err != nil {
		return fmt.Errorf("line %d: %w", n+1, err)
	}
	return flush()
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "..."
}
