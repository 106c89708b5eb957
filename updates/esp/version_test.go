package esp

import (
	"os/exec"
	"strings"
	"testing"

	"github.com/ballast-os/ballast/tests/testutil"
)

// versionCases are pairs with the order the UAPI Version Format Specification gives them.
var versionCases = []struct {
	a, b string
	want int
}{
	{"11", "11", 0},
	{"systemd-123", "systemd-123", 0},
	{"bar-123", "foo-123", -1},
	{"123a", "123", 1},
	{"123.a", "123", 1},
	{"123.a", "123.b", -1},
	{"123a", "123.a", 1},
	{"A", "a", -1},
	{"", "0", -1},
	{"0.", "0", 1},
	{"0.0", "0", 1},
	{"0", "~", 1},
	{"1.0~", "1.0", -1},
	{"1_", "1", 0},
	{"_1", "1", 0},
	{"1_", "1.2", -1},
	{"1_2_3", "1.3.3", 1},
	{"1+", "1", 0},
	{"+1", "1", 0},
	{"1+2+3", "1.3.3", 1},
	{"1.0~rc1", "1.0", -1},
	{"1.0^post", "1.0", 1},
	{"1.0-1", "1.0.1", -1},
	{"007", "7", 0},
	{"10", "9", 1},
	{"123456789012345678901234567890", "123456789012345678901234567889", 1},
	// Entry names: the generation decides, whatever the version and counter.
	{"ballast-10-a-1.0.efi", "ballast-9-b-2.0.efi", 1},
	{"ballast-3-a-1.5+3.efi", "ballast-2-b-2.0.efi", 1},
	{"ballast-2-b-2.0+2-1.efi", "ballast-2-b-2.0+1-2.efi", 1},
	{"ballast-2-b-2.0.0-rc1.efi", "ballast-2-b-2.0.0.efi", -1},
}

func TestCompareVersions(t *testing.T) {
	for _, tc := range versionCases {
		if got := CompareVersions(tc.a, tc.b); got != tc.want {
			t.Errorf("CompareVersions(%q, %q) = %d, want %d", tc.a, tc.b, got, tc.want)
		}
		if got := CompareVersions(tc.b, tc.a); got != -tc.want {
			t.Errorf("CompareVersions(%q, %q) = %d, want %d (swapped)", tc.b, tc.a, got, -tc.want)
		}
	}
}

// TestCompareVersionsSystemd checks the order against systemd's own implementation of the
// specification (systemd-analyze compare-versions, whose exit code is 12 for <, 0 for =, 11 for >).
func TestCompareVersionsSystemd(t *testing.T) {
	analyze := testutil.Tool(t, "systemd-analyze", "systemd")
	for _, tc := range versionCases {
		if tc.a == "" || tc.b == "" || strings.HasPrefix(tc.a, "-") || strings.HasPrefix(tc.b, "-") {
			continue // not something a command line passes through as an argument
		}
		err := exec.Command(analyze, "compare-versions", tc.a, tc.b).Run()
		code := 0
		if ee, ok := err.(*exec.ExitError); ok {
			code = ee.ExitCode()
		} else if err != nil {
			t.Fatalf("systemd-analyze: %v", err)
		}
		want, known := map[int]int{12: -1, 0: 0, 11: 1}[code]
		if !known {
			t.Fatalf("systemd-analyze compare-versions %q %q: exit code %d", tc.a, tc.b, code)
		}
		if got := CompareVersions(tc.a, tc.b); got != want {
			t.Errorf("CompareVersions(%q, %q) = %d, systemd-analyze says %d (exit %d)", tc.a, tc.b, got, want, code)
		}
	}
}
