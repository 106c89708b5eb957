package sbom

import (
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
)

// testReadGoBinary runs under TestGoBinaries, which builds the binaries once.
func testReadGoBinary(t *testing.T, bins testBinaries) {
	tomlSum := goSumH1(t, "github.com/BurntSushi/toml v1.6.0")
	goVersion := strings.Fields(runtime.Version())[0]
	cases := []struct {
		name      string
		bin       GoBinary
		pkg       string
		main      goModule
		wantDeps  []goModule // must be among the binary's deps, exactly
		forbidden []string   // module paths that must not appear
	}{
		{
			name:     "stdlib only",
			bin:      GoBinary{Path: "/usr/bin/hello", HostPath: bins.hello},
			pkg:      "example.com/hello/cmd/hello",
			main:     goModule{Path: "example.com/hello", Devel: true},
			wantDeps: []goModule{{Path: "stdlib", Version: goVersion, Stdlib: true}},
		},
		{
			name: "replace directives",
			bin:  GoBinary{Path: "/usr/bin/replaced", HostPath: bins.replaced, DevelVersion: "1.2.3"},
			pkg:  "example.com/hello/cmd/replaced",
			main: goModule{Path: "example.com/hello", Version: "1.2.3", Devel: true},
			wantDeps: []goModule{
				{Path: "github.com/BurntSushi/toml", Version: "v1.6.0", Sum: tomlSum, Replaces: "github.com/BurntSushi/toml@v1.5.0"},
				{Path: "example.com/greet", Dir: "./greet", Replaces: "example.com/greet@v0.0.0"},
			},
		},
		{
			name: "ballast CLI",
			bin:  GoBinary{Path: "/usr/bin/ballast", HostPath: bins.ballast, DevelVersion: "0.1.0"},
			pkg:  "github.com/ballast-os/ballast/builder/cmd/ballast",
			main: goModule{Path: "github.com/ballast-os/ballast", Version: "0.1.0", Devel: true},
			wantDeps: []goModule{
				{Path: "github.com/BurntSushi/toml", Version: "v1.6.0", Sum: tomlSum},
				{Path: "stdlib", Version: goVersion, Stdlib: true},
			},
		},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got, err := readGoBinary(c.bin)
			if err != nil {
				t.Fatal(err)
			}
			if got.Package != c.pkg || got.Main != c.main || got.GoVersion != goVersion {
				t.Errorf("package %q main %+v go %q, want %q %+v %q", got.Package, got.Main, got.GoVersion, c.pkg, c.main, goVersion)
			}
			if !isSHA256(got.SHA256) {
				t.Errorf("sha256 %q", got.SHA256)
			}
			for _, want := range c.wantDeps {
				found := false
				for _, d := range got.Deps {
					found = found || d == want
				}
				if !found {
					t.Errorf("dep %+v missing from %+v", want, got.Deps)
				}
			}
		})
	}
}

func TestReadGoBinaryErrors(t *testing.T) {
	dir := t.TempDir()
	notGo := filepath.Join(dir, "script")
	if err := os.WriteFile(notGo, []byte("#!/bin/sh\necho hi\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		host, want string
	}{
		{filepath.Join(dir, "absent"), "/usr/bin/x"},
		{notGo, "/usr/bin/x"},
	} {
		_, err := readGoBinary(GoBinary{Path: "/usr/bin/x", HostPath: c.host})
		if err == nil || !strings.Contains(err.Error(), c.want) || !strings.Contains(err.Error(), c.host) {
			t.Errorf("readGoBinary(%s): %v, want an error naming %s and the file", c.host, err, c.want)
		}
	}
}

// goSumH1 reads the h1: hash of "path version" from this repository's go.sum, an independent record
// of what the toolchain should have embedded.
func goSumH1(t *testing.T, pathVersion string) string {
	t.Helper()
	data, err := os.ReadFile(filepath.Join("..", "..", "go.sum"))
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(string(data), "\n") {
		if rest, ok := strings.CutPrefix(line, pathVersion+" "); ok {
			return rest
		}
	}
	t.Fatalf("go.sum has no %s", pathVersion)
	return ""
}
