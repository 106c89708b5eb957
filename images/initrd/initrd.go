// Package initrd writes the initramfs: a newc cpio (u-root's cpio package) compressed with zstd,
// holding the initramfs init, the boot modules with their modules.dep, and /dev/console.
package initrd

import (
	"fmt"
	"io"
	"path"
	"sort"

	"github.com/klauspost/compress/zstd"
	"github.com/u-root/u-root/pkg/cpio"
)

// File is one regular file of the archive.
type File struct {
	Path string // without leading slash, e.g. "init" or "lib/modules/6.1.0/kernel/x.ko"
	Data []byte
	Mode uint64 // permission bits
}

// Build writes the compressed archive. Records are sorted and normalized (no timestamps, fixed
// inode numbers) so the same inputs always give the same bytes.
func Build(w io.Writer, files []File) error {
	zw, err := zstd.NewWriter(w, zstd.WithEncoderLevel(zstd.SpeedBetterCompression), zstd.WithEncoderConcurrency(1))
	if err != nil {
		return fmt.Errorf("initramfs: zstd: %w", err)
	}
	recs := []cpio.Record{
		cpio.Directory("dev", 0o755),
		// The kernel opens /dev/console for init's stdio before devtmpfs is mounted.
		cpio.CharDev("dev/console", 0o600, 5, 1),
		cpio.Directory("proc", 0o755),
		cpio.Directory("sys", 0o755),
		cpio.Directory("run", 0o755),
		cpio.Directory("sysroot", 0o755),
	}
	seen := map[string]bool{}
	for _, f := range files {
		p := path.Clean(f.Path)
		if seen[p] || p == "." || path.IsAbs(p) {
			return fmt.Errorf("initramfs: bad or duplicate path %q", f.Path)
		}
		seen[p] = true
		recs = append(recs, cpio.StaticRecord(f.Data, cpio.Info{Mode: cpio.S_IFREG | f.Mode, Name: p}))
	}
	sort.SliceStable(recs, func(i, j int) bool { return recs[i].Name < recs[j].Name })
	cpio.MakeAllReproducible(recs)
	cw := cpio.Newc.Writer(zw)
	if err := cpio.WriteRecordsAndDirs(cw, recs); err != nil {
		return fmt.Errorf("initramfs: %w", err)
	}
	if err := cpio.WriteTrailer(cw); err != nil {
		return fmt.Errorf("initramfs: %w", err)
	}
	return zw.Close()
}
