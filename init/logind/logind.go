// Package logind is the smallest D-Bus system bus that serves what the kubelet's graceful node
// shutdown asks of systemd-logind, run inside the system init, which owns the machine's shutdown.
// The kubelet (pkg/kubelet/nodeshutdown/systemd, through godbus) connects to the system bus,
// authenticates with EXTERNAL and negotiates fd passing, says Hello, reads
// org.freedesktop.login1.Manager's InhibitDelayMaxUSec, takes a "delay" inhibitor for "shutdown"
// (Inhibit returns one end of a pipe), and adds a match for PrepareForShutdown. When the machine
// is about to go down, PrepareForShutdown(true) goes to every client that asked for it, and the
// init waits until every delay inhibitor is closed, or InhibitDelayMax, before it stops the
// services.
//
// Nothing else is on this bus: no other names, no activation, no method calls between clients.
// A call this bus does not serve gets an error, as on a bus where the service is missing; a
// client that breaks the protocol is disconnected. Only root may connect.
package logind

import (
	"bufio"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"sync"
	"time"

	"golang.org/x/sys/unix"
)

// DefaultInhibitDelayMax is how long a shutdown waits for delay inhibitors when
// Options.InhibitDelayMax is unset. The kubelet compares it with its shutdownGracePeriod and,
// when it is shorter, tries to raise it through systemd, which this bus does not have: it must
// stay at least the longest grace period the node's settings allow.
const DefaultInhibitDelayMax = 90 * time.Second

// Limits: a kubelet uses one connection and holds one inhibitor; they bound what a confused
// client can make PID 1 hold.
const (
	maxConns      = 16
	maxInhibitors = 16
	maxMatches    = 32
	// authTimeout bounds the SASL exchange and Hello.
	authTimeout = 10 * time.Second
	// writeTimeout bounds writing one message to a client: a client that does not read must not
	// hold up the shutdown.
	writeTimeout = 5 * time.Second
)

// Names and paths on the bus.
const (
	busName       = "org.freedesktop.DBus"
	busPath       = "/org/freedesktop/DBus"
	loginName     = "org.freedesktop.login1"
	loginPath     = "/org/freedesktop/login1"
	managerIface  = "org.freedesktop.login1.Manager"
	propsIface    = "org.freedesktop.DBus.Properties"
	loginUnique   = ":1.0" // the unique name login1 answers as; clients get :1.1 and on
	peerIface     = "org.freedesktop.DBus.Peer"
	delayProperty = "InhibitDelayMaxUSec"
)

// Options configure a Server.
type Options struct {
	// Socket is the listening socket's path (contract.DBusSystemSocket); its directory is made.
	Socket string
	// InhibitDelayMax is the longest PrepareForShutdown waits [DefaultInhibitDelayMax].
	InhibitDelayMax time.Duration
	// Logf gets one line per event worth a look: a refused client, an inhibitor taken [discard].
	Logf func(format string, args ...any)
}

// Server is the bus. Its methods are safe for concurrent use.
type Server struct {
	ln       *net.UnixListener
	delayMax time.Duration
	logf     func(format string, args ...any)
	guid     string

	mu           sync.Mutex
	conns        map[*conn]bool
	inhibitors   []*inhibitor
	nextClient   uint64
	shuttingDown bool
	closed       bool
	wg           sync.WaitGroup
}

// inhibitor is a delay lock: the read end of the pipe whose write end the holder got.
type inhibitor struct {
	fd       int
	who, why string
	pid      int32
}

// Listen makes the socket (mode 0600: root only) and returns the Server; Serve answers on it.
func Listen(o Options) (*Server, error) {
	if o.InhibitDelayMax <= 0 {
		o.InhibitDelayMax = DefaultInhibitDelayMax
	}
	if o.Logf == nil {
		o.Logf = func(string, ...any) {}
	}
	if err := os.MkdirAll(filepath.Dir(o.Socket), 0o755); err != nil {
		return nil, fmt.Errorf("logind: %w", err)
	}
	ln, err := listenPrivate(o.Socket)
	if err != nil {
		return nil, fmt.Errorf("logind: %s: %w", o.Socket, err)
	}
	g := make([]byte, 16)
	if _, err := rand.Read(g); err != nil {
		ln.Close()
		return nil, fmt.Errorf("logind: guid: %w", err)
	}
	return &Server{ln: ln, delayMax: o.InhibitDelayMax, logf: o.Logf, guid: hex.EncodeToString(g),
		conns: map[*conn]bool{}}, nil
}

