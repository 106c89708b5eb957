package gocomponents

import (
	"archive/zip"
	"context"
	"crypto/sha256"
	"encoding/base64"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/ballast-os/ballast/tests/testutil"
)

const testModule = "example.com/ballast/hello"

// testProxy lays out a file:// module proxy holding one version of a tiny module per entry of
// goLines (version → go directive), and returns each version's h1: hash. The build test then
// needs neither the network nor a real component.
func testProxy(t *testing.T, goLines map[string]string) (string, map[string]string) {
	t.Helper()
	root := t.TempDir()
	dir := filepath.Join(root, testModule, "@v")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	sums := map[string]string{}
	var list []string
	for v, goLine := range goLines {
		list = append(list, v)
		files := map[string]string{
			"go.mod": "module " + testModule + "\n\ngo " + goLine + "\n",
			"cmd/hello/main.go": `package main

import "os"

var version = "unset"

func main() { os.Stdout.WriteString("hello " + version + "\n") }
`,
		}
		sums[v] = writeModuleZip(t, filepath.Join(dir, v+".zip"), testModule+"@"+v, files)
		write(t, filepath.Join(dir, v+".mod"), files["go.mod"])
		write(t, filepath.Join(dir, v+".info"), fmt.Sprintf(`{"Version":%q,"Time":"2024-01-01T00:00:00Z"}`, v))
	}
	slices.Sort(list)
	write(t, filepath.Join(dir, "list"), strings.Join(list, "\n")+"\n")
	return "file://" + root, sums
}

// writeModuleZip writes a module zip and returns its go.sum hash (the h1: directory hash: sha256
// over the sorted "sha256  name" lines of its files).
func writeModuleZip(t *testing.T, name, prefix string, files map[string]string) string {
	t.Helper()
	f, err := os.Create(name)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	zw := zip.NewWriter(f)
	var lines []string
	for n, body := range files {
		full := prefix + "/" + n
		w, err := zw.Create(full)
		if err != nil {
			t.Fatal(err)
		}
		w.Write([]byte(body))
		lines = append(lines, fmt.Sprintf("%x  %s\n", sha256.Sum256([]byte(body)), full))
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	slices.Sort(lines)
	sum := sha256.Sum256([]byte(strings.Join(lines, "")))
	return "h1:" + base64.StdEncoding.EncodeToString(sum[:])
}

func write(t *testing.T, name, body string) {
	t.Helper()
	if err := os.WriteFile(name, []byte(body), 0o644); err != nil {
		t.Fatal(err)
	}
}

// TestBuildVerifiesAndCaches builds a tiny module served from a local proxy: a wrong pinned hash
// is refused, a right one builds a static binary with its version stamped in, a second build is a
// cache hit, a damaged cache entry is rebuilt, and a module needing a newer Go fails clearly.
func TestBuildVerifiesAndCaches(t *testing.T) {
	testutil.Tool(t, "go", "golang-go, or Go from https://go.dev/dl")
	proxy, sums := testProxy(t, map[string]string{"v1.0.0": "1.22", "v1.1.0": "1.99"})
	t.Setenv("GOPROXY", proxy)
	t.Setenv("GOSUMDB", "off") // the test module is in no checksum database
	cache := t.TempDir()
	o := Options{CacheDir: cache, Log: t.Logf}
	// The developer's build cache already holds the standard library; a private one would make
	// this test spend half a minute compiling it.
	if out, err := exec.Command("go", "env", "GOCACHE").Output(); err == nil && strings.TrimSpace(string(out)) != "off" {
		o.GoBuildCache = strings.TrimSpace(string(out))
	}
	ctx := context.Background()
	c := Component{
		Name:        "hello",
		Module:      testModule,
		Version:     "v1.0.0",
		Sum:         sums["v1.0.0"],
		VersionVars: []string{"main.version"},
		Binaries:    []BinarySpec{{Name: "hello", Package: "./cmd/hello", Install: "/usr/bin/hello"}},
	}

	wrong := c
	wrong.Sum = sums["v1.1.0"]
	_, err := Build(ctx, wrong, o)
	if err == nil {
		t.Fatal("a module whose hash differs from the pin was built")
	}
	for _, w := range []string{"hello v1.0.0", sums["v1.0.0"], sums["v1.1.0"]} {
		if !strings.Contains(err.Error(), w) {
			t.Errorf("hash mismatch error %q does not name %s", err, w)
		}
	}
	if m, _ := filepath.Glob(filepath.Join(cache, "gocomponents", "*")); len(m) != 0 {
		t.Errorf("a refused module left cache entries: %v", m)
	}

	first, err := Build(ctx, c, o)
	if err != nil {
		t.Fatal(err)
	}
	if first.Cached || len(first.Binaries) != 1 {
		t.Fatalf("first build: %+v", first)
	}
	bin := first.Binaries[0]
	if bin.InstallPath != "/usr/bin/hello" || !strings.HasPrefix(bin.HostPath, filepath.Join(cache, "gocomponents", first.Key)) {
		t.Errorf("binary %+v", bin)
	}
	if out, err := exec.Command(bin.HostPath).Output(); err != nil || string(out) != "hello v1.0.0\n" {
		t.Errorf("built binary says %q, %v; want the pinned version stamped in", out, err)
	}

	again, err := Build(ctx, c, o)
	if err != nil {
		t.Fatal(err)
	}
	if !again.Cached || again.Key != first.Key || again.Binaries[0] != bin {
		t.Errorf("second build was not a cache hit: %+v", again)
	}

	// A cache entry whose binary was altered is rebuilt, not served.
	if err := os.WriteFile(bin.HostPath, []byte("tampered"), 0o755); err != nil {
		t.Fatal(err)
	}
	healed, err := Build(ctx, c, o)
	if err != nil {
		t.Fatal(err)
	}
	if healed.Cached || healed.Binaries[0].SHA256 != bin.SHA256 {
		t.Errorf("damaged entry: %+v; want a rebuild giving sha256 %s", healed, bin.SHA256)
	}

	newer := c
	newer.Version, newer.Sum = "v1.1.0", sums["v1.1.0"]
	if _, err := Build(ctx, newer, o); err == nil || !strings.Contains(err.Error(), "requires go >= 1.99") ||
		!strings.Contains(err.Error(), "pin an older version") {
		t.Errorf("module needing a newer Go: %v", err)
	}
}
