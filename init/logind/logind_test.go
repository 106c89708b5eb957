package logind

import (
	"bufio"
	"bytes"
	"context"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"io"
	"math/rand/v2"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/godbus/dbus/v5"
)

// serve starts a bus on a socket in a temporary directory, with logs going to the test.
func serve(t *testing.T, delayMax time.Duration) (*Server, string) {
	t.Helper()
	sock := filepath.Join(t.TempDir(), "dbus", "system_bus_socket")
	s, err := Listen(Options{Socket: sock, InhibitDelayMax: delayMax, Logf: t.Logf})
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- s.Serve() }()
	t.Cleanup(func() {
		s.Close()
		if err := <-done; err != nil {
			t.Errorf("Serve: %v", err)
		}
	})
	return s, sock
}

// kubelet is the kubelet's node shutdown manager's side, the same godbus calls as
// pkg/kubelet/nodeshutdown/systemd (v1.31) in the same order.
type kubelet struct {
	conn    *dbus.Conn
	delay   time.Duration
	lock    uint32
	signals chan *dbus.Signal
}

func startKubelet(t *testing.T, sock string) *kubelet {
	t.Helper()
	// The kubelet finds the bus through the environment, as dbus.SystemBus does.
	t.Setenv("DBUS_SYSTEM_BUS_ADDRESS", "unix:path="+sock)
	conn, err := dbus.ConnectSystemBus()
	if err != nil {
		t.Fatalf("connect: %v", err)
	}
	t.Cleanup(func() { conn.Close() })
	k := &kubelet{conn: conn}
	obj := conn.Object("org.freedesktop.login1", dbus.ObjectPath("/org/freedesktop/login1"))
	res, err := obj.GetProperty("org.freedesktop.login1.Manager.InhibitDelayMaxUSec")
	if err != nil {
		t.Fatalf("InhibitDelayMaxUSec: %v", err)
	}
	delay, ok := res.Value().(uint64)
	if !ok {
		t.Fatalf("InhibitDelayMaxUSec is %T", res.Value())
	}
	k.delay = time.Duration(delay) * time.Microsecond
	call := obj.Call("org.freedesktop.login1.Manager.Inhibit", 0, "shutdown", "kubelet", "Kubelet needs time to handle node shutdown", "delay")
	if call.Err != nil {
		t.Fatalf("Inhibit: %v", call.Err)
	}
	if err := call.Store(&k.lock); err != nil {
		t.Fatalf("Inhibit's fd: %v", err)
	}
	err = conn.AddMatchSignal(dbus.WithMatchInterface("org.freedesktop.login1.Manager"), dbus.WithMatchMember("PrepareForShutdown"),
		dbus.WithMatchObjectPath("/org/freedesktop/login1"))
	if err != nil {
		t.Fatalf("AddMatch: %v", err)
	}
	k.signals = make(chan *dbus.Signal, 1)
	conn.Signal(k.signals)
	return k
}

// shutdownEvent waits for PrepareForShutdown and returns its argument.
func (k *kubelet) shutdownEvent(t *testing.T) bool {
	t.Helper()
	select {
	case s := <-k.signals:
		if s.Name != "org.freedesktop.login1.Manager.PrepareForShutdown" || s.Path != "/org/freedesktop/login1" || len(s.Body) != 1 {
			t.Fatalf("signal %+v", s)
		}
		v, ok := s.Body[0].(bool)
		if !ok {
			t.Fatalf("PrepareForShutdown(%T)", s.Body[0])
		}
		return v
	case <-time.After(10 * time.Second):
		t.Fatal("no PrepareForShutdown")
	}
	return false
}

