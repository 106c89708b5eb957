// Package runsclabel adapts CRI's specs for gVisor. With SELinux on, containerd's CRI gives every
// pod process a label (pod_t and the pod's categories), and runsc refuses any spec that carries
// one ("SELinux is not supported"): the sandbox is gVisor's own kernel, which no host label
// reaches. The runsc shim runs runsc through Ballast's adapter (runtime/cmd/runsc-adapter), which
// drops the process label from the bundle's config.json, and from an exec's process file, before
// it hands the command line on to runsc unchanged. The mount label stays: runsc ignores it.
package runsclabel

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
)

// maxSpecBytes bounds what is read of a spec; CRI's are a few KiB.
const maxSpecBytes = 4 << 20

// Files returns the JSON files of a runsc command line that may carry a process label: the
// bundle's config.json for create and run (the bundle is --bundle, or the working directory),
// and the --process file of exec.
func Files(args []string, cwd string) []string {
	cmd, flags := command(args)
	switch cmd {
	case "create", "run":
		bundle := flagValue(flags, "bundle")
		if bundle == "" {
			bundle = cwd
		} else if !filepath.IsAbs(bundle) {
			bundle = filepath.Join(cwd, bundle)
		}
		return []string{filepath.Join(bundle, "config.json")}
	case "exec":
		if p := flagValue(flags, "process"); p != "" {
			if !filepath.IsAbs(p) {
				p = filepath.Join(cwd, p)
			}
			return []string{p}
		}
	}
	return nil
}

// command finds the subcommand (the first word that is not a flag or a global flag's value)
// and the flags after it. runsc's global flags the shim passes all take their value after "=".
func command(args []string) (string, []string) {
	for i, a := range args {
		if !strings.HasPrefix(a, "-") {
			return a, args[i+1:]
		}
	}
	return "", nil
}

// flagValue is the value of -name or --name (as "--name=v" or "--name v") among args.
func flagValue(args []string, name string) string {
	for i, a := range args {
		if !strings.HasPrefix(a, "-") {
			continue
		}
		a = strings.TrimLeft(a, "-")
		if v, ok := strings.CutPrefix(a, name+"="); ok {
			return v
		}
		if a == name && i+1 < len(args) {
			return args[i+1]
		}
	}
	return ""
}

// DropProcessLabel removes the process's SELinux label from a spec file (a whole OCI spec, or
// the process object of an exec), keeping every other field as it was; a file without one is
// left alone. It reports whether it changed the file.
func DropProcessLabel(path string) (bool, error) {
	fi, err := os.Stat(path)
	if err != nil {
		return false, fmt.Errorf("runsc adapter: %w", err)
	}
	if fi.Size() > maxSpecBytes {
		return false, fmt.Errorf("runsc adapter: %s: %d bytes, more than a spec", path, fi.Size())
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return false, fmt.Errorf("runsc adapter: %w", err)
	}
	var doc map[string]json.RawMessage
	if err := json.Unmarshal(b, &doc); err != nil {
		return false, fmt.Errorf("runsc adapter: %s: %w", path, err)
	}
	// An OCI spec has its process under "process"; an exec's process file is the process.
	target := doc
	var proc map[string]json.RawMessage
	if raw, ok := doc["process"]; ok {
		if err := json.Unmarshal(raw, &proc); err != nil {
			return false, fmt.Errorf("runsc adapter: %s: process: %w", path, err)
		}
		target = proc
	}
	if _, ok := target["selinuxLabel"]; !ok {
		return false, nil
	}
	delete(target, "selinuxLabel")
	if proc != nil {
		raw, err := json.Marshal(proc)
		if err != nil {
			return false, fmt.Errorf("runsc adapter: %s: %w", path, err)
		}
		doc["process"] = raw
	}
	out, err := json.Marshal(doc)
	if err != nil {
		return false, fmt.Errorf("runsc adapter: %s: %w", path, err)
	}
	tmp := path + ".ballast-tmp"
	if err := os.WriteFile(tmp, out, fi.Mode().Perm()); err != nil {
		return false, fmt.Errorf("runsc adapter: %w", err)
	}
	if err := os.Rename(tmp, path); err != nil {
		return false, errors.Join(fmt.Errorf("runsc adapter: %w", err), os.Remove(tmp))
	}
	return true, nil
}
