package gocomponents

import (
	"context"
	"encoding/json"
	"fmt"
	"os/exec"
	"strings"
)

// module is the part of `go mod download -json` output the build uses.
type module struct {
	Dir   string
	Sum   string
	Error string
}

// download fetches the pinned module into the private module cache and refuses it unless its h1:
// hash is the pinned one. Nothing else about the source is trusted: the module's own go.sum then
// vouches for its dependencies.
func download(ctx context.Context, c Component, dirs cacheDirs, g goInfo) (module, error) {
	var m module
	cmd := exec.CommandContext(ctx, "go", "mod", "download", "-json", c.Module+"@"+c.Version)
	// Run outside any module, so no go.mod or go.work around the cache decides anything.
	cmd.Dir = dirs.root
	cmd.Env = goEnv(dirs, g, []string{"GOFLAGS=-modcacherw", "GOWORK=off", "GOTOOLCHAIN=local"})
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	// On failure go still prints the JSON object, whose Error field says more than the exit status.
	if jerr := json.Unmarshal(out, &m); jerr != nil && err == nil {
		return m, fmt.Errorf("go mod download: %w", jerr)
	}
	if err != nil || m.Error != "" {
		msg := m.Error
		if msg == "" {
			msg = strings.TrimSpace(stderr.String())
		}
		if msg == "" {
			msg = err.Error()
		}
		if strings.Contains(msg, "requires go >=") {
			// GOTOOLCHAIN=local forbids fetching a newer Go mid-build, on purpose: the cache key
			// names the local one.
			msg += ": pin an older version or install a newer Go"
		}
		return m, fmt.Errorf("go mod download %s@%s: %s", c.Module, c.Version, msg)
	}
	if m.Sum != c.Sum {
		return m, fmt.Errorf("module %s@%s has hash %s, but the pin file says %s", c.Module, c.Version, m.Sum, c.Sum)
	}
	return m, nil
}
