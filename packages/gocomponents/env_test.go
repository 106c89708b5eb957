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
	t.Setenv("BALLAST_TEST_KEEP", "yes")
	d := newCacheDirs("/cache")
	env := map[string]string{}
	for _, kv := range goEnv(d, goInfo{Proxy: "https://proxy.example", SumDB: "sum.golang.org"}, plan(Component{
		CGO: true, Binaries: []BinarySpec{{Name: "x", Package: "."}},
	}, "amd64")[0].Env) {
		k, v, _ := strings.Cut(kv, "=")
		env[k] = v // later entries win, as in exec.Cmd
	}
	tests := []struct{ key, want string }{
		{"GOFLAGS", "-mod=readonly -modcacherw"},
		{"CC", "gcc"},
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
	for _, tt := range tests {
		if got := env[tt.key]; got != tt.want {
			t.Errorf("%s=%q, want %q", tt.key, got, tt.want)
		}
	}
}
