package powerbutton

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"io"
	"os"
	"path/filepath"
	"reflect"
	"strconv"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

const (
	evSyn    = 0x00
	keyEnter = 28
)

func stream(t *testing.T, events ...Event) []byte {
	t.Helper()
	var b bytes.Buffer
	for _, e := range events {
		if err := binary.Write(&b, binary.NativeEndian, e); err != nil {
			t.Fatal(err)
		}
	}
	return b.Bytes()
}

func key(code uint16, value int32) Event { return Event{Type: EvKey, Code: code, Value: value} }

var syn = Event{Type: evSyn}

func TestEventSize(t *testing.T) {
	// struct input_event on 64-bit Linux: 16 bytes of timeval, 2+2+4.
	if n := binary.Size(Event{}); strconv.IntSize == 64 && n != 24 {
		t.Errorf("event size = %d, want 24", n)
	}
}

func TestReadEventLayout(t *testing.T) {
	raw := make([]byte, 24)
	binary.NativeEndian.PutUint64(raw[0:], 1700000000)
	binary.NativeEndian.PutUint64(raw[8:], 250000)
	binary.NativeEndian.PutUint16(raw[16:], EvKey)
	binary.NativeEndian.PutUint16(raw[18:], KeyPower)
	binary.NativeEndian.PutUint32(raw[20:], 1)
	if strconv.IntSize != 64 {
		t.Skip("layout fixture is for 64-bit machines")
	}
	ev, err := ReadEvent(bytes.NewReader(raw))
	if err != nil {
		t.Fatal(err)
	}
	want := Event{Time: unix.Timeval{Sec: 1700000000, Usec: 250000}, Type: EvKey, Code: KeyPower, Value: 1}
	if !reflect.DeepEqual(ev, want) || !ev.PowerPress() {
		t.Errorf("ReadEvent = %+v, want %+v", ev, want)
	}
}

func TestWaitPress(t *testing.T) {
	tests := []struct {
		name    string
		events  []Event
		trailer []byte // bytes after the events
		wantErr error  // nil: a press was found
		left    int    // events left unread after the press
	}{
		{"press", []Event{key(KeyPower, 1), syn}, nil, nil, 1},
		{"after noise", []Event{syn, key(keyEnter, 1), key(keyEnter, 0), syn, key(KeyPower, 1), syn, key(KeyPower, 0)}, nil, nil, 2},
		{"release only", []Event{key(KeyPower, 0), syn}, nil, io.EOF, 0},
		{"repeat is not a press", []Event{key(KeyPower, 2)}, nil, io.EOF, 0},
		{"power code on another type", []Event{{Type: 0x04, Code: KeyPower, Value: 1}}, nil, io.EOF, 0},
		{"empty", nil, nil, io.EOF, 0},
		{"truncated", []Event{syn}, []byte{1, 2, 3}, io.ErrUnexpectedEOF, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := bytes.NewReader(append(stream(t, tt.events...), tt.trailer...))
			err := WaitPress(r)
			if !errors.Is(err, tt.wantErr) {
				t.Fatalf("WaitPress = %v, want %v", err, tt.wantErr)
			}
			if tt.wantErr == nil && r.Len() != tt.left*binary.Size(Event{}) {
				t.Errorf("%d bytes left, want %d events", r.Len(), tt.left)
			}
		})
	}
}

// fakeInput builds a /sys/class/input with the given device names, one per eventN.
func fakeInput(t *testing.T, names ...string) (sysDir, devDir string) {
	t.Helper()
	root := t.TempDir()
	sysDir, devDir = filepath.Join(root, "sys"), filepath.Join(root, "dev")
	if err := os.MkdirAll(devDir, 0o755); err != nil {
		t.Fatal(err)
	}
	for i, n := range names {
		d := filepath.Join(sysDir, "event"+string(rune('0'+i)), "device")
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(d, "name"), []byte(n+"\n"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return sysDir, devDir
}

func TestFind(t *testing.T) {
	sysDir, devDir := fakeInput(t, "AT Translated Set 2 keyboard", "Power Button", "Sleep Button", "Power Button")
	got, err := Find(sysDir, devDir)
	if err != nil {
		t.Fatal(err)
	}
	want := []string{filepath.Join(devDir, "event1"), filepath.Join(devDir, "event3")}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("Find = %q, want %q", got, want)
	}
}

func TestWatch(t *testing.T) {
	sysDir, devDir := fakeInput(t, "Video Bus", "Power Button")
	fifo := filepath.Join(devDir, "event1")
	if err := unix.Mkfifo(fifo, 0o600); err != nil {
		t.Fatal(err)
	}
	// O_RDWR opens a FIFO without waiting for a reader.
	w, err := os.OpenFile(fifo, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	presses := make(chan struct{}, 4)
	done := make(chan error, 1)
	go func() {
		done <- Watcher{SysDir: sysDir, DevDir: devDir, Poll: time.Millisecond}.Watch(ctx, func() { presses <- struct{}{} })
	}()
	if _, err := w.Write(stream(t, key(keyEnter, 1), syn, key(KeyPower, 1), syn, key(KeyPower, 0), syn)); err != nil {
		t.Fatal(err)
	}
	select {
	case <-presses:
	case <-time.After(5 * time.Second):
		t.Fatal("no press reported")
	}
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("Watch after cancel = %v", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Watch did not return after cancel")
	}
	if len(presses) != 0 {
		t.Errorf("%d extra presses", len(presses))
	}
}

func TestWatchGivesUp(t *testing.T) {
	sysDir, devDir := fakeInput(t, "Sleep Button")
	err := Watcher{SysDir: sysDir, DevDir: devDir, Poll: time.Millisecond, GiveUp: 20 * time.Millisecond}.
		Watch(context.Background(), func() {})
	if err == nil {
		t.Fatal("Watch without a power button returned nil")
	}
}
