package debian

import (
	"fmt"
	"strings"
)

// Relation is one package named in a Depends, Pre-Depends or Provides field, with an optional
// version constraint ("libc6 (>= 2.36)").
type Relation struct {
	Name    string
	Op      string // "", "<<", "<=", "=", ">=", ">>"
	Version Version
}

func (r Relation) String() string {
	if r.Op == "" {
		return r.Name
	}
	return fmt.Sprintf("%s (%s %s)", r.Name, r.Op, r.Version)
}

// Satisfied reports whether version v meets the constraint; no constraint accepts anything.
func (r Relation) Satisfied(v Version) bool {
	c := v.Compare(r.Version)
	switch r.Op {
	case "":
		return true
	case "<<":
		return c < 0
	case "<=":
		return c <= 0
	case "=":
		return c == 0
	case ">=":
		return c >= 0
	case ">>":
		return c > 0
	}
	return false
}

// Alternatives is one comma-separated item of a dependency field: any one of them will do.
type Alternatives []Relation

func (a Alternatives) String() string {
	s := make([]string, len(a))
	for i, r := range a {
		s[i] = r.String()
	}
	return strings.Join(s, " | ")
}

// ParseDepends parses a Depends or Pre-Depends value. Architecture qualifiers (":any", ":amd64")
// are dropped because an image holds one architecture and no package manager to honour them.
func ParseDepends(field string) ([]Alternatives, error) {
	var out []Alternatives
	for _, item := range strings.Split(field, ",") {
		if strings.TrimSpace(item) == "" {
			continue // a trailing comma is tolerated, as dpkg does
		}
		var alts Alternatives
		for _, alt := range strings.Split(item, "|") {
			r, err := parseRelation(alt)
			if err != nil {
				return nil, err
			}
			alts = append(alts, r)
		}
		out = append(out, alts)
	}
	return out, nil
}

// ParseProvides parses a Provides value: plain names or names with an exact "(= version)".
func ParseProvides(field string) ([]Relation, error) {
	var out []Relation
	for _, item := range strings.Split(field, ",") {
		if strings.TrimSpace(item) == "" {
			continue
		}
		r, err := parseRelation(item)
		if err != nil {
			return nil, err
		}
		if r.Op != "" && r.Op != "=" {
			return nil, fmt.Errorf("provides %q: only \"=\" may qualify a provided version", strings.TrimSpace(item))
		}
		out = append(out, r)
	}
	return out, nil
}

func parseRelation(s string) (Relation, error) {
	text := strings.TrimSpace(s)
	name, rest, versioned := strings.Cut(text, "(")
	name = strings.TrimSpace(name)
	if i := strings.IndexByte(name, ':'); i >= 0 {
		name = name[:i]
	}
	if !validPackageName(name) {
		return Relation{}, fmt.Errorf("relation %q: bad package name %q", text, name)
	}
	r := Relation{Name: name}
	if !versioned {
		return r, nil
	}
	inner, after, ok := strings.Cut(rest, ")")
	if !ok || strings.TrimSpace(after) != "" {
		return Relation{}, fmt.Errorf("relation %q: want \"name (op version)\"", text)
	}
	inner = strings.TrimSpace(inner)
	opEnd := len(inner) - len(strings.TrimLeft(inner, "<>="))
	op, ver := inner[:opEnd], strings.TrimSpace(inner[opEnd:])
	switch op {
	case "<<", "<=", "=", ">=", ">>":
	case "<":
		op = "<=" // obsolete spelling, still accepted by dpkg with this meaning
	case ">":
		op = ">="
	default:
		return Relation{}, fmt.Errorf("relation %q: unknown operator %q", text, op)
	}
	v, err := ParseVersion(ver)
	if err != nil {
		return Relation{}, fmt.Errorf("relation %q: %w", text, err)
	}
	r.Op, r.Version = op, v
	return r, nil
}

// validPackageName follows policy 5.6.1: lower-case letters, digits, + - . and at least two
// characters, starting with a letter or digit.
func validPackageName(s string) bool {
	if len(s) < 2 || !(isDigit(s[0]) || 'a' <= s[0] && s[0] <= 'z') {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(isDigit(c) || 'a' <= c && c <= 'z' || c == '+' || c == '-' || c == '.') {
			return false
		}
	}
	return true
}
