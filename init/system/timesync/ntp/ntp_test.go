package ntp

import (
	"context"
	"errors"
	"net"
	"strings"
	"testing"
	"time"
)

func TestTimestamp(t *testing.T) {
	era1 := time.Date(2036, 2, 7, 6, 28, 16, 0, time.UTC) // NTP seconds wrap to 0 here
	tests := []struct {
		name string
		t    time.Time
		ts   Timestamp
		near time.Time // the clock that reads ts back
	}{
		{"unix epoch", time.Unix(0, 0), ntpEpoch << 32, time.Unix(0, 0)},
		{"half a second", time.Unix(0, 500_000_000), ntpEpoch<<32 | 1<<31, time.Unix(1000, 0)},
		{"2026", time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC), Timestamp(uint64(3976214400) << 32), time.Date(2025, 6, 1, 0, 0, 0, 0, time.UTC)},
		{"last second of era 0", era1.Add(-time.Second), 0xffffffff << 32, era1.Add(time.Hour)},
		{"era 1 begins", era1, 0, era1.Add(-time.Hour)},
		{"era 1, read by a clock 60 years late", era1.Add(time.Second), 1 << 32, era1.AddDate(-60, 0, 0)},
	}
	for _, tt := range tests {
		if got := TimestampOf(tt.t); got != tt.ts {
			t.Errorf("%s: TimestampOf(%v) = %#x, want %#x", tt.name, tt.t, uint64(got), uint64(tt.ts))
		}
		if got := tt.ts.Time(tt.near); !got.Equal(tt.t) {
			t.Errorf("%s: Time(%#x, near %v) = %v, want %v", tt.name, uint64(tt.ts), tt.near, got, tt.t)
		}
	}
	// The fraction keeps nanoseconds (2^-32 s is 0.23 ns): a round trip loses at most one.
	for _, ns := range []int64{1, 123_456_789, 999_999_999} {
		in := time.Unix(1_700_000_000, ns)
		if d := in.Sub(TimestampOf(in).Time(in)); d < 0 || d > time.Nanosecond {
			t.Errorf("round trip of %v is off by %v", in, d)
		}
	}
}

func TestHeaderRoundTrip(t *testing.T) {
	h := Header{Leap: LeapInsert, Version: 4, Mode: ModeServer, Stratum: 2, Poll: 6, Precision: -20,
		RootDelay: 0x00012000, RootDispersion: 0x00000800, ReferenceID: [4]byte{10, 0, 0, 1},
		Reference: 1, Origin: 2, Receive: 3, Transmit: 0xfedcba9876543210}
	b := h.Marshal()
	if len(b) != HeaderLen || b[0] != 0x64 || b[3] != 0xec {
		t.Fatalf("marshalled % x", b)
	}
	got, err := ParseHeader(append(b, make([]byte, 20)...)) // an extension field is ignored
	if err != nil || got != h {
		t.Errorf("ParseHeader = %+v, %v; want %+v", got, err, h)
	}
	if _, err := ParseHeader(b[:47]); err == nil {
		t.Error("a 47-byte packet parsed")
	}
	if d := ShortDuration(0x00012000); d != time.Second+125*time.Millisecond {
		t.Errorf("ShortDuration(1.125 s) = %v", d)
	}
}

// server answers requests as an NTP server whose clock reads serverNow, after the given one-way
// delay each way (on the fake local clock).
type server struct {
	offset  time.Duration // server clock minus local clock
	oneWay  time.Duration
	process time.Duration // between receive and transmit
	edit    func(req, resp *Header) [][]byte
}

func (s server) answer(req Header, local time.Time) [][]byte {
	recv := local.Add(s.oneWay + s.offset)
	resp := Header{Version: 4, Mode: ModeServer, Stratum: 2, ReferenceID: [4]byte{192, 0, 2, 7},
		RootDelay: 0x00000800, RootDispersion: 0x00000400,
		Origin: req.Transmit, Receive: TimestampOf(recv), Transmit: TimestampOf(recv.Add(s.process))}
	if s.edit != nil {
		return s.edit(&req, &resp)
	}
	return [][]byte{resp.Marshal()}
}

// exchange runs Exchange against srv over an in-memory connection. The fake local clock starts at
// a fixed time and moves by the round trip between the request and the answer.
func exchange(t *testing.T, srv server, timeout time.Duration) (Sample, error) {
	t.Helper()
	client, peer := net.Pipe()
	defer client.Close()
	defer peer.Close()
	start := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	reads := 0
	now := func() time.Time {
		defer func() { reads++ }()
		if reads == 0 {
			return start
		}
		return start.Add(2*srv.oneWay + srv.process)
	}
	go func() {
		buf := make([]byte, 512)
		n, err := peer.Read(buf)
		if err != nil {
			return
		}
		req, err := ParseHeader(buf[:n])
		if err != nil || req.Mode != ModeClient || req.Version != Version || req.Transmit == 0 {
			t.Errorf("request: %+v, %v", req, err)
			return
		}
		for _, p := range srv.answer(req, start) {
			if _, err := peer.Write(p); err != nil {
				return
			}
		}
	}()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	return Exchange(ctx, client, now)
}

