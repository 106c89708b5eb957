// Package filecon reads the file_contexts file secilc writes beside a binary policy and says which
// SELinux context a path should carry, the way libselinux's file backend does, in pure Go: the
// inits label what they make at boot (/dev, /run, /local) without libselinux or cgo.
package filecon

import (
	"bufio"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"regexp"
	"strings"
)

// None is the context of a line whose files are not to be labelled.
const None = "<<none>>"

// kind is a file_contexts file-type flag; kindAny matches every file.
type kind byte

const (
	kindAny kind = iota
	kindFile
	kindDir
	kindChar
	kindBlock
	kindSocket
	kindPipe
	kindLink
)

var flags = map[string]kind{
	"--": kindFile, "-d": kindDir, "-c": kindChar, "-b": kindBlock,
	"-s": kindSocket, "-p": kindPipe, "-l": kindLink,
}

func kindOf(m fs.FileMode) kind {
	switch t := m.Type(); {
	case t == 0:
		return kindFile
	case t&fs.ModeDir != 0:
		return kindDir
	case t&fs.ModeSymlink != 0:
		return kindLink
	case t&fs.ModeNamedPipe != 0:
		return kindPipe
	case t&fs.ModeSocket != 0:
		return kindSocket
	case t&fs.ModeCharDevice != 0:
		return kindChar
	case t&fs.ModeDevice != 0:
		return kindBlock
	}
	return kindAny
}

// Spec is one line of a file_contexts file.
type Spec struct {
	Regex   string // as written, unanchored
	Context string // a context, or None
	Line    int
	kind    kind
	re      *regexp.Regexp
	literal bool // no regex meta characters: the line names one path
}

// Specs is a parsed file_contexts file, in the order lookups try them: the last match wins.
type Specs struct {
	specs []Spec
}

// Load parses the file_contexts file at path.
func Load(path string) (*Specs, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("file contexts: %w", err)
	}
	defer f.Close()
	s, err := Parse(f)
	if err != nil {
		return nil, fmt.Errorf("file contexts %s: %w", path, err)
	}
	return s, nil
}

// Parse reads lines "REGEX [TYPE] CONTEXT"; blank lines and # comments are skipped.
func Parse(r io.Reader) (*Specs, error) {
	var regexSpecs, literalSpecs []Spec
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 64*1024), 1<<20)
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		f := strings.Fields(line)
		sp := Spec{Regex: f[0], Line: n}
		switch len(f) {
		case 2:
			sp.Context = f[1]
		case 3:
			k, ok := flags[f[1]]
			if !ok {
				return nil, fmt.Errorf("line %d: unknown file type %q", n, f[1])
			}
			sp.kind, sp.Context = k, f[2]
		default:
			return nil, fmt.Errorf("line %d: want REGEX [TYPE] CONTEXT, got %d fields", n, len(f))
		}
		if sp.Context != None && strings.Count(sp.Context, ":") < 3 {
			return nil, fmt.Errorf("line %d: %q is not user:role:type:level", n, sp.Context)
		}
		// libselinux anchors every regex at both ends: a line names whole paths, never a prefix.
		re, err := regexp.Compile("^(?:" + sp.Regex + ")$")
		if err != nil {
			return nil, fmt.Errorf("line %d: %w", n, err)
		}
		sp.re = re
		sp.literal = !hasMeta(sp.Regex)
		if sp.literal {
			literalSpecs = append(literalSpecs, sp)
		} else {
			regexSpecs = append(regexSpecs, sp)
		}
	}
	if err := sc.Err(); err != nil {
		return nil, err
	}
	// secilc sorts regexes before exact paths and shorter fixed prefixes before longer ones, so
	// the most specific line is the last to match. libselinux also moves the exact paths after
	// every regex of a hand-written file; doing the same keeps both kinds of file meaning the same.
	return &Specs{specs: append(regexSpecs, literalSpecs...)}, nil
}

// hasMeta reports whether a file_contexts regex holds a character secilc and libselinux take as
// making it a pattern rather than one path.
func hasMeta(re string) bool {
	return strings.ContainsAny(re, `.^$?*+|[({\`)
}

// Len returns the number of lines.
func (s *Specs) Len() int { return len(s.specs) }

// Lookup returns the context for a file of the given mode at path (absolute, as the running
// system sees it); ok is false when no line matches or the matching line says <<none>>.
func (s *Specs) Lookup(p string, mode fs.FileMode) (context string, ok bool) {
	sp := s.Match(p, mode)
	if sp == nil || sp.Context == None {
		return "", false
	}
	return sp.Context, true
}

// Match returns the line that decides path's context, nil if none does.
func (s *Specs) Match(p string, mode fs.FileMode) *Spec {
	if p != "/" {
		p = path.Clean("/" + p)
	}
	k := kindOf(mode)
	for i := len(s.specs) - 1; i >= 0; i-- {
		sp := &s.specs[i]
		if sp.kind != kindAny && sp.kind != k {
			continue
		}
		if sp.literal && sp.Regex != p || !sp.literal && !sp.re.MatchString(p) {
			continue
		}
		return sp
	}
	return nil
}

// Type returns the type field of a context ("etc_t" of "system_u:object_r:etc_t:s0"), "" if it
// has none.
func Type(context string) string {
	f := strings.SplitN(context, ":", 4)
	if len(f) < 3 {
		return ""
	}
	return f[2]
}
