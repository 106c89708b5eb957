package debian

import (
	"os"

	"path/filepath"
	"strings"
	"testing"

	"github.com/BurntSushi/toml"
)

func TestLoadLock(t *testing.T) {
	hash := strings.Repeat("ab", 32)
	legacy := `suite = "bookworm"
[[package]]
name = "a"
version = "1"
filename = "pool/a.deb"
size = 3
sha256 = "` + hash + `"
`
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
	cases := []struct {
		name, text, want string
	}{
		{"legacy", legacy, ""},
		{"sources", sourced, ""},
		{"unknown key", legacy + "colour = \"red\"\n", `unknown key "package.colour"`},
		{"unknown source key", strings.Replace(sourced, `component = "main"`, `component = "main"`+"\narch = \"x\"", 1), `unknown key "source.arch"`},
		{"bad hash", strings.Replace(legacy, hash, "xyz", 1), "package a: sha256"},
		{"twice", legacy + strings.SplitN(legacy, "\n", 2)[1], "package a listed twice"},
		{"syntax", "suite = \n", "line 1"},
		{"no size", strings.Replace(legacy, "size = 3", "size = 0", 1), "package a: size 0"},
		{"climbing filename", strings.Replace(legacy, "pool/a.deb", "../a.deb", 1), "clean relative path"},
		{"absolute filename", strings.Replace(legacy, "pool/a.deb", "/pool/a.deb", 1), "clean relative path"},
		{"unknown source", strings.Replace(sourced, `source = "main"`, `source = "security"`, 1), `package a: source "security" is not one of`},
		{"no source", strings.Replace(sourced, `source = "main"`+"\n", "", 1), `package a: source "" is not one of`},
		{"source without table", strings.Replace(legacy, `name = "a"`, `name = "a"`+"\nsource = \"main\"", 1), "lock has no [[source]]"},
		{"source twice", strings.Replace(sourced, "[[package]]", "[[source]]\nname = \"main\"\nurl = \"http://x.example\"\nsuite = \"s\"\ncomponent = \"c\"\n[[package]]", 1), "source main listed twice"},
		{"source url", strings.Replace(sourced, "http://deb.example/debian", "ftp://deb.example/debian", 1), "not an http(s) URL"},
		{"source suite", strings.Replace(sourced, `suite = "bookworm"`, ``, 1), "source main needs suite and component"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "x.lock")
			os.WriteFile(path, []byte(c.text), 0o644)
			l, err := LoadLock(path)
			if c.want == "" {
				if err != nil {
					t.Fatal(err)
				}
				if _, err := l.Find("a"); err != nil {
					t.Fatal(err)
				}
				if _, err := l.Find("nope"); err == nil || !strings.Contains(err.Error(), "nope is not pinned") {
					t.Fatalf("Find(nope) = %v", err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), c.want) || !strings.Contains(err.Error(), path) {
				t.Fatalf("got %v, want error with %q and the file name", err, c.want)
			}
		})
	}
}

func TestRealLockFileParses(t *testing.T) {
	l, err := LoadLock("../debian.lock")
	if err != nil {
		t.Fatal(err)
	}
	for _, n := range []string{"systemd-boot-efi", "busybox-static"} {
		if _, err := l.Find(n); err != nil {
			t.Error(err)
		}
	}
}

func TestWriteLockRoundTrip(t *testing.T) {
	l := &Lock{
		Wanted:  []string{"b", "a"},
		Exclude: []string{"dpkg"},
		Sources: []Source{
			{Name: "bookworm", URL: "http://deb.example/debian", Suite: "bookworm", Component: "main"},
			{Name: "sec", URL: "http://deb.example/debian-security", Suite: "bookworm-security", Component: "main"},
		},
		Packages: []Package{
			{Name: "b", Version: "1:2.0-1+deb12u1", Source: "sec", Filename: "pool/main/b/b_2.0-1+deb12u1_amd64.deb", Size: 12, SHA256: strings.Repeat("cd", 32)},
			{Name: "a", Version: "1.0~rc1", Source: "bookworm", Filename: "pool/main/a/a_1.0~rc1_all.deb", Size: 3, SHA256: strings.Repeat("ab", 32), RequiredBy: []string{"b"}},
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
	if strings.Index(string(first), `name = "a"`) > strings.Index(string(first), `name = "b"`) {
		t.Errorf("packages not sorted by name:\n%s", first)
	}
	back, err := LoadLock(path)
	if err != nil {
		t.Fatalf("%v\n%s", err, first)
	}
	a, _ := back.Find("a")
	if a.Filename != l.Packages[1].Filename || a.Source != "bookworm" || len(a.RequiredBy) != 1 || len(back.Sources) != 2 {
		t.Errorf("read back %+v, sources %+v", a, back.Sources)
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
