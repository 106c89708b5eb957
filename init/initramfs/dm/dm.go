// Package dm sets up device-mapper devices through the ioctls on /dev/mapper/control, which is all
// the initramfs needs for its dm-verity root and dm-crypt /local: no libdevmapper, no dmsetup, no
// udev.
//
// A device is created in three steps, as dmsetup does: DM_DEV_CREATE (name and uuid),
// DM_TABLE_LOAD (targets into the inactive slot), DM_DEV_SUSPEND without DM_SUSPEND_FLAG (which
// resumes, i.e. makes the loaded table live). If a later step fails the device is removed again so
// a retry starts clean.
package dm

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"unsafe"

	"golang.org/x/sys/unix"
)

const (
	controlPath = "/dev/mapper/control"
	// miscDevPath tells the control node's device number when devtmpfs has not created it.
	miscDevPath = "/sys/class/misc/device-mapper/dev"

	headerSize     = unix.SizeofDmIoctl      // struct dm_ioctl, 312 bytes
	targetSpecSize = unix.SizeofDmTargetSpec // struct dm_target_spec, 40 bytes
	// defaultBufSize is what dmsetup starts with too; replies that do not fit set
	// DM_BUFFER_FULL_FLAG and are retried with twice the size.
	defaultBufSize = 16 << 10
	maxBufSize     = 16 << 20
)

// The interface version we speak. The kernel accepts any request with the same major and a minor
// not newer than its own, so asking for 4.0.0 works with every kernel of the 4.x interface.
var requestVersion = [3]uint32{unix.DM_VERSION_MAJOR, 0, 0}

// Target is one line of a device-mapper table.
type Target struct {
	Start  uint64 // first sector (512 bytes) of the device this target maps
	Length uint64 // number of sectors
	Type   string // target type, e.g. "verity"
	Params string // target parameters (for DM_TABLE_LOAD) or status text (in replies)
}

// Control is an open /dev/mapper/control.
type Control struct {
	f *os.File
	// bufSize is the first reply buffer size; tests shrink it to force DM_BUFFER_FULL_FLAG.
	bufSize int
}

// Open opens /dev/mapper/control, creating the node from sysfs if devtmpfs has not, and checks
// that the kernel speaks interface version 4.
func Open() (*Control, error) {
	if err := ensureControlNode(controlPath, miscDevPath); err != nil {
		return nil, err
	}
	f, err := os.OpenFile(controlPath, os.O_RDWR|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("dm: open control device (is dm-mod loaded?): %w", err)
	}
	c := &Control{f: f, bufSize: defaultBufSize}
	v, err := c.Version()
	if err != nil {
		f.Close()
		return nil, err
	}
	if v[0] != unix.DM_VERSION_MAJOR {
		f.Close()
		return nil, fmt.Errorf("dm: kernel device-mapper interface is %d.%d.%d, need %d.x", v[0], v[1], v[2], unix.DM_VERSION_MAJOR)
	}
	return c, nil
}

// Close closes the control device.
func (c *Control) Close() error { return c.f.Close() }

// CreateDevice opens the control device, creates the device and closes it again.
func CreateDevice(name, uuid string, readOnly bool, targets []Target) (dev uint64, err error) {
	c, err := Open()
	if err != nil {
		return 0, err
	}
	defer c.Close()
	return c.Create(name, uuid, readOnly, targets)
}

// RemoveDevice opens the control device, removes the device and closes it again.
func RemoveDevice(name string) error {
	c, err := Open()
	if err != nil {
		return err
	}
	defer c.Close()
	return c.Remove(name)
}

// Version returns the kernel's device-mapper interface version.
func (c *Control) Version() ([3]uint32, error) {
	r, err := c.do(unix.DM_VERSION, request{})
	if err != nil {
		return [3]uint32{}, fmt.Errorf("dm: DM_VERSION: %w", err)
	}
	return r.version, nil
}

// Create creates device name with the given table and activates it. It returns the device number
// (as unix.Mkdev encodes it); the node is /dev/dm-<minor> once devtmpfs has created it (see
// NodePath). readOnly is required for verity targets; crypt targets are read-write with it false.
// uuid may be empty.
func (c *Control) Create(name, uuid string, readOnly bool, targets []Target) (dev uint64, err error) {
	if err := checkName(name, uuid); err != nil {
		return 0, err
	}
	payload, err := marshalTargets(targets)
	if err != nil {
		return 0, fmt.Errorf("dm: device %q: %w", name, err)
	}
	if _, err := c.do(unix.DM_DEV_CREATE, request{name: name, uuid: uuid}); err != nil {
		return 0, fmt.Errorf("dm: create device %q: %w", name, err)
	}
	// From here on a failure leaves a half-made device behind; remove it so the caller (or the
	// next boot attempt) can create it again under the same name.
	defer func() {
		if err != nil {
			if rerr := c.Remove(name); rerr != nil {
				err = errors.Join(err, rerr)
			}
		}
	}()
	var flags uint32
	if readOnly {
		flags |= unix.DM_READONLY_FLAG
	}
	if _, err := c.do(unix.DM_TABLE_LOAD, request{name: name, flags: flags, targetCount: uint32(len(targets)), payload: payload}); err != nil {
		return 0, fmt.Errorf("dm: load table into %q (%s): %w", name, describe(targets), err)
	}
	r, err := c.do(unix.DM_DEV_SUSPEND, request{name: name})
	if err != nil {
		return 0, fmt.Errorf("dm: resume %q: %w", name, err)
	}
	if r.dev == 0 {
		return 0, fmt.Errorf("dm: resume %q: kernel returned no device number", name)
	}
	return r.dev, nil
}

