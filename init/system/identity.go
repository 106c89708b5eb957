package system

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"strings"
)

// Image is /usr/lib/ballast/image.json, written by the builder: what this image is and what the
// system init should do with it.
type Image struct {
	Variant  string   `json:"variant"`
	Version  string   `json:"version"`
	Dev      bool     `json:"dev"`
	Services []string `json:"services"` // services to run, by catalog name
	Modules  []string `json:"modules"`  // kernel modules to load at boot
	Kernel   string   `json:"kernel"`   // the kernel release the modules are for
}

// ReadImage reads image.json. Unknown fields are allowed so the builder can add some first.
func ReadImage(path string) (Image, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return Image{}, fmt.Errorf("image description: %w", err)
	}
	var img Image
	if err := json.Unmarshal(b, &img); err != nil {
		return Image{}, fmt.Errorf("image description %s: %w", path, err)
	}
	return img, nil
}

// ReadOSRelease reads an os-release(5) file into its variables.
func ReadOSRelease(path string) (map[string]string, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("os-release: %w", err)
	}
	defer f.Close()
	vars, err := ParseOSRelease(f)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return vars, nil
}

// ParseOSRelease parses os-release(5): KEY=value lines, values optionally quoted in shell style.
func ParseOSRelease(r io.Reader) (map[string]string, error) {
	vars := map[string]string{}
	sc := bufio.NewScanner(r)
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		key, val, ok := strings.Cut(line, "=")
		if !ok || key == "" || strings.ContainsAny(key, " \t") {
			return nil, fmt.Errorf("line %d: not KEY=value: %q", n, line)
		}
		v, err := unquote(val)
		if err != nil {
			return nil, fmt.Errorf("line %d: %s: %w", n, key, err)
		}
		vars[key] = v
	}
	if err := sc.Err(); err != nil {
		return nil, err
	}
	return vars, nil
}

// unquote undoes the shell quoting os-release(5) allows: "..." with \-escapes, or '...'.
func unquote(s string) (string, error) {
	if s == "" {
		return "", nil
	}
	switch q := s[0]; q {
	case '\'':
		if len(s) < 2 || s[len(s)-1] != '\'' {
			return "", fmt.Errorf("unterminated quote in %s", s)
		}
		return s[1 : len(s)-1], nil
	case '"':
		var b strings.Builder
		for i := 1; i < len(s); i++ {
			switch c := s[i]; {
			case c == '"':
				if i != len(s)-1 {
					return "", fmt.Errorf("text after the closing quote in %s", s)
				}
				return b.String(), nil
			case c == '\\' && i+1 < len(s) && strings.IndexByte("\"\\$`", s[i+1]) >= 0:
				b.WriteByte(s[i+1])
				i++
			default:
				b.WriteByte(c)
			}
		}
		return "", fmt.Errorf("unterminated quote in %s", s)
	}
	return s, nil
}

// ParseCmdline splits a kernel command line into its key=value words; a bare word maps to "".
// Double quotes group spaces into a value, as the kernel's own parser does. A repeated key keeps
// its last value, which is the one the kernel acts on.
func ParseCmdline(cmdline string) map[string]string {
	args := map[string]string{}
	var word strings.Builder
	inQuote, have := false, false
	flush := func() {
		if have {
			k, v, _ := strings.Cut(word.String(), "=")
			args[k] = v
		}
		word.Reset()
		have = false
	}
	for _, c := range cmdline {
		switch {
		case c == '"':
			inQuote = !inQuote
			have = true
		case !inQuote && (c == ' ' || c == '\t' || c == '\n'):
			flush()
		default:
			word.WriteRune(c)
			have = true
		}
	}
	flush()
	return args
}
