package format

import (
	"context"
	"fmt"
)

// vhdAlign is the alignment Azure requires of a fixed VHD's virtual size.
const vhdAlign = 1 << 20

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
