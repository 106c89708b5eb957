package dm

import (
	"encoding/binary"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"unsafe"

	"github.com/ballast-os/ballast/tests/testutil"
	"golang.org/x/sys/unix"
)

// TestABI pins the x/sys structs to the layout in <linux/dm-ioctl.h>; binary.Encode must produce
// the same layout as the in-memory struct the kernel reads.
func TestABI(t *testing.T) {
	var h unix.DmIoctl
	var s unix.DmTargetSpec
	tests := []struct {
		name      string
		got, want uintptr
	}{
		{"sizeof(struct dm_ioctl)", unsafe.Sizeof(h), 312},
		{"binary size of dm_ioctl", uintptr(binary.Size(&h)), 312},
		{"dm_ioctl.data_size", unsafe.Offsetof(h.Data_size), 12},
		{"dm_ioctl.data_start", unsafe.Offsetof(h.Data_start), 16},
		{"dm_ioctl.target_count", unsafe.Offsetof(h.Target_count), 20},
		{"dm_ioctl.open_count", unsafe.Offsetof(h.Open_count), 24},
		{"dm_ioctl.flags", unsafe.Offsetof(h.Flags), 28},
		{"dm_ioctl.event_nr", unsafe.Offsetof(h.Event_nr), 32},
		{"dm_ioctl.dev", unsafe.Offsetof(h.Dev), 40},
		{"dm_ioctl.name", unsafe.Offsetof(h.Name), 48},
		{"dm_ioctl.uuid", unsafe.Offsetof(h.Uuid), 176},
		{"dm_ioctl.data", unsafe.Offsetof(h.Data), 305},
		{"sizeof(struct dm_target_spec)", unsafe.Sizeof(s), 40},
		{"binary size of dm_target_spec", uintptr(binary.Size(&s)), 40},
		{"dm_target_spec.length", unsafe.Offsetof(s.Length), 8},
		{"dm_target_spec.status", unsafe.Offsetof(s.Status), 16},
		{"dm_target_spec.next", unsafe.Offsetof(s.Next), 20},
		{"dm_target_spec.target_type", unsafe.Offsetof(s.Target_type), 24},
		{"ioctl DM_TABLE_LOAD", unix.DM_TABLE_LOAD, 0xc138fd09},
	}
	for _, tc := range tests {
		if tc.got != tc.want {
			t.Errorf("%s = %d, want %d", tc.name, tc.got, tc.want)
		}
	}
}

func TestMarshalTableLoad(t *testing.T) {
	targets := []Target{
		{Start: 0, Length: 16384, Type: "verity", Params: "1 254:1 254:2 4096 4096 2048 1 sha256 ab - 1 restart_on_corruption"},
		{Start: 16384, Length: 8, Type: "zero", Params: ""},
		{Start: 16392, Length: 8, Type: "error", Params: "1234567"}, // 7 bytes + NUL: exactly 8
	}
	payload, err := marshalTargets(targets)
	if err != nil {
		t.Fatal(err)
	}
	buf, err := marshalRequest(request{name: "root", uuid: "BALLAST-root", flags: unix.DM_READONLY_FLAG, targetCount: 3, payload: payload}, 1024)
	if err != nil {
		t.Fatal(err)
	}
	le := binary.LittleEndian
	u32 := func(off int) uint32 { return le.Uint32(buf[off:]) }
	u64 := func(off int) uint64 { return le.Uint64(buf[off:]) }
	header := []struct {
		name      string
		got, want uint64
	}{
		{"version[0]", uint64(u32(0)), 4},
		{"version[1]", uint64(u32(4)), 0},
		{"data_size", uint64(u32(12)), 1024},
		{"data_start", uint64(u32(16)), 312},
		{"target_count", uint64(u32(20)), 3},
		{"flags", uint64(u32(28)), unix.DM_READONLY_FLAG},
		{"dev", u64(40), 0},
		{"buffer length", uint64(len(buf)), 1024},
	}
	for _, h := range header {
		if h.got != h.want {
			t.Errorf("%s = %d, want %d", h.name, h.got, h.want)
		}
	}
	if got := cString(buf[48:176]); got != "root" {
		t.Errorf("name = %q", got)
	}
	if got := cString(buf[176:305]); got != "BALLAST-root" {
		t.Errorf("uuid = %q", got)
	}

	off := 312
	for i, tg := range targets {
		if off%8 != 0 {
			t.Errorf("target %d: spec at offset %d is not 8-byte aligned", i, off)
		}
		if got := u64(off); got != tg.Start {
			t.Errorf("target %d: sector_start = %d", i, got)
		}
		if got := u64(off + 8); got != tg.Length {
			t.Errorf("target %d: length = %d", i, got)
		}
		if got := cString(buf[off+24 : off+40]); got != tg.Type {
			t.Errorf("target %d: type = %q", i, got)
		}
		params := buf[off+40:]
		if got := cString(params); got != tg.Params || params[len(tg.Params)] != 0 {
			t.Errorf("target %d: params = %q, want NUL-terminated %q", i, got, tg.Params)
		}
		next := int(u32(off + 20))
		if want := 40 + (len(tg.Params)+1+7)/8*8; next != want {
			t.Errorf("target %d: next = %d, want %d (relative to this spec)", i, next, want)
		}
		off += next
	}
	if off != 312+len(payload) {
		t.Errorf("specs end at %d, payload ends at %d", off, 312+len(payload))
	}
}

