package runsclabel

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

// A pod's memory limit is on its pod cgroup, which the kubelet makes before the sandbox; CRI
// puts the sandbox (gVisor's sentry and everything the pod runs in it) in a child cgroup
// without a limit of its own. runsc sizes the sandbox's memory by its own cgroup's limit, so
// without one the sentry believes it has the whole host's and never refuses: a process that
// exhausts the pod's memory gets the host's OOM killer, which takes the whole sandbox. Given the
// pod's limit, the sentry kills the process in the sandbox that ran out, as Linux does in a runc
// pod, and the other containers of the pod live on.
const (
	// CgroupRoot is where the cgroup v2 hierarchy is mounted.
	CgroupRoot = "/sys/fs/cgroup"
	// containerType is CRI's annotation of what a spec starts; "sandbox" is a pod's sandbox.
	containerType = "io.kubernetes.cri.container-type"
	// sandboxMemory is CRI's annotation of the pod's memory limit (bytes; 0 for none), when the
	// kubelet passes the pod's resources.
	sandboxMemory = "io.kubernetes.cri.sandbox-memory"
)

// SandboxMemory gives a pod sandbox's spec at path the pod's memory limit, when the spec has no
// limit of its own: the sandbox-memory annotation's, else the pod cgroup's memory.max (the
// parent of the spec's cgroupsPath under cgroupRoot, cgroupfs driver paths). It returns the
// limit it set, 0 when it left the spec alone (not a sandbox, a limit already, no pod limit).
func SandboxMemory(path, cgroupRoot string) (int64, error) {
	fi, err := os.Stat(path)
	if err != nil {
		return 0, fmt.Errorf("runsc adapter: %w", err)
	}
	if fi.Size() > maxSpecBytes {
		return 0, fmt.Errorf("runsc adapter: %s: %d bytes, more than a spec", path, fi.Size())
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return 0, fmt.Errorf("runsc adapter: %w", err)
	}
	// Numbers stay as they were written: a float64 would round a limit near 2^63.
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	var doc map[string]any
	if err := dec.Decode(&doc); err != nil {
		return 0, fmt.Errorf("runsc adapter: %s: %w", path, err)
	}
	ann, _ := doc["annotations"].(map[string]any)
	if ann[containerType] != "sandbox" {
		return 0, nil
	}
	linux := object(doc, "linux")
	mem := object(object(linux, "resources"), "memory")
	if n, ok := mem["limit"].(json.Number); ok {
		if v, err := n.Int64(); err == nil && v > 0 {
			return 0, nil
		}
	}
	limit, err := podMemory(ann, linux, cgroupRoot)
	if err != nil {
		return 0, fmt.Errorf("runsc adapter: %s: %w", path, err)
	}
	if limit <= 0 {
		return 0, nil
	}
	mem["limit"] = limit
	out, err := json.Marshal(doc)
	if err != nil {
		return 0, fmt.Errorf("runsc adapter: %s: %w", path, err)
	}
	if err := replace(path, out, fi.Mode().Perm()); err != nil {
		return 0, err
	}
	return limit, nil
}

// podMemory is the pod's memory limit: CRI's annotation, else the pod cgroup's memory.max; 0 for
// none.
func podMemory(ann, linux map[string]any, cgroupRoot string) (int64, error) {
	if s, ok := ann[sandboxMemory].(string); ok && s != "" {
		v, err := strconv.ParseInt(s, 10, 64)
		if err != nil {
			return 0, fmt.Errorf("annotation %s %q: %w", sandboxMemory, s, err)
		}
		if v > 0 {
			return v, nil
		}
	}
	cg, _ := linux["cgroupsPath"].(string)
	if cg == "" || strings.Contains(cg, ":") || !filepath.IsAbs(cg) {
		// No path, or the systemd driver's slice:prefix:name, which the kubelet here does not use.
		return 0, nil
	}
	file := filepath.Join(cgroupRoot, filepath.Dir(filepath.Clean(cg)), "memory.max")
	b, err := os.ReadFile(file)
	if errors.Is(err, os.ErrNotExist) {
		return 0, nil
	}
	if err != nil {
		return 0, err
	}
	s := strings.TrimSpace(string(b))
	if s == "max" {
		return 0, nil
	}
	v, err := strconv.ParseInt(s, 10, 64)
	if err != nil {
		return 0, fmt.Errorf("%s: %q: %w", file, s, err)
	}
	return v, nil
}

// object is m[key] as an object, made when missing.
func object(m map[string]any, key string) map[string]any {
	o, ok := m[key].(map[string]any)
	if !ok {
		o = map[string]any{}
		m[key] = o
	}
	return o
}

// replace writes b to path through a temporary file and a rename.
func replace(path string, b []byte, perm os.FileMode) error {
	tmp := path + ".ballast-tmp"
	if err := os.WriteFile(tmp, b, perm); err != nil {
		return fmt.Errorf("runsc adapter: %w", err)
	}
	if err := os.Rename(tmp, path); err != nil {
		return errors.Join(fmt.Errorf("runsc adapter: %w", err), os.Remove(tmp))
	}
	return nil
}
