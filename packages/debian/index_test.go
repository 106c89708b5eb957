package debian

import (
	"strings"
	"testing"
)

func TestParsePackages(t *testing.T) {
	hash := strings.Repeat("ab", 32)
	good := "Package: libc6\r\nVersion: 2.36-9\nArchitecture: amd64\nDepends: libgcc-s1,\n libc-bin (= 2.36-9)\n" +
		"Provides: libc6-abi (= 2.36)\nFilename: pool/main/g/glibc/libc6_2.36-9_amd64.deb\nSize: 2757936\nSHA256: " + hash +
		"\nSource: glibc\nPriority: optional\nMulti-Arch: same\nDescription: GNU C Library\n more text\n .\n even more\n" +
		"\n\n# a comment\nPackage: base-files\nVersion: 12.4+deb12u5\nArchitecture: amd64\nEssential: yes\n" +
		"Filename: pool/main/b/base-files/base-files_12.4+deb12u5_amd64.deb\nSize: 70000\nsha256: " + hash + "\n"
	entries, err := ParsePackages(strings.NewReader(good), "main")
	if err != nil {
		t.Fatal(err)
	}
	if len(entries) != 2 {
		t.Fatalf("got %d entries", len(entries))
	}
	e := entries[0]
	if e.Name != "libc6" || e.Version.String() != "2.36-9" || e.SourcePkg != "glibc" || e.Size != 2757936 ||
		e.MultiArch != "same" || e.Origin != "main" || len(e.Provides) != 1 || e.Provides[0].Name != "libc6-abi" {
		t.Errorf("libc6 parsed as %+v", e)
	}
	if deps, err := ParseDepends(e.Depends); err != nil || len(deps) != 2 || deps[1][0].String() != "libc-bin (= 2.36-9)" {
		t.Errorf("folded Depends %q parsed as %v, %v", e.Depends, deps, err)
	}
	if b := entries[1]; !b.Essential || b.SourcePkg != "base-files" || b.SHA256 != hash {
		t.Errorf("base-files parsed as %+v", b)
	}

	bad := []struct{ name, text, want string }{
		{"no package", "Version: 1\n", "line 1: bad or missing Package"},
		{"bad version", strings.Replace(good, "Version: 2.36-9", "Version: x", 1), "line 1: package libc6: version \"x\""},
		{"no filename", strings.Replace(good, "Filename: pool/main/g", "X-Filename: pool/main/g", 1), "Architecture and Filename are required"},
		{"bad size", strings.Replace(good, "Size: 70000", "Size: -1", 1), "line 20: package base-files: bad Size"},
		{"bad sha256", strings.Replace(good, "SHA256: "+hash, "SHA256: ABC", 1), "SHA256 \"ABC\""},
		{"bad provides", strings.Replace(good, "(= 2.36)", "(>= 2.36)", 1), "package libc6: provides"},
		{"duplicate field", "Package: a1\nPackage: a2\n", "line 2: field Package given twice"},
		{"stray continuation", " text\n", "line 1: continuation line without a field"},
		{"no colon", "Package a1\n", "line 1: want \"Field: value\""},
	}
	for _, c := range bad {
		t.Run(c.name, func(t *testing.T) {
			if _, err := ParsePackages(strings.NewReader(c.text), "main"); err == nil || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("got %v, want error with %q", err, c.want)
			}
		})
	}
}

func TestIndexKeepsHighestVersion(t *testing.T) {
	entry := func(name, version, arch, origin string) Entry {
		v, err := ParseVersion(version)
		if err != nil {
			t.Fatal(err)
		}
		return Entry{Name: name, Version: v, Architecture: arch, Origin: origin}
	}
	idx := NewIndex("amd64")
	idx.Add(
		entry("libc6", "2.36-9", "amd64", "main"),
		entry("libc6", "2.36-9+deb12u10", "amd64", "security"),
		entry("libc6", "2.36-9+deb12u4", "amd64", "updates"),
		entry("tzdata", "2025b-0+deb12u1", "all", "main"),
		entry("tzdata", "2025b-0+deb12u1", "all", "updates"), // a tie keeps the earlier source
		entry("wine", "8.0", "i386", "main"),
	)
	cases := []struct{ name, version, origin string }{
		{"libc6", "2.36-9+deb12u10", "security"},
		{"tzdata", "2025b-0+deb12u1", "main"},
	}
	for _, c := range cases {
		e, ok := idx.Lookup(c.name)
		if !ok || e.Version.String() != c.version || e.Origin != c.origin {
			t.Errorf("%s: got %+v, want %s from %s", c.name, e, c.version, c.origin)
		}
	}
	if _, ok := idx.Lookup("wine"); ok || idx.Len() != 2 {
		t.Errorf("an i386 package entered an amd64 index (len %d)", idx.Len())
	}
}
