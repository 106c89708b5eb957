// Package ntp is the client side of NTPv4 (RFC 5905) on the wire: the 48-byte header and its
// timestamps, and one request/answer exchange with the checks a client makes on the answer
// before trusting it (origin timestamp, mode, kiss-o'-death, leap alarm, stratum).
package ntp

import (
	"context"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"strconv"
	"strings"
	"time"
)

// Port is the NTP server port.
const Port = 123

// HeaderLen is the size of the NTP header; extension fields and MACs may follow it.
const HeaderLen = 48

// Modes of the header (RFC 5905 figure 10).
const (
	ModeClient = 3
	ModeServer = 4
)

// Version is the version this client speaks.
const Version = 4

// Leap is the leap indicator.
type Leap uint8

// Leap indicator values.
const (
	LeapNone   Leap = 0
	LeapInsert Leap = 1 // the last minute of the day has 61 seconds
	LeapDelete Leap = 2 // the last minute of the day has 59 seconds
	// LeapAlarm means the server's clock is not synchronised.
	LeapAlarm Leap = 3
)

// ntpEpoch is how many seconds 1900-01-01, where NTP counts from, lies before 1970-01-01.
const ntpEpoch = 2208988800

// Timestamp is the 64-bit NTP timestamp: seconds since 1900 within the current era (the upper 32
// bits) and a binary fraction of a second (the lower 32 bits).
type Timestamp uint64

// TimestampOf returns the timestamp of t.
func TimestampOf(t time.Time) Timestamp {
	secs := uint32(t.Unix() + ntpEpoch) // era numbers are not sent: the seconds wrap every 136 years
	frac := (uint64(t.Nanosecond()) << 32) / uint64(time.Second)
	return Timestamp(uint64(secs)<<32 | frac)
}

// Time returns the time ts stands for, in the era that puts it nearest to near: timestamps carry
// no era, and a clock within 68 years of the truth finds the right one (RFC 5905 section 6).
func (ts Timestamp) Time(near time.Time) time.Time {
	nearSecs := near.Unix() + ntpEpoch
	secs := nearSecs + int64(int32(uint32(ts>>32)-uint32(nearSecs)))
	nsec := (uint64(ts&0xffffffff) * uint64(time.Second)) >> 32
	return time.Unix(secs-ntpEpoch, int64(nsec))
}

// Header is the NTP packet header.
type Header struct {
	Leap      Leap
	Version   uint8
	Mode      uint8
	Stratum   uint8
	Poll      int8 // log2 seconds
	Precision int8 // log2 seconds
	// RootDelay and RootDispersion are in NTP short format: 16.16 bits of seconds.
	RootDelay      uint32
	RootDispersion uint32
	ReferenceID    [4]byte
	Reference      Timestamp
	Origin         Timestamp
	Receive        Timestamp
	Transmit       Timestamp
}

// Marshal returns the header's 48 bytes.
func (h Header) Marshal() []byte {
	b := make([]byte, HeaderLen)
	b[0] = byte(h.Leap)<<6 | (h.Version&7)<<3 | h.Mode&7
	b[1] = h.Stratum
	b[2] = byte(h.Poll)
	b[3] = byte(h.Precision)
	binary.BigEndian.PutUint32(b[4:], h.RootDelay)
	binary.BigEndian.PutUint32(b[8:], h.RootDispersion)
	copy(b[12:16], h.ReferenceID[:])
	binary.BigEndian.PutUint64(b[16:], uint64(h.Reference))
	binary.BigEndian.PutUint64(b[24:], uint64(h.Origin))
	binary.BigEndian.PutUint64(b[32:], uint64(h.Receive))
	binary.BigEndian.PutUint64(b[40:], uint64(h.Transmit))
	return b
}

// ParseHeader reads the header at the start of a packet; what follows it is ignored.
func ParseHeader(b []byte) (Header, error) {
	if len(b) < HeaderLen {
		return Header{}, fmt.Errorf("ntp: packet of %d bytes, shorter than the %d-byte header", len(b), HeaderLen)
	}
	h := Header{
		Leap:           Leap(b[0] >> 6),
		Version:        b[0] >> 3 & 7,
		Mode:           b[0] & 7,
		Stratum:        b[1],
		Poll:           int8(b[2]),
		Precision:      int8(b[3]),
		RootDelay:      binary.BigEndian.Uint32(b[4:]),
		RootDispersion: binary.BigEndian.Uint32(b[8:]),
		Reference:      Timestamp(binary.BigEndian.Uint64(b[16:])),
		Origin:         Timestamp(binary.BigEndian.Uint64(b[24:])),
		Receive:        Timestamp(binary.BigEndian.Uint64(b[32:])),
		Transmit:       Timestamp(binary.BigEndian.Uint64(b[40:])),
	}
	copy(h.ReferenceID[:], b[12:16])
	return h, nil
}

// ShortDuration converts NTP short format (16.16 seconds) to a duration.
func ShortDuration(v uint32) time.Duration {
	return time.Duration((uint64(v) * uint64(time.Second)) >> 16)
}

// Sample is one measurement of a server's clock against the local one.
type Sample struct {
	// Offset is the server's clock minus the local clock; Delay the round trip through the network.
	Offset, Delay time.Duration
	Leap          Leap
	Stratum       int
	ReferenceID   string
	// RootDelay and RootDispersion are the server's own distance to its reference clock.
	RootDelay, RootDispersion time.Duration
	// Time is the local clock when the answer arrived.
	Time time.Time
}

