//go:build !unix

package format

import "os"

// allocMiB is unknown here; sizes are reported as 0.
func allocMiB(os.FileInfo) float64 { return 0 }
