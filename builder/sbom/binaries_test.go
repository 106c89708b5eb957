package sbom

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ballast-os/ballast/tests/testutil"
)

// testBinaries are real Go executables built for a test: a stdlib-only tool, one whose modules are
// swapped by replace directives, and Ballast's own CLI.
type testBinaries struct {
	hello, replaced, ballast string
}

// testModule is a temporary module that needs no network: its directory replacement lives beside it,
// and its module replacement points at a version this repository already requires, so it is in the
// module cache.
func testModule() map[string]string {
	return map[string]string{
		"go.mod": `module example.com/hello

go 1.26

require (
	example.com/greet v0.0.0
	github.com/BurntSushi/toml v1.5.0
)

replace example.com/greet => ./greet

replace github.com/BurntSushi/toml v1.5.0 => github.com/BurntSushi/toml v1.6.0
`,
		"greet/go.mod":   "module example.com/greet\n\ngo 1.26\n",
		"greet/greet.go": "package greet\n\nfunc Hello() string { return \"hello\" }\n",
		"cmd/hello/main.go": `package main

import (
	"fmt"
	"strings"
)

func main() { fmt.Println(strings.ToUpper("hi")) }
`,
		"cmd/replaced/main.go": `package main

import (
	"fmt"

	"example.com/greet"
	"github.com/BurntSushi/toml"
)

func main() {
	var v map[string]any
	_, err := toml.Decode("a = 1", &v)
	fmt.Println(greet.Hello(), v, err)
}
`,
	}
}

func buildTestBinaries(t *testing.T) testBinaries {
	t.Helper()
	testutil.Tool(t, "go", "golang-go, or Go from https://go.dev/dl")
	out := t.TempDir()
	bins := testBinaries{
		hello:    filepath.Join(out, "hello"),
		replaced: filepath.Join(out, "replaced"),
		ballast:  filepath.Join(out, "ballast"),
	}
	// Ballast first: building it fetches toml v1.6.0 into the module cache if it is not there yet.
	repo, err := filepath.Abs(filepath.Join("..", ".."))
	if err != nil {
		t.Fatal(err)
	}
	goBuild(t, repo, nil, "-o", bins.ballast, "./builder/cmd/ballast")

	mod := t.TempDir()
	for name, text := range testModule() {
		p := filepath.Join(mod, filepath.FromSlash(name))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	offline := []string{"GOFLAGS=-mod=mod", "GOPROXY=off", "GOSUMDB=off", "GOWORK=off"}
	goBuild(t, mod, offline, "-o", out+"/", "./cmd/hello", "./cmd/replaced")
	return bins
}

func goBuild(t *testing.T, dir string, env []string, args ...string) {
	t.Helper()
	cmd := exec.Command("go", append([]string{"build", "-trimpath", "-buildvcs=false"}, args...)...)
	cmd.Dir = dir
	cmd.Env = append(append(os.Environ(), "CGO_ENABLED=0"), env...)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build %s in %s: %v\n%s", strings.Join(args, " "), dir, err, out)
	}
}