// Remove removes device name. It fails with EBUSY while the device is open or mounted.
func (c *Control) Remove(name string) error {
	if err := checkName(name, ""); err != nil {
		return err
	}
	if _, err := c.do(unix.DM_DEV_REMOVE, request{name: name}); err != nil {
		return fmt.Errorf("dm: remove device %q: %w", name, err)
	}
	return nil
}

// Status returns the live table's targets with each target's status text in Params (for verity:
// "V" verified so far, "C" corruption detected).
func (c *Control) Status(name string) ([]Target, error) { return c.tableStatus(name, 0) }

// Table returns the live table as the kernel holds it, parameters normalised by the target.
func (c *Control) Table(name string) ([]Target, error) {
	return c.tableStatus(name, unix.DM_STATUS_TABLE_FLAG)
}

func (c *Control) tableStatus(name string, flags uint32) ([]Target, error) {
	if err := checkName(name, ""); err != nil {
		return nil, err
	}
	r, err := c.do(unix.DM_TABLE_STATUS, request{name: name, flags: flags})
	if err != nil {
		return nil, fmt.Errorf("dm: status of %q: %w", name, err)
	}
	ts, err := unmarshalTargets(r.data, r.targetCount)
	if err != nil {
		return nil, fmt.Errorf("dm: status of %q: %w", name, err)
	}
	return ts, nil
}

// NodePath is the node devtmpfs creates for a device-mapper device: dm-<minor>.
func NodePath(dev uint64) string { return "/dev/dm-" + strconv.FormatUint(uint64(unix.Minor(dev)), 10) }

type request struct {
	name, uuid  string
	flags       uint32
	targetCount uint32
	payload     []byte // placed at data_start, right after the header
}

type reply struct {
	version     [3]uint32
	flags       uint32
	targetCount uint32
	dev         uint64
	data        []byte // data_start..data_size of the reply, nil when the kernel sent none
}

// do issues one ioctl, retrying with a larger buffer while the kernel reports DM_BUFFER_FULL_FLAG.
func (c *Control) do(cmd uintptr, req request) (reply, error) {
	size := c.bufSize
	for {
		buf, err := marshalRequest(req, size)
		if err != nil {
			return reply{}, err
		}
		if _, _, errno := unix.Syscall(unix.SYS_IOCTL, c.f.Fd(), cmd, uintptr(unsafe.Pointer(&buf[0]))); errno != 0 {
			return reply{}, errno
		}
		r, err := unmarshalReply(buf)
		if err != nil {
			return reply{}, err
		}
		if r.flags&unix.DM_BUFFER_FULL_FLAG == 0 {
			return r, nil
		}
		if size >= maxBufSize {
			return reply{}, fmt.Errorf("reply does not fit in %d bytes", size)
		}
		size *= 2
	}
}

// marshalRequest lays out struct dm_ioctl followed by the payload in a buffer of at least size
// bytes; data_size tells the kernel the whole buffer is there for its reply.
func marshalRequest(req request, size int) ([]byte, error) {
	n := max(size, headerSize+len(req.payload))
	h := unix.DmIoctl{
		Version:      requestVersion,
		Data_size:    uint32(n),
		Data_start:   headerSize,
		Target_count: req.targetCount,
		Flags:        req.flags,
	}
	copy(h.Name[:], req.name)
	copy(h.Uuid[:], req.uuid)
	buf := make([]byte, n)
	if _, err := binary.Encode(buf, binary.NativeEndian, &h); err != nil {
		return nil, err
	}
	copy(buf[headerSize:], req.payload)
	return buf, nil
}

func unmarshalReply(buf []byte) (reply, error) {
	var h unix.DmIoctl
	if _, err := binary.Decode(buf, binary.NativeEndian, &h); err != nil {
		return reply{}, err
	}
	r := reply{version: h.Version, flags: h.Flags, targetCount: h.Target_count, dev: h.Dev}
	// Commands without output leave data_size at offsetof(struct dm_ioctl, data) = 305, which is
	// below data_start (312): there is no payload then, and slicing [312:305] would panic.
	start, end := int(h.Data_start), int(h.Data_size)
	if start >= headerSize && end > start && end <= len(buf) {
		r.data = buf[start:end]
	}
	return r, nil
}