func TestMarshalRequestGrowsForPayload(t *testing.T) {
	buf, err := marshalRequest(request{name: "x", payload: make([]byte, 5000)}, 1024)
	if err != nil {
		t.Fatal(err)
	}
	if len(buf) != 312+5000 || binary.LittleEndian.Uint32(buf[12:]) != 312+5000 {
		t.Fatalf("len %d, data_size %d", len(buf), binary.LittleEndian.Uint32(buf[12:]))
	}
}

func TestUnmarshalReply(t *testing.T) {
	mk := func(dataSize, dataStart uint32, bufLen int) []byte {
		b := make([]byte, bufLen)
		le := binary.LittleEndian
		le.PutUint32(b[0:], 4)
		le.PutUint32(b[4:], 48)
		le.PutUint32(b[12:], dataSize)
		le.PutUint32(b[16:], dataStart)
		le.PutUint32(b[28:], unix.DM_BUFFER_FULL_FLAG)
		le.PutUint64(b[40:], unix.Mkdev(253, 0))
		for i := 312; i < bufLen; i++ {
			b[i] = 'x'
		}
		return b
	}
	tests := []struct {
		name     string
		buf      []byte
		wantData int
	}{
		// What DM_DEV_CREATE and friends really return: data_size = offsetof(data) = 305.
		{"no payload, data_size below data_start", mk(305, 312, 1024), 0},
		{"payload", mk(400, 312, 1024), 88},
		{"data_size beyond the buffer", mk(5000, 312, 1024), 0},
		{"data_start inside the header", mk(400, 100, 1024), 0},
	}
	for _, tc := range tests {
		r, err := unmarshalReply(tc.buf)
		if err != nil {
			t.Fatalf("%s: %v", tc.name, err)
		}
		if len(r.data) != tc.wantData {
			t.Errorf("%s: %d bytes of data, want %d", tc.name, len(r.data), tc.wantData)
		}
		if r.version != [3]uint32{4, 48, 0} || r.dev != unix.Mkdev(253, 0) || r.flags&unix.DM_BUFFER_FULL_FLAG == 0 {
			t.Errorf("%s: header decoded as %+v", tc.name, r)
		}
	}
}

// statusData builds a DM_TABLE_STATUS data area the way the kernel does: next counts from the
// start of the data area.
func statusData(specs ...Target) []byte {
	var b []byte
	for _, s := range specs {
		start := len(b)
		spec := make([]byte, 40)
		binary.LittleEndian.PutUint64(spec[0:], s.Start)
		binary.LittleEndian.PutUint64(spec[8:], s.Length)
		copy(spec[24:], s.Type)
		b = append(b, spec...)
		b = append(b, s.Params...)
		b = append(b, 0)
		for len(b)%8 != 0 {
			b = append(b, 0)
		}
		binary.LittleEndian.PutUint32(b[start+20:], uint32(len(b)))
	}
	return b
}

