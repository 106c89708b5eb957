//go:build unix

package format

import (
	"os"
	"syscall"
)

// allocMiB is how much of a file the file system has stored, in MiB.
func allocMiB(st os.FileInfo) float64 {
	if s, ok := st.Sys().(*syscall.Stat_t); ok {
		return float64(s.Blocks*512) / mib
	}
	return 0
}
