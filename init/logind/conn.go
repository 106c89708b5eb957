package logind

import (
	"errors"
	"fmt"
	"io"
	"net"
	"sync"
	"time"

	"golang.org/x/sys/unix"
)

// conn is one client.
type conn struct {
	srv    *Server
	c      *net.UnixConn
	unique string // its unique name, given at Hello
	pid    int32

	wmu    sync.Mutex // one message at a time on the socket
	serial uint32     // the last serial this bus sent on the connection; under wmu

	mu      sync.Mutex
	matches []matchRule
	unixFD  bool
	hello   bool
}

// busError is an error reply.
type busError struct{ name, msg string }

func (e *busError) Error() string { return e.name + ": " + e.msg }

func errNotSupported(msg string) *busError {
	return &busError{"org.freedesktop.DBus.Error.NotSupported", msg}
}
func errFailed(msg string) *busError { return &busError{"org.freedesktop.DBus.Error.Failed", msg} }

func (c *conn) serve() {
	defer c.srv.remove(c)
	defer c.c.Close()
	// This runs in PID 1, where a panic ends the machine: a client's message that trips up the
	// decoder costs that client its connection, nothing more.
	defer func() {
		if r := recover(); r != nil {
			c.srv.logf("logind: internal error serving pid %d: %v; disconnected", c.pid, r)
		}
	}()
	cred, err := peerCred(c.c)
	if err != nil {
		c.srv.logf("logind: a client's credentials: %v", err)
		return
	}
	// The socket's mode keeps others out already; this holds should it ever be wider.
	if cred.Uid != 0 {
		c.srv.logf("logind: refusing pid %d: uid %d is not root", cred.Pid, cred.Uid)
		return
	}
	c.pid = cred.Pid
	c.c.SetDeadline(time.Now().Add(authTimeout))
	r := newReader(c.c)
	unixFD, err := authenticate(r, c.c, cred.Uid, c.srv.guid)
	if err != nil {
		c.srv.logf("logind: pid %d: %v", cred.Pid, err)
		return
	}
	c.mu.Lock()
	c.unixFD = unixFD
	c.mu.Unlock()
	for {
		m, err := readMessage(r)
		if err != nil {
			if !errors.Is(err, io.EOF) && !errors.Is(err, net.ErrClosed) {
				c.srv.logf("logind: pid %d: %v; disconnected", cred.Pid, err)
			}
			return
		}
		if err := c.handle(m); err != nil {
			c.srv.logf("logind: pid %d: %v; disconnected", cred.Pid, err)
			return
		}
	}
}

// reply is the body of a method return: its signature, its encoding, and the fd it passes
// (-1: none).
type reply struct {
	sig  string
	body []byte
	fd   int
}

func noReply() reply { return reply{fd: -1} }

// stringReply is a method return of one string.
func stringReply(s string) reply {
	w := &writer{}
	w.str(s)
	return reply{sig: "s", body: w.b, fd: -1}
}

// handle answers one message. Its error ends the connection.
func (c *conn) handle(m *message) error {
	if m.typ != typeMethodCall {
		return nil // replies and signals to nobody: there is nobody else on this bus
	}
	c.mu.Lock()
	hello := c.hello
	c.mu.Unlock()
	if !hello {
		// As dbus-daemon: the first call must be Hello, or the client is not a bus client.
		if m.dest != busName || m.member != "Hello" || m.iface != "" && m.iface != busName {
			return fmt.Errorf("%s.%s before Hello", m.iface, m.member)
		}
		c.mu.Lock()
		c.hello = true
		c.mu.Unlock()
		// Now that the client is connected, the calls are bounded by writeTimeout alone.
		c.c.SetDeadline(time.Time{})
		return c.reply(m, busName, stringReply(c.unique))
	}
	var rep reply
	var err error
	sender := busName
	switch m.dest {
	case busName:
		rep, err = c.busCall(m)
	case loginName, loginUnique:
		sender = loginUnique
		rep, err = c.loginCall(m)
	default:
		err = &busError{"org.freedesktop.DBus.Error.ServiceUnknown", fmt.Sprintf("the name %s was not provided by any .service files", m.dest)}
	}
	if err == nil && rep.fd >= 0 {
		// The client holds the only write end once it has it; this one goes either way.
		defer unix.Close(rep.fd)
	}
	if m.flags&flagNoReplyExpected != 0 {
		return nil
	}
	var be *busError
	if errors.As(err, &be) {
		w := &writer{}
		w.str(be.msg)
		return c.send(&message{typ: typeError, errName: be.name, replySerial: m.serial, dest: c.unique,
			sender: sender, sig: "s", body: w.b}, -1)
	}
	if err != nil {
		return err
	}
	return c.reply(m, sender, rep)
}

