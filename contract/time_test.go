package contract

import (
	"slices"
	"strings"
	"testing"
)

func TestParseTimeConfig(t *testing.T) {
	tests := []struct {
		name, in string
		want     []string
		err      string
	}{
		{"empty", "", nil, ""},
		{"comments only", "# Rendered from settings.ntp\n\n", nil, ""},
		{"servers in order", "# c\nserver 10.0.0.1\n  server pool.ntp.org  \nserver fd00::1\n", []string{"10.0.0.1", "pool.ntp.org", "fd00::1"}, ""},
		{"unknown directive", "server a\npool b\n", nil, "line 2: want"},
		{"server without host", "server\n", nil, "line 1"},
		{"two hosts", "server a b\n", nil, "line 1"},
	}
	for _, tt := range tests {
		c, err := ParseTimeConfig([]byte(tt.in))
		if tt.err != "" {
			if err == nil || !strings.Contains(err.Error(), tt.err) {
				t.Errorf("%s: err %v, want one with %q", tt.name, err, tt.err)
			}
			continue
		}
		if err != nil || !slices.Equal(c.Servers, tt.want) {
			t.Errorf("%s: %q, %v; want %q", tt.name, c.Servers, err, tt.want)
		}
	}
}
