package manifest

import (
	"strings"
	"testing"
)

func TestCompare(t *testing.T) {
	for _, tc := range []struct {
		a, b string
		want int
	}{
		{"1.0.0", "1.0.0", 0},
		{"1.0", "1.0.0", 0},
		{"01.2", "1.2", 0},
		{"1.0.0", "1.0.1", -1},
		{"1.10.0", "1.9.0", 1},
		{"2", "1.99.99", 1},
		{"2.0.0-rc1", "2.0.0", -1},
		{"2.0.0", "2.0.0-rc1", 1},
		{"2.0.0-rc1", "2.0.0-rc2", -1},
		{"2.0.0-rc2", "2.0.0-rc10", -1},
		{"2.0.0-beta", "2.0.0-rc1", -1},
		{"2.0.0-rc", "2.0.0-rc1", -1},
		{"2.0.0-rc1", "1.9.9", 1},
		{"2.0.0-1", "2.0.0-rc", -1},
		{"99999999999999999999999.0", "99999999999999999999998.9", 1},
	} {
		got, err := Compare(tc.a, tc.b)
		if err != nil {
			t.Fatalf("Compare(%q, %q): %v", tc.a, tc.b, err)
		}
		if got != tc.want {
			t.Errorf("Compare(%q, %q) = %d, want %d", tc.a, tc.b, got, tc.want)
		}
		if back, _ := Compare(tc.b, tc.a); back != -tc.want {
			t.Errorf("Compare(%q, %q) = %d, want %d", tc.b, tc.a, back, -tc.want)
		}
	}
}

func TestParseVersionErrors(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"", "want letters"},
		{"1.0+2", "want letters"},
		{"1..0", "numeric fields"},
		{"v1.0", "numeric fields"},
		{"1.0a", "numeric fields"},
		{"1.0-", "empty pre-release"},
		{"latest", "numeric fields"},
	} {
		_, err := ParseVersion(tc.in)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("ParseVersion(%q) = %v, want an error containing %q", tc.in, err, tc.want)
		}
	}
}
