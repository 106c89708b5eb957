package escape

import (
	"fmt"
	"io"
	"strings"

	"golang.org/x/sys/unix"
)

// printLabels is `probe labels PATH...`: one "PATH LABEL" line per path, the label being the
// security.selinux attribute (without the kernel's trailing NUL), or "error: ..." when it cannot
// be read. The SELinux image test runs it in a superpowered container, on the host's root.
func printLabels(paths []string, out io.Writer) int {
	for _, p := range paths {
		buf := make([]byte, 512)
		n, err := unix.Lgetxattr(p, "security.selinux", buf)
		if err != nil {
			fmt.Fprintf(out, "%s error: %v\n", p, err)
			continue
		}
		fmt.Fprintf(out, "%s %s\n", p, strings.TrimRight(string(buf[:n]), "\x00"))
	}
	return 0
}
