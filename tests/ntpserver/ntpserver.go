// Package ntpserver is an NTP server for tests: it answers client requests (RFC 5905, mode 3) from
// a clock the test controls, by default the host's clock plus an offset that can change while it
// runs, and can play a server that refuses (kiss-o'-death) or has no time (leap alarm). Its packet
// code is its own, not the client's under test, and its test checks it with an independent client.
package ntpserver

import (
	"encoding/binary"
	"errors"
	"net"
	"sync"
	"time"
)

// Answer is how the server answers; the zero value is a synchronised stratum 2 server.
type Answer struct {
	// Offset is added to the clock; a positive one makes the server's time run ahead.
	Offset  time.Duration
	Stratum uint8   // [2]; 0 with Kiss set
	RefID   [4]byte // [127.127.1.1 as an address, or "LOCL" at stratum 1]
	Leap    uint8   // 3 is the alarm: not synchronised
	// Kiss, when set, answers with this kiss-o'-death code (RATE, DENY, RSTR) instead of the time.
	Kiss string
	// RootDelay and RootDispersion are what the server claims about its own reference.
	RootDelay, RootDispersion time.Duration
	// Silent drops requests unanswered.
	Silent bool
}

// Server serves one socket until Close.
type Server struct {
	conn net.PacketConn
	now  func() time.Time
	done chan struct{}

	mu       sync.Mutex
	answer   Answer
	requests int
	last     time.Time // when the last request arrived, by the server's clock
}

// Serve answers requests on conn with a; now is the clock before the offset [time.Now].
func Serve(conn net.PacketConn, a Answer, now func() time.Time) *Server {
	if now == nil {
		now = time.Now
	}
	s := &Server{conn: conn, now: now, answer: a, done: make(chan struct{})}
	go s.serve()
	return s
}

// Listen serves on a new UDP socket at addr ("127.0.0.1:0" for any free port).
func Listen(addr string, a Answer) (*Server, error) {
	conn, err := net.ListenPacket("udp", addr)
	if err != nil {
		return nil, err
	}
	return Serve(conn, a, nil), nil
}

// Addr is the address the server listens on.
func (s *Server) Addr() net.Addr { return s.conn.LocalAddr() }

// Set changes how later requests are answered.
func (s *Server) Set(a Answer) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.answer = a
}

// Requests is how many client requests arrived.
func (s *Server) Requests() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.requests
}

// Close stops the server and closes its socket.
func (s *Server) Close() error {
	err := s.conn.Close()
	<-s.done
	return err
}

func (s *Server) serve() {
	defer close(s.done)
	buf := make([]byte, 1024)
	for {
		n, peer, err := s.conn.ReadFrom(buf)
		recv := s.now()
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return
			}
			continue
		}
		// Client mode (3), any version from 1 to 4, and at least the 48-byte header.
		if n < 48 || buf[0]&7 != 3 || buf[0]>>3&7 == 0 || buf[0]>>3&7 > 4 {
			continue
		}
		s.mu.Lock()
		s.requests++
		a := s.answer
		s.mu.Unlock()
		if a.Silent {
			continue
		}
		resp := reply(buf[:48], a, recv.Add(a.Offset), s.now().Add(a.Offset))
		s.conn.WriteTo(resp, peer)
	}
}

// reply is the answer to req received at recv and sent at xmit, by the server's clock.
func reply(req []byte, a Answer, recv, xmit time.Time) []byte {
	b := make([]byte, 48)
	version := req[0] >> 3 & 7
	stratum, refID, leap := a.Stratum, a.RefID, a.Leap
	if stratum == 0 {
		stratum = 2
	}
	if refID == [4]byte{} {
		refID = [4]byte{127, 127, 1, 1}
		if stratum == 1 {
			refID = [4]byte{'L', 'O', 'C', 'L'}
		}
	}
	if a.Kiss != "" {
		stratum, leap, refID = 0, 3, [4]byte{}
		copy(refID[:], a.Kiss)
	}
	b[0] = leap<<6 | version<<3 | 4 // server mode, the client's version
	b[1] = stratum
	b[2] = req[2] // poll: echo the client's
	b[3] = 0xec   // precision 2^-20 s
	binary.BigEndian.PutUint32(b[4:], short(a.RootDelay))
	binary.BigEndian.PutUint32(b[8:], short(a.RootDispersion))
	copy(b[12:16], refID[:])
	binary.BigEndian.PutUint64(b[16:], stamp(recv.Add(-time.Minute))) // reference: last set a minute ago
	binary.BigEndian.PutUint64(b[32:], stamp(recv))
	binary.BigEndian.PutUint64(b[40:], stamp(xmit))
	copy(b[24:32], req[40:48]) // origin: the client's transmit timestamp, whatever it holds
	return b
}

// stamp is t as an NTP timestamp: seconds since 1900 (modulo the era) and a 32-bit fraction.
func stamp(t time.Time) uint64 {
	secs := uint64(t.Unix()+2208988800) & 0xffffffff
	frac := uint64(t.Nanosecond()) << 32 / 1e9
	return secs<<32 | frac
}

// short is d in NTP short format, 16.16 seconds.
func short(d time.Duration) uint32 {
	return uint32(d.Seconds() * 65536)
}
