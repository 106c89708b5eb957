package debian

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/BurntSushi/toml"

	"github.com/ballast-os/ballast/contract"
)

func TestLoadLock(t *testing.T) {
	hash := strings.Repeat("ab", 32)
	// legacy is a hand-pinned lock from before sources and architectures: its package is amd64's.
	legacy := `suite = "bookworm"
[[package]]
name = "a"
version = "1"
filename = "pool/a.deb"
size = 3
sha256 = "` + hash + `"
`
	// sourced is a lock from before arm64: one wanted list, no arch per package.
	sourced := `wanted = ["a"]
exclude = ["dpkg"]
[[source]]
name = "main"
url = "http://deb.example/debian"
suite = "bookworm"
component = "main"
[[package]]
name = "a"
version = "1"
source = "main"
filename = "pool/a.deb"
size = 3
sha256 = "` + hash + `"
required_by = ["b"]
`
	pkg := func(name, arch string, extra ...string) string {
		return "[[package]]\nname = \"" + name + "\"\narch = \"" + arch + "\"\nversion = \"1\"\nsource = \"main\"\nfilename = \"pool/" + name + "_" + arch +
			".deb\"\nsize = 3\nsha256 = \"" + hash + "\"\n" + strings.Join(extra, "\n") + "\n"
	}
	source := "[[source]]\nname = \"main\"\nurl = \"http://deb.example/debian\"\nsuite = \"bookworm\"\ncomponent = \"main\"\n"
	multi := "architectures = [\"amd64\", \"arm64\"]\nexclude = [\"dpkg\"]\n[wanted]\namd64 = [\"a\"]\narm64 = [\"a\", \"k\"]\n" + source +
		pkg("a", "amd64") + pkg("a", "arm64") + pkg("k", "arm64") + pkg("d", "all", `required_by = ["a:arm64", "k"]`)
	cases := []struct {
		name, text string
		find       map[contract.Arch]string // package a's arch when found for that architecture
		want       string                   // error text
	}{
		{name: "legacy", text: legacy, find: map[contract.Arch]string{contract.AMD64: "amd64"}},
		{name: "sources", text: sourced, find: map[contract.Arch]string{contract.AMD64: "amd64"}},
		{name: "architectures", text: multi, find: map[contract.Arch]string{contract.AMD64: "amd64", contract.ARM64: "arm64"}},
		{name: "arm64 only", text: "architectures = [\"arm64\"]\n" + source + pkg("a", "arm64") + pkg("d", "all"),
			find: map[contract.Arch]string{contract.ARM64: "arm64"}},
		{name: "unknown key", text: legacy + "colour = \"red\"\n", want: `unknown key "package.colour"`},
		{name: "unknown source key", text: strings.Replace(sourced, `component = "main"`, `component = "main"`+"\narch = \"x\"", 1), want: `unknown key "source.arch"`},
		{name: "unknown wanted key", text: strings.Replace(multi, "[wanted]\n", "[wanted]\nriscv64 = [\"a\"]\n", 1), want: `wanted: architecture "riscv64" is not among`},
		{name: "wanted list with architectures", text: strings.Replace(multi, "[wanted]\namd64 = [\"a\"]\narm64 = [\"a\", \"k\"]\n", "wanted = [\"a\"]\n", 1),
			want: "wanted: a lock with architectures lists wanted packages in a [wanted] table"},
		{name: "bad hash", text: strings.Replace(legacy, hash, "xyz", 1), want: "package a (amd64): sha256"},
		{name: "twice", text: legacy + strings.SplitN(legacy, "\n", 2)[1], want: "package a (amd64) listed twice"},
		{name: "twice for arm64", text: multi + pkg("k", "arm64"), want: "package k (arm64) listed twice"},
		{name: "all and arm64", text: multi + pkg("d", "arm64"), want: "package d pinned for all and for arm64"},
		{name: "arm64 and all", text: multi + pkg("k", "all"), want: "package k pinned for arm64 and for all"},
		{name: "no arch", text: strings.Replace(multi, `arch = "arm64"`, "", 1), want: `package a: arch "" is not all nor`},
		{name: "arch not locked", text: strings.Replace(multi, `["amd64", "arm64"]`, `["amd64"]`, 1), want: `wanted: architecture "arm64" is not among`},
		{name: "package arch not locked", text: strings.Replace(strings.Replace(multi, `["amd64", "arm64"]`, `["amd64"]`, 1), "arm64 = [\"a\", \"k\"]\n", "", 1),
			want: `package a: arch "arm64" is not all nor the Debian name of one of the lock's architectures [amd64]`},
		{name: "unknown architecture", text: strings.Replace(multi, `["amd64", "arm64"]`, `["amd64", "arm64", "mips"]`, 1), want: `architectures: "mips" is not one of`},
		{name: "machine name", text: strings.Replace(multi, `["amd64", "arm64"]`, `["amd64", "aarch64"]`, 1), want: `architectures: "aarch64" is not one of`},
		{name: "architecture twice", text: strings.Replace(multi, `["amd64", "arm64"]`, `["amd64", "arm64", "amd64"]`, 1), want: "architectures: amd64 listed twice"},
		{name: "no architectures", text: strings.Replace(multi, `["amd64", "arm64"]`, `[]`, 1), want: "no architectures"},
		{name: "required_by arch", text: strings.Replace(multi, "a:arm64", "a:mips", 1), want: `package d (all): required_by "a:mips"`},
		{name: "syntax", text: "suite = \n", want: "line 1"},
		{name: "no size", text: strings.Replace(legacy, "size = 3", "size = 0", 1), want: "package a (amd64): size 0"},
		{name: "climbing filename", text: strings.Replace(legacy, "pool/a.deb", "../a.deb", 1), want: "clean relative path"},
		{name: "absolute filename", text: strings.Replace(legacy, "pool/a.deb", "/pool/a.deb", 1), want: "clean relative path"},
		{name: "unknown source", text: strings.Replace(sourced, `source = "main"`, `source = "security"`, 1), want: `package a (amd64): source "security" is not one of`},
		{name: "no source", text: strings.Replace(sourced, `source = "main"`+"\n", "", 1), want: `package a (amd64): source "" is not one of`},
		{name: "source without table", text: strings.Replace(legacy, `name = "a"`, `name = "a"`+"\nsource = \"main\"", 1), want: "lock has no [[source]]"},
		{name: "source twice", text: strings.Replace(sourced, "[[package]]", "[[source]]\nname = \"main\"\nurl = \"http://x.example\"\nsuite = \"s\"\ncomponent = \"c\"\n[[package]]", 1), want: "source main listed twice"},
		{name: "source url", text: strings.Replace(sourced, "http://deb.example/debian", "ftp://deb.example/debian", 1), want: "not an http(s) URL"},
		{name: "source suite", text: strings.Replace(sourced, `suite = "bookworm"`, ``, 1), want: "source main needs suite and component"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "x.lock")
			os.WriteFile(path, []byte(c.text), 0o644)
			l, err := LoadLock(path)
			if c.want != "" {
				if err == nil || !strings.Contains(err.Error(), c.want) || !strings.Contains(err.Error(), path) {
					t.Fatalf("got %v, want error with %q and the file name", err, c.want)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			for _, a := range contract.Archs() {
				p, err := l.Find("a", a)
				want, locked := c.find[a]
				switch {
				case locked && (err != nil || p.Arch != want):
					t.Errorf("Find(a, %s) = %+v, %v; want arch %s", a, p, err, want)
				case !locked && (err == nil || !strings.Contains(err.Error(), "lock "+path+": architecture "+string(a)+" is not locked")):
					t.Errorf("Find(a, %s) in a lock without %s = %+v, %v", a, a, p, err)
				}
				if !locked {
					continue
				}
				if _, err := l.Find("nope", a); err == nil || !strings.Contains(err.Error(), "lock "+path+": package nope is not pinned for "+string(a)) {
					t.Errorf("Find(nope, %s) = %v", a, err)
				}
			}
			if c.name == "architectures" {
				if p, err := l.Find("d", contract.AMD64); err != nil || p.Arch != ArchAll {
					t.Errorf("Find(d, amd64) = %+v, %v; want the package pinned for all", p, err)
				}
				if _, err := l.Find("k", contract.AMD64); err == nil || !strings.Contains(err.Error(), "package k is not pinned for amd64") {
					t.Errorf("Find(k, amd64) = %v; k is pinned for arm64 only", err)
				}
				if w := fmt.Sprint(l.Wanted); w != "map[amd64:[a] arm64:[a k]]" {
					t.Errorf("wanted %s", w)
				}
			}
			if c.name == "sources" && fmt.Sprint(l.Wanted, l.Architectures) != "map[amd64:[a]] [amd64]" {
				t.Errorf("a lock from before arm64 reads as wanted %v, architectures %v", l.Wanted, l.Architectures)
			}
			if c.name == "legacy" {
				// Its packages for all architectures are known by their pool file name.
				all := strings.Replace(c.text, "pool/a.deb", "pool/main/a/a_1_all.deb", 1)
				os.WriteFile(path, []byte(all), 0o644)
				if l, err := LoadLock(path); err != nil || l.Packages[0].Arch != ArchAll {
					t.Errorf("a lock from before arm64 pinning an _all.deb: %+v, %v", l, err)
				}
			}
		})
	}
}

