package userdata

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"reflect"
	"strings"
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

// FuzzOVFEnv feeds arbitrary documents to the OVF environment reader. It must never panic; what
// it refuses it refuses naming ovf-env.xml, and what it accepts survives being written into an
// environment again.
func FuzzOVFEnv(f *testing.F) {
	f.Add([]byte(ovfEnv(prop("user-data", "W3NldHRpbmdzXQo="))))
	f.Add([]byte(ovfEnv(prop("user-data", ""))))
	f.Add([]byte(`<Environment xmlns="http://schemas.dmtf.org/ovf/environment/1"><PropertySection><Property/></PropertySection></Environment>`))
	f.Fuzz(func(t *testing.T, env []byte) {
		data, err := ovfUserData(env)
		if err != nil {
			if data != nil {
				t.Fatalf("data %q returned with error %v", data, err)
			}
			if !strings.HasPrefix(err.Error(), OVFEnvFile) {
				t.Fatalf("error %q does not name %s", err, OVFEnvFile)
			}
			return
		}
		if len(data) > maxRaw {
			t.Fatalf("accepted %d bytes, more than %d", len(data), maxRaw)
		}
		again, err := ovfUserData([]byte(ovfEnv(prop(OVFUserDataKey, base64.StdEncoding.EncodeToString(data)))))
		if err != nil || !bytes.Equal(again, data) {
			t.Fatalf("round trip of %q: %q, %v", data, again, err)
		}
	})
}

// FuzzISORootFiles puts arbitrary bytes where an ISO9660 volume's descriptors and root directory
// are; reading the root must never panic or return names longer than a record can hold.
func FuzzISORootFiles(f *testing.F) {
	pvd := make([]byte, 2048+512)
	copy(pvd, "\x01CD001\x01")
	pvd[isoBlockSizeOff], pvd[isoBlockSizeOff+1] = 0x00, 0x08
	pvd[isoRootRecOff+isoRecExtent] = 17 // the block after the PVD
	pvd[isoRootRecOff+isoRecLength] = 0x00
	pvd[isoRootRecOff+isoRecLength+1] = 0x02
	rec := append([]byte{byte(isoRecName + 13), 0}, make([]byte, isoRecName-2)...)
	rec[isoRecNameLen] = 13
	copy(pvd[2048:], append(rec, "OVF_ENV.XML;1"...))
	f.Add(pvd)
	f.Fuzz(func(t *testing.T, b []byte) {
		img := append(make([]byte, isoPVDOffset), b...)
		names, err := isoRootFiles(bytes.NewReader(img))
		if err != nil && names != nil {
			t.Fatalf("names %q returned with error %v", names, err)
		}
		for _, n := range names {
			if len(n) == 0 || len(n) > 255-isoRecName {
				t.Fatalf("name of %d bytes", len(n))
			}
		}
	})
}
