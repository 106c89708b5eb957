package debian

import (
	"strings"
	"testing"
)

func TestCompareVersions(t *testing.T) {
	// Each row is a < b; the test also checks b > a and that each equals itself.
	less := []struct{ a, b string }{
		{"1.0~rc1", "1.0"},
		{"1.0~rc1", "1.0~rc2"},
		{"1.0~~", "1.0~"},
		{"1.0~", "1.0"},
		{"1.0", "1.0a"},
		{"1.0a", "1.0+"},
		{"1.0", "1.0.1"},
		{"1.0", "1.0+b1"},
		{"1.0-1", "1.0-1+b1"},
		{"1.0-1", "1.0-1.1"},
		{"1.0-1", "1.0-2"},
		{"1.0-9", "1.0-10"},
		{"2.0", "1:0.9"},
		{"1:2.0", "2:0.1"},
		{"9", "10"},
		{"1.2.3", "1.10"},
		{"2.5.4-1", "2.5.4-1+deb12u1"},
		{"2.5.4-1+deb12u1", "2.5.4-1+deb12u2"},
		{"2.5.4-1+deb12u9", "2.5.4-1+deb12u10"},
		{"252.39-1~deb12u1", "252.39-1"},
		{"252.38-1~deb12u1", "252.39-1~deb12u1"},
		{"6.1.176-1", "6.1.177-1"},
		{"1:1.35.0-4+deb12u1", "1:1.35.0-4+deb12u1+b1"},
		{"1.0-a", "1.0-b"},
		{"1.0-A", "1.0-a"},
		{"1.0", "1.0-0.1"},
		{"1.18446744073709551616", "1.18446744073709551617"}, // longer than uint64
		{"0:1.0", "1:0"},
		{"2.36-9", "2.36-9+deb12u13"},
		{"1.0+dfsg", "1.0.0"},
	}
	for _, c := range less {
		if got, err := CompareVersions(c.a, c.b); err != nil || got != -1 {
			t.Errorf("compare(%q, %q) = %d, %v; want -1", c.a, c.b, got, err)
		}
		if got, err := CompareVersions(c.b, c.a); err != nil || got != 1 {
			t.Errorf("compare(%q, %q) = %d, %v; want 1", c.b, c.a, got, err)
		}
		for _, s := range []string{c.a, c.b} {
			if got, _ := CompareVersions(s, s); got != 0 {
				t.Errorf("compare(%q, itself) = %d", s, got)
			}
		}
	}
	equal := []struct{ a, b string }{
		{"1.0", "1.00"},
		{"0:1.0", "1.0"},
		{"1.0", "1.0-0"},
		{"1.001", "1.1"},
		{"01:1", "1:1"},
	}
	for _, c := range equal {
		if got, err := CompareVersions(c.a, c.b); err != nil || got != 0 {
			t.Errorf("compare(%q, %q) = %d, %v; want 0", c.a, c.b, got, err)
		}
	}
}

func TestParseVersion(t *testing.T) {
	cases := []struct {
		in   string
		want Version
		err  string
	}{
		{in: "1.0", want: Version{Upstream: "1.0"}},
		{in: "1:1.35.0-4+deb12u1+b1", want: Version{Epoch: 1, Upstream: "1.35.0", Revision: "4+deb12u1+b1"}},
		{in: "1.2-3-4", want: Version{Upstream: "1.2-3", Revision: "4"}},
		{in: "2:1.0:2-1", want: Version{Epoch: 2, Upstream: "1.0:2", Revision: "1"}},
		{in: "", err: "empty upstream"},
		{in: "a1.0", err: "must start with a digit"},
		{in: "x:1.0", err: "epoch"},
		{in: "-1:1.0", err: "epoch"},
		{in: "1.0-", err: "empty revision"},
		{in: "1.0 beta", err: `' '`},
		{in: "1.0-1_2", err: "revision"},
		{in: "1:1.0-1:2", err: "revision"},
		{in: "1.0ä", err: "upstream"},
	}
	for _, c := range cases {
		t.Run(c.in, func(t *testing.T) {
			got, err := ParseVersion(c.in)
			if c.err != "" {
				if err == nil || !strings.Contains(err.Error(), c.err) {
					t.Fatalf("got %v, %v; want error with %q", got, err, c.err)
				}
				return
			}
			if err != nil || got != c.want {
				t.Fatalf("got %+v, %v; want %+v", got, err, c.want)
			}
			if got.String() != c.in {
				t.Errorf("String() = %q", got.String())
			}
		})
	}
}
