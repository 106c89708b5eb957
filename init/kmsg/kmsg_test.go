package kmsg

import (
	"errors"
	"io"
	"os"
	"reflect"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/ballast-os/ballast/tests/testutil"
)

func TestParse(t *testing.T) {
	tests := []struct {
		name, in string
		want     Record
	}{
		{"plain", "6,339,5140900,-;Linux version 6.1.0\n",
			Record{Priority: 6, Seq: 339, Time: 5140900 * time.Microsecond, Flags: '-', Message: "Linux version 6.1.0"}},
		{"more header fields", "4,1,2,-,caller=T1;hi\n",
			Record{Priority: 4, Seq: 1, Time: 2 * time.Microsecond, Flags: '-', Message: "hi"}},
		{"dict continuation lines", "3,90,1000,-;usb 1-1: device descriptor read/64, error -71\n SUBSYSTEM=usb\n DEVICE=c189:1\n",
			Record{Priority: 3, Seq: 90, Time: time.Millisecond, Flags: '-', Message: "usb 1-1: device descriptor read/64, error -71",
				Dict: []string{"SUBSYSTEM=usb", "DEVICE=c189:1"}}},
		{"continued piece", "12,7,8,c;part one\n",
			Record{Priority: 12, Seq: 7, Time: 8 * time.Microsecond, Flags: 'c', Message: "part one"}},
		{"escaped bytes", `6,2,3,-;back\x5cslash caf\xc3\xa9 two\x0alines \x1b[0m \xZZ \x4` + "\n",
			Record{Priority: 6, Seq: 2, Time: 3 * time.Microsecond, Flags: '-', Message: "back\\slash café two\nlines \x1b[0m \\xZZ \\x4"}},
		{"escaped dict value", "6,2,3,-;m\n DEVICE=+pci:0000\\x3a00\n",
			Record{Priority: 6, Seq: 2, Time: 3 * time.Microsecond, Flags: '-', Message: "m", Dict: []string{"DEVICE=+pci:0000:00"}}},
		{"empty message", "7,5,0,-;\n", Record{Priority: 7, Seq: 5, Flags: '-'}},
		{"semicolon in message", "6,5,0,-;a;b\n", Record{Priority: 6, Seq: 5, Flags: '-', Message: "a;b"}},
	}
	for _, tt := range tests {
		got, err := Parse([]byte(tt.in))
		if err != nil || !reflect.DeepEqual(got, tt.want) {
			t.Errorf("%s: Parse(%q) = %+v, %v\nwant %+v", tt.name, tt.in, got, err, tt.want)
		}
	}
	if r, _ := Parse([]byte("30,1,1,-;x\n")); r.Level() != 6 {
		t.Errorf("level of priority 30 = %d, want 6 (daemon.info)", r.Level())
	}
	for _, bad := range []string{"", "no semicolon", "6,1,2;too few", "x,1,2,-;m", "6,-1,2,-;m", "6,1,y,-;m", "-1,1,2,-;m"} {
		if r, err := Parse([]byte(bad)); err == nil {
			t.Errorf("Parse(%q) = %+v, want an error", bad, r)
		}
	}
}

// fakeKmsg returns one read result per Read, as /dev/kmsg does.
type fakeKmsg struct {
	reads []any // string record or error
}

func (f *fakeKmsg) Read(p []byte) (int, error) {
	if len(f.reads) == 0 {
		return 0, io.EOF
	}
	r := f.reads[0]
	f.reads = f.reads[1:]
	if err, ok := r.(error); ok {
		return 0, err
	}
	return copy(p, r.(string)), nil
}

func (f *fakeKmsg) Close() error { return nil }

func TestReaderCountsLostRecords(t *testing.T) {
	r := NewReader(&fakeKmsg{reads: []any{
		"6,10,1,-;first\n",
		"6,11,2,-;second\n",
		// The reader fell behind: the kernel overwrote 12-14 and says so once.
		&os.PathError{Op: "read", Path: "/dev/kmsg", Err: syscall.EPIPE},
		"6,15,3,-;after the gap\n",
		"garbage",
		"6,16,4,-;next\n",
	}})
	want := []struct {
		msg  string
		lost uint64
	}{{"first", 0}, {"second", 0}, {"after the gap", 3}, {"next", 0}}
	for _, w := range want {
		rec, lost, err := r.Next()
		if err != nil || rec.Message != w.msg || lost != w.lost {
			t.Fatalf("Next = %q, lost %d, %v; want %q, lost %d", rec.Message, lost, err, w.msg, w.lost)
		}
	}
	if _, _, err := r.Next(); !errors.Is(err, io.EOF) {
		t.Errorf("Next at the end = %v, want EOF", err)
	}
}

func TestSnapshotOfThisKernel(t *testing.T) {
	testutil.Root(t, "reading /dev/kmsg")
	recs, err := Snapshot("/dev/kmsg")
	if err != nil {
		t.Fatal(err)
	}
	testutil.Need(t, len(recs) > 0, "the kernel log is empty (a container without the host's /dev/kmsg?)")
	for i := 1; i < len(recs); i++ {
		if recs[i].Seq <= recs[i-1].Seq {
			t.Fatalf("records out of order: %d after %d", recs[i].Seq, recs[i-1].Seq)
		}
	}
	if recs[len(recs)-1].Time <= 0 {
		t.Errorf("last record %+v", recs[len(recs)-1])
	}
	if _, err := Snapshot("/nonexistent/kmsg"); err == nil || !strings.Contains(err.Error(), "/nonexistent/kmsg") {
		t.Errorf("Snapshot of a missing device: %v", err)
	}
}
