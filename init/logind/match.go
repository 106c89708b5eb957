package logind

import (
	"fmt"
	"strings"
)

// maxRule bounds a match rule's length, as dbus-daemon does (1024).
const maxRule = 1024

// matchRule is a parsed AddMatch rule: the keys this bus understands, each "" when not given.
type matchRule struct {
	text                                     string
	typ, sender, iface, member, path, pathNS string
	destination                              string
}

// signal is what a rule is matched against.
type signal struct {
	sender, senderName, iface, member, path string
}

// parseMatch parses a match rule (D-Bus specification, "Match Rules"): comma-separated
// key='value' pairs, where a quote inside a value is written \' outside the quotes. A key this
// bus does not know (argN, arg0namespace, eavesdrop) is refused rather than ignored: ignoring it
// would send signals the client did not ask for.
func parseMatch(s string) (matchRule, error) {
	r := matchRule{text: s}
	if len(s) > maxRule {
		return r, fmt.Errorf("longer than %d bytes", maxRule)
	}
	seen := map[string]bool{}
	for rest := s; rest != ""; {
		key, after, ok := strings.Cut(rest, "=")
		key = strings.TrimLeft(key, " ")
		if !ok || key == "" {
			return r, fmt.Errorf("%q: no key='value'", rest)
		}
		val, tail, err := matchValue(after)
		if err != nil {
			return r, fmt.Errorf("%s: %w", key, err)
		}
		rest = tail
		if seen[key] {
			return r, fmt.Errorf("%s given twice", key)
		}
		seen[key] = true
		switch key {
		case "type":
			switch val {
			case "signal", "method_call", "method_return", "error":
			default:
				return r, fmt.Errorf("type %q", val)
			}
			r.typ = val
		case "sender":
			r.sender = val
		case "interface":
			r.iface = val
		case "member":
			r.member = val
		case "path":
			r.path = val
		case "path_namespace":
			r.pathNS = val
		case "destination":
			r.destination = val
		default:
			return r, fmt.Errorf("key %q: not supported by this bus", key)
		}
	}
	if r.path != "" && r.pathNS != "" {
		return r, fmt.Errorf("path and path_namespace together")
	}
	return r, nil
}

// matchValue reads one value and what follows its separating comma.
func matchValue(s string) (val, rest string, err error) {
	var b strings.Builder
	quoted := false
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c == '\'':
			quoted = !quoted
		case quoted:
			b.WriteByte(c)
		case c == '\\' && i+1 < len(s) && s[i+1] == '\'':
			b.WriteByte('\'')
			i++
		case c == ',':
			return b.String(), s[i+1:], nil
		default:
			b.WriteByte(c)
		}
	}
	if quoted {
		return "", "", fmt.Errorf("unterminated quote")
	}
	return b.String(), "", nil
}

// matches says whether the rule selects a broadcast signal.
func (r matchRule) matches(s signal) bool {
	switch {
	case r.typ != "" && r.typ != "signal",
		r.sender != "" && r.sender != s.sender && r.sender != s.senderName,
		r.iface != "" && r.iface != s.iface,
		r.member != "" && r.member != s.member,
		r.path != "" && r.path != s.path,
		r.pathNS != "" && r.pathNS != "/" && s.path != r.pathNS && !strings.HasPrefix(s.path, r.pathNS+"/"),
		r.destination != "": // a broadcast has no destination
		return false
	}
	return true
}
