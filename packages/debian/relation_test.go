package debian

import (
	"strings"
	"testing"
)

func TestParseDepends(t *testing.T) {
	cases := []struct {
		in, want, err string
	}{
		{in: "libc6 (>= 2.34), libzstd1", want: "libc6 (>= 2.34), libzstd1"},
		{in: "debconf (>= 0.5) | debconf-2.0", want: "debconf (>= 0.5) | debconf-2.0"},
		{in: "python3:any, perl:any (>= 5.10)", want: "python3, perl (>= 5.10)"},
		{in: "libfoo1(<<2~)", want: "libfoo1 (<< 2~)"},
		{in: "a1 (< 1), b1 (> 2)", want: "a1 (<= 1), b1 (>= 2)"},
		{in: "  x11 ( = 1:2-3 ) ,", want: "x11 (= 1:2-3)"},
		{in: "", want: ""},
		{in: "Libc6", err: "bad package name"},
		{in: "a", err: "bad package name"},
		{in: "libc6 (>= 2.34", err: "want"},
		{in: "libc6 (>= 2.34) x", err: "want"},
		{in: "libc6 (~= 2)", err: "unknown operator"},
		{in: "libc6 (>= x)", err: "digit"},
		{in: "a1 | ", err: "bad package name"},
	}
	for _, c := range cases {
		t.Run(c.in, func(t *testing.T) {
			deps, err := ParseDepends(c.in)
			if c.err != "" {
				if err == nil || !strings.Contains(err.Error(), c.err) {
					t.Fatalf("got %v, %v; want error with %q", deps, err, c.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			var s []string
			for _, d := range deps {
				s = append(s, d.String())
			}
			if got := strings.Join(s, ", "); got != c.want {
				t.Fatalf("got %q, want %q", got, c.want)
			}
		})
	}
}

func TestParseProvides(t *testing.T) {
	got, err := ParseProvides("awk, libfoo-abi (= 1.2-3), mail-transport-agent")
	if err != nil || len(got) != 3 || got[1].Op != "=" || got[1].Version.String() != "1.2-3" {
		t.Fatalf("got %v, %v", got, err)
	}
	if _, err := ParseProvides("awk (>= 1)"); err == nil || !strings.Contains(err.Error(), `only "="`) {
		t.Fatalf("versioned provides with >=: %v", err)
	}
}

func TestRelationSatisfied(t *testing.T) {
	v := func(s string) Version {
		x, err := ParseVersion(s)
		if err != nil {
			t.Fatal(err)
		}
		return x
	}
	cases := []struct {
		op, want, have string
		ok             bool
	}{
		{"", "", "1", true},
		{">=", "2.36", "2.36-9", true},
		{">=", "2.37", "2.36-9", false},
		{"<=", "1.0", "1.0~rc1", true},
		{"<<", "1.0", "1.0", false},
		{"<<", "1.0", "1.0~", true},
		{">>", "1.0", "1.0+b1", true},
		{">>", "1.0", "1.0", false},
		{"=", "1:2-3", "1:2-3", true},
		{"=", "1:2-3", "2-3", false},
	}
	for _, c := range cases {
		r := Relation{Name: "x1", Op: c.op}
		if c.want != "" {
			r.Version = v(c.want)
		}
		if got := r.Satisfied(v(c.have)); got != c.ok {
			t.Errorf("%s satisfied by %s = %v, want %v", r, c.have, got, c.ok)
		}
	}
}