func TestKubeletGracefulShutdown(t *testing.T) {
	s, sock := serve(t, 30*time.Second)
	k := startKubelet(t, sock)
	if k.delay != 30*time.Second {
		t.Errorf("InhibitDelayMaxUSec %v", k.delay)
	}
	if k.lock == 0 {
		t.Fatal("no inhibitor fd")
	}
	if got := s.Inhibitors(); len(got) != 1 || got[0].Who != "kubelet" || got[0].PID != int32(os.Getpid()) {
		t.Errorf("inhibitors %+v", got)
	}
	// ReloadLogindConf: there is no systemd on this bus, and the kubelet must hear so.
	call := k.conn.Object("org.freedesktop.systemd1", "/org/freedesktop/systemd1").
		Call("org.freedesktop.systemd1.Manager.KillUnit", 0, "systemd-logind.service", "all", int32(1))
	var de dbus.Error
	if !errors.As(call.Err, &de) || de.Name != "org.freedesktop.DBus.Error.ServiceUnknown" {
		t.Errorf("KillUnit: %v", call.Err)
	}

	done := make(chan ShutdownWait, 1)
	go func() { done <- s.PrepareForShutdown(context.Background()) }()
	if !k.shutdownEvent(t) {
		t.Fatal("PrepareForShutdown(false)")
	}
	// The kubelet stops its pods meanwhile; the shutdown waits for it.
	const podsStop = 300 * time.Millisecond
	select {
	case w := <-done:
		t.Fatalf("the shutdown went on while the lock was held: %+v", w)
	case <-time.After(podsStop):
	}
	if err := syscall.Close(int(k.lock)); err != nil {
		t.Fatal(err)
	}
	var w ShutdownWait
	select {
	case w = <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("the shutdown still waits after the lock was closed")
	}
	if len(w.Held) != 1 || w.Held[0].Who != "kubelet" || len(w.Left) != 0 || w.Notified != 1 || w.Waited < podsStop || w.Waited > 5*time.Second {
		t.Errorf("wait %+v", w)
	}
	// A lock asked for once the shutdown began would not be waited for: refused.
	call = k.conn.Object("org.freedesktop.login1", "/org/freedesktop/login1").
		Call("org.freedesktop.login1.Manager.Inhibit", 0, "shutdown", "kubelet", "again", "delay")
	if call.Err == nil || !strings.Contains(call.Err.Error(), "shutting down") {
		t.Errorf("Inhibit during the shutdown: %v", call.Err)
	}
}

// A lock never released holds the shutdown up for InhibitDelayMax, no longer.
func TestShutdownWaitsNoLongerThanTheMaxDelay(t *testing.T) {
	const max = 400 * time.Millisecond
	s, sock := serve(t, max)
	k := startKubelet(t, sock)
	start := time.Now()
	w := s.PrepareForShutdown(context.Background())
	took := time.Since(start)
	if took < max || took > max+2*time.Second {
		t.Errorf("waited %v with a %v maximum", took, max)
	}
	if len(w.Left) != 1 || w.Left[0].Who != "kubelet" {
		t.Errorf("wait %+v", w)
	}
	if !k.shutdownEvent(t) {
		t.Error("PrepareForShutdown(false)")
	}
}

// Without a lock there is nothing to wait for; clients that asked still hear of the shutdown.
func TestShutdownWithoutInhibitors(t *testing.T) {
	s, sock := serve(t, time.Minute)
	k := startKubelet(t, sock)
	syscall.Close(int(k.lock))
	// One more client, which asked for nothing.
	other, err := dbus.Connect("unix:path=" + sock)
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()
	start := time.Now()
	w := s.PrepareForShutdown(context.Background())
	if time.Since(start) > time.Second || len(w.Held) != 0 || w.Notified != 1 {
		t.Errorf("wait %+v after %v", w, time.Since(start))
	}
	if !k.shutdownEvent(t) {
		t.Error("PrepareForShutdown(false)")
	}
}

