package debian

import (
	"fmt"
	"strings"
	"testing"
)

// fixtureStanza writes one Packages paragraph; the hash and size are made up, since the resolver
// never looks at them.
func fixtureStanza(name, version, arch string, fields ...string) string {
	var b strings.Builder
	fmt.Fprintf(&b, "Package: %s\nVersion: %s\nArchitecture: %s\n", name, version, arch)
	for _, f := range fields {
		b.WriteString(f + "\n")
	}
	fmt.Fprintf(&b, "Filename: pool/main/%c/%s/%s_%s_%s.deb\nSize: 1000\nSHA256: %s\n\n", name[0], name, name, version, arch, strings.Repeat("ab", 32))
	return b.String()
}

// fixtureIndex is a small archive: "main" and a "security" source with a newer libc6.
func fixtureIndex(t *testing.T) *Index {
	t.Helper()
	main := strings.Join([]string{
		fixtureStanza("app", "1.0-1", "amd64",
			"Depends: libc6 (>= 2.36), mail-transport-agent | exim4, awk, libfoo1:any (>= 1.0)"),
		fixtureStanza("libc6", "2.36-9", "amd64", "Priority: optional", "Multi-Arch: same"),
		fixtureStanza("exim4-daemon-light", "4.96-15", "amd64", "Priority: standard", "Provides: mail-transport-agent"),
		fixtureStanza("postfix", "3.7.11-0", "amd64", "Priority: optional", "Provides: mail-transport-agent"),
		fixtureStanza("mawk", "1.3.4", "amd64", "Priority: required", "Provides: awk"),
		fixtureStanza("gawk", "1:5.2.1-2", "amd64", "Priority: optional", "Provides: awk"),
		fixtureStanza("libfoo1", "1.2-1", "amd64", "Provides: foo-abi (= 2.1)"),
		fixtureStanza("libbar1", "9.0-1", "amd64", "Provides: foo-abi"),
		fixtureStanza("needs-abi", "1", "all", "Depends: foo-abi (>= 2)"),
		fixtureStanza("needs-bar", "1", "all", "Depends: foo-abi"),
		fixtureStanza("cyc-a", "1", "all", "Depends: cyc-b"),
		fixtureStanza("cyc-b", "1", "all", "Depends: cyc-a (= 1), cyc-b"),
		fixtureStanza("tool", "2.0", "amd64", "Pre-Depends: dpkg (>= 1.19)", "Depends: debconf (>= 0.5) | debconf-2.0, perl:any"),
		fixtureStanza("dpkg", "1.21.22", "amd64", "Essential: yes"),
		fixtureStanza("debconf", "1.5.82", "all"),
		fixtureStanza("perl", "5.36.0-7", "amd64", "Depends: perl-base (= 5.36.0-7)"),
		fixtureStanza("perl-base", "5.36.0-7", "amd64"),
		fixtureStanza("old", "1.0", "amd64", "Depends: libc6 (>= 2.40)"),
		fixtureStanza("missing", "1.0", "amd64", "Depends: libc6, nothere"),
		fixtureStanza("missing-alts", "1.0", "amd64", "Depends: nothere | notthere"),
		fixtureStanza("fallback", "1.0", "amd64", "Depends: nothere | libc6 (>= 3) | libfoo1"),
		fixtureStanza("badfield", "1.0", "amd64", "Depends: Not A Name"),
		fixtureStanza("wine32", "1.0", "i386"),
		fixtureStanza("uses-wine", "1.0", "amd64", "Depends: wine32"),
	}, "")
	security := fixtureStanza("libc6", "2.36-9+deb12u10", "amd64") +
		fixtureStanza("postfix", "3.7.10-0+deb12u1", "amd64", "Provides: mail-transport-agent")
	idx := NewIndex("amd64")
	for _, src := range []struct{ name, text string }{{"main", main}, {"security", security}} {
		entries, err := ParsePackages(strings.NewReader(src.text), src.name)
		if err != nil {
			t.Fatal(err)
		}
		idx.Add(entries...)
	}
	return idx
}

