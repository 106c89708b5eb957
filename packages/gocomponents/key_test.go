package gocomponents

import (
	"slices"
	"strings"
	"testing"
)

func keyFixture() (Component, toolchain) {
	c := Component{
		Name:        "runc",
		Module:      "github.com/opencontainers/runc",
		Version:     "v1.5.2",
		Sum:         "h1:eUUowc2WJCnFYzI87C1WqRcu356Dk/wsoi90y+2wEfE=",
		CGO:         true,
		Tags:        []string{"seccomp", "netgo"},
		VersionVars: []string{"main.version"},
		PkgConfig:   []string{"libseccomp"},
		Binaries:    []BinarySpec{{Name: "runc", Package: ".", Install: "/usr/sbin/runc"}},
	}
	tc := toolchain{
		GoVersion: "go1.26.8",
		CC:        "gcc (Debian 12.2.0-14+deb12u1) 12.2.0",
		LibC:      strings.Repeat("a", 64),
		CLibs:     []cLib{{Name: "libseccomp", Version: "2.5.4", Archives: map[string]string{"libseccomp.a": strings.Repeat("b", 64)}}},
	}
	return c, tc
}

func TestCacheKeyChangesWithEveryInput(t *testing.T) {
	base, baseTC := keyFixture()
	baseKey := cacheKey(base, "amd64", baseTC)
	tests := []struct {
		name   string
		change func(c *Component, tc *toolchain, goarch *string)
	}{
		{"module", func(c *Component, _ *toolchain, _ *string) { c.Module += "/v2" }},
		{"version", func(c *Component, _ *toolchain, _ *string) { c.Version = "v1.5.3" }},
		{"sum", func(c *Component, _ *toolchain, _ *string) { c.Sum = "h1:" + strings.Repeat("A", 43) + "=" }},
		{"cgo", func(c *Component, _ *toolchain, _ *string) { c.CGO = false }},
		{"component tag", func(c *Component, _ *toolchain, _ *string) { c.Tags = append(c.Tags, "osusergo") }},
		{"binary tag", func(c *Component, _ *toolchain, _ *string) { c.Binaries[0].Tags = []string{"no_grpc"} }},
		{"version var", func(c *Component, _ *toolchain, _ *string) { c.VersionVars = nil }},
		{"pkg-config library", func(c *Component, _ *toolchain, _ *string) { c.PkgConfig = append(c.PkgConfig, "libcap") }},
		{"binary name", func(c *Component, _ *toolchain, _ *string) { c.Binaries[0].Name = "runc2" }},
		{"binary package", func(c *Component, _ *toolchain, _ *string) { c.Binaries[0].Package = "./cmd/runc" }},
		{"another binary", func(c *Component, _ *toolchain, _ *string) {
			c.Binaries = append(c.Binaries, BinarySpec{Name: "x", Package: "./x", Install: "/x"})
		}},
		{"string var", func(c *Component, _ *toolchain, _ *string) { c.StringVars = map[string]string{"main.major": "1"} }},
		{"string var value", func(c *Component, _ *toolchain, _ *string) { c.StringVars = map[string]string{"main.major": "2"} }},
		{"wrapper go.mod", func(c *Component, _ *toolchain, _ *string) {
			c.Wrapper, c.wrapper = "wrappers/runc", wrapperFiles{GoMod: []byte("module w\n"), GoSum: []byte("a\n")}
		}},
		{"wrapper go.mod byte", func(c *Component, _ *toolchain, _ *string) {
			c.Wrapper, c.wrapper = "wrappers/runc", wrapperFiles{GoMod: []byte("module w\n\n"), GoSum: []byte("a\n")}
		}},
		{"wrapper go.sum byte", func(c *Component, _ *toolchain, _ *string) {
			c.Wrapper, c.wrapper = "wrappers/runc", wrapperFiles{GoMod: []byte("module w\n"), GoSum: []byte("b\n")}
		}},
		{"wrapper byte moved between files", func(c *Component, _ *toolchain, _ *string) {
			c.Wrapper, c.wrapper = "wrappers/runc", wrapperFiles{GoMod: []byte("module w\na"), GoSum: []byte("\n")}
		}},
		{"go version", func(_ *Component, tc *toolchain, _ *string) { tc.GoVersion = "go1.26.9" }},
		{"C compiler", func(_ *Component, tc *toolchain, _ *string) { tc.CC = "gcc (Debian 12.2.0-15) 12.2.0" }},
		{"libc", func(_ *Component, tc *toolchain, _ *string) { tc.LibC = strings.Repeat("c", 64) }},
		{"libseccomp version", func(_ *Component, tc *toolchain, _ *string) { tc.CLibs[0].Version = "2.5.5" }},
		{"libseccomp archive", func(_ *Component, tc *toolchain, _ *string) {
			tc.CLibs[0].Archives = map[string]string{"libseccomp.a": strings.Repeat("d", 64)}
		}},
		{"GOARCH", func(_ *Component, _ *toolchain, goarch *string) { *goarch = "arm64" }},
		{"cross target", func(_ *Component, tc *toolchain, goarch *string) {
			*goarch, tc.Target, tc.CC = "arm64", "aarch64-linux-gnu", "aarch64-linux-gnu-gcc (Debian 12.2.0-14+deb12u1) 12.2.0"
		}},
		{"cross compiler", func(_ *Component, tc *toolchain, goarch *string) {
			*goarch, tc.Target, tc.CC = "arm64", "aarch64-linux-gnu", "aarch64-linux-gnu-gcc (Debian 12.2.0-14+deb12u2) 12.2.0"
		}},
	}
	seen := map[string]string{baseKey: "base"}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, tc := keyFixture()
			goarch := "amd64"
			tt.change(&c, &tc, &goarch)
			k := cacheKey(c, goarch, tc)
			if prev, dup := seen[k]; dup {
				t.Fatalf("key %s is the same as for %s", k[:12], prev)
			}
			seen[k] = tt.name
		})
	}
}

