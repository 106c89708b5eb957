package format

import (
	"context"
	"fmt"
)

// vhdAlign is the alignment Azure requires of a fixed VHD's virtual size.
const vhdAlign = 1 << 20

// ExactVHDSize returns the smallest size of at least min bytes that is a whole number of MiB (as
// Azure requires) and that a VHD's CHS geometry describes exactly, so that readers which size a
// VHD by its geometry rather than by its footer's size field (QEMU, for any creator it does not
// know) see the whole disk, backup GPT included. Beyond the largest geometry (about 127 GiB) no
// size is exact; the size is then only rounded up to a MiB.
func ExactVHDSize(min int64) int64 {
	size := (min + vhdAlign - 1) / vhdAlign * vhdAlign
	// Every geometry's sectors per track × heads divides 255×16×2048 sectors, so an exact size
	// is at most 255 MiB away.
	for s := size; s < size+256*vhdAlign && s/sectorSize <= vhdMaxCHSSecs; s += vhdAlign {
		c, h, spt := vhdGeometry(s / sectorSize)
		if int64(c)*int64(h)*int64(spt)*sectorSize == s {
			return s
		}
	}
	return size
}

// writeVHD writes a fixed VHD: the disk padded with zeros to a whole number
// of MiB, then the 512-byte footer. The data stays sparse.
func writeVHD(ctx context.Context, in *input, out outFile, _ string, opts Options) error {
	size := (in.size + vhdAlign - 1) / vhdAlign * vhdAlign
	footer, err := vhdFooter(size, opts)
	if err != nil {
		return fmt.Errorf("vhd: %w", err)
	}
	if err := copySparse(ctx, in, out); err != nil {
		return err
	}
	// Truncating first makes the padding a hole rather than written zeros.
	if err := out.Truncate(size); err != nil {
		return fmt.Errorf("vhd: %w", err)
	}
	if _, err := out.WriteAt(footer, size); err != nil {
		return fmt.Errorf("vhd: write footer: %w", err)
	}
	return nil
}
