package initramfs

import (
	"os"
	"path/filepath"
	"slices"

	"golang.org/x/sys/unix"

	"github.com/ballast-os/ballast/contract"
)

// bootPrograms are the programs of img that run during the boot: the system init, modprobe and
// the image's services.
func bootPrograms(img contract.Image) []string {
	var paths []string
	for _, p := range contract.Programs() {
		if p.Path == "" {
			continue
		}
		if p.Always || p.Service != nil && slices.Contains(img.Services, p.Service.ID) {
			paths = append(paths, p.Path)
		}
	}
	return paths
}

// prefetch asks the kernel to read files under root into the page cache in the background. A
// program faulted in page by page from the verity root waits on one small verified read after
// another; read ahead in large sequential requests, the same pages cost a fraction of that. It
// returns the bytes asked for; a file that cannot be opened is skipped (the exec will report it).
func prefetch(root string, paths []string) int64 {
	var total int64
	for _, p := range paths {
		f, err := os.Open(filepath.Join(root, p))
		if err != nil {
			continue
		}
		if st, err := f.Stat(); err == nil && unix.Fadvise(int(f.Fd()), 0, 0, unix.FADV_WILLNEED) == nil {
			total += st.Size()
		}
		f.Close()
	}
	return total
}
