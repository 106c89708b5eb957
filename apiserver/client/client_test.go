package client

import (
	"reflect"
	"strings"
	"testing"
)

func TestPatchFromPairs(t *testing.T) {
	tests := []struct {
		pairs   []string
		want    string
		wantErr string
	}{
		{[]string{"motd=hi"}, `{"motd":"hi"}`, ""},
		{[]string{"settings.motd=a=b"}, `{"motd":"a=b"}`, ""},
		{[]string{"motd="}, `{"motd":""}`, ""},
		{[]string{"network.hostname=h", "motd=m"}, `{"motd":"m","network":{"hostname":"h"}}`, ""},
		{[]string{"settings.network.hostname=h"}, `{"network":{"hostname":"h"}}`, ""},
		{nil, "", "nothing to set"},
		{[]string{"motd"}, "", "want key=value"},
		{[]string{"=x"}, "", "want key=value"},
		{[]string{"network..hostname=x"}, "", "empty segment"},
		{[]string{"host-containers.admin.enabled=true", "container-runtime.max-concurrent-downloads=3"},
			`{"container-runtime":{"max-concurrent-downloads":3},"host-containers":{"admin":{"enabled":true}}}`, ""},
		{[]string{"kernel.sysctl.net.ipv4.ip_forward=1"}, `{"kernel":{"sysctl":{"net.ipv4.ip_forward":"1"}}}`, ""},
		{[]string{`settings.kernel.sysctl."net.ipv4.ip_forward"=1`}, `{"kernel":{"sysctl":{"net.ipv4.ip_forward":"1"}}}`, ""},
		{[]string{`dns.name-servers=["10.0.0.2"]`}, `{"dns":{"name-servers":["10.0.0.2"]}}`, ""},
		{[]string{"network.hostnme=x"}, `{"network":{"hostnme":"x"}}`, ""}, // the server names unknown keys
		{[]string{"host-containers.admin.enabled=sure"}, "", `"sure" is not true or false`},
		{[]string{"settings=x"}, "", "want a JSON value"},
		{[]string{"motd=a", "motd=b"}, "", "set twice"},
		{[]string{"network=a", "network.hostname=b"}, "", "network"},
	}
	for _, tt := range tests {
		got, err := PatchFromPairs(tt.pairs)
		if tt.wantErr != "" {
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("PatchFromPairs(%q) error = %v, want %q", tt.pairs, err, tt.wantErr)
			}
			continue
		}
		if err != nil || string(got) != tt.want {
			t.Errorf("PatchFromPairs(%q) = %s, %v; want %s", tt.pairs, got, err, tt.want)
		}
	}
}

func TestFilter(t *testing.T) {
	tree := map[string]any{
		"settings": map[string]any{"motd": "m", "network": map[string]any{"hostname": "h"}},
		"os":       map[string]any{"version": "1"},
	}
	tests := []struct {
		prefix string
		want   map[string]any
	}{
		{"", tree},
		{"os", map[string]any{"os": map[string]any{"version": "1"}}},
		{"settings.motd", map[string]any{"settings": map[string]any{"motd": "m"}}},
		{"settings.network", map[string]any{"settings": map[string]any{"network": map[string]any{"hostname": "h"}}}},
		{"settings.network.hostname", map[string]any{"settings": map[string]any{"network": map[string]any{"hostname": "h"}}}},
		{"settings.mo", map[string]any{}},
		{"settings.motd.x", map[string]any{}},
		{"nope", map[string]any{}},
	}
	for _, tt := range tests {
		if got := Filter(tree, tt.prefix); !reflect.DeepEqual(got, tt.want) {
			t.Errorf("Filter(%q) = %v, want %v", tt.prefix, got, tt.want)
		}
	}
}
