package settings

import (
	"errors"
	"fmt"
	"reflect"
	"sort"
	"strconv"
	"strings"
)

// Prefix is the first segment of every settings key path ("settings.network.hostname").
const Prefix = "settings"

// ErrUnknownKey is the cause of a KeyError for a key the model does not have.
var ErrUnknownKey = errors.New("unknown key")

// KeyError is an error about one key. Path is the key's full path, starting with Prefix.
type KeyError struct {
	Path []string
	Err  error
}

// Key returns the key path in its dotted form, e.g. "settings.network.hostname".
func (e *KeyError) Key() string { return FormatKey(e.Path) }

func (e *KeyError) Error() string { return e.Key() + ": " + e.Err.Error() }

func (e *KeyError) Unwrap() error { return e.Err }

func keyErr(path []string, err error) *KeyError {
	return &KeyError{Path: append([]string(nil), path...), Err: err}
}

// keyName is the key a struct field stands for: its JSON tag name.
func keyName(f reflect.StructField) string {
	name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
	if name == "" {
		return f.Name
	}
	return name
}

// limits are a field's max and min tags.
type limits struct{ min, max *int64 }

func limitsOf(f reflect.StructField) (limits, error) {
	var l limits
	for _, tag := range []struct {
		name string
		dst  **int64
	}{{"min", &l.min}, {"max", &l.max}} {
		s, ok := f.Tag.Lookup(tag.name)
		if !ok {
			continue
		}
		n, err := strconv.ParseInt(s, 10, 64)
		if err != nil {
			return limits{}, fmt.Errorf("settings model: field %s: bad %s tag %q", f.Name, tag.name, s)
		}
		*tag.dst = &n
	}
	return l, nil
}

func (l limits) rangeText() string {
	switch {
	case l.min != nil && l.max != nil:
		return fmt.Sprintf("%d to %d", *l.min, *l.max)
	case l.min != nil:
		return fmt.Sprintf("%d or more", *l.min)
	case l.max != nil:
		return fmt.Sprintf("up to %d", *l.max)
	}
	return "any"
}

// isTable reports whether values of t are tables of keys (model structs) rather than values.
// A struct that decodes itself (a hosts entry) is a value.
func isTable(t reflect.Type) bool {
	return t.Kind() == reflect.Struct && !reflect.PointerTo(t).Implements(treeDecoderType)
}

// isTableRef reports whether t is a pointer to a table, the form tables take as fields and map
// values.
func isTableRef(t reflect.Type) bool {
	return t.Kind() == reflect.Pointer && isTable(t.Elem())
}

// Merge returns base with every key set in patch replaced by patch's value; maps merge entry by
// entry, lists are replaced whole. The result shares no memory with either argument, and tables
// left without any key are dropped, so stored settings never carry empty tables.
func Merge(base, patch Settings) Settings {
	var out Settings
	mergeStruct(reflect.ValueOf(&out).Elem(), reflect.ValueOf(base), reflect.ValueOf(patch))
	return out
}

// Clone returns a deep copy of s.
func (s Settings) Clone() Settings { return Merge(Settings{}, s) }

// mergeStruct fills out (a settable struct) from a and b (same type, b wins) and reports whether
// any key ended up set.
func mergeStruct(out, a, b reflect.Value) bool {
	set := false
	for i := range out.NumField() {
		if v, ok := mergeValue(a.Field(i), b.Field(i)); ok {
			out.Field(i).Set(v)
			set = true
		}
	}
	return set
}

// mergeValue merges two values of a field's type, b winning, and reports whether the result is
// set. Leaves are copied, never shared.
func mergeValue(a, b reflect.Value) (reflect.Value, bool) {
	t := a.Type()
	switch {
	case isTableRef(t):
		if a.IsNil() && b.IsNil() {
			return reflect.Value{}, false
		}
		n := reflect.New(t.Elem())
		if !mergeStruct(n.Elem(), derefOrZero(a), derefOrZero(b)) {
			return reflect.Value{}, false
		}
		return n, true
	case t.Kind() == reflect.Map:
		if a.Len() == 0 && b.Len() == 0 {
			return reflect.Value{}, false
		}
		out := reflect.MakeMapWithSize(t, a.Len()+b.Len())
		zero := reflect.Zero(t.Elem())
		keys := append(a.MapKeys(), b.MapKeys()...)
		for _, k := range keys {
			if out.MapIndex(k).IsValid() {
				continue // already merged from the other side
			}
			av, bv := a.MapIndex(k), b.MapIndex(k)
			if !av.IsValid() {
				av = zero
			}
			if !bv.IsValid() {
				bv = zero
			}
			if isTableRef(t.Elem()) {
				if v, ok := mergeValue(av, bv); ok {
					out.SetMapIndex(k, v)
				}
				continue
			}
			src := bv
			if !b.MapIndex(k).IsValid() {
				src = av
			}
			out.SetMapIndex(k, cloneValue(src))
		}
		if out.Len() == 0 {
			return reflect.Value{}, false
		}
		return out, true
	default: // a leaf: pointer, list or a value in a map
		src := b
		if b.IsZero() {
			src = a
		}
		if src.IsZero() {
			return reflect.Value{}, false
		}
		return cloneValue(src), true
	}
}

