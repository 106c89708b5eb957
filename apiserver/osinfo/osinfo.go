// Package osinfo describes the running OS image from the files the build and the boot leave:
// /usr/lib/os-release (version, variant, build) and the kernel command line (slot, root hash).
package osinfo

import (
	"bufio"
	"bytes"
	"fmt"
	"os"
	"strings"
	"syscall"

	"github.com/ballast-os/ballast/apiserver/apitypes"
)

// Sources says where to read from. The zero value reads the running host.
type Sources struct {
	OSRelease string                 // default /usr/lib/os-release
	Cmdline   string                 // default /proc/cmdline
	Kernel    func() (string, error) // kernel release; default uname(2)
}

// Read returns the OS description.
func Read(src Sources) (apitypes.OS, error) {
	if src.OSRelease == "" {
		src.OSRelease = "/usr/lib/os-release"
	}
	if src.Cmdline == "" {
		src.Cmdline = "/proc/cmdline"
	}
	if src.Kernel == nil {
		src.Kernel = unameRelease
	}
	b, err := os.ReadFile(src.OSRelease)
	if err != nil {
		return apitypes.OS{}, fmt.Errorf("os-release: %w", err)
	}
	rel := ParseOSRelease(b)
	b, err = os.ReadFile(src.Cmdline)
	if err != nil {
		return apitypes.OS{}, fmt.Errorf("kernel command line: %w", err)
	}
	cmd := ParseCmdline(string(b))
	kernel, err := src.Kernel()
	if err != nil {
		return apitypes.OS{}, fmt.Errorf("kernel release: %w", err)
	}
	return apitypes.OS{
		Version:  rel["VERSION_ID"],
		Variant:  rel["VARIANT_ID"],
		BuildID:  rel["BUILD_ID"],
		Slot:     cmd["ballast.slot"],
		RootHash: cmd["roothash"],
		Kernel:   kernel,
	}, nil
}

// ParseOSRelease reads os-release(5) assignments. Values may be bare, 'single-quoted' or
// "double-quoted" with backslash escapes; lines that are not assignments are skipped, as the
// format asks readers to do.
func ParseOSRelease(b []byte) map[string]string {
	out := map[string]string{}
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" || line[0] == '#' {
			continue
		}
		k, v, ok := strings.Cut(line, "=")
		if !ok || k == "" || strings.ContainsAny(k, " \t") {
			continue
		}
		if v, ok := unquote(v); ok {
			out[k] = v
		}
	}
	return out
}

func unquote(v string) (string, bool) {
	if len(v) == 0 || v[0] != '"' && v[0] != '\'' {
		return v, true
	}
	q := v[0]
	if len(v) < 2 || v[len(v)-1] != q {
		return "", false
	}
	v = v[1 : len(v)-1]
	if q == '\'' {
		return v, true
	}
	var b strings.Builder
	for i := 0; i < len(v); i++ {
		if v[i] == '\\' && i+1 < len(v) && strings.IndexByte("\"\\$`", v[i+1]) >= 0 {
			i++
		}
		b.WriteByte(v[i])
	}
	return b.String(), true
}

// ParseCmdline splits a kernel command line into key=value words; a word without "=" maps to "".
// A later word wins over an earlier one, as it does for the kernel.
func ParseCmdline(s string) map[string]string {
	out := map[string]string{}
	for _, w := range strings.Fields(s) {
		k, v, _ := strings.Cut(w, "=")
		out[k] = strings.Trim(v, `"`)
	}
	return out
}

func unameRelease() (string, error) {
	var u syscall.Utsname
	if err := syscall.Uname(&u); err != nil {
		return "", err
	}
	b := make([]byte, 0, len(u.Release))
	for _, c := range u.Release {
		if c == 0 {
			break
		}
		b = append(b, byte(c))
	}
	return string(b), nil
}
