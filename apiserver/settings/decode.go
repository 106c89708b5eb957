package settings

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"reflect"
	"sort"
	"time"
)

// DecodeJSON reads one JSON object holding settings keys (without the "settings" wrapper, as in a
// PATCH /settings body) and returns it validated. Key matching is exact: encoding/json would accept
// "MOTD" for "motd", which would make the stored key depend on the spelling.
func DecodeJSON(r io.Reader) (Settings, error) {
	tree, err := ReadJSONTree(r)
	if err != nil {
		return Settings{}, err
	}
	return FromTree(tree)
}

// ReadJSONTree reads exactly one JSON value as a generic tree, numbers kept exact.
func ReadJSONTree(r io.Reader) (any, error) {
	dec := json.NewDecoder(r)
	dec.UseNumber()
	var tree any
	if err := dec.Decode(&tree); err != nil {
		if errors.Is(err, io.EOF) {
			return nil, errors.New("empty body: expected a JSON object")
		}
		return nil, fmt.Errorf("invalid JSON: %w", err)
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		if err != nil {
			return nil, fmt.Errorf("invalid JSON after the object: %w", err)
		}
		return nil, errors.New("invalid JSON: more than one value")
	}
	return tree, nil
}

// FromTree builds validated Settings from a generic tree: map[string]any tables whose leaves are
// what encoding/json (with UseNumber) or the TOML decoder produce. Unknown keys and wrong types are
// errors naming the key; the tree is never partly applied. Tables and maps without keys are
// dropped, as they would be in the JSON form.
func FromTree(tree any) (Settings, error) {
	var s Settings
	if err := decodeTable(reflect.ValueOf(&s).Elem(), tree, []string{Prefix}); err != nil {
		return Settings{}, err
	}
	if err := s.Validate(); err != nil {
		return Settings{}, err
	}
	return s.Clone(), nil
}

func decodeTable(dst reflect.Value, v any, path []string) error {
	m, ok := v.(map[string]any)
	if !ok {
		return keyErr(path, fmt.Errorf("expected a table, got %s", describeValue(v)))
	}
	t := dst.Type()
	fields := make(map[string]int, t.NumField())
	for i := range t.NumField() {
		fields[keyName(t.Field(i))] = i
	}
	for _, k := range sortedKeys(m) {
		p := appendPath(path, k)
		i, ok := fields[k]
		if !ok {
			return keyErr(p, ErrUnknownKey)
		}
		val, err := decodeValue(t.Field(i).Type, m[k], p)
		if err != nil {
			return err
		}
		dst.Field(i).Set(val)
	}
	return nil
}

// decodeValue returns a value of type t decoded from v. The kinds handled are the ones the model
// uses; a field of another kind is a programming error, reported rather than panicking.
func decodeValue(t reflect.Type, v any, path []string) (reflect.Value, error) {
	if v == nil {
		return reflect.Value{}, keyErr(path, errors.New("null is not a value; leave the key out instead"))
	}
	if reflect.PointerTo(t).Implements(treeDecoderType) {
		n := reflect.New(t)
		if err := n.Interface().(treeDecoder).decodeTree(v); err != nil {
			return reflect.Value{}, keyErr(path, err)
		}
		return n.Elem(), nil
	}
	switch t.Kind() {
	case reflect.Pointer:
		inner, err := decodeValue(t.Elem(), v, path)
		if err != nil {
			return reflect.Value{}, err
		}
		p := reflect.New(t.Elem())
		p.Elem().Set(inner)
		return p, nil
	case reflect.Struct:
		n := reflect.New(t).Elem()
		return n, decodeTable(n, v, path)
	case reflect.Map:
		m, ok := v.(map[string]any)
		if !ok {
			return reflect.Value{}, keyErr(path, fmt.Errorf("expected a table, got %s", describeValue(v)))
		}
		out := reflect.MakeMapWithSize(t, len(m))
		for _, k := range sortedKeys(m) {
			val, err := decodeValue(t.Elem(), m[k], appendPath(path, k))
			if err != nil {
				return reflect.Value{}, err
			}
			out.SetMapIndex(reflect.ValueOf(k).Convert(t.Key()), val)
		}
		return out, nil
	case reflect.Slice:
		list, ok := asList(v)
		if !ok {
			return reflect.Value{}, keyErr(path, fmt.Errorf("expected a list, got %s", describeValue(v)))
		}
		out := reflect.MakeSlice(t, 0, len(list))
		for i, item := range list {
			val, err := decodeValue(t.Elem(), item, path)
			if err != nil {
				return reflect.Value{}, itemErr(path, i, err)
			}
			out = reflect.Append(out, val)
		}
		return out, nil
	case reflect.String:
		s, ok := v.(string)
		if !ok {
			return reflect.Value{}, typeErr(path, "string", v)
		}
		return reflect.ValueOf(s).Convert(t), nil
	case reflect.Bool:
		b, ok := v.(bool)
		if !ok {
			return reflect.Value{}, typeErr(path, "boolean", v)
		}
		return reflect.ValueOf(b).Convert(t), nil
	case reflect.Int64:
		i, ok := asInt(v)
		if !ok {
			return reflect.Value{}, typeErr(path, "integer", v)
		}
		return reflect.ValueOf(i).Convert(t), nil
	}
	return reflect.Value{}, keyErr(path, fmt.Errorf("settings model has unsupported type %s", t))
}

var treeDecoderType = reflect.TypeFor[treeDecoder]()

// itemErr places an error about item i of the list at path on the list's key, saying which item
// (and which key inside it) is at fault: list items have no key path of their own.
func itemErr(path []string, i int, err error) error {
	var ke *KeyError
	if !errors.As(err, &ke) {
		return keyErr(path, fmt.Errorf("item %d: %w", i+1, err))
	}
	where := fmt.Sprintf("item %d", i+1)
	if len(ke.Path) > len(path) {
		where += " " + FormatKey(ke.Path[len(path):])
	}
	return keyErr(path, fmt.Errorf("%s: %w", where, ke.Err))
}

func sortedKeys(m map[string]any) []string {
	// Sorted so that a document with several bad keys always reports the same one.
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

func appendPath(path []string, k string) []string {
	return append(path[:len(path):len(path)], k)
}

// asList accepts the list shapes decoders produce: []any, and []map[string]any for a TOML array
// of tables.
func asList(v any) ([]any, bool) {
	switch l := v.(type) {
	case []any:
		return l, true
	case []map[string]any:
		out := make([]any, len(l))
		for i, m := range l {
			out[i] = m
		}
		return out, true
	}
	return nil, false
}

func asInt(v any) (int64, bool) {
	switch x := v.(type) {
	case int64:
		return x, true
	case json.Number:
		i, err := x.Int64()
		return i, err == nil
	case float64:
		if x == math.Trunc(x) && math.Abs(x) < 1<<53 {
			return int64(x), true
		}
	}
	return 0, false
}

func typeErr(path []string, want string, got any) error {
	return keyErr(path, fmt.Errorf("expected %s, got %s", want, describeValue(got)))
}

// describeValue names a decoded value's type in the words of the documents users write.
func describeValue(v any) string {
	switch x := v.(type) {
	case nil:
		return "null"
	case string:
		return "string"
	case bool:
		return "boolean"
	case int64:
		return "integer"
	case float64:
		return "float"
	case json.Number:
		if _, err := x.Int64(); err == nil {
			return "integer"
		}
		return "number"
	case map[string]any:
		return "table"
	case []any, []map[string]any:
		return "array"
	case time.Time:
		return "datetime"
	}
	// The TOML decoder's local date and time types.
	return fmt.Sprintf("%T", v)
}
