package userdata

import (
	"bytes"
	"encoding/json"
	"errors"
	"reflect"
	"testing"

	"github.com/ballast-os/ballast/apiserver/settings"
)

// FuzzUserData feeds arbitrary documents (TOML, JSON, gzip; seeds in testdata/fuzz/FuzzUserData)
// to Parse. It must never panic, and what it accepts must be valid and survive the trip through
// JSON, the form the datastore keeps it in, and through JSON user data.
func FuzzUserData(f *testing.F) {
	f.Add([]byte("[settings]\nmotd = \"hi\"\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		s, err := Parse("fuzz", data)
		if err != nil {
			var ue *Error
			if !errors.As(err, &ue) || ue.Source != "fuzz" {
				t.Fatalf("error %v (%T) is not a located user data error", err, err)
			}
			if !s.IsEmpty() {
				t.Fatalf("settings %+v returned with error %v", s, err)
			}
			return
		}
		if err := s.Validate(); err != nil {
			t.Fatalf("accepted settings fail validation: %v", err)
		}
		b, err := json.Marshal(s)
		if err != nil {
			t.Fatal(err)
		}
		again, err := settings.DecodeJSON(bytes.NewReader(b))
		if err != nil || !reflect.DeepEqual(again, s) {
			t.Fatalf("JSON round trip of %s: %+v, %v", b, again, err)
		}
		wrapped, _ := json.Marshal(map[string]json.RawMessage{"settings": b})
		viaJSON, err := Parse("fuzz", wrapped)
		if err != nil || !reflect.DeepEqual(viaJSON, s) {
			t.Fatalf("as JSON user data %s: %+v, %v", wrapped, viaJSON, err)
		}
	})
}
