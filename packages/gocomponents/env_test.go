package gocomponents

import (
	"strings"
	"testing"
)

// The caller's environment must not be able to change what a component build produces, nor let a
// module skip the checksum database.
func TestGoEnv(t *testing.T) {
	t.Setenv("GOFLAGS", "-race")
	t.Setenv("CC", "clang")
	t.Setenv("CGO_CFLAGS", "-O0")
	t.Setenv("GONOSUMDB", "github.com")
	t.Setenv("GOPRIVATE", "github.com")
	t.Setenv("GOWORK", "/somewhere/go.work")
	t.Setenv("GOPROXY", "https://ignored.example")
	t.Setenv("PKG_CONFIG_PATH", "/host/pkgconfig")
	t.Setenv("BALLAST_TEST_KEEP", "yes")
	d := newCacheDirs("/cache")
	common := []struct{ key, want string }{
		{"GOFLAGS", "-mod=readonly -modcacherw"},
		{"CGO_CFLAGS", ""},
		{"CGO_ENABLED", "1"},
		{"GONOSUMDB", ""},
		{"GOPRIVATE", ""},
		{"GOWORK", "off"},
		{"GOTOOLCHAIN", "local"},
		{"GOENV", "off"},
		{"GOPROXY", "https://proxy.example"},
		{"GOSUMDB", "sum.golang.org"},
		{"GOMODCACHE", "/cache/go/mod"},
		{"GOCACHE", "/cache/go/build"},
		{"BALLAST_TEST_KEEP", "yes"},
	}
	cases := []struct {
		goarch, triplet string
		want            []struct{ key, want string }
	}{
		// A native build keeps the host's pkg-config search path, as it always has.
		{"amd64", "", []struct{ key, want string }{{"CC", "gcc"}, {"GOARCH", "amd64"}, {"PKG_CONFIG_PATH", "/host/pkgconfig"}, {"PKG_CONFIG_LIBDIR", ""}}},
		// A cross build sees only the target's multiarch .pc files.
		{"arm64", "aarch64-linux-gnu", []struct{ key, want string }{{"CC", "aarch64-linux-gnu-gcc"}, {"GOARCH", "arm64"}, {"PKG_CONFIG_PATH", ""},
			{"PKG_CONFIG_LIBDIR", "/usr/lib/aarch64-linux-gnu/pkgconfig:/usr/share/pkgconfig"}}},
	}
	for _, c := range cases {
		env := map[string]string{}
		for _, kv := range goEnv(d, goInfo{Proxy: "https://proxy.example", SumDB: "sum.golang.org"}, plan(Component{
			CGO: true, Binaries: []BinarySpec{{Name: "x", Package: "."}},
		}, c.goarch, c.triplet)[0].Env) {
			k, v, _ := strings.Cut(kv, "=")
			env[k] = v // later entries win, as in exec.Cmd
		}
		for _, tt := range append(common, c.want...) {
			if got := env[tt.key]; got != tt.want {
				t.Errorf("%s: %s=%q, want %q", c.goarch, tt.key, got, tt.want)
			}
		}
	}
}
