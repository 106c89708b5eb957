package entropy

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"unsafe"

	"golang.org/x/sys/unix"
)

// The seed file: a header (magic, flags, the identity of the host that wrote it) and the seed.
const (
	seedMagic = "BALLAST-SEED-1\n\x00"
	seedSize  = 512
	// flagCreditable marks a seed written by this host from an initialised pool and not yet used.
	flagCreditable = 1
	headerSize     = len(seedMagic) + 8 + sha256.Size
	// creditBits is what the kernel needs to count its pool initialised.
	creditBits = 256
)

// SeedState says what Load did with the seed.
type SeedState string

// Load results.
const (
	SeedNone     SeedState = "none"     // no seed file yet (first boot)
	SeedMixed    SeedState = "mixed"    // mixed into the pool without credit
	SeedCredited SeedState = "credited" // mixed and credited: the pool may be ready at once
)

// Host identifies the machine a seed was written on; seeds from another machine (a disk image
// copied to a new VM) are mixed in but never credited, since every copy holds the same bytes.
type Host struct {
	// ID is the machine's identity, e.g. its SMBIOS product UUID; "" when it has none.
	ID string
	// Urandom is the random device written to; "" means /dev/urandom.
	Urandom string
}

// SMBIOSHost is the Host of the running machine: /sys/class/dmi/id/product_uuid, which every
// hypervisor and cloud sets per VM (QEMU, EC2, VMware, Azure), and which is only readable by root.
func SMBIOSHost() Host {
	b, err := os.ReadFile("/sys/class/dmi/id/product_uuid")
	id := string(bytes.TrimSpace(b))
	if err != nil || id == "" || id == "00000000-0000-0000-0000-000000000000" {
		id = ""
	}
	return Host{ID: id}
}

func (h Host) binding() [sha256.Size]byte {
	return sha256.Sum256([]byte("ballast:random-seed-host:" + h.ID))
}

func (h Host) urandom() string {
	if h.Urandom == "" {
		return "/dev/urandom"
	}
	return h.Urandom
}

// Load gives the seed at path to the kernel: always mixed into the pool, and credited only when this
// host wrote it from an initialised pool and it has not been used since. Before the kernel sees it,
// the file is rewritten with bytes derived one-way from it and without the creditable mark, so a
// crash between now and the next Refresh can never credit the same bytes twice.
func Load(path string, h Host) (SeedState, error) {
	b, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return SeedNone, nil
	}
	if err != nil {
		return SeedNone, fmt.Errorf("random seed: %w", err)
	}
	seed, flags, host, ok := parseSeed(b)
	if !ok {
		// A damaged or foreign file is still some unpredictability; mix it, credit nothing.
		return SeedMixed, mix(h.urandom(), b, false)
	}
	creditable := flags&flagCreditable != 0 && host == h.binding() && h.ID != ""
	next := sha256.Sum256(append([]byte("ballast:random-seed-next:"), seed...))
	if err := writeSeed(path, 0, h, bytes.Repeat(next[:], seedSize/len(next))); err != nil {
		return SeedNone, err
	}
	if err := mix(h.urandom(), seed, creditable); err != nil {
		return SeedNone, err
	}
	if creditable {
		return SeedCredited, nil
	}
	return SeedMixed, nil
}

// Refresh writes a new seed from the kernel's pool, marked creditable for this host. Call it only
// once the pool is initialised (after Gather): a seed drawn earlier would be worth nothing.
func Refresh(path string, h Host) error {
	seed := make([]byte, seedSize)
	if _, err := unix.Getrandom(seed, unix.GRND_NONBLOCK); err != nil {
		return fmt.Errorf("random seed: the pool is not ready: %w", err)
	}
	return writeSeed(path, flagCreditable, h, seed)
}

func parseSeed(b []byte) (seed []byte, flags uint64, host [sha256.Size]byte, ok bool) {
	if len(b) != headerSize+seedSize || string(b[:len(seedMagic)]) != seedMagic {
		return nil, 0, host, false
	}
	flags = binary.LittleEndian.Uint64(b[len(seedMagic):])
	copy(host[:], b[len(seedMagic)+8:headerSize])
	return b[headerSize:], flags, host, true
}

// writeSeed replaces the seed file atomically and durably (temporary file, fsync, rename, fsync of
// the directory), readable by root only.
func writeSeed(path string, flags uint64, h Host, seed []byte) error {
	buf := make([]byte, 0, headerSize+seedSize)
	buf = append(buf, seedMagic...)
	buf = binary.LittleEndian.AppendUint64(buf, flags)
	bind := h.binding()
	buf = append(buf, bind[:]...)
	buf = append(buf, seed...)
	dir := filepath.Dir(path)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("random seed: %w", err)
	}
	tmp := path + ".new"
	f, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return fmt.Errorf("random seed: %w", err)
	}
	if _, err := f.Write(buf); err != nil {
		f.Close()
		return fmt.Errorf("random seed: %w", err)
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return fmt.Errorf("random seed: %w", err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("random seed: %w", err)
	}
	if err := os.Rename(tmp, path); err != nil {
		return fmt.Errorf("random seed: %w", err)
	}
	d, err := os.Open(dir)
	if err != nil {
		return fmt.Errorf("random seed: %w", err)
	}
	defer d.Close()
	if err := d.Sync(); err != nil {
		return fmt.Errorf("random seed: %w", err)
	}
	return nil
}

// mix writes b into the kernel's pool; with credit it also counts it as creditBits of entropy
// (RNDADDENTROPY, which needs CAP_SYS_ADMIN), which is what lets a seeded host skip the wait.
func mix(urandom string, b []byte, credit bool) error {
	f, err := os.OpenFile(urandom, os.O_WRONLY, 0)
	if err != nil {
		return fmt.Errorf("random seed: %w", err)
	}
	defer f.Close()
	if !credit {
		if _, err := f.Write(b); err != nil {
			return fmt.Errorf("random seed: mix: %w", err)
		}
		return nil
	}
	// struct rand_pool_info { int entropy_count; int buf_size; __u32 buf[]; }
	info := make([]byte, 8+len(b))
	binary.NativeEndian.PutUint32(info[0:], uint32(min(creditBits, 8*len(b))))
	binary.NativeEndian.PutUint32(info[4:], uint32(len(b)))
	copy(info[8:], b)
	_, _, errno := unix.Syscall(unix.SYS_IOCTL, f.Fd(), unix.RNDADDENTROPY, uintptr(unsafe.Pointer(&info[0])))
	runtime.KeepAlive(info)
	if errno != 0 {
		return fmt.Errorf("random seed: RNDADDENTROPY: %w", errno)
	}
	return nil
}