func TestCalls(t *testing.T) {
	_, sock := serve(t, time.Minute)
	conn, err := dbus.Connect("unix:path=" + sock)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	login := conn.Object("org.freedesktop.login1", "/org/freedesktop/login1")
	bus := conn.BusObject()
	tests := []struct {
		name string
		call *dbus.Call
		err  string // the error's name; "" for a reply
	}{
		{"block lock", login.Call("org.freedesktop.login1.Manager.Inhibit", 0, "shutdown", "x", "y", "block"), "org.freedesktop.DBus.Error.NotSupported"},
		{"sleep lock", login.Call("org.freedesktop.login1.Manager.Inhibit", 0, "sleep", "x", "y", "delay"), "org.freedesktop.DBus.Error.NotSupported"},
		{"Inhibit with too few arguments", login.Call("org.freedesktop.login1.Manager.Inhibit", 0, "shutdown", "x"), "org.freedesktop.DBus.Error.InvalidArgs"},
		{"another property", login.Call("org.freedesktop.DBus.Properties.Get", 0, "org.freedesktop.login1.Manager", "Docked"), "org.freedesktop.DBus.Error.UnknownProperty"},
		{"another method", login.Call("org.freedesktop.login1.Manager.PowerOff", 0, false), "org.freedesktop.DBus.Error.UnknownMethod"},
		{"another object", conn.Object("org.freedesktop.login1", "/org/freedesktop/login1/seat/seat0").Call("org.freedesktop.DBus.Properties.Get", 0, "a", "b"), "org.freedesktop.DBus.Error.UnknownObject"},
		{"login1's owner", bus.Call("org.freedesktop.DBus.GetNameOwner", 0, "org.freedesktop.login1"), ""},
		{"no such name", bus.Call("org.freedesktop.DBus.GetNameOwner", 0, "org.example.X"), "org.freedesktop.DBus.Error.NameHasNoOwner"},
		{"a bad match rule", bus.Call("org.freedesktop.DBus.AddMatch", 0, "type='signal',arg0='x'"), "org.freedesktop.DBus.Error.MatchRuleInvalid"},
		{"removing a rule never added", bus.Call("org.freedesktop.DBus.RemoveMatch", 0, "type='signal'"), "org.freedesktop.DBus.Error.MatchRuleNotFound"},
		{"a second Hello", bus.Call("org.freedesktop.DBus.Hello", 0), "org.freedesktop.DBus.Error.Failed"},
	}
	for _, tt := range tests {
		var de dbus.Error
		switch {
		case tt.err == "" && tt.call.Err != nil:
			t.Errorf("%s: %v", tt.name, tt.call.Err)
		case tt.err != "" && (!errors.As(tt.call.Err, &de) || de.Name != tt.err):
			t.Errorf("%s: %v, want %s", tt.name, tt.call.Err, tt.err)
		}
	}
	var owner string
	if err := bus.Call("org.freedesktop.DBus.GetNameOwner", 0, "org.freedesktop.login1").Store(&owner); err != nil || owner != ":1.0" {
		t.Errorf("login1's owner %q, %v", owner, err)
	}
	if names := conn.Names(); len(names) == 0 || !strings.HasPrefix(names[0], ":1.") || names[0] == ":1.0" {
		t.Errorf("unique name %q", names)
	}
}

