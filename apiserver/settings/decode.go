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
	dec := json.NewDecoder(r)
	dec.UseNumber()
	var tree any
	if err := dec.Decode(&tree); err != nil {
		if errors.Is(err, io.EOF) {
			return Settings{}, errors.New("empty body: expected a JSON object")
		}
		return Settings{}, fmt.Errorf("invalid JSON: %w", err)
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		if err != nil {
			return Settings{}, fmt.Errorf("invalid JSON after the object: %w", err)
		}
		return Settings{}, errors.New("invalid JSON: more than one value")
	}
	return FromTree(tree)
}

// FromTree builds validated Settings from a generic tree: map[string]any tables whose leaves are
// what encoding/json (with UseNumber) or the TOML decoder produce. Unknown keys and wrong types are
// errors naming the key; the tree is never partly applied.
func FromTree(tree any) (Settings, error) {
	var s Settings
	if err := decodeTable(reflect.ValueOf(&s).Elem(), tree, []string{Prefix}); err != nil {
		return Settings{}, err
	}
	if err := s.Validate(); err != nil {
		return Settings{}, err
	}
	return s, nil
}

func decodeTable(dst reflect.Value, v any, path []string) error {
	m, ok := v.(map[string]any)
	if !ok {
		return keyErr(path, fmt.Errorf("expected a table, got %s", describe(v)))
	}
	fields := map[string]int{}
	for i := range dst.NumField() {
		fields[keyName(dst.Type().Field(i))] = i
	}
	// Sorted so that a document with several bad keys always reports the same one.
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		p := append(path[:len(path):len(path)], k)
		i, ok := fields[k]
		if !ok {
			return keyErr(p, ErrUnknownKey)
		}
		if err := decodeField(dst.Field(i), m[k], p); err != nil {
			return err
		}
	}
	return nil
}

// decodeField sets the pointer field f from v. The leaf kinds here are the ones the model uses or
// is about to use; a field of another kind is a programming error, reported rather than panicking.
func decodeField(f reflect.Value, v any, path []string) error {
	if v == nil {
		return keyErr(path, errors.New("null is not a value; leave the key out instead"))
	}
	elem := f.Type().Elem()
	n := reflect.New(elem)
	switch elem.Kind() {
	case reflect.Struct:
		if err := decodeTable(n.Elem(), v, path); err != nil {
			return err
		}
	case reflect.String:
		s, ok := v.(string)
		if !ok {
			return typeErr(path, "string", v)
		}
		n.Elem().SetString(s)
	case reflect.Bool:
		b, ok := v.(bool)
		if !ok {
			return typeErr(path, "boolean", v)
		}
		n.Elem().SetBool(b)
	case reflect.Int64:
		i, ok := asInt(v)
		if !ok {
			return typeErr(path, "integer", v)
		}
		n.Elem().SetInt(i)
	default:
		return keyErr(path, fmt.Errorf("settings model has unsupported field type %s", f.Type()))
	}
	f.Set(n)
	return nil
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
	return keyErr(path, fmt.Errorf("expected %s, got %s", want, describe(got)))
}

// describe names a decoded value's type in the words of the documents users write.
func describe(v any) string {
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
