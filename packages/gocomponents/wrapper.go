package gocomponents

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
)

// wrapperFiles is a wrapper module as the pin file's directory holds it.
type wrapperFiles struct {
	GoMod []byte
	GoSum []byte
}

// loaded says whether Load has read the files (a wrapper's go.mod is never empty).
func (w wrapperFiles) loaded() bool { return len(w.GoMod) > 0 }

// hash is what the cache key records of the files: their exact bytes decide the dependency
// versions, so any edit, even of a comment, rebuilds (the safe side).
func (w wrapperFiles) hash() string {
	if !w.loaded() {
		return ""
	}
	h := sha256.New()
	for _, b := range [][]byte{w.GoMod, w.GoSum} {
		fmt.Fprintf(h, "%d\n", len(b))
		h.Write(b)
	}
	return hex.EncodeToString(h.Sum(nil))
}

// write puts the files into dir, the directory the wrapper is built in.
func (w wrapperFiles) write(dir string) error {
	if err := os.WriteFile(filepath.Join(dir, "go.mod"), w.GoMod, 0o644); err != nil {
		return err
	}
	return os.WriteFile(filepath.Join(dir, "go.sum"), w.GoSum, 0o644)
}

// loadWrapper reads dir's go.mod and go.sum and checks that they build what c pins: go.mod
// requires exactly c.Module at c.Version and does not replace it, and go.sum carries c.Sum for it.
// Without these checks the pin's version and sum would describe something else than the build.
func loadWrapper(dir string, c Component) (wrapperFiles, error) {
	var w wrapperFiles
	var err error
	if w.GoMod, err = os.ReadFile(filepath.Join(dir, "go.mod")); err != nil {
		return w, err
	}
	if w.GoSum, err = os.ReadFile(filepath.Join(dir, "go.sum")); err != nil {
		return w, err
	}
	if err := checkWrapper(w, c); err != nil {
		return w, err
	}
	return w, nil
}

func checkWrapper(w wrapperFiles, c Component) error {
	reqs, repl, err := parseGoMod(w.GoMod)
	if err != nil {
		return fmt.Errorf("go.mod: %w", err)
	}
	switch v, ok := reqs[c.Module]; {
	case !ok:
		return fmt.Errorf("go.mod does not require %s", c.Module)
	case v != c.Version:
		return fmt.Errorf("go.mod requires %s %s, the pin says %s", c.Module, v, c.Version)
	}
	if repl[c.Module] {
		return fmt.Errorf("go.mod replaces %s: the pinned sum would not describe the source built", c.Module)
	}
	want := c.Module + " " + c.Version + " " + c.Sum
	sc := bufio.NewScanner(bytes.NewReader(w.GoSum))
	for sc.Scan() {
		if strings.TrimSpace(sc.Text()) == want {
			return nil
		}
	}
	if err := sc.Err(); err != nil {
		return fmt.Errorf("go.sum: %w", err)
	}
	return fmt.Errorf("go.sum lacks %q", want)
}

// parseGoMod reads the require and replace directives of a go.mod, single-line and blocks: module
// path → required version, and the set of replaced module paths. It reads only what the wrapper
// check needs; `go build` parses the file in full.
func parseGoMod(b []byte) (map[string]string, map[string]bool, error) {
	reqs := map[string]string{}
	repl := map[string]bool{}
	block := ""
	sc := bufio.NewScanner(bytes.NewReader(b))
	for n := 1; sc.Scan(); n++ {
		line, _, _ := strings.Cut(sc.Text(), "//")
		f := strings.Fields(line)
		if len(f) == 0 {
			continue
		}
		verb := block
		if block == "" {
			verb, f = f[0], f[1:]
			if len(f) == 1 && f[0] == "(" {
				block = verb
				continue
			}
		} else if f[0] == ")" {
			block = ""
			continue
		}
		switch verb {
		case "require":
			if len(f) != 2 {
				return nil, nil, fmt.Errorf("line %d: want `require MODULE VERSION`", n)
			}
			if old, dup := reqs[f[0]]; dup {
				return nil, nil, fmt.Errorf("line %d: %s required twice (%s and %s)", n, f[0], old, f[1])
			}
			reqs[f[0]] = f[1]
		case "replace":
			lhs, _, ok := strings.Cut(strings.Join(f, " "), "=>")
			old := strings.Fields(lhs)
			if !ok || len(old) == 0 {
				return nil, nil, fmt.Errorf("line %d: want `replace MODULE [VERSION] => ...`", n)
			}
			repl[old[0]] = true
		}
	}
	if err := sc.Err(); err != nil {
		return nil, nil, err
	}
	if block != "" {
		return nil, nil, errors.New("unterminated " + block + " block")
	}
	return reqs, repl, nil
}
