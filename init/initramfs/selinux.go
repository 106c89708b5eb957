package initramfs

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"time"

	"golang.org/x/sys/unix"

	"github.com/ballast-os/ballast/contract"
	"github.com/ballast-os/ballast/init/console"
	"github.com/ballast-os/ballast/init/filecon"
)

// policyMagic opens every binary SELinux policy (SELINUX_MAGIC, little-endian), followed by the
// length of "SE Linux", the string and the policy version.
const policyMagic = 0xf97cff8c

// policyVersion returns the version of the binary policy b, checking it is one.
func policyVersion(b []byte) (uint32, error) {
	le := binary.LittleEndian
	if len(b) < 8 || le.Uint32(b) != policyMagic {
		return 0, errors.New("not a binary SELinux policy (bad magic)")
	}
	n := int(le.Uint32(b[4:]))
	if n > 32 || len(b) < 8+n+4 {
		return 0, errors.New("not a binary SELinux policy (truncated header)")
	}
	if id := string(b[8 : 8+n]); id != "SE Linux" {
		return 0, fmt.Errorf("not a kernel SELinux policy (%q)", id)
	}
	return le.Uint32(b[8+n:]), nil
}

// policyLoader loads the policy through selinuxfs; tests replace the kernel's side.
type policyLoader struct {
	fsDir string                            // where selinuxfs is mounted
	mount func() error                      // mounts selinuxfs on fsDir
	write func(path string, b []byte) error // one write(2) of b to path
}

func kernelPolicyLoader() policyLoader {
	return policyLoader{
		fsDir: contract.SELinuxFS,
		mount: func() error {
			// The kernel makes the mount point in sysfs when SELinux is an active LSM; a
			// mkdir there fails, which is the error wanted when it is not.
			if err := os.MkdirAll(contract.SELinuxFS, 0o755); err != nil {
				return fmt.Errorf("SELinux is not an active LSM: %w", err)
			}
			return unix.Mount("selinuxfs", contract.SELinuxFS, "selinuxfs", unix.MS_NOSUID|unix.MS_NOEXEC, "")
		},
		write: func(path string, b []byte) error {
			f, err := os.OpenFile(path, os.O_WRONLY, 0)
			if err != nil {
				return err
			}
			// The kernel takes a policy in a single write at offset 0.
			_, werr := f.Write(b)
			return errors.Join(werr, f.Close())
		},
	}
}

// loadPolicy makes SELinux enforcing and loads the image's policy from the verified root at
// root. Enforcing is switched on first, while no policy is loaded (the kernel allows everything
// then), so no moment exists where a policy is loaded yet not enforced. Any failure is the
// boot's: the caller fails closed.
func (l policyLoader) loadPolicy(con *console.Writer, root string) error {
	start := time.Now()
	b, err := os.ReadFile(filepath.Join(root, contract.SELinuxPolicy))
	if err != nil {
		return fmt.Errorf("selinux: read the policy: %w", err)
	}
	ver, err := policyVersion(b)
	if err != nil {
		return fmt.Errorf("selinux: %s: %w", contract.SELinuxPolicy, err)
	}
	if err := l.mount(); err != nil {
		return fmt.Errorf("selinux: mount selinuxfs on %s: %w", l.fsDir, err)
	}
	if err := l.write(filepath.Join(l.fsDir, "enforce"), []byte("1")); err != nil {
		return fmt.Errorf("selinux: switch to enforcing: %w", err)
	}
	if err := l.write(filepath.Join(l.fsDir, "load"), b); err != nil {
		return fmt.Errorf("selinux: load %s (version %d, %d bytes): %w", contract.SELinuxPolicy, ver, len(b), err)
	}
	if e, err := os.ReadFile(filepath.Join(l.fsDir, "enforce")); err != nil || strings.TrimSpace(string(e)) != "1" {
		return fmt.Errorf("selinux: not enforcing after the policy load (enforce=%q, %v)", e, err)
	}
	con.Milestone("selinux", "enforcing, policy version %d (%d bytes), loaded in %s", ver, len(b), time.Since(start).Round(time.Millisecond))
	return nil
}

// fileContexts reads the file_contexts of the policy on the verified root.
func fileContexts(root string) (*filecon.Specs, error) {
	fc, err := filecon.Load(filepath.Join(root, contract.SELinuxFileContexts))
	if err != nil {
		return nil, fmt.Errorf("selinux: %w", err)
	}
	return fc, nil
}