// Inputs that cannot change the binaries must not force a rebuild.
func TestCacheKeyIgnoresNonInputs(t *testing.T) {
	base, tc := keyFixture()
	baseKey := cacheKey(base, "amd64", tc)
	tests := []struct {
		name   string
		change func(c *Component)
	}{
		{"install path", func(c *Component) { c.Binaries[0].Install = "/usr/bin/runc" }},
		{"tag order", func(c *Component) { slices.Reverse(c.Tags) }},
		{"repeated tag", func(c *Component) { c.Binaries[0].Tags = []string{"seccomp"} }},
		{"test-only", func(c *Component) { c.TestOnly, c.Binaries[0].TestOnly, c.Binaries[0].Install = true, true, "" }},
		{"dev-only", func(c *Component) { c.Binaries[0].DevOnly = true }},
		// The directory is where the files were read from; their bytes are the input.
		{"no string vars", func(c *Component) { c.StringVars = map[string]string{} }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, _ := keyFixture()
			tt.change(&c)
			if k := cacheKey(c, "amd64", tc); k != baseKey {
				t.Fatalf("key changed: %s, want %s", k[:12], baseKey[:12])
			}
		})
	}
}

// Keys of native amd64 builds are what they were before cross builds existed, so the caches of
// existing machines stay valid: these are the keys the code before arm64 computed.
func TestCacheKeyOfAMD64IsStable(t *testing.T) {
	c, tc := keyFixture()
	pure := c
	pure.CGO = false
	goOnly := toolchain{GoVersion: tc.GoVersion}
	tests := []struct {
		name   string
		key    string
		golden string
	}{
		{"cgo amd64", cacheKey(c, "amd64", tc), "d1f5508c7bf756ab6fb90b2469b69ee824b73e3f5b601da28b5232fc8c0c6a3e"},
		{"pure Go amd64", cacheKey(pure, "amd64", goOnly), "bd2d3dafc2960b5faf179ffd688be920fc985c9d54a774c968a6d62c2927f740"},
		{"pure Go arm64", cacheKey(pure, "arm64", goOnly), "9ac9bdfe189cdbdbc480d0ec40f96002279743e14767ca151e12b1d8ce8977fb"},
	}
	for _, tt := range tests {
		if tt.key != tt.golden {
			t.Errorf("%s: key %s, was %s", tt.name, tt.key, tt.golden)
		}
	}
}

func TestPlan(t *testing.T) {
	c, _ := keyFixture()
	c.Binaries = append(c.Binaries, BinarySpec{Name: "shim", Package: "./cmd/shim", Install: "/usr/bin/shim", Tags: []string{"no_grpc"}})
	steps := plan(c, "amd64", "")
	if len(steps) != 2 {
		t.Fatalf("got %d steps, want 2", len(steps))
	}
	tests := []struct {
		step int
		want []string // each must appear in the step's command line
	}{
		{0, []string{"CGO_ENABLED=1", "GOARCH=amd64", "GOTOOLCHAIN=local", "GOFLAGS=-mod=readonly", "-trimpath", "-buildvcs=false",
			"-buildmode=pie", "-tags=netgo,seccomp -ldflags", "-buildid=", "-X main.version=v1.5.2", "-extldflags=-static-pie", " ."}},
		{1, []string{"-tags=netgo,no_grpc,seccomp -ldflags", " ./cmd/shim"}},
	}
	for _, tt := range tests {
		line := steps[tt.step].String()
		if strings.Contains(line, "PKG_CONFIG") || !strings.Contains(line, "CC=gcc ") {
			t.Errorf("native step %d: %q", tt.step, line)
		}
		for _, w := range tt.want {
			if !strings.Contains(line, w) {
				t.Errorf("step %d: %q lacks %q", tt.step, line, w)
			}
		}
	}
	for _, s := range plan(c, "arm64", "aarch64-linux-gnu") {
		line := s.String()
		for _, w := range []string{"CC=aarch64-linux-gnu-gcc ", "GOARCH=arm64", "PKG_CONFIG_LIBDIR=/usr/lib/aarch64-linux-gnu/pkgconfig:/usr/share/pkgconfig",
			"PKG_CONFIG_PATH= ", "-extldflags=-static-pie"} {
			if !strings.Contains(line, w) {
				t.Errorf("cross step %q lacks %q", line, w)
			}
		}
	}
	c.StringVars = map[string]string{"k8s.io/v.gitMinor": "31", "k8s.io/v.buildDate": "2024-12-10T11:37:26Z", "k8s.io/v.gitMajor": "1"}
	for i := 0; i < 5; i++ { // map order varies from run to run; the command line must not
		line := plan(c, "amd64", "")[0].String()
		if want := "-X main.version=v1.5.2 -X k8s.io/v.buildDate=2024-12-10T11:37:26Z -X k8s.io/v.gitMajor=1 -X k8s.io/v.gitMinor=31 "; !strings.Contains(line, want) {
			t.Fatalf("step %q lacks %q", line, want)
		}
	}
	c.CGO = false
	for _, s := range plan(c, "amd64", "") {
		if line := s.String(); !strings.Contains(line, "CGO_ENABLED=0") || strings.Contains(line, "static-pie") || strings.Contains(line, "CC=") {
			t.Errorf("pure-Go step %q", line)
		}
	}
}
