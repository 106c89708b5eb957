// Package userdata finds and parses the user data a host is given at first boot: Bottlerocket-style
// TOML whose [settings] table holds settings keys. Finding (sources) and parsing are separate so
// each can be tested alone; nothing from user data that fails to parse or validate is used.
package userdata

import (
	"bytes"
	"compress/gzip"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"reflect"
	"sort"
	"strconv"
	"strings"

	"github.com/BurntSushi/toml"

	"github.com/ballast-os/ballast/apiserver/settings"
)

// MaxSize bounds user data after decompression.
const MaxSize = 64 << 10

// Error is an error in user data, located as precisely as the input allows.
type Error struct {
	Source string // where the user data came from, e.g. "/dev/vdb:user-data"
	Line   int    // 1-based; 0 when unknown
	Key    string // dotted key path; "" when the error is not about one key
	Err    error
}

func (e *Error) Error() string {
	var b strings.Builder
	b.WriteString(e.Source)
	if e.Line > 0 {
		fmt.Fprintf(&b, ": line %d", e.Line)
	}
	if e.Key != "" {
		fmt.Fprintf(&b, ": key %s", e.Key)
	}
	fmt.Fprintf(&b, ": %v", e.Err)
	return b.String()
}

func (e *Error) Unwrap() error { return e.Err }

// Parse decodes user data into validated settings: TOML whose [settings] table holds the keys, or
// the same as a JSON object ({"settings": {...}}, told apart by its opening brace), either of them
// possibly gzip-compressed. source names the origin in errors. Empty user data is valid and sets
// nothing.
func Parse(source string, data []byte) (settings.Settings, error) {
	return ParseLimit(source, data, MaxSize)
}

// ParseLimit is Parse with another size bound, for documents that are not user data (apiclient
// apply reads files of any reasonable size).
func ParseLimit(source string, data []byte, maxSize int) (settings.Settings, error) {
	fail := func(line int, key string, err error) (settings.Settings, error) {
		return settings.Settings{}, &Error{Source: source, Line: line, Key: key, Err: err}
	}
	if bytes.HasPrefix(data, []byte{0x1f, 0x8b}) {
		var err error
		if data, err = gunzip(data, maxSize); err != nil {
			return fail(0, "", err)
		}
	}
	if len(data) > maxSize {
		return fail(0, "", fmt.Errorf("%d bytes is more than the %d allowed", len(data), maxSize))
	}

	var tree map[string]any
	if isJSON(data) {
		t, err := settings.ReadJSONTree(bytes.NewReader(data))
		if err != nil {
			var se *json.SyntaxError
			if errors.As(err, &se) {
				return fail(lineAt(data, int(se.Offset)), "", err)
			}
			return fail(0, "", err)
		}
		m, ok := t.(map[string]any)
		if !ok {
			return fail(0, "", errors.New("JSON user data must be an object"))
		}
		tree = m
	} else if _, err := toml.Decode(string(data), &tree); err != nil {
		var pe toml.ParseError
		if errors.As(err, &pe) {
			return fail(errorLine(data, pe.Position), pe.LastKey, errors.New(pe.Message))
		}
		return fail(0, "", err)
	}
	top := make([]string, 0, len(tree))
	for k := range tree {
		top = append(top, k)
	}
	sort.Strings(top)
	for _, k := range top {
		if k != settings.Prefix {
			return fail(locate(data, []string{k}), k, settings.ErrUnknownKey)
		}
	}
	st, ok := tree[settings.Prefix]
	if !ok {
		return settings.Settings{}, nil
	}
	s, err := settings.FromTree(st)
	if err != nil {
		var ke *settings.KeyError
		if errors.As(err, &ke) {
			return fail(locate(data, ke.Path), ke.Key(), ke.Err)
		}
		return fail(0, "", err)
	}
	return s, nil
}

// WithLine places an error about the settings parsed from data (one found after Parse, such as a
// rule across keys) in the document: a *settings.KeyError becomes an *Error with the key's line.
func WithLine(source string, data []byte, err error) error {
	var ke *settings.KeyError
	if !errors.As(err, &ke) {
		return &Error{Source: source, Err: err}
	}
	if bytes.HasPrefix(data, []byte{0x1f, 0x8b}) {
		if d, gerr := gunzip(data, MaxSize); gerr == nil {
			data = d
		}
	}
	return &Error{Source: source, Line: locate(data, ke.Path), Key: ke.Key(), Err: ke.Err}
}

// isJSON reports whether data is a JSON document: TOML cannot start with a brace.
func isJSON(data []byte) bool {
	t := bytes.TrimLeft(data, " \t\r\n")
	return len(t) > 0 && t[0] == '{'
}

func lineAt(data []byte, offset int) int {
	if offset < 0 || offset > len(data) {
		return 0
	}
	return 1 + bytes.Count(data[:offset], []byte("\n"))
}

// errorLine is the line of a TOML error. The decoder counts an error at a newline (an unclosed
// "[table") as being on the next line; the byte offset says which line the user has to fix.
func errorLine(data []byte, p toml.Position) int {
	if p.Start < 0 || p.Start > len(data) || p.Start == 0 && p.Line > 1 {
		return p.Line
	}
	return lineAt(data, p.Start)
}

func gunzip(data []byte, max int) ([]byte, error) {
	zr, err := gzip.NewReader(bytes.NewReader(data))
	if err != nil {
		return nil, fmt.Errorf("gzip: %w", err)
	}
	// One byte over the limit is enough to know it is too large, without inflating a gzip bomb.
	out, err := io.ReadAll(io.LimitReader(zr, int64(max)+1))
	if err != nil {
		return nil, fmt.Errorf("gzip: %w", err)
	}
	if len(out) > max {
		return nil, fmt.Errorf("more than the %d bytes allowed after decompression", max)
	}
	return out, nil
}

// errLocate is what locate's marker type fails with, so its error can be told from any other.
const errLocate = "ballast: locate key"

type marker struct{}

func (marker) UnmarshalTOML(any) error { return errors.New(errLocate) }

// locate returns the line where the key at path is defined, or 0. The TOML decoder records key
// positions but only reports them in its errors, so this decodes the document again into a type
// made for the purpose: nested tables down the path, ending in a value that always fails to decode.
func locate(data []byte, path []string) int {
	if isJSON(data) {
		return 0 // JSON errors carry the key; JSON user data is machine-written
	}
	t := reflect.TypeOf(marker{})
	for i := len(path) - 1; i >= 0; i-- {
		t = reflect.StructOf([]reflect.StructField{{
			Name: "F",
			Type: t,
			Tag:  reflect.StructTag(`toml:` + strconv.Quote(path[i])),
		}})
	}
	err := toml.Unmarshal(data, reflect.New(t).Interface())
	var pe toml.ParseError
	// The decoder also matches field names case-insensitively, so check it failed at this very key.
	if !errors.As(err, &pe) || pe.Message != errLocate || pe.LastKey != toml.Key(path).String() {
		return 0
	}
	return pe.Position.Line
}