// cloneValue deep-copies a leaf value: a pointer to a value, a list, or a plain value.
func cloneValue(v reflect.Value) reflect.Value {
	switch v.Kind() {
	case reflect.Pointer:
		if v.IsNil() {
			return v
		}
		n := reflect.New(v.Type().Elem())
		n.Elem().Set(cloneValue(v.Elem()))
		return n
	case reflect.Slice:
		if v.IsNil() {
			return v
		}
		n := reflect.MakeSlice(v.Type(), v.Len(), v.Len())
		for i := range v.Len() {
			n.Index(i).Set(cloneValue(v.Index(i)))
		}
		return n
	case reflect.Struct:
		n := reflect.New(v.Type()).Elem()
		for i := range v.NumField() {
			n.Field(i).Set(cloneValue(v.Field(i)))
		}
		return n
	}
	return v
}

func derefOrZero(p reflect.Value) reflect.Value {
	if p.IsNil() {
		return reflect.New(p.Type().Elem()).Elem()
	}
	return p.Elem()
}

// Keys returns the dotted paths of the values set in s, sorted. A list is one value; a map's
// entries are keys of their own.
func (s Settings) Keys() []string {
	var keys []string
	walkLeaves(reflect.ValueOf(s), []string{Prefix}, func(path []string, _ reflect.Value) {
		keys = append(keys, FormatKey(path))
	})
	sort.Strings(keys)
	return keys
}

// IsEmpty reports whether no key is set.
func (s Settings) IsEmpty() bool { return reflect.ValueOf(s).IsZero() || len(s.Keys()) == 0 }

// Diff returns the dotted paths of the values that differ between a and b, sorted: set in one
// and not the other, or set to different values.
func Diff(a, b Settings) []string {
	flat := func(s Settings) map[string]reflect.Value {
		m := map[string]reflect.Value{}
		walkLeaves(reflect.ValueOf(s), []string{Prefix}, func(path []string, v reflect.Value) {
			m[FormatKey(path)] = v
		})
		return m
	}
	fa, fb := flat(a), flat(b)
	var keys []string
	for k, va := range fa {
		if vb, ok := fb[k]; !ok || !reflect.DeepEqual(va.Interface(), vb.Interface()) {
			keys = append(keys, k)
		}
	}
	for k := range fb {
		if _, ok := fa[k]; !ok {
			keys = append(keys, k)
		}
	}
	sort.Strings(keys)
	return keys
}

// walkLeaves calls fn for every value set in the table v.
func walkLeaves(v reflect.Value, path []string, fn func([]string, reflect.Value)) {
	t := v.Type()
	for i := range t.NumField() {
		walkValue(v.Field(i), appendPath(path, keyName(t.Field(i))), fn)
	}
}

func walkValue(v reflect.Value, path []string, fn func([]string, reflect.Value)) {
	if v.IsZero() && v.Kind() != reflect.Bool && v.Kind() != reflect.Int64 && v.Kind() != reflect.String {
		return // an unset pointer, list or map; plain values only occur set, inside maps
	}
	switch {
	case isTableRef(v.Type()):
		walkLeaves(v.Elem(), path, fn)
	case v.Kind() == reflect.Map:
		keys := v.MapKeys()
		sort.Slice(keys, func(i, j int) bool { return keys[i].String() < keys[j].String() })
		for _, k := range keys {
			walkValue(v.MapIndex(k), appendPath(path, k.String()), fn)
		}
	default:
		fn(path, v)
	}
}

// HasPrefix reports whether the dotted key lies under the dotted prefix (or is it).
func HasPrefix(key, prefix string) bool {
	return key == prefix || strings.HasPrefix(key, prefix+".")
}
