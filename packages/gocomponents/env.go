package gocomponents

import (
	"os"
	"path/filepath"
	"strings"
)

// cacheDirs are the private Go caches of component builds. Kept apart from the developer's own,
// they hold only what image builds fetched and compiled, and deleting the Ballast cache resets them.
type cacheDirs struct {
	root     string // <CacheDir>/go: working directory of go commands, outside any module
	modCache string // GOMODCACHE
	goCache  string // GOCACHE
	outputs  string // <CacheDir>/gocomponents: finished binaries by cache key
}

func newCacheDirs(cacheDir string) cacheDirs {
	root := filepath.Join(cacheDir, "go")
	return cacheDirs{
		root:     root,
		modCache: filepath.Join(root, "mod"),
		goCache:  filepath.Join(root, "build"),
		outputs:  filepath.Join(cacheDir, "gocomponents"),
	}
}

// goEnv is the environment of a go command: the caller's, less what the build controls, plus the
// private caches and the given settings (later ones win, as in exec.Cmd).
func goEnv(d cacheDirs, g goInfo, set []string) []string {
	var env []string
	for _, kv := range os.Environ() {
		k, _, _ := strings.Cut(kv, "=")
		if !isDropped(k) {
			env = append(env, kv)
		}
	}
	// GOENV=off ignores `go env -w` settings, which could otherwise slip flags past isDropped; the
	// proxy and checksum database chosen there were read by probeGo and are kept.
	env = append(env, "GOENV=off", "GOMODCACHE="+d.modCache, "GOCACHE="+d.goCache,
		"GOPROXY="+g.Proxy, "GOSUMDB="+g.SumDB)
	return append(env, set...)
}

// isDropped names the variables of the caller's environment that must not reach a component
// build: the build sets each one it needs itself. GOPROXY and GOSUMDB are passed on explicitly (see
// goInfo); the GONOSUMDB family is cleared so that no module skips the checksum database.
func isDropped(k string) bool {
	switch k {
	case "GOFLAGS", "GOOS", "GOARCH", "GOAMD64", "GOARM64", "GOEXPERIMENT", "GOWORK", "GOTOOLCHAIN",
		"GOMODCACHE", "GOCACHE", "GOENV", "GOPROXY", "GOSUMDB", "GONOSUMDB", "GONOSUMCHECK",
		"GONOSUMCHECKS", "GOPRIVATE", "GONOPROXY", "GOINSECURE",
		"CGO_ENABLED", "CC", "CXX", "CGO_CFLAGS", "CGO_CPPFLAGS", "CGO_CXXFLAGS", "CGO_LDFLAGS":
		return true
	}
	return false
}