// Contexts of what the initramfs makes before file_contexts could say.
var (
	etcContext = contract.Context(contract.SELinuxEtcType, contract.SELinuxLevel, true)
	runContext = contract.Context(contract.SELinuxRunType, contract.SELinuxLevel, true)
)

// labelEarly labels what existed before the policy: /dev (devtmpfs, with every node the kernel
// made so far) per file_contexts, and /run's root, which is empty yet. Their inodes carry no
// label of a policy, and the kernel would see them as unlabeled.
func labelEarly(con *console.Writer, fc *filecon.Specs, xattr string) error {
	start := time.Now()
	res, err := filecon.Relabel("/", "/dev", fc, filecon.Options{Xattr: xattr})
	if err != nil {
		return fmt.Errorf("selinux: label /dev: %w", err)
	}
	if err := filecon.Set("/run", xattr, runContext); err != nil {
		return fmt.Errorf("selinux: label /run: %w", err)
	}
	if err := labelRun(fc, xattr); err != nil {
		return err
	}
	con.Milestone("labels", "/dev: %d of %d files labelled, /run in %s", res.Relabelled, res.Files, time.Since(start).Round(time.Millisecond))
	return nil
}

// labelRun labels what the first stage made in /run before there was a policy: directories (such
// as /run/ballast) as /run itself, the type they would have had if made under the policy, and
// files (the boot's trust record, a new recovery key, each with its own file context) as
// file_contexts says. An unlabelled /run/ballast would keep the system init's type transitions
// (its control socket) from applying, and its services from writing there.
func labelRun(fc *filecon.Specs, xattr string) error {
	return filepath.WalkDir("/run", func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return fmt.Errorf("selinux: label /run: %w", err)
		}
		ctx := runContext
		switch {
		case p == "/run":
			return nil
		case !d.IsDir():
			c, ok := fc.Lookup(p, d.Type())
			if !ok {
				return fmt.Errorf("selinux: label %s: no file context", p)
			}
			ctx = c
		}
		if err := filecon.Set(p, xattr, ctx); err != nil {
			return fmt.Errorf("selinux: label %s: %w", p, err)
		}
		return nil
	})
}

// localChecked are the directories of /local whose labels say whether /local was labelled: its
// root is labelled last, the others are where a wrong label would hurt first.
var localChecked = []string{contract.LocalDir, contract.VarOnData, contract.LocalDir + "/var/lib/ballast"}

// containerDirs hold the files container runtimes label per container (container_file_t with the
// container's categories); a relabel leaves those as they are.
var containerDirs = []string{contract.LocalDir + "/host-containers/", contract.ContainerdRoot + "/"}

// keepContainerLabels is the Relabel hook that keeps the labels container runtimes gave.
func keepContainerLabels(path, current string) bool {
	if filecon.Type(current) != contract.SELinuxContainerFileType {
		return false
	}
	for _, d := range containerDirs {
		if strings.HasPrefix(path, d) {
			return true
		}
	}
	return false
}

// labelLocal labels the data partition mounted at root+/local when a directory of localChecked is
// not labelled as file_contexts says: on the first boot (nothing is labelled), after a relabel
// was cut short, or after an update changed the contexts.
func labelLocal(con *console.Writer, root string, fc *filecon.Specs, xattr string) error {
	bad, err := filecon.Check(root, localChecked, fc, xattr)
	if err != nil {
		return fmt.Errorf("selinux: check /local's labels: %w", err)
	}
	if bad == "" {
		return nil
	}
	start := time.Now()
	res, err := filecon.Relabel(root, contract.LocalDir, fc, filecon.Options{Xattr: xattr, Keep: keepContainerLabels})
	if err != nil {
		return fmt.Errorf("selinux: label /local: %w", err)
	}
	con.Milestone("labels", "/local (%s was not labelled): %d of %d files labelled, %d container files kept, in %s",
		bad, res.Relabelled, res.Files, res.Kept, time.Since(start).Round(time.Millisecond))
	return nil
}

// copyLabel gives the copy at dst of the factory file at src the label src carries, or the one
// file_contexts gives path (where dst is on the running system) when src has none.
func copyLabel(src, dst, path string, mode fs.FileMode, fc *filecon.Specs, xattr string) error {
	if xattr == "" || !filecon.Labellable(xattr, mode) {
		return nil
	}
	l, err := filecon.Get(src, xattr)
	if err != nil {
		return err
	}
	if l == "" {
		var ok bool
		if l, ok = fc.Lookup(path, mode); !ok {
			return nil
		}
	}
	return filecon.Set(dst, xattr, l)
}
