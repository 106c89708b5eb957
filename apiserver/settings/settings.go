// Package settings is the typed model of Ballast's host settings. It is the one place that knows
// which keys exist, what type each has and which values are valid; the API, the datastore and user
// data all decode through it, so a key is accepted or rejected the same way wherever it comes from.
//
// Every field is a pointer so that a partial document (a PATCH body, user data) can tell "absent"
// from "set to the empty value". Struct fields are tables, other fields are leaves; the JSON tag
// names the key in every format.
package settings

import (
	"errors"
	"reflect"
	"sort"
	"strings"
)

// Prefix is the first segment of every settings key path ("settings.network.hostname").
const Prefix = "settings"

// Settings is the whole settings tree, or a patch of it.
type Settings struct {
	// Motd is the message of the day, written to /etc/motd and shown on the console at boot.
	Motd *string `json:"motd,omitempty"`
	// Network holds the host's network identity.
	Network *Network `json:"network,omitempty"`
}

// Network is the settings.network table.
type Network struct {
	// Hostname is the host name (RFC 1123), set with sethostname(2) and written to /etc/hostname.
	Hostname *string `json:"hostname,omitempty"`
}

// ErrUnknownKey is the cause of a KeyError for a key the model does not have.
var ErrUnknownKey = errors.New("unknown key")

// KeyError is an error about one key. Path is the key's full path, starting with Prefix.
type KeyError struct {
	Path []string
	Err  error
}

// Key returns the dotted key path, e.g. "settings.network.hostname".
func (e *KeyError) Key() string { return strings.Join(e.Path, ".") }

func (e *KeyError) Error() string { return e.Key() + ": " + e.Err.Error() }

func (e *KeyError) Unwrap() error { return e.Err }

func keyErr(path []string, err error) *KeyError {
	return &KeyError{Path: append([]string(nil), path...), Err: err}
}

// Merge returns base with every key set in patch replaced by patch's value. The result shares no
// pointers with either argument, and tables left without any key are dropped, so stored settings
// never carry empty tables.
func Merge(base, patch Settings) Settings {
	var out Settings
	mergeStruct(reflect.ValueOf(&out).Elem(), reflect.ValueOf(base), reflect.ValueOf(patch))
	return out
}

// mergeStruct fills out (a settable struct) from a and b (same type, b wins) and reports whether
// any key ended up set.
func mergeStruct(out, a, b reflect.Value) bool {
	set := false
	for i := range out.NumField() {
		fa, fb := a.Field(i), b.Field(i)
		if fa.IsNil() && fb.IsNil() {
			continue
		}
		elem := out.Field(i).Type().Elem()
		n := reflect.New(elem)
		if elem.Kind() == reflect.Struct {
			if !mergeStruct(n.Elem(), derefOrZero(fa), derefOrZero(fb)) {
				continue
			}
		} else {
			src := fb
			if src.IsNil() {
				src = fa
			}
			n.Elem().Set(src.Elem())
		}
		out.Field(i).Set(n)
		set = true
	}
	return set
}

func derefOrZero(p reflect.Value) reflect.Value {
	if p.IsNil() {
		return reflect.New(p.Type().Elem()).Elem()
	}
	return p.Elem()
}

// Keys returns the dotted paths of the leaves set in s, sorted.
func (s Settings) Keys() []string {
	var keys []string
	collectKeys(reflect.ValueOf(s), []string{Prefix}, &keys)
	sort.Strings(keys)
	return keys
}

// IsEmpty reports whether no key is set.
func (s Settings) IsEmpty() bool { return len(s.Keys()) == 0 }

func collectKeys(v reflect.Value, path []string, keys *[]string) {
	t := v.Type()
	for i := range t.NumField() {
		f := v.Field(i)
		if f.IsNil() {
			continue
		}
		p := append(path[:len(path):len(path)], keyName(t.Field(i)))
		if f.Elem().Kind() == reflect.Struct {
			collectKeys(f.Elem(), p, keys)
			continue
		}
		*keys = append(*keys, strings.Join(p, "."))
	}
}

// keyName is the key a struct field stands for: its JSON tag name.
func keyName(f reflect.StructField) string {
	name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
	if name == "" {
		return f.Name
	}
	return name
}
