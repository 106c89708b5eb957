package rootfs

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"strconv"
)

// ErofsOptions are the knobs that make an EROFS image reproducible and labelled.
type ErofsOptions struct {
	FileContexts string // selinux file_contexts; every file gets security.selinux from it
	UUID         string // filesystem UUID, derived from the build inputs
	Epoch        int64  // timestamp for every inode (SOURCE_DATE_EPOCH)
	Compression  string // e.g. "lz4hc"; "" = uncompressed
}

// MkfsErofs builds an EROFS image of dir with the host's mkfs.erofs, as the calling (ordinary) user:
// ownership comes from --all-root and labels from --file-contexts, so no chown or setfattr is needed.
func MkfsErofs(dir, out string, o ErofsOptions) error {
	bin, err := exec.LookPath("mkfs.erofs")
	if err != nil {
		return fmt.Errorf("rootfs: mkfs.erofs not found: install the Debian package erofs-utils")
	}
	if _, err := os.Stat(o.FileContexts); err != nil {
		return fmt.Errorf("rootfs: file contexts: %w", err)
	}
	args := []string{
		"--quiet", "--all-root",
		"-T", strconv.FormatInt(o.Epoch, 10),
		"--file-contexts=" + o.FileContexts,
		// xattr tolerance -1 would drop labels; 0 keeps every xattr out-of-line-capable.
		"-x", "1",
	}
	if o.UUID != "" {
		args = append(args, "-U", o.UUID)
	}
	if o.Compression != "" {
		args = append(args, "-z"+o.Compression)
	}
	os.Remove(out)
	args = append(args, out, dir)
	cmd := exec.Command(bin, args...)
	var stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stderr, &stderr
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("rootfs: mkfs.erofs %s: %w\n%s", out, err, stderr.String())
	}
	return nil
}
