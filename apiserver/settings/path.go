package settings

import (
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"slices"
	"strconv"
	"strings"
)

// FormatKey joins a key path with dots, quoting the segments that hold a dot or a quote (sysctl
// names, VLAN interfaces) so that ParseKey reads the same path back.
func FormatKey(path []string) string {
	var b strings.Builder
	for i, seg := range path {
		if i > 0 {
			b.WriteByte('.')
		}
		if seg == "" || strings.ContainsAny(seg, `."`) || strings.ContainsFunc(seg, func(r rune) bool { return r <= ' ' }) {
			b.WriteString(strconv.Quote(seg))
		} else {
			b.WriteString(seg)
		}
	}
	return b.String()
}

type token struct {
	s      string
	quoted bool
}

// splitKey splits a dotted key into segments; a segment in double quotes may hold dots.
func splitKey(key string) ([]token, error) {
	var toks []token
	for rest := key; ; {
		var t token
		if strings.HasPrefix(rest, `"`) {
			q, err := strconv.QuotedPrefix(rest)
			if err != nil {
				return nil, fmt.Errorf("key %q: unterminated quote", key)
			}
			t.s, _ = strconv.Unquote(q)
			t.quoted = true
			rest = rest[len(q):]
			if rest != "" && rest[0] != '.' {
				return nil, fmt.Errorf("key %q: want a dot after a quoted segment", key)
			}
		} else {
			i := strings.IndexByte(rest, '.')
			if i < 0 {
				i = len(rest)
			}
			t.s, rest = rest[:i], rest[i:]
			if t.s == "" {
				return nil, fmt.Errorf("key %q: empty segment", key)
			}
		}
		toks = append(toks, t)
		if rest == "" {
			return toks, nil
		}
		rest = rest[1:] // the dot
		if rest == "" {
			return nil, fmt.Errorf("key %q: ends with a dot", key)
		}
	}
}

// ParseKey turns a dotted key into a path through the model, starting with Prefix (which the key
// may leave out: "motd" and "settings.motd" are the same key). The path may end at a table, a
// value, or a map entry. Where a map's entries are values (kernel.sysctl), the rest of an
// unquoted key is the entry's name, so kernel.sysctl.net.ipv4.ip_forward works as well as
// kernel.sysctl."net.ipv4.ip_forward". Unknown keys are a *KeyError.
func ParseKey(key string) ([]string, error) {
	toks, err := splitKey(key)
	if err != nil {
		return nil, err
	}
	if toks[0].s == Prefix && !toks[0].quoted {
		toks = toks[1:]
	}
	path := []string{Prefix}
	t := reflect.TypeFor[Settings]()
	for i := 0; i < len(toks); i++ {
		tok := toks[i]
		for t.Kind() == reflect.Pointer {
			t = t.Elem()
		}
		switch {
		case isTable(t):
			f, ok := fieldByKey(t, tok.s)
			if !ok {
				return nil, keyErr(appendPath(path, tok.s), ErrUnknownKey)
			}
			path, t = appendPath(path, tok.s), f.Type
		case t.Kind() == reflect.Map:
			name := tok.s
			if !isTableRef(t.Elem()) && !tok.quoted && i+1 < len(toks) {
				parts := make([]string, 0, len(toks)-i)
				for _, r := range toks[i:] {
					parts = append(parts, r.s)
				}
				name, i = strings.Join(parts, "."), len(toks)-1
			}
			path, t = appendPath(path, name), t.Elem()
		default:
			return nil, keyErr(appendPath(path, tok.s), fmt.Errorf("%s is a value, not a table", FormatKey(path)))
		}
	}
	return path, nil
}

func fieldByKey(t reflect.Type, key string) (reflect.StructField, bool) {
	for i := range t.NumField() {
		if keyName(t.Field(i)) == key {
			return t.Field(i), true
		}
	}
	return reflect.StructField{}, false
}

// typeAt returns the model type at path (which starts with Prefix).
func typeAt(path []string) (reflect.Type, error) {
	t := reflect.TypeFor[Settings]()
	for i, seg := range path[1:] {
		for t.Kind() == reflect.Pointer {
			t = t.Elem()
		}
		switch {
		case isTable(t):
			f, ok := fieldByKey(t, seg)
			if !ok {
				return nil, keyErr(path[:i+2], ErrUnknownKey)
			}
			t = f.Type
		case t.Kind() == reflect.Map:
			t = t.Elem()
		default:
			return nil, keyErr(path[:i+2], fmt.Errorf("%s is a value, not a table", FormatKey(path[:i+1])))
		}
	}
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	return t, nil
}

