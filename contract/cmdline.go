package contract

import (
	"fmt"
	"strings"
)

// Param is one word of a kernel command line: a bare key ("quiet") or key=value.
type Param struct {
	Key      string
	Value    string
	HasValue bool // "key=" (empty value) is not the same word as "key"
}

// KV returns the parameter key=value.
func KV(key, value string) Param { return Param{Key: key, Value: value, HasValue: true} }

// Flag returns the bare parameter key.
func Flag(key string) Param { return Param{Key: key} }

// Cmdline is a kernel command line as the ordered list of its words.
type Cmdline []Param

// ParseCmdline splits a kernel command line the way the kernel does (lib/cmdline.c, next_arg):
// words are separated by spaces, tabs and newlines outside double quotes; a double quote at the
// start of the word or of the value is dropped together with a matching one at the word's end, so
// both key="a b" and "key=a b" give the value `a b`. Quotes elsewhere are kept as text. Parsing
// never fails: the kernel accepts any text as its command line.
func ParseCmdline(s string) Cmdline {
	var out Cmdline
	for i := 0; i < len(s); {
		for i < len(s) && isSpace(s[i]) {
			i++
		}
		if i == len(s) {
			break
		}
		start, inQuote := i, false
		for i < len(s) && (inQuote || !isSpace(s[i])) {
			if s[i] == '"' {
				inQuote = !inQuote
			}
			i++
		}
		out = append(out, parseWord(s[start:i]))
	}
	return out
}

func isSpace(c byte) bool { return c == ' ' || c == '\t' || c == '\n' || c == '\r' }

func parseWord(w string) Param {
	quoted := false
	if strings.HasPrefix(w, `"`) {
		w, quoted = w[1:], true
	}
	key, val, has := strings.Cut(w, "=")
	if !has {
		if quoted {
			key = strings.TrimSuffix(key, `"`)
		}
		return Param{Key: key}
	}
	if strings.HasPrefix(val, `"`) {
		val, quoted = val[1:], true
	}
	if quoted {
		val = strings.TrimSuffix(val, `"`)
	}
	return Param{Key: key, Value: val, HasValue: true}
}

// Format writes the command line back as text, quoting values that hold white space. It fails on
// what the kernel could not read back as the same words: an empty key, a key with white space,
// '=' or '"', or a value with '"' or a line break.
func (c Cmdline) Format() (string, error) {
	words := make([]string, 0, len(c))
	for _, p := range c {
		w, err := p.format()
		if err != nil {
			return "", err
		}
		words = append(words, w)
	}
	return strings.Join(words, " "), nil
}

func (p Param) format() (string, error) {
	if p.Key == "" {
		return "", fmt.Errorf("kernel command line: empty parameter name (value %q)", p.Value)
	}
	if strings.ContainsAny(p.Key, " \t\r\n=\"") {
		return "", fmt.Errorf("kernel command line: parameter name %q holds white space, '=' or '\"'", p.Key)
	}
	if !p.HasValue {
		if p.Value != "" {
			return "", fmt.Errorf("kernel command line: %s: a value without HasValue", p.Key)
		}
		return p.Key, nil
	}
	if strings.ContainsAny(p.Value, "\"\r\n") {
		return "", fmt.Errorf("kernel command line: %s=%q: a value cannot hold '\"' or a line break", p.Key, p.Value)
	}
	if strings.ContainsAny(p.Value, " \t") {
		return p.Key + `="` + p.Value + `"`, nil
	}
	return p.Key + "=" + p.Value, nil
}

// String is Format for printing; a command line that cannot be formatted prints its error.
func (c Cmdline) String() string {
	s, err := c.Format()
	if err != nil {
		return "!(" + err.Error() + ")"
	}
	return s
}

// Get returns the value of the last word with this key, the one the kernel and Ballast act on.
func (c Cmdline) Get(key string) (string, bool) {
	for i := len(c) - 1; i >= 0; i-- {
		if c[i].Key == key {
			return c[i].Value, true
		}
	}
	return "", false
}

// Value is Get without the second result.
func (c Cmdline) Value(key string) string {
	v, _ := c.Get(key)
	return v
}