// listenPrivate listens on path under a temporary name and renames it once it has mode 0600, so
// no one else can connect in between.
func listenPrivate(path string) (*net.UnixListener, error) {
	tmp := path + ".new"
	for _, p := range []string{path, tmp} {
		if err := os.Remove(p); err != nil && !errors.Is(err, os.ErrNotExist) {
			return nil, err
		}
	}
	ln, err := net.ListenUnix("unix", &net.UnixAddr{Name: tmp, Net: "unix"})
	if err != nil {
		return nil, err
	}
	ln.SetUnlinkOnClose(false)
	if err := os.Chmod(tmp, 0o600); err == nil {
		err = os.Rename(tmp, path)
	}
	if err != nil {
		ln.Close()
		os.Remove(tmp)
		return nil, err
	}
	return ln, nil
}

// InhibitDelayMax is the longest PrepareForShutdown waits.
func (s *Server) InhibitDelayMax() time.Duration { return s.delayMax }

// Serve accepts clients until Close; it returns nil after Close.
func (s *Server) Serve() error {
	for {
		c, err := s.ln.AcceptUnix()
		if err != nil {
			s.mu.Lock()
			closed := s.closed
			s.mu.Unlock()
			if closed {
				return nil
			}
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				continue
			}
			if errors.Is(err, unix.EMFILE) || errors.Is(err, unix.ENFILE) {
				time.Sleep(100 * time.Millisecond)
				continue
			}
			return fmt.Errorf("logind: accept: %w", err)
		}
		s.mu.Lock()
		if s.closed || len(s.conns) >= maxConns {
			s.mu.Unlock()
			s.logf("logind: refusing a client: %d connections", maxConns)
			c.Close()
			continue
		}
		s.nextClient++
		cn := &conn{srv: s, c: c, unique: fmt.Sprintf(":1.%d", s.nextClient)}
		s.conns[cn] = true
		s.wg.Add(1)
		s.mu.Unlock()
		go func() {
			defer s.wg.Done()
			cn.serve()
		}()
	}
}

// Close stops Serve, disconnects every client and drops the inhibitors.
func (s *Server) Close() error {
	s.mu.Lock()
	s.closed = true
	conns := make([]*conn, 0, len(s.conns))
	for c := range s.conns {
		conns = append(conns, c)
	}
	inh := s.inhibitors
	s.inhibitors = nil
	s.mu.Unlock()
	err := s.ln.Close()
	for _, c := range conns {
		c.c.Close()
	}
	s.wg.Wait()
	for _, in := range inh {
		unix.Close(in.fd)
	}
	return err
}

// Inhibitor describes a delay lock held.
type Inhibitor struct {
	Who, Why string
	PID      int32 // the holder's when it took the lock
}

// Inhibitors returns the delay locks still held (whose fd is still open somewhere).
func (s *Server) Inhibitors() []Inhibitor {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.pruneLocked(0)
	out := make([]Inhibitor, 0, len(s.inhibitors))
	for _, in := range s.inhibitors {
		out = append(out, Inhibitor{Who: in.who, Why: in.why, PID: in.pid})
	}
	return out
}

// pruneLocked waits up to timeout for an inhibitor's pipe to lose its last writer, and drops
// (and closes) those that did. With more than one it returns as soon as any did.
func (s *Server) pruneLocked(timeout time.Duration) {
	if len(s.inhibitors) == 0 {
		return
	}
	fds := make([]unix.PollFd, len(s.inhibitors))
	for i, in := range s.inhibitors {
		// No events asked for: POLLHUP (every write end closed) is always reported, and data a
		// holder writes into its end cannot wake the poll up for nothing.
		fds[i] = unix.PollFd{Fd: int32(in.fd)}
	}
	ms := int(timeout / time.Millisecond)
	for {
		_, err := unix.Poll(fds, ms)
		if !errors.Is(err, unix.EINTR) {
			break
		}
	}
	kept := s.inhibitors[:0]
	for i, in := range s.inhibitors {
		if fds[i].Revents&(unix.POLLHUP|unix.POLLERR|unix.POLLNVAL) != 0 {
			unix.Close(in.fd)
			continue
		}
		kept = append(kept, in)
	}
	clear(s.inhibitors[len(kept):])
	s.inhibitors = kept
}

