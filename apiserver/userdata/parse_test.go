package userdata

import (
	"bytes"
	"compress/gzip"
	"errors"
	"reflect"
	"strings"
	"testing"

	"github.com/ballast-os/ballast/apiserver/settings"
)

func ptr[T any](v T) *T { return &v }

func gz(t *testing.T, s string) []byte {
	t.Helper()
	var b bytes.Buffer
	w := gzip.NewWriter(&b)
	if _, err := w.Write([]byte(s)); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

func TestParse(t *testing.T) {
	tests := []struct {
		name     string
		data     []byte
		want     settings.Settings
		wantErr  string // substring of Error(); "" for success
		wantLine int
		wantKey  string
	}{
		{name: "empty", data: nil, want: settings.Settings{}},
		{name: "no settings table", data: []byte("# nothing\n"), want: settings.Settings{}},
		{name: "motd and hostname",
			data: []byte("[settings]\nmotd = \"hello\"\n\n[settings.network]\nhostname = \"node-1\"\n"),
			want: settings.Settings{Motd: ptr("hello"), Network: &settings.Network{Hostname: ptr[settings.Hostname]("node-1")}}},
		{name: "dotted keys",
			data: []byte("settings.network.hostname = \"h\"\n"),
			want: settings.Settings{Network: &settings.Network{Hostname: ptr[settings.Hostname]("h")}}},
		{name: "multi-line motd",
			data: []byte("[settings]\nmotd = \"\"\"\nline 1\nline 2\n\"\"\"\n"),
			want: settings.Settings{Motd: ptr("line 1\nline 2\n")}},
		{name: "gzip",
			data: gz(t, "[settings]\nmotd = \"zipped\"\n"),
			want: settings.Settings{Motd: ptr("zipped")}},
		{name: "syntax error",
			data:    []byte("[settings]\nmotd = \"hello\"\nhostname = \n"),
			wantErr: "ud: line 3: key settings.hostname: ", wantLine: 3, wantKey: "settings.hostname"},
		{name: "unclosed table",
			data:    []byte("\n\n[settings\nmotd = 1\n"),
			wantErr: "ud: line 3", wantLine: 3},
		{name: "unknown key",
			data:    []byte("[settings]\nmotd = \"x\"\n\n[settings.network]\nhostnme = \"x\"\n"),
			wantErr: "ud: line 5: key settings.network.hostnme: unknown key", wantLine: 5, wantKey: "settings.network.hostnme"},
		{name: "unknown dotted key",
			data:    []byte("# seed\nsettings.network.hostnme = \"x\"\n"),
			wantErr: "ud: line 2: key settings.network.hostnme: unknown key", wantLine: 2, wantKey: "settings.network.hostnme"},
		{name: "datetime where a string belongs",
			data:    []byte("[settings]\nmotd = 2024-01-01T00:00:00Z\n"),
			wantErr: "ud: line 2: key settings.motd: expected string, got datetime", wantLine: 2, wantKey: "settings.motd"},
		{name: "array of tables",
			data:    []byte("[[settings.network]]\nhostname = \"a\"\n"),
			wantErr: "key settings.network: expected a table, got array", wantLine: 1, wantKey: "settings.network"},
		{name: "duplicate key",
			data:    []byte("[settings]\nmotd = \"a\"\nmotd = \"b\"\n"),
			wantErr: "ud: line 3: key settings.motd: ", wantLine: 3},
		{name: "unknown key differing in case only",
			data:    []byte("[settings]\nMOTD = \"x\"\n"),
			wantErr: "unknown key", wantLine: 2, wantKey: "settings.MOTD"},
		{name: "unknown top-level table",
			data:    []byte("[settings]\nmotd = \"x\"\n[kubernetes]\nx = 1\n"),
			wantErr: "ud: line 3: key kubernetes: unknown key", wantLine: 3, wantKey: "kubernetes"},
		{name: "wrong type",
			data:    []byte("[settings]\n\nmotd = 42\n"),
			wantErr: "ud: line 3: key settings.motd: expected string, got integer", wantLine: 3, wantKey: "settings.motd"},
		{name: "table where a value belongs",
			data:    []byte("[settings.motd]\nx = 1\n"),
			wantErr: "expected string, got table", wantLine: 1, wantKey: "settings.motd"},
		{name: "settings not a table",
			data:    []byte("settings = \"x\"\n"),
			wantErr: "ud: line 1: key settings: expected a table", wantLine: 1, wantKey: "settings"},
		{name: "invalid hostname",
			data:    []byte("[settings.network]\n# comment\nhostname = \"-bad\"\n"),
			wantErr: "ud: line 3: key settings.network.hostname: ", wantLine: 3, wantKey: "settings.network.hostname"},
		{name: "inline table",
			data:    []byte("[settings]\nnetwork = { hostname = 7 }\n"),
			wantErr: "key settings.network.hostname: expected string", wantKey: "settings.network.hostname"},
		{name: "too large",
			data:    []byte("[settings]\nmotd = \"x\"\n" + strings.Repeat("#", MaxSize)),
			wantErr: "ud: 65558 bytes is more than the 65536 allowed"},
		{name: "too large after gzip",
			data:    gz(t, "[settings]\n"+strings.Repeat("#", MaxSize)),
			wantErr: "ud: more than the 65536 bytes allowed after decompression"},
		{name: "torn gzip",
			data:    gz(t, "[settings]\nmotd = \"zipped\"\n")[:15],
			wantErr: "ud: gzip: "},
		{name: "json",
			data: []byte(` {"settings":{"motd":"from json","network":{"hostname":"j"}}}`),
			want: settings.Settings{Motd: ptr("from json"), Network: &settings.Network{Hostname: ptr[settings.Hostname]("j")}}},
		{name: "gzip json",
			data: gz(t, `{"settings":{"motd":"zipped json"}}`),
			want: settings.Settings{Motd: ptr("zipped json")}},
		{name: "json syntax",
			data:    []byte("{\"settings\":\n{\"motd\": }}"),
			wantErr: "ud: line 2: invalid JSON", wantLine: 2},
		{name: "json unknown top key",
			data:    []byte(`{"settings":{},"kubernetes":{}}`),
			wantErr: "ud: key kubernetes: unknown key", wantKey: "kubernetes"},
		{name: "json wrong type",
			data:    []byte(`{"settings":{"kernel":{"sysctl":{"vm.x":1}}}}`),
			wantErr: `ud: key settings.kernel.sysctl."vm.x": expected string, got integer`, wantKey: `settings.kernel.sysctl."vm.x"`},
		{name: "toml sysctl",
			data: []byte("[settings.kernel.sysctl]\n\"net.ipv4.ip_forward\" = \"1\"\n"),
			want: settings.Settings{Kernel: &settings.Kernel{Sysctl: map[settings.SysctlKey]settings.SysctlValue{"net.ipv4.ip_forward": "1"}}}},
		{name: "toml bad sysctl value",
			data:    []byte("[settings.kernel.sysctl]\n\n\"net.ipv4.ip_forward\" = 1\n"),
			wantErr: `ud: line 3: key settings.kernel.sysctl."net.ipv4.ip_forward": expected string, got integer`, wantLine: 3},
		{name: "toml array of tables for routes",
			data: []byte("[[settings.network.interfaces.eth0.routes]]\nto = \"default\"\nvia = \"10.0.0.1\"\n"),
			want: settings.Settings{Network: &settings.Network{Interfaces: map[settings.InterfaceName]*settings.Interface{"eth0": {Routes: []settings.Route{{To: ptr[settings.RouteDestination]("default"), Via: ptr[settings.IPAddress]("10.0.0.1")}}}}}}},
		{name: "toml hosts pairs",
			data: []byte("[settings.network]\nhosts = [[\"10.0.0.1\", [\"db\"]]]\n"),
			want: settings.Settings{Network: &settings.Network{Hosts: []settings.HostsEntry{{Address: "10.0.0.1", Names: []settings.Hostname{"db"}}}}}},
		{name: "toml bad host container",
			data:    []byte("[settings.host-containers.admin]\nenabled = true\nsource = \"bad//image\"\n"),
			wantErr: "ud: line 3: key settings.host-containers.admin.source: ", wantLine: 3, wantKey: "settings.host-containers.admin.source"},
		{name: "motd too long",
			data:    []byte("[settings]\nmotd = \"" + strings.Repeat("a", settings.MaxMotdBytes+1) + "\"\n"),
			wantErr: "ud: line 2: key settings.motd: 4097 bytes", wantLine: 2, wantKey: "settings.motd"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := Parse("ud", tt.data)
			if tt.wantErr == "" {
				if err != nil {
					t.Fatalf("Parse: %v", err)
				}
				if !reflect.DeepEqual(got, tt.want) {
					t.Fatalf("Parse = %+v, want %+v", got, tt.want)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("Parse error = %v, want it to contain %q", err, tt.wantErr)
			}
			var ue *Error
			if !errors.As(err, &ue) {
				t.Fatalf("Parse error %T is not *Error", err)
			}
			if ue.Line != tt.wantLine && tt.wantLine != 0 {
				t.Errorf("Line = %d, want %d", ue.Line, tt.wantLine)
			}
			if ue.Key != tt.wantKey && tt.wantKey != "" {
				t.Errorf("Key = %q, want %q", ue.Key, tt.wantKey)
			}
			if !got.IsEmpty() {
				t.Errorf("Parse returned settings %+v with an error", got)
			}
		})
	}
}
