package qemu

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"sync"
	"syscall"
	"time"
)

// qmpTimeout bounds one QMP command; QEMU answers in milliseconds even
// under TCG because QMP runs in the main loop, not in the guest.
const qmpTimeout = 10 * time.Second

// qmpMessage is any message QEMU sends: a greeting, a reply or an event.
type qmpMessage struct {
	Greeting json.RawMessage `json:"QMP"`
	Return   json.RawMessage `json:"return"`
	Error    *qmpError       `json:"error"`
	Event    string          `json:"event"`
	Data     json.RawMessage `json:"data"`
}

type qmpError struct {
	Class string `json:"class"`
	Desc  string `json:"desc"`
}

func (e *qmpError) Error() string { return e.Class + ": " + e.Desc }

// qmpEvent is an asynchronous QMP event, e.g. SHUTDOWN with its reason.
type qmpEvent struct {
	Name string
	Data json.RawMessage
}

// qmpClient speaks QMP over one connection. Commands are serialized: QMP
// replies carry no reliable correlation without ids, and tests never need
// two commands in flight.
type qmpClient struct {
	conn    net.Conn
	cmdMu   sync.Mutex
	replies chan qmpMessage
	done    chan struct{} // closed when the reader stops (QEMU closed the socket)
	onEvent func(qmpEvent)
}

// dialQMP connects to path, reads the greeting and leaves command mode
// negotiated. onEvent is called from the reader goroutine.
func dialQMP(path string, onEvent func(qmpEvent)) (*qmpClient, error) {
	conn, err := net.Dial("unix", path)
	if err != nil {
		return nil, fmt.Errorf("qmp: dial %s: %w", path, err)
	}
	c, err := newQMPClient(conn, onEvent)
	if err != nil {
		_ = conn.Close()
		return nil, fmt.Errorf("qmp: %s: %w", path, err)
	}
	return c, nil
}

func newQMPClient(conn net.Conn, onEvent func(qmpEvent)) (*qmpClient, error) {
	dec := json.NewDecoder(conn)
	if err := conn.SetDeadline(time.Now().Add(qmpTimeout)); err != nil {
		return nil, fmt.Errorf("set deadline: %w", err)
	}
	var greeting qmpMessage
	if err := dec.Decode(&greeting); err != nil {
		return nil, fmt.Errorf("read greeting: %w", err)
	}
	if greeting.Greeting == nil {
		return nil, fmt.Errorf("unexpected first message (no QMP greeting): %+v", greeting)
	}
	if err := json.NewEncoder(conn).Encode(map[string]string{"execute": "qmp_capabilities"}); err != nil {
		return nil, fmt.Errorf("send qmp_capabilities: %w", err)
	}
	for {
		var m qmpMessage
		if err := dec.Decode(&m); err != nil {
			return nil, fmt.Errorf("read qmp_capabilities reply: %w", err)
		}
		if m.Event != "" {
			if onEvent != nil {
				onEvent(qmpEvent{Name: m.Event, Data: m.Data})
			}
			continue
		}
		if m.Error != nil {
			return nil, fmt.Errorf("qmp_capabilities: %w", m.Error)
		}
		break
	}
	if err := conn.SetDeadline(time.Time{}); err != nil {
		return nil, fmt.Errorf("clear deadline: %w", err)
	}
	c := &qmpClient{
		conn:    conn,
		replies: make(chan qmpMessage, 1),
		done:    make(chan struct{}),
		onEvent: onEvent,
	}
	go c.read(dec)
	return c, nil
}

func (c *qmpClient) read(dec *json.Decoder) {
	defer close(c.done)
	for {
		var m qmpMessage
		if err := dec.Decode(&m); err != nil {
			return
		}
		if m.Event != "" {
			if c.onEvent != nil {
				c.onEvent(qmpEvent{Name: m.Event, Data: m.Data})
			}
			continue
		}
		select {
		case c.replies <- m:
		default:
			// A reply nobody waits for (its command timed out): drop it so
			// the next command does not read a stale answer.
		}
	}
}

// execute runs one argument-less command. closeOK treats QEMU closing the
// socket before replying as success, which is how "quit" can end.
func (c *qmpClient) execute(command string, closeOK bool) error {
	return c.executeArgs(command, nil, closeOK)
}

// executeArgs runs one command with its arguments (nil for none).
func (c *qmpClient) executeArgs(command string, args any, closeOK bool) error {
	c.cmdMu.Lock()
	defer c.cmdMu.Unlock()
	// Drain a late reply to an earlier, timed-out command.
	select {
	case <-c.replies:
	default:
	}
	if err := c.conn.SetWriteDeadline(time.Now().Add(qmpTimeout)); err != nil {
		return fmt.Errorf("qmp %s: %w", command, err)
	}
	req := map[string]any{"execute": command}
	if args != nil {
		req["arguments"] = args
	}
	if err := json.NewEncoder(c.conn).Encode(req); err != nil {
		if closeOK && isClosed(err) {
			return nil
		}
		return fmt.Errorf("qmp %s: send: %w", command, err)
	}
	t := time.NewTimer(qmpTimeout)
	defer t.Stop()
	select {
	case m := <-c.replies:
		if m.Error != nil {
			return fmt.Errorf("qmp %s: %w", command, m.Error)
		}
		return nil
	case <-c.done:
		if closeOK {
			return nil
		}
		return fmt.Errorf("qmp %s: connection closed before the reply", command)
	case <-t.C:
		return fmt.Errorf("qmp %s: no reply within %s", command, qmpTimeout)
	}
}

func (c *qmpClient) close() error {
	return c.conn.Close()
}

func isClosed(err error) bool {
	return errors.Is(err, net.ErrClosed) || errors.Is(err, io.EOF) || errors.Is(err, io.ErrClosedPipe) ||
		errors.Is(err, syscall.EPIPE) || errors.Is(err, syscall.ECONNRESET)
}
