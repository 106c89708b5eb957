// Package userdata finds and parses the user data a host is given at first boot: Bottlerocket-style
// TOML whose [settings] table holds settings keys. Finding (sources) and parsing are separate so
// each can be tested alone; nothing from user data that fails to parse or validate is used.
package userdata

import (
	"bytes"
	"compress/gzip"
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

// Parse decodes user data (TOML, or gzip-compressed TOML) into validated settings. source names the
// origin in errors. Empty user data is valid and sets nothing.
func Parse(source string, data []byte) (settings.Settings, error) {
	fail := func(line int, key string, err error) (settings.Settings, error) {
		return settings.Settings{}, &Error{Source: source, Line: line, Key: key, Err: err}
	}
	if bytes.HasPrefix(data, []byte{0x1f, 0x8b}) {
		var err error
		if data, err = gunzip(data); err != nil {
			return fail(0, "", err)
		}
	}
	if len(data) > MaxSize {
		return fail(0, "", fmt.Errorf("%d bytes is more than the %d allowed", len(data), MaxSize))
	}

	var tree map[string]any
	if _, err := toml.Decode(string(data), &tree); err != nil {
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

// errorLine is the line of a TOML error. The decoder counts an error at a newline (an unclosed
// "[table") as being on the next line; the byte offset says which line the user has to fix.
func errorLine(data []byte, p toml.Position) int {
	if p.Start < 0 || p.Start > len(data) || p.Start == 0 && p.Line > 1 {
		return p.Line
	}
	return 1 + bytes.Count(data[:p.Start], []byte("\n"))
}

func gunzip(data []byte) ([]byte, error) {
	zr, err := gzip.NewReader(bytes.NewReader(data))
	if err != nil {
		return nil, fmt.Errorf("gzip: %w", err)
	}
	// One byte over the limit is enough to know it is too large, without inflating a gzip bomb.
	out, err := io.ReadAll(io.LimitReader(zr, MaxSize+1))
	if err != nil {
		return nil, fmt.Errorf("gzip: %w", err)
	}
	if len(out) > MaxSize {
		return nil, fmt.Errorf("more than the %d bytes allowed after decompression", MaxSize)
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
