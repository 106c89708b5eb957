package manifest

import (
	"crypto/sha256"
	"encoding/hex"
	"strings"
	"testing"
	"time"

	"github.com/ballast-os/ballast/contract"
)

var t0 = time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC)

func file(kind, seed string) contract.PayloadFile {
	sum := sha256.Sum256([]byte(seed + kind))
	raw := sha256.Sum256([]byte("raw" + seed + kind))
	h := hex.EncodeToString(sum[:])
	return contract.PayloadFile{Name: contract.PayloadFileName(h, kind), Size: 10, SHA256: h, RawSize: 20, RawSHA256: hex.EncodeToString(raw[:])}
}

func release(version string, waves ...Wave) Release {
	return Release{
		Version: version, Arch: "x86_64", Released: t0, Notes: "notes for " + version, Waves: waves, DatastoreFormat: 1,
		Payload: contract.Payload{
			Variant: "qemu", Version: version, Arch: "x86_64", RootHash: strings.Repeat("ab", 32), VerityBlocks: 8, Salt: "00ff", DatastoreFormat: 1,
			Root: file("root", version), Verity: file("verity", version),
			UKI: map[contract.Slot]contract.PayloadFile{contract.SlotA: file("uki-a", version), contract.SlotB: file("uki-b", version)},
		},
	}
}

func TestRoundTrip(t *testing.T) {
	m := &Manifest{Variant: "qemu", MaxVersion: "3.0.0", Releases: []Release{release("2.0.0", Wave{1024, t0}, Wave{2047, t0.Add(time.Hour)}), release("1.0.0")}}
	data, err := m.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	back, err := Parse(data)
	if err != nil {
		t.Fatalf("Parse(Marshal()): %v\n%s", err, data)
	}
	if len(back.Releases) != 2 || back.Releases[0].Version != "1.0.0" || back.Releases[1].Version != "2.0.0" {
		t.Fatalf("releases not sorted oldest first: %+v", back.Releases)
	}
	if got := back.Release("2.0").Waves; len(got) != 2 || !got[1].Start.Equal(t0.Add(time.Hour)) {
		t.Errorf("waves of 2.0.0 = %+v", got)
	}
	if back.Releases[0].Payload.UKI[contract.SlotB] != m.Releases[1].Payload.UKI[contract.SlotB] {
		t.Errorf("payload not kept: %+v", back.Releases[0].Payload)
	}
	if !strings.Contains(string(data), `"migrations": []`) {
		t.Errorf("empty migrations should be [] in %s", data)
	}
}