func TestResolve(t *testing.T) {
	idx := fixtureIndex(t)
	cases := []struct {
		name    string
		wanted  []string
		exclude []string
		want    string // "name version source <- required_by" lines, or the error texts
		err     []string
	}{
		{
			name:   "virtual and alternatives",
			wanted: []string{"app"},
			want: `app 1.0-1 main
exim4-daemon-light 4.96-15 main <- app
libc6 2.36-9+deb12u10 security <- app
libfoo1 1.2-1 main <- app
mawk 1.3.4 main <- app`,
		},
		{
			name:   "an already selected alternative wins",
			wanted: []string{"app", "gawk", "postfix"},
			want: `app 1.0-1 main
gawk 1:5.2.1-2 main <- app
libc6 2.36-9+deb12u10 security <- app
libfoo1 1.2-1 main <- app
postfix 3.7.11-0 main <- app`,
		},
		{
			name:    "exclude",
			wanted:  []string{"tool"},
			exclude: []string{"dpkg", "debconf", "perl-base"},
			want: `perl 5.36.0-7 main <- tool
tool 2.0 main`,
		},
		{
			name:   "without exclude",
			wanted: []string{"tool"},
			want: `debconf 1.5.82 main <- tool
dpkg 1.21.22 main <- tool
perl 5.36.0-7 main <- tool
perl-base 5.36.0-7 main <- perl
tool 2.0 main`,
		},
		{
			name:   "cycle",
			wanted: []string{"cyc-a"},
			want: `cyc-a 1 main <- cyc-b
cyc-b 1 main <- cyc-a`,
		},
		{
			name:   "versioned virtual needs a versioned provides",
			wanted: []string{"needs-abi"},
			want: `libfoo1 1.2-1 main <- needs-abi
needs-abi 1 main`,
		},
		{
			name:   "unversioned virtual",
			wanted: []string{"needs-bar"},
			want: `libbar1 9.0-1 main <- needs-bar
needs-bar 1 main`,
		},
		{
			name:   "alternatives fall through missing and too old",
			wanted: []string{"fallback"},
			want: `fallback 1.0 main
libfoo1 1.2-1 main <- fallback`,
		},
		{
			name:   "missing",
			wanted: []string{"missing"},
			err:    []string{"package nothere not found (required by missing 1.0, Depends: nothere)"},
		},
		{
			name:   "missing alternatives",
			wanted: []string{"missing-alts"},
			err:    []string{"none of nothere | notthere found (required by missing-alts 1.0, Depends)"},
		},
		{
			name:   "too old",
			wanted: []string{"old"},
			err:    []string{"package old 1.0, Depends: libc6 (>= 2.40): unsatisfiable: candidate libc6 2.36-9+deb12u10 does not satisfy libc6 (>= 2.40)"},
		},
		{
			name:   "every problem is reported",
			wanted: []string{"old", "missing", "nope"},
			err:    []string{"libc6 (>= 2.40)", "package nothere not found", "package nope not found in the index"},
		},
		{
			name:   "wanted virtual",
			wanted: []string{"awk"},
			err:    []string{"package awk is virtual, provided by gawk, mawk"},
		},
		{
			name:    "wanted and excluded",
			wanted:  []string{"dpkg"},
			exclude: []string{"dpkg"},
			err:     []string{"package dpkg is both wanted and excluded"},
		},
		{
			name:   "other architectures are not in the index",
			wanted: []string{"uses-wine"},
			err:    []string{"package wine32 not found (required by uses-wine 1.0"},
		},
		{
			name:   "malformed dependency field",
			wanted: []string{"badfield"},
			err:    []string{"package badfield 1.0: Depends:", "bad package name"},
		},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got, err := Resolve(idx, c.wanted, ResolveOptions{Exclude: c.exclude})
			if len(c.err) > 0 {
				if err == nil {
					t.Fatalf("got %v, want an error", got)
				}
				t.Log(err)
				for _, e := range c.err {
					if !strings.Contains(err.Error(), e) {
						t.Errorf("error %q lacks %q", err, e)
					}
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			var lines []string
			for _, p := range got {
				// The pin records the entry's architecture: amd64's own, or all.
				if !strings.HasSuffix(p.Filename, "_"+p.Arch+".deb") || (p.Arch != "amd64" && p.Arch != ArchAll) {
					t.Errorf("%s pinned with arch %q, file %s", p.Name, p.Arch, p.Filename)
				}
				l := fmt.Sprintf("%s %s %s", p.Name, p.Version, p.Source)
				if len(p.RequiredBy) > 0 {
					l += " <- " + strings.Join(p.RequiredBy, ",")
				}
				lines = append(lines, l)
			}
			if s := strings.Join(lines, "\n"); s != c.want {
				t.Errorf("got\n%s\nwant\n%s", s, c.want)
			}
		})
	}
}

func TestResolveIsDeterministic(t *testing.T) {
	idx := fixtureIndex(t)
	first, err := Resolve(idx, []string{"app", "tool", "cyc-a"}, ResolveOptions{})
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 20; i++ {
		again, err := Resolve(idx, []string{"cyc-a", "tool", "app"}, ResolveOptions{})
		if err != nil || fmt.Sprint(again) != fmt.Sprint(first) {
			t.Fatalf("run %d differs:\n%v\n%v", i, again, first)
		}
	}
}