// rawClient connects and, when auth is set, authenticates and says Hello by hand.
func rawClient(t *testing.T, sock string) net.Conn {
	t.Helper()
	c, err := net.Dial("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	c.SetDeadline(time.Now().Add(10 * time.Second))
	return c
}

// disconnected says whether the bus closed c (after whatever it answered first): EOF, or a
// reset when it left what c sent unread.
func disconnected(c net.Conn) bool {
	_, err := io.Copy(io.Discard, c)
	return err == nil || errors.Is(err, syscall.ECONNRESET)
}

func authLines(uid string) string {
	return "\x00AUTH\r\nAUTH EXTERNAL " + hex.EncodeToString([]byte(uid)) + "\r\nNEGOTIATE_UNIX_FD\r\nBEGIN\r\n"
}

// godbusEncode encodes m with godbus's own encoder (a second implementation, to check this
// bus's reader against), with serial: godbus keeps a Message's serial to its connections.
func godbusEncode(t *testing.T, m *dbus.Message, serial uint32) []byte {
	t.Helper()
	var b bytes.Buffer
	if err := m.EncodeTo(&b, binary.LittleEndian); err != nil {
		t.Fatal(err)
	}
	out := b.Bytes()
	binary.LittleEndian.PutUint32(out[8:12], serial)
	return out
}

// callMessage is a valid call of org.freedesktop.DBus's member, with serial 1.
func callMessage(t *testing.T, member string) []byte {
	return godbusEncode(t, &dbus.Message{Type: dbus.TypeMethodCall, Headers: map[dbus.HeaderField]dbus.Variant{
		dbus.FieldPath:        dbus.MakeVariant(dbus.ObjectPath("/org/freedesktop/DBus")),
		dbus.FieldInterface:   dbus.MakeVariant("org.freedesktop.DBus"),
		dbus.FieldMember:      dbus.MakeVariant(member),
		dbus.FieldDestination: dbus.MakeVariant("org.freedesktop.DBus"),
	}}, 1)
}

// Clients that break the protocol are disconnected, and the bus goes on serving.
func TestMalformedClients(t *testing.T) {
	_, sock := serve(t, time.Minute)
	uid := strconv.Itoa(os.Getuid())
	hello := callMessage(t, "Hello")
	huge := append([]byte(nil), hello...)
	binary.LittleEndian.PutUint32(huge[4:8], 1<<30) // a body of 1 GiB
	badOrder := append([]byte(nil), hello...)
	badOrder[0] = 'x'
	badVersion := append([]byte(nil), hello...)
	badVersion[3] = 2
	badFields := append([]byte(nil), hello...)
	for i := 16; i < len(badFields); i++ {
		badFields[i] = 0xff
	}
	call := callMessage(t, "GetId")
	tests := []struct {
		name string
		send string
	}{
		{"garbage instead of NUL", "GET / HTTP/1.1\r\n\r\n"},
		{"garbage lines", "\x00" + strings.Repeat("BLAH\r\n", 20)},
		{"a line without end", "\x00AUTH " + strings.Repeat("A", 4096)},
		{"LF without CR", "\x00AUTH\n"},
		{"another user's identity", "\x00AUTH EXTERNAL " + hex.EncodeToString([]byte("1000")) + "\r\nBEGIN\r\n"},
		{"garbage after BEGIN", authLines(uid) + strings.Repeat("\xde\xad\xbe\xef", 64)},
		{"a 1 GiB message", authLines(uid) + string(huge)},
		{"unknown byte order", authLines(uid) + string(badOrder)},
		{"protocol version 2", authLines(uid) + string(badVersion)},
		{"garbled header fields", authLines(uid) + string(badFields)},
		{"a call before Hello", authLines(uid) + string(call)},
		{"a cut message", authLines(uid) + string(hello[:20])},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := rawClient(t, sock)
			if _, err := io.WriteString(c, tt.send); err != nil {
				t.Fatal(err)
			}
			if tt.name == "a cut message" {
				c.(*net.UnixConn).CloseWrite()
			}
			if !disconnected(c) {
				t.Error("still connected")
			}
		})
	}
	// The same bus still serves a real client.
	conn, err := dbus.Connect("unix:path=" + sock)
	if err != nil {
		t.Fatalf("after the garbage: %v", err)
	}
	conn.Close()
}

