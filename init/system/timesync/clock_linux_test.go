package timesync

import (
	"context"
	"net"
	"testing"
	"time"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"

	"github.com/ballast-os/ballast/contract"
	"github.com/ballast-os/ballast/tests/ntpserver"
	"github.com/ballast-os/ballast/tests/vmtest"
)

func TestMain(m *testing.M) { vmtest.Main(m) }

func TestStepTimeval(t *testing.T) {
	tests := []struct {
		in   time.Duration
		want unix.Timeval
	}{
		{3 * time.Second, unix.Timeval{Sec: 3}},
		{1250 * time.Millisecond, unix.Timeval{Sec: 1, Usec: 250_000_000}},
		{-1250 * time.Millisecond, unix.Timeval{Sec: -2, Usec: 750_000_000}},
		{-time.Nanosecond, unix.Timeval{Sec: -1, Usec: 999_999_999}},
		{-5 * time.Second, unix.Timeval{Sec: -5}},
	}
	for _, tt := range tests {
		if got := stepTimeval(tt.in); got != tt.want {
			t.Errorf("stepTimeval(%v) = %+v, want %+v", tt.in, got, tt.want)
		}
	}
}

func TestSlewTimex(t *testing.T) {
	tests := []struct {
		offset, poll    time.Duration
		wantOff, wantTC int64
	}{
		{20 * time.Millisecond, 32 * time.Second, 20_000_000, 1},
		{-20 * time.Millisecond, 2048 * time.Second, -20_000_000, 7},
		{2 * time.Second, 64 * time.Second, 500_000_000, 2}, // the kernel's limit
		{-time.Second, time.Second, -500_000_000, 0},        // no negative time constant
		{0, 1 << 20 * time.Second, 0, 10},                   // nor one over MAXTC
	}
	for _, tt := range tests {
		tx := slewTimex(tt.offset, tt.poll, 30*time.Millisecond, 2*time.Millisecond)
		if tx.Offset != tt.wantOff || tx.Constant != tt.wantTC || tx.Status != unix.STA_PLL || tx.Maxerror != 30000 || tx.Esterror != 2000 ||
			tx.Modes&unix.ADJ_NANO == 0 || tx.Modes&unix.ADJ_STATUS == 0 {
			t.Errorf("slewTimex(%v, %v) = %+v; want offset %d, constant %d", tt.offset, tt.poll, tx, tt.wantOff, tt.wantTC)
		}
	}
}

// TestVM runs TestGuest* on the kernel images carry, where stepping and slewing the clock harms
// nothing: the host's clock is never touched by a test.
func TestVM(t *testing.T) {
	vmtest.Run(t, vmtest.Options{})
}

// adjtimex reads the kernel's clock state without changing it.
func adjtimex(t *testing.T) (unix.Timex, int) {
	t.Helper()
	var tx unix.Timex
	state, err := unix.Adjtimex(&tx)
	if err != nil {
		t.Fatal(err)
	}
	return tx, state
}

// wallError is how far the wall clock is from start plus the monotonic time since, i.e. how
// much it was stepped since start.
func wallError(start time.Time) time.Duration {
	return time.Now().Round(0).Sub(start.Round(0)) - time.Since(start)
}

func TestGuestSystemClock(t *testing.T) {
	vmtest.GuestOnly(t)
	if _, state := adjtimex(t); state != unix.TIME_ERROR {
		t.Errorf("a fresh kernel's clock: adjtimex state %d, want TIME_ERROR (%d)", state, unix.TIME_ERROR)
	}
	start := time.Now()
	if err := (System{}).Step(-1250 * time.Millisecond); err != nil {
		t.Fatal(err)
	}
	if e := wallError(start); !approx(e, -1250*time.Millisecond, 10*time.Millisecond) {
		t.Errorf("after Step(-1.25s) the wall clock moved by %v", e)
	}

	// The whole service against a server on loopback whose time runs on the monotonic clock, so
	// stepping the wall clock does not move it.
	lo, err := netlink.LinkByName("lo")
	if err == nil {
		err = netlink.LinkSetUp(lo)
	}
	if err != nil {
		t.Fatalf("loopback: %v", err)
	}
	mono := func() time.Time { return start.Add(time.Since(start)) }
	conn, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := ntpserver.Serve(conn, ntpserver.Answer{Offset: 3 * time.Second}, mono)
	defer srv.Close()
	s := New(Config{Servers: []string{"127.0.0.1"}, Port: conn.LocalAddr().(*net.UDPAddr).Port, SampleInterval: 10 * time.Millisecond})
	s.Poll(context.Background())
	// The server is 3 s ahead of start's timeline; the wall clock was 1.25 s behind it.
	if e := wallError(start); !approx(e, 3*time.Second, 10*time.Millisecond) || s.Status().LastStep == nil {
		t.Errorf("after the poll the wall clock is %v off start's timeline, want 3s; status %+v", e, s.Status())
	}
	tx, state := adjtimex(t)
	if state != unix.TIME_OK || tx.Status&unix.STA_UNSYNC != 0 || tx.Status&unix.STA_PLL == 0 || tx.Status&unix.STA_NANO == 0 {
		t.Errorf("after a sync: adjtimex state %d, status %#x; want TIME_OK, PLL and nano without UNSYNC", state, tx.Status)
	}
	if tx.Maxerror <= 0 || tx.Maxerror > 100_000 {
		t.Errorf("max error %d µs, want the root distance", tx.Maxerror)
	}

	// A small offset is slewed: the wall clock does not jump, the kernel takes the offset.
	srv.Set(ntpserver.Answer{Offset: 3*time.Second + 200*time.Millisecond})
	s.Poll(context.Background())
	tx, state = adjtimex(t)
	if st := s.Status(); st.State != contract.TimeSynced || st.LastStep == nil || st.LastSync.OffsetSeconds < 0.19 || st.LastSync.OffsetSeconds > 0.21 {
		t.Errorf("status %+v, last sync %+v", st, st.LastSync)
	}
	if e := wallError(start); !approx(e, 3*time.Second, 20*time.Millisecond) {
		t.Errorf("a slew moved the wall clock to %v", e)
	}
	if state != unix.TIME_OK || tx.Offset < 150_000_000 || tx.Offset > 210_000_000 {
		t.Errorf("after a 200 ms slew: adjtimex state %d, offset %d ns", state, tx.Offset)
	}
}