func TestParseErrors(t *testing.T) {
	good := func() *Manifest {
		return &Manifest{Variant: "qemu", Releases: []Release{release("1.0.0"), release("2.0.0")}}
	}
	valid, err := good().Marshal()
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		edit func(*Manifest)
		text func(string) string
		want string
	}{
		{name: "unknown top-level field", text: func(s string) string { return strings.Replace(s, `"variant"`, `"colour": 1, "variant"`, 1) }, want: `unknown field "colour"`},
		{name: "unknown release field", text: func(s string) string {
			return strings.Replace(s, `"version": "2.0.0",`, `"version": "2.0.0", "size": 3,`, 1)
		}, want: `releases[1] (version "2.0.0"): json: unknown field "size"`},
		{name: "unknown payload field", text: func(s string) string { return strings.Replace(s, `"roothash"`, `"extra": 1, "roothash"`, 1) }, want: `releases[0] (version "1.0.0"): json: unknown field "extra"`},
		{name: "trailing data", text: func(s string) string { return s + "{}" }, want: "trailing data"},
		{name: "wrong type", text: func(s string) string {
			return strings.Replace(s, `"datastore_format": 1`, `"datastore_format": "1"`, 1)
		}, want: "releases[0]"},
		{name: "bad variant", edit: func(m *Manifest) { m.Variant = "Q EMU" }, want: `variant "Q EMU"`},
		{name: "bad max version", edit: func(m *Manifest) { m.MaxVersion = "x" }, want: "max_version"},
		{name: "bad version", edit: func(m *Manifest) { m.Releases[1].Version = "2.0.x" }, want: `releases[1] (version "2.0.x"): version`},
		{name: "duplicate", edit: func(m *Manifest) { m.Releases[1] = release("1.0") }, want: `version "1.0" is listed twice`},
		{name: "no release time", edit: func(m *Manifest) { m.Releases[0].Released = time.Time{} }, want: `releases[0] (version "1.0.0"): released: missing`},
		{name: "seed above 2047", edit: func(m *Manifest) { m.Releases[0].Waves = []Wave{{2048, t0}} }, want: "waves[0].seeds 2048"},
		{name: "waves unsorted", edit: func(m *Manifest) { m.Releases[0].Waves = []Wave{{1000, t0}, {10, t0}} }, want: "waves[1].seeds 10: not above"},
		{name: "waves go back in time", edit: func(m *Manifest) { m.Releases[0].Waves = []Wave{{10, t0}, {1000, t0.Add(-time.Hour)}} }, want: "waves[1].start"},
		{name: "payload of another version", edit: func(m *Manifest) { m.Releases[1].Payload.Version = "1.0.0" }, want: `releases[1] (version "2.0.0"): payload.version "1.0.0"`},
		{name: "payload of another variant", edit: func(m *Manifest) { m.Releases[1].Payload.Variant = "aws" }, want: `payload.variant "aws"`},
		{name: "datastore format differs", edit: func(m *Manifest) { m.Releases[0].DatastoreFormat = 2 }, want: "payload.datastore_format 1"},
		{name: "file name not its hash", edit: func(m *Manifest) { m.Releases[0].Payload.Root.Name = file("root", "other").Name }, want: "root: " + file("root", "other").Name + ": the name does not start with its sha256"},
		{name: "file name with a path", edit: func(m *Manifest) { m.Releases[0].Payload.Verity.Name = "../x.zst" }, want: `verity: name "../x.zst"`},
		{name: "missing UKI", edit: func(m *Manifest) { delete(m.Releases[0].Payload.UKI, contract.SlotB) }, want: "uki.b: missing"},
		{name: "empty migration", edit: func(m *Manifest) { m.Releases[0].Migrations = []string{" "} }, want: "migrations[0]: empty"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			text := string(valid)
			if tc.edit != nil {
				m := good()
				tc.edit(m)
				if err := m.Validate(); err == nil || !strings.Contains(err.Error(), tc.want) {
					t.Errorf("Validate() = %v, want an error containing %q", err, tc.want)
				}
				if _, err := m.Marshal(); err == nil {
					t.Errorf("Marshal accepted an invalid manifest")
				}
				return
			}
			text = tc.text(text)
			if text == string(valid) {
				t.Fatal("the edit changed nothing")
			}
			_, err := Parse([]byte(text))
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("Parse() = %v, want an error containing %q", err, tc.want)
			}
		})
	}
}

func TestParseWaves(t *testing.T) {
	got, err := ParseWaves("0@+0h, 1024@+4h,2047@2025-03-02T00:00:00+01:00", t0)
	if err != nil {
		t.Fatal(err)
	}
	want := []Wave{{0, t0}, {1024, t0.Add(4 * time.Hour)}, {2047, time.Date(2025, 3, 1, 23, 0, 0, 0, time.UTC)}}
	if len(got) != len(want) {
		t.Fatalf("got %+v", got)
	}
	for i := range want {
		if got[i].Seeds != want[i].Seeds || !got[i].Start.Equal(want[i].Start) {
			t.Errorf("wave %d = %+v, want %+v", i, got[i], want[i])
		}
	}
	if ws, err := ParseWaves("", t0); err != nil || ws != nil {
		t.Errorf("empty spec = %v, %v", ws, err)
	}
	for _, bad := range []string{"1024", "x@+1h", "10@+1y", "10@tomorrow", "3000@+1h", "100@+2h,50@+3h"} {
		if _, err := ParseWaves(bad, t0); err == nil {
			t.Errorf("ParseWaves(%q) accepted", bad)
		}
	}
}
