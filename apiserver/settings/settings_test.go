package settings

import (
	"errors"
	"reflect"
	"strings"
	"testing"
)

func ptr[T any](v T) *T { return &v }

func TestDecodeJSON(t *testing.T) {
	tests := []struct {
		name    string
		body    string
		want    Settings
		wantKey string // key of the expected KeyError; "" with wantErr for errors without a key
		wantErr string // substring of the error
	}{
		{name: "empty object", body: `{}`, want: Settings{}},
		{name: "motd", body: `{"motd":"hello"}`, want: Settings{Motd: ptr("hello")}},
		{name: "empty motd is a value", body: `{"motd":""}`, want: Settings{Motd: ptr("")}},
		{name: "hostname", body: `{"network":{"hostname":"node-1.example"}}`,
			want: Settings{Network: &Network{Hostname: ptr[Hostname]("node-1.example")}}},
		{name: "both", body: ` {"motd":"m","network":{"hostname":"h"}} `,
			want: Settings{Motd: ptr("m"), Network: &Network{Hostname: ptr[Hostname]("h")}}},
		{name: "unknown top key", body: `{"motto":"x"}`, wantKey: "settings.motto", wantErr: "unknown key"},
		{name: "unknown nested key", body: `{"network":{"hostnme":"x"}}`, wantKey: "settings.network.hostnme", wantErr: "settings.network.hostnme: unknown key"},
		{name: "case matters", body: `{"MOTD":"x"}`, wantKey: "settings.MOTD", wantErr: "unknown key"},
		{name: "motd number", body: `{"motd":42}`, wantKey: "settings.motd", wantErr: "expected string, got integer"},
		{name: "motd null", body: `{"motd":null}`, wantKey: "settings.motd", wantErr: "null"},
		{name: "network not a table", body: `{"network":"x"}`, wantKey: "settings.network", wantErr: "expected a table, got string"},
		{name: "hostname array", body: `{"network":{"hostname":["a"]}}`, wantKey: "settings.network.hostname", wantErr: "got array"},
		{name: "hostname bool", body: `{"network":{"hostname":true}}`, wantKey: "settings.network.hostname", wantErr: "got boolean"},
		{name: "top is array", body: `[]`, wantKey: "settings", wantErr: "expected a table, got array"},
		{name: "top is null", body: `null`, wantKey: "settings", wantErr: "got null"},
		{name: "syntax", body: `{"motd":`, wantErr: "invalid JSON"},
		{name: "empty body", body: ``, wantErr: "empty body"},
		{name: "two values", body: `{}{}`, wantErr: "more than one value"},
		{name: "trailing garbage", body: `{} x`, wantErr: "invalid JSON after"},
		{name: "motd at the limit", body: `{"motd":"` + strings.Repeat("a", MaxMotdBytes) + `"}`,
			want: Settings{Motd: ptr(strings.Repeat("a", MaxMotdBytes))}},
		{name: "motd too long", body: `{"motd":"` + strings.Repeat("a", MaxMotdBytes+1) + `"}`, wantKey: "settings.motd", wantErr: "4097 bytes"},
		{name: "bad hostname", body: `{"network":{"hostname":"bad_name"}}`, wantKey: "settings.network.hostname", wantErr: "only letters"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := DecodeJSON(strings.NewReader(tt.body))
			if tt.wantErr == "" {
				if err != nil {
					t.Fatalf("DecodeJSON(%q): %v", tt.body, err)
				}
				if !reflect.DeepEqual(got, tt.want) {
					t.Fatalf("DecodeJSON(%q) = %+v, want %+v", tt.body, got, tt.want)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("DecodeJSON(%q) error = %v, want it to contain %q", tt.body, err, tt.wantErr)
			}
			var ke *KeyError
			if errors.As(err, &ke) != (tt.wantKey != "") || (ke != nil && ke.Key() != tt.wantKey) {
				t.Fatalf("DecodeJSON(%q) error = %#v, want key %q", tt.body, err, tt.wantKey)
			}
		})
	}
}

