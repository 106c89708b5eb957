package settings

import (
	"fmt"
	"reflect"
	"strings"
)

// Redacted is what Redact puts in place of a secret value.
const Redacted = "(redacted)"

// isSecret reports whether a field is marked secret:"true".
func isSecret(f reflect.StructField) bool { return f.Tag.Get("secret") == "true" }

// Redact returns a copy of s in which the value of every key the model marks secret is Redacted:
// what is set stays visible, not what it is set to. The result is for showing (a support bundle),
// not for storing: a redacted value does not pass validation.
func Redact(s Settings) Settings {
	out := s.Clone()
	redactStruct(reflect.ValueOf(&out).Elem())
	return out
}

func redactStruct(v reflect.Value) {
	t := v.Type()
	for i := range t.NumField() {
		f, fv := t.Field(i), v.Field(i)
		if isSecret(f) {
			if fv.Kind() == reflect.Pointer && !fv.IsNil() {
				r := reflect.New(fv.Type().Elem())
				r.Elem().SetString(Redacted)
				fv.Set(r)
			}
			continue
		}
		redactValue(fv)
	}
}

// redactValue goes into the tables a value holds: a table, a map of tables, a list of tables.
func redactValue(v reflect.Value) {
	switch v.Kind() {
	case reflect.Pointer:
		if !v.IsNil() && isTable(v.Type().Elem()) {
			redactStruct(v.Elem())
		}
	case reflect.Map:
		if isTableRef(v.Type().Elem()) {
			for _, k := range v.MapKeys() {
				if e := v.MapIndex(k); !e.IsNil() {
					redactStruct(e.Elem())
				}
			}
		}
	case reflect.Slice:
		if isTable(v.Type().Elem()) {
			for i := range v.Len() {
				redactStruct(v.Index(i))
			}
		}
	}
}

// SecretKeys returns the model's secret keys as the reference writes them, e.g.
// settings.api.remote.server-key and settings.host-containers.<name>.user-data. It fails on a
// secret mark Redact could not honour: on a table, or a value that is not a string.
func SecretKeys() ([]string, error) {
	var keys []string
	err := secretsIn(reflect.TypeFor[Settings](), []string{Prefix}, &keys)
	return keys, err
}

func secretsIn(t reflect.Type, path []string, keys *[]string) error {
	for i := range t.NumField() {
		f := t.Field(i)
		p := append(path[:len(path):len(path)], keyName(f))
		ft := f.Type
		if isSecret(f) {
			if ft.Kind() != reflect.Pointer || ft.Elem().Kind() != reflect.String {
				return fmt.Errorf("settings model: %s is marked secret but is not a string value", strings.Join(p, "."))
			}
			*keys = append(*keys, strings.Join(p, "."))
			continue
		}
		switch {
		case isTableRef(ft):
			if err := secretsIn(ft.Elem(), p, keys); err != nil {
				return err
			}
		case ft.Kind() == reflect.Map && isTableRef(ft.Elem()):
			if err := secretsIn(ft.Elem().Elem(), append(p, "<"+f.Tag.Get("key")+">"), keys); err != nil {
				return err
			}
		case ft.Kind() == reflect.Slice && isTable(ft.Elem()):
			p[len(p)-1] += "[]"
			if err := secretsIn(ft.Elem(), p, keys); err != nil {
				return err
			}
		}
	}
	return nil
}