// ShutdownWait is what PrepareForShutdown saw.
type ShutdownWait struct {
	Held     []Inhibitor   // the delay locks held when the shutdown began
	Left     []Inhibitor   // those still held when the wait ended
	Waited   time.Duration // how long it waited
	Notified int           // clients PrepareForShutdown(true) was sent to
}

// PrepareForShutdown tells the clients that asked (PrepareForShutdown(true), as logind does at
// every shutdown) and, when delay locks are held, waits until every one is closed, the
// InhibitDelayMax is over, or ctx ends. Locks asked for after it began are refused.
func (s *Server) PrepareForShutdown(ctx context.Context) ShutdownWait {
	start := time.Now()
	s.mu.Lock()
	s.shuttingDown = true
	s.pruneLocked(0)
	var w ShutdownWait
	for _, in := range s.inhibitors {
		w.Held = append(w.Held, Inhibitor{Who: in.who, Why: in.why, PID: in.pid})
	}
	conns := make([]*conn, 0, len(s.conns))
	for c := range s.conns {
		conns = append(conns, c)
	}
	s.mu.Unlock()

	sig := signal{sender: loginUnique, senderName: loginName, iface: managerIface, member: "PrepareForShutdown", path: loginPath}
	for _, c := range conns {
		if c.wants(sig) {
			if err := c.sendSignal(sig, true); err != nil {
				s.logf("logind: PrepareForShutdown to %s: %v", c.unique, err)
				continue
			}
			w.Notified++
		}
	}
	if len(w.Held) == 0 {
		return w
	}
	deadline := start.Add(s.delayMax)
	for {
		now := time.Now()
		if !now.Before(deadline) || ctx.Err() != nil {
			break
		}
		// Short polls, so ctx is looked at and the lock is not held for long.
		step := min(deadline.Sub(now), 100*time.Millisecond)
		s.mu.Lock()
		s.pruneLocked(step)
		n := len(s.inhibitors)
		s.mu.Unlock()
		if n == 0 {
			break
		}
	}
	s.mu.Lock()
	s.pruneLocked(0)
	for _, in := range s.inhibitors {
		w.Left = append(w.Left, Inhibitor{Who: in.who, Why: in.why, PID: in.pid})
	}
	s.mu.Unlock()
	w.Waited = time.Since(start)
	return w
}

// inhibit takes a delay lock for a client and returns the write end the client is to get.
func (s *Server) inhibit(what, who, why, mode string, pid int32) (int, error) {
	if what != "shutdown" || mode != "delay" {
		return -1, errNotSupported(fmt.Sprintf("only delay locks on shutdown are served, not %s on %q", mode, what))
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.shuttingDown {
		return -1, errFailed("the machine is shutting down")
	}
	s.pruneLocked(0)
	if len(s.inhibitors) >= maxInhibitors {
		return -1, errFailed(fmt.Sprintf("%d inhibitors held", maxInhibitors))
	}
	var p [2]int
	if err := unix.Pipe2(p[:], unix.O_CLOEXEC); err != nil {
		return -1, errFailed(fmt.Sprintf("pipe: %v", err))
	}
	s.inhibitors = append(s.inhibitors, &inhibitor{fd: p[0], who: who, why: why, pid: pid})
	return p[1], nil
}

// remove drops a connection once it is gone.
func (s *Server) remove(c *conn) {
	s.mu.Lock()
	delete(s.conns, c)
	s.mu.Unlock()
}

// peerCred returns the connected peer's credentials.
func peerCred(c *net.UnixConn) (*unix.Ucred, error) {
	raw, err := c.SyscallConn()
	if err != nil {
		return nil, err
	}
	var cred *unix.Ucred
	var cerr error
	if err := raw.Control(func(fd uintptr) {
		cred, cerr = unix.GetsockoptUcred(int(fd), unix.SOL_SOCKET, unix.SO_PEERCRED)
	}); err != nil {
		return nil, err
	}
	return cred, cerr
}

// newReader is the buffered reader a connection reads both the SASL lines and the messages from.
func newReader(c net.Conn) *bufio.Reader { return bufio.NewReaderSize(c, 4096) }
