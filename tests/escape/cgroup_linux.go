package escape

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"
)

// cgroupFiles are the limit files of the probe's own cgroup: cgroup v2's, or v1's on a hybrid
// host (a developer's machine).
type cgroupFiles struct {
	memLimit    string // memory.max, or v1's memory.limit_in_bytes
	memV1       bool
	pidsMax     string
	pidsCurrent string
}

type cgroupMount struct {
	root, point string
	v2          bool
	controllers []string // v1 only
}

// findCgroup locates the probe's cgroup from /proc/self/cgroup and the cgroup mounts in
// /proc/self/mountinfo. With a cgroup namespace the cgroup is the mount's root; without one (a
// superpowered container, a host) it is a directory under it.
func findCgroup() cgroupFiles {
	var cg cgroupFiles
	paths := map[string]string{} // controller ("" for v2) -> path
	if b, err := os.ReadFile("/proc/self/cgroup"); err == nil {
		for _, line := range strings.Split(strings.TrimSpace(string(b)), "\n") {
			parts := strings.SplitN(line, ":", 3)
			if len(parts) != 3 {
				continue
			}
			if parts[1] == "" {
				paths[""] = parts[2]
				continue
			}
			for _, c := range strings.Split(parts[1], ",") {
				paths[c] = parts[2]
			}
		}
	}
	mounts := cgroupMounts()
	// The probe's own /sys/fs/cgroup first: the host's root, mounted in a superpowered
	// container, has the same hierarchies again under another path.
	slices.SortStableFunc(mounts, func(a, b cgroupMount) int {
		ua, ub := strings.HasPrefix(a.point, "/sys/fs/cgroup"), strings.HasPrefix(b.point, "/sys/fs/cgroup")
		switch {
		case ua && !ub:
			return -1
		case ub && !ua:
			return 1
		}
		return 0
	})
	// dirs returns the directories that may be the probe's cgroup for a controller, best first.
	dirs := func(controller string) []string {
		var out []string
		for _, m := range mounts {
			key := ""
			if !m.v2 {
				if !slices.Contains(m.controllers, controller) {
					continue
				}
				key = controller
			}
			p, ok := paths[key]
			if !ok {
				continue
			}
			if rel, ok := strings.CutPrefix(p, m.root); ok && m.root != "/" {
				p = rel
			} else if !ok && m.root != "/" {
				p = "/"
			}
			out = append(out, filepath.Join(m.point, p), m.point)
		}
		return append(out, "/sys/fs/cgroup")
	}
	find := func(controller string, names ...string) (string, int) {
		for _, d := range dirs(controller) {
			for i, n := range names {
				if _, err := os.Stat(filepath.Join(d, n)); err == nil {
					return filepath.Join(d, n), i
				}
			}
		}
		return "", -1
	}
	var which int
	cg.memLimit, which = find("memory", "memory.max", "memory.limit_in_bytes")
	cg.memV1 = which == 1
	cg.pidsMax, _ = find("pids", "pids.max")
	if cg.pidsMax != "" {
		cur := filepath.Join(filepath.Dir(cg.pidsMax), "pids.current")
		if _, err := os.Stat(cur); err == nil {
			cg.pidsCurrent = cur
		}
	}
	return cg
}

func cgroupMounts() []cgroupMount {
	b, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		return nil
	}
	var out []cgroupMount
	for _, line := range strings.Split(string(b), "\n") {
		pre, post, ok := strings.Cut(line, " - ")
		if !ok {
			continue
		}
		f, g := strings.Fields(pre), strings.Fields(post)
		if len(f) < 5 || len(g) < 3 {
			continue
		}
		switch g[0] {
		case "cgroup2":
			out = append(out, cgroupMount{root: f[3], point: f[4], v2: true})
		case "cgroup":
			out = append(out, cgroupMount{root: f[3], point: f[4], controllers: strings.Split(g[2], ",")})
		}
	}
	return out
}

// v1Unlimited is where cgroup v1's "no limit" values start (it writes the largest page-aligned
// number).
const v1Unlimited = 1 << 60

// readLimit reads a limit file: the limit, or ok false for "max", no limit, or no file.
func readLimit(path string) (limit int64, ok bool, err error) {
	if path == "" {
		return 0, false, errors.New("no limit file")
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return 0, false, err
	}
	s := strings.TrimSpace(string(b))
	if s == "max" {
		return 0, false, nil
	}
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil {
		return 0, false, fmt.Errorf("%s: %q is not a limit", path, s)
	}
	if n >= v1Unlimited || n < 0 {
		return 0, false, nil
	}
	return n, true, nil
}

// checkCgroupRaise tries to lift the container's own memory and pids limits, and puts back the
// old value when it could.
func checkCgroupRaise() verdict {
	cg := findCgroup()
	type limitFile struct{ path, raise string }
	var files []limitFile
	if cg.memLimit != "" {
		raise := "max"
		if cg.memV1 {
			raise = "-1"
		}
		files = append(files, limitFile{cg.memLimit, raise})
	}
	if cg.pidsMax != "" {
		files = append(files, limitFile{cg.pidsMax, "max"})
	}
	if len(files) == 0 {
		return failed("no memory or pids limit file found for this cgroup")
	}
	var raised, notes []string
	for _, f := range files {
		old, err := os.ReadFile(f.path)
		if err != nil {
			notes = append(notes, fmt.Sprintf("read %s: %s", f.path, errText(err)))
			continue
		}
		oldVal := strings.TrimSpace(string(old))
		wrote := f.raise
		err = writeFile(f.path, f.raise)
		if errors.Is(err, unix.EINVAL) {
			// v1 refuses a memory limit above the memory+swap limit; writing the current value
			// still tells whether the file takes writes.
			wrote = oldVal
			err = writeFile(f.path, oldVal)
		}
		if err != nil {
			notes = append(notes, fmt.Sprintf("write %s: %s", f.path, errText(err)))
			continue
		}
		undo := "restored"
		if wrote != oldVal {
			if err := writeFile(f.path, oldVal); err != nil {
				undo = "restore failed: " + errText(err)
			}
		}
		raised = append(raised, fmt.Sprintf("wrote %s to %s (was %s, %s)", wrote, f.path, oldVal, undo))
	}
	if len(raised) > 0 {
		return allowed("%s", strings.Join(raised, "; "))
	}
	return blocked("%s", strings.Join(notes, "; "))
}

// writeFile writes a cgroup file in one write(2), as the kernel wants it, without creating it.
func writeFile(path, value string) error {
	f, err := os.OpenFile(path, os.O_WRONLY, 0)
	if err != nil {
		return err
	}
	_, err = f.Write([]byte(value))
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return err
}