// busCall serves org.freedesktop.DBus.
func (c *conn) busCall(m *message) (reply, error) {
	if m.path != busPath || m.iface != "" && m.iface != busName && m.iface != peerIface {
		return noReply(), unknownMethod(m)
	}
	switch m.member {
	case "Hello":
		return noReply(), errFailed("already handled a Hello message")
	case "AddMatch", "RemoveMatch":
		if !takes(m, "s") {
			return noReply(), invalidArgs(m, "s")
		}
		rule, err := parseMatch(m.args[0])
		if err != nil {
			return noReply(), &busError{"org.freedesktop.DBus.Error.MatchRuleInvalid", err.Error()}
		}
		c.mu.Lock()
		defer c.mu.Unlock()
		if m.member == "AddMatch" {
			if len(c.matches) >= maxMatches {
				return noReply(), &busError{"org.freedesktop.DBus.Error.LimitsExceeded", fmt.Sprintf("%d match rules", maxMatches)}
			}
			c.matches = append(c.matches, rule)
			return noReply(), nil
		}
		for i, r := range c.matches {
			if r.text == rule.text {
				c.matches = append(c.matches[:i], c.matches[i+1:]...)
				return noReply(), nil
			}
		}
		return noReply(), &busError{"org.freedesktop.DBus.Error.MatchRuleNotFound", "the given match rule wasn't found"}
	case "GetNameOwner":
		if !takes(m, "s") {
			return noReply(), invalidArgs(m, "s")
		}
		switch m.args[0] {
		case busName:
			return stringReply(busName), nil
		case loginName, loginUnique:
			return stringReply(loginUnique), nil
		case c.unique:
			return stringReply(c.unique), nil
		}
		return noReply(), &busError{"org.freedesktop.DBus.Error.NameHasNoOwner", fmt.Sprintf("could not get owner of name '%s': no such name", m.args[0])}
	case "GetId":
		return stringReply(c.srv.guid), nil
	case "Ping":
		return noReply(), nil
	}
	return noReply(), unknownMethod(m)
}

// loginCall serves org.freedesktop.login1: the Manager's InhibitDelayMaxUSec and Inhibit.
func (c *conn) loginCall(m *message) (reply, error) {
	if m.path != loginPath {
		return noReply(), &busError{"org.freedesktop.DBus.Error.UnknownObject", fmt.Sprintf("unknown object %s", m.path)}
	}
	switch {
	case m.iface == propsIface && m.member == "Get":
		if !takes(m, "ss") {
			return noReply(), invalidArgs(m, "ss")
		}
		if m.args[0] != managerIface || m.args[1] != delayProperty {
			return noReply(), &busError{"org.freedesktop.DBus.Error.UnknownProperty", fmt.Sprintf("unknown property %s.%s", m.args[0], m.args[1])}
		}
		// A variant of type t: microseconds.
		w := &writer{}
		w.signature("t")
		w.u64(uint64(c.srv.delayMax / time.Microsecond))
		return reply{sig: "v", body: w.b, fd: -1}, nil
	case m.iface == peerIface && m.member == "Ping":
		return noReply(), nil
	case (m.iface == managerIface || m.iface == "") && m.member == "Inhibit":
		if !takes(m, "ssss") {
			return noReply(), invalidArgs(m, "ssss")
		}
		c.mu.Lock()
		unixFD := c.unixFD
		c.mu.Unlock()
		if !unixFD {
			return noReply(), errFailed("the connection did not negotiate fd passing")
		}
		a := m.args
		fd, err := c.srv.inhibit(a[0], a[1], a[2], a[3], c.pid)
		if err != nil {
			return noReply(), err
		}
		c.srv.logf("logind: %s (pid %d) took a delay lock on shutdown: %s", a[1], c.pid, a[2])
		w := &writer{}
		w.u32(0) // the index of the fd among those the message passes
		return reply{sig: "h", body: w.b, fd: fd}, nil
	}
	return noReply(), unknownMethod(m)
}

// takes says whether m's arguments are sig, all strings.
func takes(m *message, sig string) bool { return m.sig == sig && len(m.args) == len(sig) }

func unknownMethod(m *message) *busError {
	return &busError{"org.freedesktop.DBus.Error.UnknownMethod", fmt.Sprintf("unknown method %s.%s", m.iface, m.member)}
}

func invalidArgs(m *message, want string) *busError {
	return &busError{"org.freedesktop.DBus.Error.InvalidArgs", fmt.Sprintf("%s takes (%s), not (%s)", m.member, want, m.sig)}
}

// reply sends the method return of call.
func (c *conn) reply(call *message, sender string, r reply) error {
	m := &message{typ: typeMethodReturn, replySerial: call.serial, dest: c.unique, sender: sender, sig: r.sig, body: r.body}
	if r.fd >= 0 {
		m.unixFDs = 1
	}
	return c.send(m, r.fd)
}

// wants says whether one of the client's match rules selects sig.
func (c *conn) wants(sig signal) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	if !c.hello {
		return false
	}
	for _, r := range c.matches {
		if r.matches(sig) {
			return true
		}
	}
	return false
}

// sendSignal broadcasts sig with a boolean argument to the client.
func (c *conn) sendSignal(sig signal, arg bool) error {
	w := &writer{}
	w.boolean(arg)
	return c.send(&message{typ: typeSignal, path: sig.path, iface: sig.iface, member: sig.member,
		sender: sig.sender, sig: "b", body: w.b}, -1)
}

// send writes one message, passing fd when it is not -1, within writeTimeout.
func (c *conn) send(m *message, fd int) error {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	c.serial++
	if c.serial == 0 {
		c.serial = 1
	}
	m.serial = c.serial
	b := m.encode()
	c.c.SetWriteDeadline(time.Now().Add(writeTimeout))
	defer c.c.SetWriteDeadline(time.Time{})
	if fd < 0 {
		_, err := c.c.Write(b)
		return err
	}
	oob := unix.UnixRights(fd)
	n, oobn, err := c.c.WriteMsgUnix(b, oob, nil)
	if err == nil && (n != len(b) || oobn != len(oob)) {
		err = io.ErrShortWrite
	}
	return err
}
