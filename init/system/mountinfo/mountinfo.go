// Package mountinfo reads /proc/self/mountinfo, so the init can tell what is mounted already and
// what must be unmounted at shutdown.
package mountinfo

import (
	"bufio"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
)

// Self is the mount table of the calling process.
const Self = "/proc/self/mountinfo"

// Mount is one line of mountinfo (proc(5)).
type Mount struct {
	ID, Parent   int
	Major, Minor int
	Root         string   // the part of the filesystem that is mounted (not "/" for binds)
	MountPoint   string   // relative to the process's root
	Options      []string // per-mount options: rw, nosuid, relatime, ...
	Optional     []string // shared:N, master:N, propagate_from:N, unbindable
	FSType       string
	Source       string
	SuperOptions []string // options of the superblock
}

// ReadOnly reports whether this mount is read-only.
func (m Mount) ReadOnly() bool { return slices.Contains(m.Options, "ro") }

// ReadFile parses a mountinfo file, usually Self.
func ReadFile(path string) ([]Mount, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("mountinfo: %w", err)
	}
	defer f.Close()
	mounts, err := Parse(f)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return mounts, nil
}

// Parse reads mountinfo lines in the kernel's order (parents before the mounts on them).
func Parse(r io.Reader) ([]Mount, error) {
	var mounts []Mount
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 4096), 1<<20)
	for n := 1; sc.Scan(); n++ {
		if strings.TrimSpace(sc.Text()) == "" {
			continue
		}
		m, err := parseLine(sc.Text())
		if err != nil {
			return nil, fmt.Errorf("mountinfo line %d: %w", n, err)
		}
		mounts = append(mounts, m)
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("mountinfo: %w", err)
	}
	return mounts, nil
}

// parseLine parses
// "36 35 98:0 /mnt1 /mnt2 rw,noatime master:1 - ext3 /dev/root rw,errors=continue".
func parseLine(line string) (Mount, error) {
	f := strings.Fields(line)
	sep := slices.Index(f, "-")
	if sep < 6 || len(f) < sep+3 {
		return Mount{}, fmt.Errorf("malformed: %q", line)
	}
	var m Mount
	var err error
	if m.ID, err = strconv.Atoi(f[0]); err != nil {
		return Mount{}, fmt.Errorf("mount id %q: %w", f[0], err)
	}
	if m.Parent, err = strconv.Atoi(f[1]); err != nil {
		return Mount{}, fmt.Errorf("parent id %q: %w", f[1], err)
	}
	maj, min, ok := strings.Cut(f[2], ":")
	if !ok {
		return Mount{}, fmt.Errorf("device %q is not major:minor", f[2])
	}
	if m.Major, err = strconv.Atoi(maj); err != nil {
		return Mount{}, fmt.Errorf("device %q: %w", f[2], err)
	}
	if m.Minor, err = strconv.Atoi(min); err != nil {
		return Mount{}, fmt.Errorf("device %q: %w", f[2], err)
	}
	m.Root = unescape(f[3])
	m.MountPoint = unescape(f[4])
	m.Options = strings.Split(f[5], ",")
	m.Optional = slices.Clone(f[6:sep])
	m.FSType = f[sep+1]
	m.Source = unescape(f[sep+2])
	if len(f) > sep+3 {
		m.SuperOptions = strings.Split(f[sep+3], ",")
	}
	return m, nil
}

// unescape undoes the kernel's octal escapes (\040 for space, \011, \012, \134).
func unescape(s string) string {
	if !strings.Contains(s, `\`) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+4 <= len(s) && isOctal(s[i+1:i+4]) {
			v, _ := strconv.ParseUint(s[i+1:i+4], 8, 8)
			b.WriteByte(byte(v))
			i += 3
			continue
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

func isOctal(s string) bool {
	if len(s) != 3 || s[0] > '3' {
		return false
	}
	for _, c := range []byte(s) {
		if c < '0' || c > '7' {
			return false
		}
	}
	return true
}

// At returns the topmost mount at target, if anything is mounted there.
func At(mounts []Mount, target string) (Mount, bool) {
	target = filepath.Clean(target)
	for i := len(mounts) - 1; i >= 0; i-- {
		if mounts[i].MountPoint == target {
			return mounts[i], true
		}
	}
	return Mount{}, false
}

// Under returns the mounts at dir or below it, in the order to unmount them: later (upper and
// deeper) mounts first.
func Under(mounts []Mount, dir string) []Mount {
	dir = filepath.Clean(dir)
	var out []Mount
	for i := len(mounts) - 1; i >= 0; i-- {
		mp := mounts[i].MountPoint
		if mp == dir || dir == "/" || strings.HasPrefix(mp, dir+"/") {
			out = append(out, mounts[i])
		}
	}
	return out
}
