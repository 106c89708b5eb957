package logind

import (
	"errors"
	"fmt"
	"io"
	"net"
	"sync"
	"time"

	"github.com/godbus/dbus/v5"
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

// handle answers one message. Its error ends the connection.
func (c *conn) handle(m *dbus.Message) error {
	if m.Type != dbus.TypeMethodCall {
		return nil // replies and signals to nobody: there is nobody else on this bus
	}
	c.mu.Lock()
	hello := c.hello
	c.mu.Unlock()
	dest, path, iface, member := header(m, dbus.FieldDestination), header(m, dbus.FieldPath),
		header(m, dbus.FieldInterface), header(m, dbus.FieldMember)
	if !hello {
		// As dbus-daemon: the first call must be Hello, or the client is not a bus client.
		if dest != busName || member != "Hello" || iface != "" && iface != busName {
			return fmt.Errorf("%s.%s before Hello", iface, member)
		}
		c.mu.Lock()
		c.hello = true
		c.mu.Unlock()
		// Now that the client is connected, the calls are bounded by writeTimeout alone.
		c.c.SetDeadline(time.Time{})
		return c.reply(m, busName, c.unique)
	}
	var body []any
	var fd = -1
	var err error
	switch dest {
	case busName:
		body, err = c.busCall(m, path, iface, member)
	case loginName, loginUnique:
		body, fd, err = c.loginCall(m, path, iface, member)
	default:
		err = &busError{"org.freedesktop.DBus.Error.ServiceUnknown", fmt.Sprintf("the name %s was not provided by any .service files", dest)}
	}
	sender := busName
	if dest == loginName || dest == loginUnique {
		sender = loginUnique
	}
	if m.Flags&dbus.FlagNoReplyExpected != 0 {
		if fd >= 0 {
			unix.Close(fd)
		}
		return nil
	}
	var be *busError
	if errors.As(err, &be) {
		return c.send(&dbus.Message{Type: dbus.TypeError, Headers: map[dbus.HeaderField]dbus.Variant{
			dbus.FieldErrorName:   dbus.MakeVariant(be.name),
			dbus.FieldReplySerial: dbus.MakeVariant(m.Serial()),
			dbus.FieldDestination: dbus.MakeVariant(c.unique),
			dbus.FieldSender:      dbus.MakeVariant(sender),
			dbus.FieldSignature:   dbus.MakeVariant(dbus.SignatureOf(be.msg)),
		}, Body: []any{be.msg}})
	}
	if err != nil {
		return err
	}
	if fd >= 0 {
		// The client holds the only write end once it has it; this one goes either way.
		defer unix.Close(fd)
	}
	return c.reply(m, sender, body...)
}

// busCall serves org.freedesktop.DBus.
func (c *conn) busCall(m *dbus.Message, path, iface, member string) ([]any, error) {
	if path != busPath || iface != "" && iface != busName && iface != peerIface {
		return nil, unknownMethod(iface, member)
	}
	switch member {
	case "Hello":
		return nil, errFailed("already handled a Hello message")
	case "AddMatch", "RemoveMatch":
		args, ok := bodyStrings(m, 1)
		if !ok {
			return nil, invalidArgs(member, "s", m)
		}
		rule, err := parseMatch(args[0])
		if err != nil {
			return nil, &busError{"org.freedesktop.DBus.Error.MatchRuleInvalid", err.Error()}
		}
		c.mu.Lock()
		defer c.mu.Unlock()
		if member == "AddMatch" {
			if len(c.matches) >= maxMatches {
				return nil, &busError{"org.freedesktop.DBus.Error.LimitsExceeded", fmt.Sprintf("%d match rules", maxMatches)}
			}
			c.matches = append(c.matches, rule)
			return nil, nil
		}
		for i, r := range c.matches {
			if r.text == rule.text {
				c.matches = append(c.matches[:i], c.matches[i+1:]...)
				return nil, nil
			}
		}
		return nil, &busError{"org.freedesktop.DBus.Error.MatchRuleNotFound", "the given match rule wasn't found"}
	case "GetNameOwner":
		args, ok := bodyStrings(m, 1)
		if !ok {
			return nil, invalidArgs(member, "s", m)
		}
		switch args[0] {
		case busName:
			return []any{busName}, nil
		case loginName, loginUnique:
			return []any{loginUnique}, nil
		case c.unique:
			return []any{c.unique}, nil
		}
		return nil, &busError{"org.freedesktop.DBus.Error.NameHasNoOwner", fmt.Sprintf("could not get owner of name '%s': no such name", args[0])}
	case "GetId":
		return []any{c.srv.guid}, nil
	case "Ping":
		return nil, nil
	}
	return nil, unknownMethod(iface, member)
}

// loginCall serves org.freedesktop.login1: the Manager's InhibitDelayMaxUSec and Inhibit.
func (c *conn) loginCall(m *dbus.Message, path, iface, member string) ([]any, int, error) {
	if path != loginPath {
		return nil, -1, &busError{"org.freedesktop.DBus.Error.UnknownObject", fmt.Sprintf("unknown object %s", path)}
	}
	switch {
	case iface == propsIface && member == "Get":
		args, ok := bodyStrings(m, 2)
		if !ok {
			return nil, -1, invalidArgs(member, "ss", m)
		}
		if args[0] != managerIface || args[1] != delayProperty {
			return nil, -1, &busError{"org.freedesktop.DBus.Error.UnknownProperty", fmt.Sprintf("unknown property %s.%s", args[0], args[1])}
		}
		return []any{dbus.MakeVariant(uint64(c.srv.delayMax / time.Microsecond))}, -1, nil
	case iface == peerIface && member == "Ping":
		return nil, -1, nil
	case (iface == managerIface || iface == "") && member == "Inhibit":
		args, ok := bodyStrings(m, 4)
		if !ok {
			return nil, -1, invalidArgs(member, "ssss", m)
		}
		c.mu.Lock()
		unixFD := c.unixFD
		c.mu.Unlock()
		if !unixFD {
			return nil, -1, errFailed("the connection did not negotiate fd passing")
		}
		fd, err := c.srv.inhibit(args[0], args[1], args[2], args[3], c.pid)
		if err != nil {
			return nil, -1, err
		}
		c.srv.logf("logind: %s (pid %d) took a delay lock on shutdown: %s", args[1], c.pid, args[2])
		return []any{dbus.UnixFD(fd)}, fd, nil
	}
	return nil, -1, unknownMethod(iface, member)
}

func unknownMethod(iface, member string) *busError {
	return &busError{"org.freedesktop.DBus.Error.UnknownMethod", fmt.Sprintf("unknown method %s.%s", iface, member)}
}

func invalidArgs(member, want string, m *dbus.Message) *busError {
	return &busError{"org.freedesktop.DBus.Error.InvalidArgs", fmt.Sprintf("%s takes (%s), not (%s)", member, want, signature(m))}
}

// reply sends a method return for call.
func (c *conn) reply(call *dbus.Message, sender string, body ...any) error {
	h := map[dbus.HeaderField]dbus.Variant{
		dbus.FieldReplySerial: dbus.MakeVariant(call.Serial()),
		dbus.FieldDestination: dbus.MakeVariant(c.unique),
		dbus.FieldSender:      dbus.MakeVariant(sender),
	}
	if len(body) > 0 {
		h[dbus.FieldSignature] = dbus.MakeVariant(dbus.SignatureOf(body...))
	}
	return c.send(&dbus.Message{Type: dbus.TypeMethodReply, Headers: h, Body: body})
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
	return c.send(&dbus.Message{Type: dbus.TypeSignal, Headers: map[dbus.HeaderField]dbus.Variant{
		dbus.FieldPath:      dbus.MakeVariant(dbus.ObjectPath(sig.path)),
		dbus.FieldInterface: dbus.MakeVariant(sig.iface),
		dbus.FieldMember:    dbus.MakeVariant(sig.member),
		dbus.FieldSender:    dbus.MakeVariant(sig.sender),
		dbus.FieldSignature: dbus.MakeVariant(dbus.SignatureOf(arg)),
	}, Body: []any{arg}})
}

// send writes one message, with the fds its body passes, within writeTimeout.
func (c *conn) send(m *dbus.Message) error {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	c.serial++
	if c.serial == 0 {
		c.serial = 1
	}
	if n, _ := m.CountFds(); n > 0 {
		m.Headers[dbus.FieldUnixFDs] = dbus.MakeVariant(uint32(n))
	}
	b, fds, err := encodeMessage(m, c.serial)
	if err != nil {
		return fmt.Errorf("encode: %w", err)
	}
	c.c.SetWriteDeadline(time.Now().Add(writeTimeout))
	defer c.c.SetWriteDeadline(time.Time{})
	if len(fds) == 0 {
		_, err = c.c.Write(b)
		return err
	}
	oob := unix.UnixRights(fds...)
	n, oobn, err := c.c.WriteMsgUnix(b, oob, nil)
	if err == nil && (n != len(b) || oobn != len(oob)) {
		err = io.ErrShortWrite
	}
	return err
}