// The SASL exchange godbus v5.1 makes ("AUTH EXTERNAL" without data, then DATA) and the one
// other clients make (the identity at once) both work; an identity that is not the peer's does not.
func TestAuthenticate(t *testing.T) {
	uid := strconv.Itoa(os.Getuid())
	id := hex.EncodeToString([]byte(uid))
	tests := []struct {
		name, in, out string
		fd, ok        bool
	}{
		{"godbus", "\x00AUTH\r\nAUTH EXTERNAL\r\nDATA\r\nNEGOTIATE_UNIX_FD\r\nBEGIN\r\n", "REJECTED EXTERNAL\r\nDATA\r\nOK g\r\nAGREE_UNIX_FD\r\n", true, true},
		{"identity at once", "\x00AUTH EXTERNAL " + id + "\r\nBEGIN\r\n", "OK g\r\n", false, true},
		{"identity in DATA", "\x00AUTH EXTERNAL\r\nDATA " + id + "\r\nBEGIN\r\n", "DATA\r\nOK g\r\n", false, true},
		{"another mechanism", "\x00AUTH DBUS_COOKIE_SHA1 " + id + "\r\n", "REJECTED EXTERNAL\r\n", false, false},
		{"wrong identity", "\x00AUTH EXTERNAL 31\r\nBEGIN\r\n", "REJECTED EXTERNAL\r\n", false, false},
		{"cancel", "\x00AUTH\r\nCANCEL\r\nBEGIN\r\n", "REJECTED EXTERNAL\r\nREJECTED EXTERNAL\r\nERROR\r\n", false, false},
		{"not hex", "\x00AUTH EXTERNAL zz\r\n", "REJECTED EXTERNAL\r\n", false, false},
		{"fds before auth", "\x00NEGOTIATE_UNIX_FD\r\n", "ERROR\r\n", false, false},
	}
	for _, tt := range tests {
		var out strings.Builder
		fd, err := authenticate(bufio.NewReader(strings.NewReader(tt.in)), &out, uint32(os.Getuid()), "g")
		if (err == nil) != tt.ok || fd != tt.fd || out.String() != tt.out {
			t.Errorf("%s: fd %v, %v; answered %q, want %q", tt.name, fd, err, out.String(), tt.out)
		}
	}
}

func TestParseMatch(t *testing.T) {
	sig := signal{sender: ":1.0", senderName: "org.freedesktop.login1", iface: "org.freedesktop.login1.Manager",
		member: "PrepareForShutdown", path: "/org/freedesktop/login1"}
	tests := []struct {
		rule    string
		err     string
		matches bool
	}{
		{"type='signal',interface='org.freedesktop.login1.Manager',member='PrepareForShutdown',path='/org/freedesktop/login1'", "", true},
		{"type='signal',sender='org.freedesktop.login1'", "", true},
		{"sender=':1.0',path_namespace='/org/freedesktop'", "", true},
		{"", "", true},
		{"type='signal',member='PrepareForSleep'", "", false},
		{"type='method_call'", "", false},
		{"path_namespace='/org/free'", "", false},
		{"destination=':1.1'", "", false},
		{`member='It'\''s'`, "", false},
		{"type='signal',arg0='x'", `key "arg0"`, false},
		{"type='bogus'", "type", false},
		{"member='x", "unterminated", false},
		{"member='a',member='b'", "twice", false},
		{"path='/a',path_namespace='/b'", "together", false},
		{"justtext", "no key", false},
		{strings.Repeat("a", 2000), "longer", false},
	}
	for _, tt := range tests {
		r, err := parseMatch(tt.rule)
		if (err == nil) != (tt.err == "") || err != nil && !strings.Contains(err.Error(), tt.err) {
			t.Errorf("parseMatch(%q): %v, want %q", tt.rule, err, tt.err)
			continue
		}
		if err == nil && r.matches(sig) != tt.matches {
			t.Errorf("%q matches PrepareForShutdown: %v", tt.rule, !tt.matches)
		}
	}
	if r, _ := parseMatch(`member='It'\''s'`); r.member != "It's" {
		t.Errorf("escaped quote: %q", r.member)
	}
}