// KissError is a kiss-o'-death answer: the server tells the client to back off (RATE) or to stop
// asking (DENY, RSTR).
type KissError struct {
	Code string
}

func (e *KissError) Error() string { return "ntp: kiss-o'-death " + e.Code }

// Stop reports whether the code asks the client never to ask this server again (RFC 5905 7.4).
func (e *KissError) Stop() bool { return e.Code == "DENY" || e.Code == "RSTR" }

// ErrUnsynchronised is the answer of a server that has no time to give: leap alarm or stratum 16.
var ErrUnsynchronised = errors.New("ntp: the server is not synchronised")

// DefaultTimeout bounds an exchange whose context has no deadline.
const DefaultTimeout = 2 * time.Second

// Exchange sends one client request on conn, a connected UDP socket, and waits for its answer until
// ctx is done (or DefaultTimeout without a deadline). now reads the local clock. The request's
// transmit timestamp is a random number rather than the local time, so the answer's origin
// timestamp proves it answers this request (answers that do not are dropped, and the wait goes on)
// and the local clock is not disclosed. An answer that is not a usable server reply is an error:
// a *KissError, ErrUnsynchronised, or one saying what is wrong.
func Exchange(ctx context.Context, conn net.Conn, now func() time.Time) (Sample, error) {
	deadline, ok := ctx.Deadline()
	if !ok {
		deadline = time.Now().Add(DefaultTimeout)
	}
	if err := conn.SetDeadline(deadline); err != nil {
		return Sample{}, fmt.Errorf("ntp: %w", err)
	}
	// A context cancelled early ends the wait too. Once started, that must finish before this
	// returns, or it could cut short the next exchange on the same socket.
	unblocked := make(chan struct{})
	stop := context.AfterFunc(ctx, func() {
		defer close(unblocked)
		conn.SetReadDeadline(time.Unix(1, 0))
	})
	defer func() {
		if !stop() {
			<-unblocked
		}
	}()

	var nonce Timestamp
	for nonce == 0 {
		var b [8]byte
		rand.Read(b[:])
		nonce = Timestamp(binary.BigEndian.Uint64(b[:]))
	}
	req := Header{Version: Version, Mode: ModeClient, Transmit: nonce}.Marshal()
	t1 := now()
	if _, err := conn.Write(req); err != nil {
		return Sample{}, fmt.Errorf("ntp: send to %s: %w", conn.RemoteAddr(), err)
	}
	buf := make([]byte, 1024)
	for {
		n, err := conn.Read(buf)
		t4 := now()
		if err != nil {
			if ctx.Err() != nil {
				err = ctx.Err()
			}
			return Sample{}, fmt.Errorf("ntp: no answer from %s: %w", conn.RemoteAddr(), err)
		}
		h, err := ParseHeader(buf[:n])
		if err != nil || h.Origin != nonce {
			continue // not the answer to this request: stale, duplicated or forged
		}
		return check(h, t1, t4)
	}
}

// check turns the answer to a request sent at t1 and received at t4 into a sample, after the tests
// a client makes on it (RFC 5905 sections 7.3, 7.4, 8).
func check(h Header, t1, t4 time.Time) (Sample, error) {
	if h.Mode != ModeServer {
		return Sample{}, fmt.Errorf("ntp: answer in mode %d, not %d (server)", h.Mode, ModeServer)
	}
	if h.Version < 1 || h.Version > Version {
		return Sample{}, fmt.Errorf("ntp: answer of version %d", h.Version)
	}
	if h.Stratum == 0 {
		return Sample{}, &KissError{Code: kissCode(h.ReferenceID)}
	}
	if h.Leap == LeapAlarm || h.Stratum >= 16 {
		return Sample{}, ErrUnsynchronised
	}
	if h.Transmit == 0 || h.Receive == 0 {
		return Sample{}, errors.New("ntp: answer without receive or transmit timestamp")
	}
	t2, t3 := h.Receive.Time(t1), h.Transmit.Time(t1)
	if t3.Before(t2) {
		return Sample{}, fmt.Errorf("ntp: answer sent %v before the request was received", t2.Sub(t3))
	}
	s := Sample{
		Offset:         (t2.Sub(t1) + t3.Sub(t4)) / 2,
		Delay:          t4.Sub(t1) - t3.Sub(t2),
		Leap:           h.Leap,
		Stratum:        int(h.Stratum),
		ReferenceID:    referenceID(h),
		RootDelay:      ShortDuration(h.RootDelay),
		RootDispersion: ShortDuration(h.RootDispersion),
		Time:           t4,
	}
	// A server slower than the round trip (a clock running backwards on one side) cannot be told
	// apart from a very near one.
	s.Delay = max(s.Delay, 0)
	return s, nil
}

// kissCode is the ASCII code of a kiss-o'-death answer, with anything unprintable escaped.
func kissCode(id [4]byte) string {
	q := strconv.Quote(strings.TrimRight(string(id[:]), "\x00"))
	return q[1 : len(q)-1]
}

// referenceID is what the reference ID means at the server's stratum: the name of a stratum 1
// server's reference clock (GPS, PPS), else the IPv4 address of the server's own server (or a
// hash of its IPv6 address, shown the same way, as ntpq and chronyc do).
func referenceID(h Header) string {
	if h.Stratum == 1 {
		return kissCode(h.ReferenceID)
	}
	return net.IP(h.ReferenceID[:]).String()
}