func TestFromTreeTOMLKinds(t *testing.T) {
	// The TOML decoder yields int64 and float64 where JSON yields json.Number.
	tests := []struct {
		tree    any
		wantErr string
	}{
		{map[string]any{"motd": int64(1)}, "expected string, got integer"},
		{map[string]any{"motd": 1.5}, "expected string, got float"},
		{map[string]any{"network": []map[string]any{{}}}, "expected a table, got array"},
	}
	for _, tt := range tests {
		_, err := FromTree(tt.tree)
		if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
			t.Errorf("FromTree(%v) error = %v, want %q", tt.tree, err, tt.wantErr)
		}
	}
}

func TestCheckHostname(t *testing.T) {
	label63 := strings.Repeat("a", 63)
	tests := []struct {
		name string
		ok   bool
	}{
		{"a", true},
		{"node-1", true},
		{"Node1.Example.COM", true},
		{"1node", true}, // RFC 1123 allows a leading digit
		{label63, true},
		{label63 + "a", false},
		{strings.Join([]string{label63, label63, label63, strings.Repeat("b", 61)}, "."), true}, // 253 bytes
		{strings.Join([]string{label63, label63, label63, strings.Repeat("b", 62)}, "."), false},
		{"", false},
		{"-node", false},
		{"node-", false},
		{"a..b", false},
		{".a", false},
		{"a.", false},
		{"under_score", false},
		{"sp ace", false},
		{"naïve", false},
	}
	for _, tt := range tests {
		err := CheckHostname(tt.name)
		if (err == nil) != tt.ok {
			t.Errorf("CheckHostname(%q) = %v, want ok=%v", tt.name, err, tt.ok)
		}
	}
}

func TestMerge(t *testing.T) {
	tests := []struct {
		name        string
		base, patch Settings
		want        Settings
	}{
		{"empty", Settings{}, Settings{}, Settings{}},
		{"patch sets", Settings{}, Settings{Motd: ptr("a")}, Settings{Motd: ptr("a")}},
		{"patch wins", Settings{Motd: ptr("a")}, Settings{Motd: ptr("b")}, Settings{Motd: ptr("b")}},
		{"absent keeps base", Settings{Motd: ptr("a")}, Settings{Network: &Network{Hostname: ptr[Hostname]("h")}},
			Settings{Motd: ptr("a"), Network: &Network{Hostname: ptr[Hostname]("h")}}},
		{"nested keeps base", Settings{Network: &Network{Hostname: ptr[Hostname]("h")}}, Settings{Network: &Network{}},
			Settings{Network: &Network{Hostname: ptr[Hostname]("h")}}},
		{"empty table dropped", Settings{}, Settings{Network: &Network{}}, Settings{}},
		{"empty string is a value", Settings{Motd: ptr("a")}, Settings{Motd: ptr("")}, Settings{Motd: ptr("")}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := Merge(tt.base, tt.patch)
			if !reflect.DeepEqual(got, tt.want) {
				t.Fatalf("Merge = %+v, want %+v", got, tt.want)
			}
			if got.Motd != nil && (got.Motd == tt.base.Motd || got.Motd == tt.patch.Motd) {
				t.Fatal("Merge result shares a pointer with an argument")
			}
		})
	}
}

func TestKeys(t *testing.T) {
	s := Settings{Motd: ptr(""), Network: &Network{Hostname: ptr[Hostname]("h")}}
	want := []string{"settings.motd", "settings.network.hostname"}
	if got := s.Keys(); !reflect.DeepEqual(got, want) {
		t.Fatalf("Keys = %v, want %v", got, want)
	}
	if !(Settings{Network: &Network{}}).IsEmpty() {
		t.Fatal("a tree of empty tables should be empty")
	}
}