func TestUnmarshalTargets(t *testing.T) {
	want := []Target{{0, 16384, "verity", "V"}, {16384, 8, "linear", "254:1 2048"}}
	got, err := unmarshalTargets(statusData(want...), 2)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 2 || got[0] != want[0] || got[1] != want[1] {
		t.Fatalf("got %+v, want %+v", got, want)
	}

	good := statusData(want...)
	tests := []struct {
		name    string
		data    []byte
		count   uint32
		wantErr string
	}{
		{"more targets than data", good, 3, "beyond"},
		{"truncated spec", good[:20], 1, "beyond"},
		{"no NUL", append(good[:40:40], 'V', 'V'), 1, "not NUL-terminated"},
	}
	for _, tc := range tests {
		if _, err := unmarshalTargets(tc.data, tc.count); err == nil || !strings.Contains(err.Error(), tc.wantErr) {
			t.Errorf("%s: err = %v, want %q", tc.name, err, tc.wantErr)
		}
	}
	stuck := statusData(want...)
	binary.LittleEndian.PutUint32(stuck[20:], 0)
	if _, err := unmarshalTargets(stuck, 2); err == nil || !strings.Contains(err.Error(), "does not advance") {
		t.Errorf("next = 0: err = %v", err)
	}
}

func TestMarshalTargetsRejects(t *testing.T) {
	tests := []struct {
		name    string
		targets []Target
		wantErr string
	}{
		{"empty table", nil, "no targets"},
		{"no type", []Target{{Length: 8}}, "invalid target type"},
		{"type too long", []Target{{Length: 8, Type: "sixteen-chars-xx"}}, "invalid target type"},
		{"NUL in params", []Target{{Length: 8, Type: "zero", Params: "a\x00b"}}, "NUL"},
		{"zero length", []Target{{Type: "zero"}}, "zero length"},
	}
	for _, tc := range tests {
		if _, err := marshalTargets(tc.targets); err == nil || !strings.Contains(err.Error(), tc.wantErr) {
			t.Errorf("%s: err = %v, want %q", tc.name, err, tc.wantErr)
		}
	}
}

func TestCheckName(t *testing.T) {
	tests := []struct {
		name, uuid string
		ok         bool
	}{
		{"root", "", true},
		{"root", "BALLAST-VERITY-6e2d0e3a", true},
		{strings.Repeat("n", 127), strings.Repeat("u", 128), true},
		{"", "", false},
		{".", "", false},
		{"..", "", false},
		{"a/b", "", false},
		{strings.Repeat("n", 128), "", false},
		{"root", strings.Repeat("u", 129), false},
		{"root", "u\x00", false},
	}
	for _, tc := range tests {
		if err := checkName(tc.name, tc.uuid); (err == nil) != tc.ok {
			t.Errorf("checkName(%q, %q) = %v, want ok=%v", tc.name, tc.uuid, err, tc.ok)
		}
	}
}

func TestNodePath(t *testing.T) {
	if got := NodePath(unix.Mkdev(253, 0)); got != "/dev/dm-0" {
		t.Errorf("NodePath = %s", got)
	}
	if got := NodePath(unix.Mkdev(253, 300)); got != "/dev/dm-300" {
		t.Errorf("NodePath = %s", got)
	}
}

func TestEnsureControlNode(t *testing.T) {
	dir := t.TempDir()
	sys := filepath.Join(dir, "dev-number")
	node := filepath.Join(dir, "mapper", "control")

	err := ensureControlNode(node, sys)
	if err == nil || !strings.Contains(err.Error(), "dm-mod loaded") {
		t.Fatalf("without sysfs entry: err = %v", err)
	}
	os.WriteFile(sys, []byte("10:236\n"), 0o644)
	err = ensureControlNode(node, sys)
	testutil.Need(t, !errors.Is(err, unix.EPERM), "mknod of a character device (root with CAP_MKNOD): %v", err)
	if err != nil {
		t.Fatal(err)
	}
	var st unix.Stat_t
	if err := unix.Stat(node, &st); err != nil {
		t.Fatal(err)
	}
	if st.Mode&unix.S_IFMT != unix.S_IFCHR || st.Rdev != unix.Mkdev(10, 236) {
		t.Errorf("node mode %o rdev %d:%d", st.Mode, unix.Major(st.Rdev), unix.Minor(st.Rdev))
	}
	if err := ensureControlNode(node, filepath.Join(dir, "gone")); err != nil {
		t.Errorf("existing node: %v", err)
	}
}