// ValueFromString turns the text of a command-line assignment (apiclient set key=value) into the
// tree value the key's type wants: text for strings, true/false for booleans, a number for
// integers, and JSON for lists and tables (name-servers='["10.0.0.2"]'). Whether the value is
// valid is still the decoder's call.
func ValueFromString(path []string, s string) (any, error) {
	t, err := typeAt(path)
	if err != nil {
		return nil, err
	}
	switch {
	case t == reflect.TypeFor[RlimitValue]():
		if n, err := strconv.ParseInt(s, 10, 64); err == nil {
			return n, nil
		}
		return s, nil
	case isTable(t) || t.Kind() == reflect.Map || t.Kind() == reflect.Slice || t.Kind() == reflect.Struct:
		v, err := ReadJSONTree(strings.NewReader(s))
		if err != nil {
			return nil, keyErr(path, fmt.Errorf("want a JSON value for this key: %w", err))
		}
		return v, nil
	case t.Kind() == reflect.Bool:
		b, err := strconv.ParseBool(s)
		if err != nil {
			return nil, keyErr(path, fmt.Errorf("%q is not true or false", s))
		}
		return b, nil
	case t.Kind() == reflect.Int64:
		n, err := strconv.ParseInt(s, 10, 64)
		if err != nil {
			return nil, keyErr(path, fmt.Errorf("%q is not an integer", s))
		}
		return n, nil
	}
	return s, nil
}

// SetInTree sets value at path (which starts with Prefix) in a settings tree without the
// "settings" wrapper, creating tables on the way. Setting a key twice, or both a table and a key
// inside it, is an error naming the key.
func SetInTree(tree map[string]any, path []string, value any) error {
	node := tree
	for i, seg := range path[1:] {
		if i == len(path)-2 {
			if _, dup := node[seg]; dup {
				return keyErr(path, errors.New("set twice, or both as a table and a key in it"))
			}
			node[seg] = value
			return nil
		}
		child, ok := node[seg]
		if !ok {
			child = map[string]any{}
			node[seg] = child
		}
		m, ok := child.(map[string]any)
		if !ok {
			return keyErr(path[:i+2], errors.New("set as a value and used as a table"))
		}
		node = m
	}
	return keyErr(path, errors.New("is the whole settings tree, not a key"))
}

// Select returns the parts of a settings tree (JSON-decoded, without the "settings" wrapper) at
// the given paths (each starting with Prefix), with the tables leading to them. A path at a table
// selects all of it; paths with nothing set select nothing. The tree is not modified.
func Select(tree map[string]any, paths [][]string) map[string]any {
	sorted := slices.Clone(paths)
	// Shorter paths first, so that a key inside a table selected whole is skipped.
	slices.SortStableFunc(sorted, func(a, b []string) int { return len(a) - len(b) })
	out := map[string]any{}
	var taken [][]string
	for _, p := range sorted {
		if slices.ContainsFunc(taken, func(t []string) bool { return len(t) <= len(p) && slices.Equal(t, p[:len(t)]) }) {
			continue
		}
		var v any = tree
		for _, seg := range p[1:] {
			m, ok := v.(map[string]any)
			if !ok {
				v = nil
				break
			}
			v = m[seg]
		}
		if v == nil {
			continue
		}
		if len(p) == 1 {
			return tree
		}
		taken = append(taken, p)
		node := out
		for _, seg := range p[1 : len(p)-1] {
			child, ok := node[seg].(map[string]any)
			if !ok {
				child = map[string]any{}
				node[seg] = child
			}
			node = child
		}
		node[p[len(p)-1]] = v
	}
	return out
}

// Tree returns s as a generic JSON tree (map[string]any without the "settings" wrapper).
func (s Settings) Tree() (map[string]any, error) {
	b, err := json.Marshal(s)
	if err != nil {
		return nil, err
	}
	tree, err := ReadJSONTree(strings.NewReader(string(b)))
	if err != nil {
		return nil, err
	}
	m, _ := tree.(map[string]any)
	return m, nil
}
