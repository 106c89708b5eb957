package settings

import (
	"encoding/json"
	"reflect"
	"slices"
	"strings"
	"testing"
)

func TestSecretKeys(t *testing.T) {
	keys, err := SecretKeys()
	if err != nil {
		t.Fatal(err)
	}
	want := []string{
		"settings.host-containers.<name>.user-data",
		"settings.bootstrap-containers.<name>.user-data",
		"settings.container-registry.credentials.<registry>.password",
		"settings.api.remote.server-key",
		"settings.kubernetes.bootstrap-token",
	}
	if !slices.Equal(keys, want) {
		t.Errorf("SecretKeys = %q, want %q", keys, want)
	}
}

// Every private key in the model must be secret: a new one without the mark fails here.
func TestPrivateKeysAreSecret(t *testing.T) {
	pemKey := reflect.TypeFor[PEMKey]()
	var check func(t reflect.Type, path string)
	check = func(typ reflect.Type, path string) {
		for i := range typ.NumField() {
			f := typ.Field(i)
			p := path + "." + keyName(f)
			ft := f.Type
			for ft.Kind() == reflect.Pointer || ft.Kind() == reflect.Map || ft.Kind() == reflect.Slice {
				ft = ft.Elem()
			}
			if ft == pemKey && !isSecret(f) {
				t.Errorf("%s holds a private key but is not marked secret:\"true\"", p)
			}
			if isTable(ft) {
				check(ft, p)
			}
		}
	}
	check(reflect.TypeFor[Settings](), Prefix)
}

// fill sets every string value of the model to its own key, with one entry in each map of
// tables and one item in each list of tables, so that every key exists once.
func fill(v reflect.Value, path string) {
	t := v.Type()
	for i := range t.NumField() {
		f, fv := t.Field(i), v.Field(i)
		p := path + "." + keyName(f)
		ft := f.Type
		switch {
		case isTableRef(ft):
			fv.Set(reflect.New(ft.Elem()))
			fill(fv.Elem(), p)
		case ft.Kind() == reflect.Map && isTableRef(ft.Elem()):
			m := reflect.MakeMap(ft)
			e := reflect.New(ft.Elem().Elem())
			fill(e.Elem(), p+".<"+f.Tag.Get("key")+">")
			m.SetMapIndex(reflect.ValueOf("x").Convert(ft.Key()), e)
			fv.Set(m)
		case ft.Kind() == reflect.Slice && isTable(ft.Elem()):
			s := reflect.MakeSlice(ft, 1, 1)
			fill(s.Index(0), p+"[]")
			fv.Set(s)
		case ft.Kind() == reflect.Pointer && ft.Elem().Kind() == reflect.String:
			x := reflect.New(ft.Elem())
			x.Elem().SetString("value of " + p)
			fv.Set(x)
		}
	}
}

// leaves collects the string values of a filled model by key, the way fill named them.
func leaves(v reflect.Value, path string, out map[string]string) {
	t := v.Type()
	for i := range t.NumField() {
		f, fv := t.Field(i), v.Field(i)
		p := path + "." + keyName(f)
		ft := f.Type
		switch {
		case isTableRef(ft) && !fv.IsNil():
			leaves(fv.Elem(), p, out)
		case ft.Kind() == reflect.Map && isTableRef(ft.Elem()):
			for _, k := range fv.MapKeys() {
				leaves(fv.MapIndex(k).Elem(), p+".<"+f.Tag.Get("key")+">", out)
			}
		case ft.Kind() == reflect.Slice && isTable(ft.Elem()):
			for j := range fv.Len() {
				leaves(fv.Index(j), p+"[]", out)
			}
		case ft.Kind() == reflect.Pointer && ft.Elem().Kind() == reflect.String && !fv.IsNil():
			out[p] = fv.Elem().String()
		}
	}
}

// Redaction follows the model: every secret key is redacted wherever it is in the tree, every
// other key is left as it is, and the settings given are not changed.
func TestRedact(t *testing.T) {
	var s Settings
	fill(reflect.ValueOf(&s).Elem(), Prefix)
	before := map[string]string{}
	leaves(reflect.ValueOf(&s).Elem(), Prefix, before)
	secrets, _ := SecretKeys()
	if len(before) < 10 {
		t.Fatalf("the filled model has only %d string keys", len(before))
	}

	r := Redact(s)
	after := map[string]string{}
	leaves(reflect.ValueOf(&r).Elem(), Prefix, after)
	for key, v := range before {
		secret := slices.Contains(secrets, key)
		switch {
		case secret && after[key] != Redacted:
			t.Errorf("%s = %q after Redact, want %q", key, after[key], Redacted)
		case !secret && after[key] != v:
			t.Errorf("%s = %q after Redact, want it unchanged (%q)", key, after[key], v)
		}
	}
	for _, key := range secrets {
		if _, ok := before[key]; !ok {
			t.Errorf("secret key %s was not filled: the test does not reach it", key)
		}
	}
	again := map[string]string{}
	leaves(reflect.ValueOf(&s).Elem(), Prefix, again)
	if !reflect.DeepEqual(again, before) {
		t.Error("Redact changed the settings it was given")
	}
	b, _ := json.Marshal(r)
	for _, key := range secrets {
		if strings.Contains(string(b), "value of "+key) {
			t.Errorf("the redacted JSON still holds %s's value", key)
		}
	}
}