func TestExchange(t *testing.T) {
	ms := time.Millisecond
	kod := func(code string) func(req, resp *Header) [][]byte {
		return func(req, resp *Header) [][]byte {
			resp.Stratum, resp.Leap = 0, LeapAlarm
			copy(resp.ReferenceID[:], code)
			return [][]byte{resp.Marshal()}
		}
	}
	tests := []struct {
		name          string
		srv           server
		offset, delay time.Duration
		err           string
	}{
		{"ahead", server{offset: 3 * time.Second, oneWay: 10 * ms, process: ms}, 3 * time.Second, 20 * ms, ""},
		{"behind", server{offset: -1500 * ms, oneWay: 5 * ms}, -1500 * ms, 10 * ms, ""},
		{"hours off", server{offset: -7 * time.Hour, oneWay: 40 * ms, process: 2 * ms}, -7 * time.Hour, 80 * ms, ""},
		{"forged answers first", server{offset: time.Second, oneWay: ms, edit: func(req, resp *Header) [][]byte {
			forged := *resp
			forged.Origin++
			forged.Transmit += 1 << 40
			return [][]byte{forged.Marshal(), []byte("short"), resp.Marshal()}
		}}, time.Second, 2 * ms, ""},
		{"only forged answers", server{edit: func(req, resp *Header) [][]byte {
			resp.Origin = 0
			return [][]byte{resp.Marshal()}
		}}, 0, 0, "no answer"},
		{"no answer", server{edit: func(req, resp *Header) [][]byte { return nil }}, 0, 0, "no answer"},
		{"kiss RATE", server{edit: kod("RATE")}, 0, 0, "kiss-o'-death RATE"},
		{"kiss DENY", server{edit: kod("DENY")}, 0, 0, "kiss-o'-death DENY"},
		{"leap alarm", server{edit: func(req, resp *Header) [][]byte {
			resp.Leap = LeapAlarm
			return [][]byte{resp.Marshal()}
		}}, 0, 0, "not synchronised"},
		{"stratum 16", server{edit: func(req, resp *Header) [][]byte {
			resp.Stratum = 16
			return [][]byte{resp.Marshal()}
		}}, 0, 0, "not synchronised"},
		{"client mode", server{edit: func(req, resp *Header) [][]byte {
			resp.Mode = ModeClient
			return [][]byte{resp.Marshal()}
		}}, 0, 0, "mode 3"},
		{"no transmit timestamp", server{edit: func(req, resp *Header) [][]byte {
			resp.Transmit = 0
			return [][]byte{resp.Marshal()}
		}}, 0, 0, "without receive or transmit"},
		{"sent before received", server{edit: func(req, resp *Header) [][]byte {
			resp.Transmit = resp.Receive - 1<<32
			return [][]byte{resp.Marshal()}
		}}, 0, 0, "before the request was received"},
	}
	for _, tt := range tests {
		s, err := exchange(t, tt.srv, 300*time.Millisecond)
		if tt.err != "" {
			if err == nil || !strings.Contains(err.Error(), tt.err) {
				t.Errorf("%s: %+v, %v; want an error with %q", tt.name, s, err, tt.err)
			}
			continue
		}
		if err != nil {
			t.Errorf("%s: %v", tt.name, err)
			continue
		}
		// Timestamps carry 2^-32 s, so allow a nanosecond.
		if d := s.Offset - tt.offset; d < -time.Nanosecond || d > time.Nanosecond {
			t.Errorf("%s: offset %v, want %v", tt.name, s.Offset, tt.offset)
		}
		if d := s.Delay - tt.delay; d < -time.Nanosecond || d > time.Nanosecond {
			t.Errorf("%s: delay %v, want %v", tt.name, s.Delay, tt.delay)
		}
		if s.Stratum != 2 || s.ReferenceID != "192.0.2.7" || s.RootDelay != 31250*time.Microsecond || s.RootDispersion != 15625*time.Microsecond {
			t.Errorf("%s: sample %+v", tt.name, s)
		}
	}
}

func TestKissError(t *testing.T) {
	_, err := exchange(t, server{edit: func(req, resp *Header) [][]byte {
		resp.Stratum = 0
		copy(resp.ReferenceID[:], "RSTR")
		return [][]byte{resp.Marshal()}
	}}, time.Second)
	var k *KissError
	if !errors.As(err, &k) || k.Code != "RSTR" || !k.Stop() {
		t.Errorf("err = %v, want a KissError RSTR that stops", err)
	}
	if (&KissError{Code: "RATE"}).Stop() {
		t.Error("RATE must not stop the client, only slow it down")
	}
	if got := kissCode([4]byte{'X', 0, 1, 0}); got != `X\x00\x01` {
		t.Errorf("kissCode = %q", got)
	}
}

func TestExchangeCancelled(t *testing.T) {
	client, peer := net.Pipe()
	defer client.Close()
	defer peer.Close()
	go peer.Read(make([]byte, 512))
	ctx, cancel := context.WithCancel(context.Background())
	time.AfterFunc(50*time.Millisecond, cancel)
	start := time.Now()
	_, err := Exchange(ctx, client, time.Now)
	if !errors.Is(err, context.Canceled) || time.Since(start) > DefaultTimeout/2 {
		t.Errorf("after %v: %v; want context.Canceled at once", time.Since(start), err)
	}
}