// marshalTargets encodes targets for DM_TABLE_LOAD: each struct dm_target_spec is followed by its
// NUL-terminated parameters, padded so the next spec starts 8-byte aligned; "next" is the offset
// from this spec to the next one.
func marshalTargets(targets []Target) ([]byte, error) {
	if len(targets) == 0 {
		return nil, errors.New("table has no targets")
	}
	var b []byte
	for i, t := range targets {
		if t.Type == "" || len(t.Type) >= unix.DM_MAX_TYPE_NAME {
			return nil, fmt.Errorf("target %d: invalid target type %q", i, t.Type)
		}
		if strings.IndexByte(t.Params, 0) >= 0 {
			return nil, fmt.Errorf("target %d (%s): parameters contain a NUL byte", i, t.Type)
		}
		if t.Length == 0 {
			return nil, fmt.Errorf("target %d (%s): zero length", i, t.Type)
		}
		paramLen := align8(len(t.Params) + 1)
		spec := unix.DmTargetSpec{Sector_start: t.Start, Length: t.Length, Next: uint32(targetSpecSize + paramLen)}
		copy(spec.Target_type[:], t.Type)
		var err error
		if b, err = binary.Append(b, binary.NativeEndian, &spec); err != nil {
			return nil, err
		}
		b = append(b, t.Params...)
		b = append(b, make([]byte, paramLen-len(t.Params))...)
	}
	return b, nil
}

// unmarshalTargets decodes a DM_TABLE_STATUS reply, where "next" counts from the start of the data
// area rather than from the current spec.
func unmarshalTargets(data []byte, count uint32) ([]Target, error) {
	var ts []Target
	off := 0
	for i := uint32(0); i < count; i++ {
		if off < 0 || off+targetSpecSize > len(data) {
			return nil, fmt.Errorf("target %d: spec at offset %d beyond the %d-byte reply", i, off, len(data))
		}
		var spec unix.DmTargetSpec
		if _, err := binary.Decode(data[off:], binary.NativeEndian, &spec); err != nil {
			return nil, err
		}
		rest := data[off+targetSpecSize:]
		end := bytes.IndexByte(rest, 0)
		if end < 0 {
			return nil, fmt.Errorf("target %d: status text not NUL-terminated", i)
		}
		ts = append(ts, Target{
			Start:  spec.Sector_start,
			Length: spec.Length,
			Type:   cString(spec.Target_type[:]),
			Params: string(rest[:end]),
		})
		if int(spec.Next) <= off && i+1 < count {
			return nil, fmt.Errorf("target %d: next offset %d does not advance", i, spec.Next)
		}
		off = int(spec.Next)
	}
	return ts, nil
}

func checkName(name, uuid string) error {
	switch {
	case name == "" || name == "." || name == "..":
		return fmt.Errorf("dm: invalid device name %q", name)
	case len(name) >= unix.DM_NAME_LEN:
		return fmt.Errorf("dm: device name %q longer than %d bytes", name, unix.DM_NAME_LEN-1)
	case strings.ContainsAny(name, "/\x00"):
		return fmt.Errorf("dm: device name %q contains '/' or NUL", name)
	case len(uuid) >= unix.DM_UUID_LEN:
		return fmt.Errorf("dm: device %q: uuid %q longer than %d bytes", name, uuid, unix.DM_UUID_LEN-1)
	case strings.IndexByte(uuid, 0) >= 0:
		return fmt.Errorf("dm: device %q: uuid contains NUL", name)
	}
	return nil
}

// describe summarises a table for error messages, so a rejected table shows what was asked.
func describe(ts []Target) string {
	parts := make([]string, len(ts))
	for i, t := range ts {
		params := t.Params
		if t.Type == "crypt" {
			params = redactKey(params) // the table carries the volume key; errors get logged
		}
		parts[i] = fmt.Sprintf("%d %d %s %s", t.Start, t.Length, t.Type, params)
	}
	return strings.Join(parts, "; ")
}

func align8(n int) int { return (n + 7) &^ 7 }

func cString(b []byte) string {
	if i := bytes.IndexByte(b, 0); i >= 0 {
		b = b[:i]
	}
	return string(b)
}

// ensureControlNode creates the control node from its sysfs device number when /dev is not a
// devtmpfs that already has it.
func ensureControlNode(path, sysDev string) error {
	if _, err := os.Stat(path); err == nil {
		return nil
	} else if !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("dm: %w", err)
	}
	b, err := os.ReadFile(sysDev)
	if err != nil {
		return fmt.Errorf("dm: %s missing and device-mapper not registered (is dm-mod loaded?): %w", path, err)
	}
	maj, min, ok := strings.Cut(strings.TrimSpace(string(b)), ":")
	ma, err1 := strconv.ParseUint(maj, 10, 32)
	mi, err2 := strconv.ParseUint(min, 10, 32)
	if !ok || err1 != nil || err2 != nil {
		return fmt.Errorf("dm: %s: malformed device number %q", sysDev, b)
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return fmt.Errorf("dm: %w", err)
	}
	if err := unix.Mknod(path, unix.S_IFCHR|0o600, int(unix.Mkdev(uint32(ma), uint32(mi)))); err != nil && !errors.Is(err, fs.ErrExist) {
		return fmt.Errorf("dm: mknod %s: %w", path, err)
	}
	return nil
}