func TestRealLockFileParses(t *testing.T) {
	l, err := LoadLock("../debian.lock")
	if err != nil {
		t.Fatal(err)
	}
	for _, a := range []contract.Arch{contract.AMD64, contract.ARM64} {
		for _, n := range []string{"systemd-boot-efi", "busybox-static", "ca-certificates"} {
			if _, err := l.Find(n, a); err != nil {
				t.Error(err)
			}
		}
		// Every wanted package and its closure are pinned for the architecture.
		if _, err := l.Closure(l.Wanted[a], a); err != nil || len(l.Wanted[a]) == 0 {
			t.Errorf("%s: wanted %v: %v", a, l.Wanted[a], err)
		}
	}
}

func TestWriteLockRoundTrip(t *testing.T) {
	l := &Lock{
		Architectures: []contract.Arch{contract.AMD64, contract.ARM64},
		Wanted:        map[contract.Arch][]string{contract.ARM64: {"b"}, contract.AMD64: {"b", "a"}},
		Exclude:       []string{"dpkg"},
		Sources: []Source{
			{Name: "bookworm", URL: "http://deb.example/debian", Suite: "bookworm", Component: "main"},
			{Name: "sec", URL: "http://deb.example/debian-security", Suite: "bookworm-security", Component: "main"},
		},
		Packages: []Package{
			{Name: "b", Arch: "arm64", Version: "1:2.0-1+deb12u1", Source: "sec", Filename: "pool/main/b/b_2.0-1+deb12u1_arm64.deb", Size: 13, SHA256: strings.Repeat("ef", 32)},
			{Name: "b", Arch: "amd64", Version: "1:2.0-1+deb12u1", Source: "sec", Filename: "pool/main/b/b_2.0-1+deb12u1_amd64.deb", Size: 12, SHA256: strings.Repeat("cd", 32)},
			{Name: "a", Arch: "all", Version: "1.0~rc1", Source: "bookworm", Filename: "pool/main/a/a_1.0~rc1_all.deb", Size: 3, SHA256: strings.Repeat("ab", 32), RequiredBy: []string{"b:amd64"}},
		},
	}
	dir := t.TempDir()
	path := filepath.Join(dir, "debian.lock")
	if err := WriteLock(path, l); err != nil {
		t.Fatal(err)
	}
	first, _ := os.ReadFile(path)
	if !strings.HasPrefix(string(first), "# Debian packages pinned") {
		t.Errorf("no header comment:\n%s", first)
	}
	if strings.Index(string(first), `name = "a"`) > strings.Index(string(first), `name = "b"`) ||
		strings.Index(string(first), `arch = "amd64"`) > strings.Index(string(first), `arch = "arm64"`) {
		t.Errorf("packages not sorted by name and architecture:\n%s", first)
	}
	if !strings.Contains(string(first), "architectures = [\"amd64\", \"arm64\"]\nexclude = [\"dpkg\"]\n\n[wanted]\namd64 = [\"b\", \"a\"]\narm64 = [\"b\"]\n\n[[source]]") {
		t.Errorf("header:\n%s", first)
	}
	back, err := LoadLock(path)
	if err != nil {
		t.Fatalf("%v\n%s", err, first)
	}
	a, _ := back.Find("a", contract.ARM64)
	b, _ := back.Find("b", contract.ARM64)
	if a.Filename != l.Packages[2].Filename || a.Source != "bookworm" || fmt.Sprint(a.RequiredBy) != "[b:amd64]" || len(back.Sources) != 2 ||
		fmt.Sprint(b) != fmt.Sprint(l.Packages[0]) || fmt.Sprint(back.Wanted) != "map[amd64:[b a] arm64:[b]]" {
		t.Errorf("read back %+v, %+v, sources %+v, wanted %v", a, b, back.Sources, back.Wanted)
	}
	// Writing what was read gives the same bytes.
	if err := WriteLock(path, back); err != nil {
		t.Fatal(err)
	}
	if again, _ := os.ReadFile(path); string(again) != string(first) {
		t.Errorf("not deterministic:\n%s\n---\n%s", first, again)
	}
	if m, _ := filepath.Glob(filepath.Join(dir, ".lock-*")); len(m) != 0 {
		t.Errorf("temporary files left: %v", m)
	}

	bad := *l
	bad.Packages = append([]Package{}, l.Packages...)
	bad.Packages[0].Source = "elsewhere"
	if err := WriteLock(path, &bad); err == nil || !strings.Contains(err.Error(), "elsewhere") {
		t.Fatalf("writing an invalid lock: %v", err)
	}
	if again, _ := os.ReadFile(path); string(again) != string(first) {
		t.Error("a refused write changed the file")
	}
}

func TestTOMLString(t *testing.T) {
	for _, s := range []string{"", "plain", `"quoted"`, `back\slash`, "tab\tnew\nline\r", "\x00\x1f\x7f", "ünï ☃", "\xff"} {
		var v struct{ X string }
		if _, err := toml.Decode("X = "+tomlString(s), &v); err != nil {
			t.Errorf("%q: %v", s, err)
			continue
		}
		want := strings.ToValidUTF8(s, "\uFFFD")
		if v.X != want {
			t.Errorf("%q came back as %q", s, v.X)
		}
	}
}