// Only root may use the bus, whatever the socket's mode.
func TestSocketMode(t *testing.T) {
	_, sock := serve(t, time.Minute)
	fi, err := os.Stat(sock)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode()&os.ModeSocket == 0 || fi.Mode().Perm() != 0o600 {
		t.Errorf("socket mode %v", fi.Mode())
	}
}

// Mangled messages are refused by readMessage, not panicked on (the connection's recover is for
// bugs, not for input).
func TestReadMessageMutations(t *testing.T) {
	valid := callMessage(t, "AddMatch")
	m := &dbus.Message{Type: dbus.TypeMethodCall, Headers: map[dbus.HeaderField]dbus.Variant{
		dbus.FieldPath:        dbus.MakeVariant(dbus.ObjectPath("/org/freedesktop/login1")),
		dbus.FieldInterface:   dbus.MakeVariant("org.freedesktop.login1.Manager"),
		dbus.FieldMember:      dbus.MakeVariant("Inhibit"),
		dbus.FieldDestination: dbus.MakeVariant("org.freedesktop.login1"),
		dbus.FieldSignature:   dbus.MakeVariant(dbus.SignatureOf("", "", "", "")),
	}, Body: []any{"shutdown", "kubelet", "why", "delay"}}
	inhibit := godbusEncode(t, m, 7)
	got, err := readMessage(bytes.NewReader(inhibit))
	if err != nil || got.serial != 7 || got.member != "Inhibit" || got.dest != "org.freedesktop.login1" ||
		got.path != "/org/freedesktop/login1" || got.sig != "ssss" || strings.Join(got.args, ",") != "shutdown,kubelet,why,delay" {
		t.Fatalf("the valid message: %+v, %v", got, err)
	}
	rng := rand.New(rand.NewPCG(1, 2))
	start := time.Now()
	for n := range 20000 {
		src := valid
		if n%2 == 1 {
			src = inhibit
		}
		b := append([]byte(nil), src...)
		for range 1 + rng.IntN(4) {
			b[rng.IntN(len(b))] = byte(rng.IntN(256))
		}
		func() {
			defer func() {
				if r := recover(); r != nil {
					t.Fatalf("readMessage(%x) panicked: %v", b, r)
				}
			}()
			readMessage(bytes.NewReader(b))
		}()
	}
	if took := time.Since(start); took > 10*time.Second {
		t.Errorf("20000 mangled messages took %v", took)
	}
}

// What this bus writes, godbus reads as the same message.
func TestEncodeReadByGodbus(t *testing.T) {
	w := &writer{}
	w.signature("t")
	w.u64(90e6)
	m := &message{typ: typeMethodReturn, serial: 9, replySerial: 3, dest: ":1.4", sender: ":1.0", sig: "v", body: w.b}
	got, err := dbus.DecodeMessage(bytes.NewReader(m.encode()))
	if err != nil {
		t.Fatal(err)
	}
	if got.Type != dbus.TypeMethodReply || got.Serial() != 9 || len(got.Body) != 1 {
		t.Fatalf("decoded %v", got)
	}
	if v, ok := got.Body[0].(dbus.Variant); !ok || v.Value() != uint64(90e6) {
		t.Errorf("body %#v", got.Body[0])
	}
	if rs := got.Headers[dbus.FieldReplySerial].Value(); rs != uint32(3) {
		t.Errorf("reply serial %v", rs)
	}
	sig := &message{typ: typeSignal, serial: 1, path: "/org/freedesktop/login1", iface: "org.freedesktop.login1.Manager",
		member: "PrepareForShutdown", sender: ":1.0", sig: "b", body: []byte{1, 0, 0, 0}}
	got, err = dbus.DecodeMessage(bytes.NewReader(sig.encode()))
	if err != nil || len(got.Body) != 1 || got.Body[0] != true || got.Headers[dbus.FieldMember].Value() != "PrepareForShutdown" {
		t.Errorf("signal %v, %v", got, err)
	}
}
