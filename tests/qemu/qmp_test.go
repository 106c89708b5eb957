package qemu

import (
	"bufio"
	"encoding/json"
	"fmt"
	"net"
	"strings"
	"sync"
	"testing"
)

// fakeQMP serves the QMP handshake on one end of a pipe and answers
// commands from replies: a reply string is sent verbatim, "close" hangs up.
func fakeQMP(t *testing.T, conn net.Conn, replies map[string][]string) {
	t.Helper()
	go func() {
		defer conn.Close()
		in := bufio.NewScanner(conn)
		send := func(s string) bool {
			_, err := fmt.Fprintln(conn, s)
			return err == nil
		}
		if !send(`{"QMP": {"version": {"qemu": {"major": 7}}, "capabilities": ["oob"]}}`) {
			return
		}
		for in.Scan() {
			var cmd struct {
				Execute string `json:"execute"`
			}
			if err := json.Unmarshal(in.Bytes(), &cmd); err != nil {
				return
			}
			for _, r := range replies[cmd.Execute] {
				if r == "close" {
					return
				}
				if !send(r) {
					return
				}
			}
		}
	}()
}

func TestQMP(t *testing.T) {
	client, server := net.Pipe()
	fakeQMP(t, server, map[string][]string{
		"qmp_capabilities": {`{"return": {}}`},
		"system_powerdown": {
			`{"event": "POWERDOWN", "data": {}, "timestamp": {"seconds": 1, "microseconds": 2}}`,
			`{"return": {}}`,
		},
		"bogus": {`{"error": {"class": "CommandNotFound", "desc": "The command bogus has not been found"}}`},
		"quit":  {`{"event": "SHUTDOWN", "data": {"guest": false, "reason": "host-qmp-quit"}}`, "close"},
	})
	var (
		mu     sync.Mutex
		events []string
	)
	c, err := newQMPClient(client, func(e qmpEvent) {
		mu.Lock()
		defer mu.Unlock()
		events = append(events, e.Name+" "+string(e.Data))
	})
	if err != nil {
		t.Fatal(err)
	}
	defer c.close()

	tests := []struct {
		command string
		closeOK bool
		wantErr string
	}{
		{command: "system_powerdown"},
		{command: "bogus", wantErr: "CommandNotFound: The command bogus has not been found"},
		{command: "quit", closeOK: true},
	}
	for _, tt := range tests {
		err := c.execute(tt.command, tt.closeOK)
		switch {
		case tt.wantErr == "" && err != nil:
			t.Errorf("%s: %v", tt.command, err)
		case tt.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tt.wantErr)):
			t.Errorf("%s: error %v, want %q", tt.command, err, tt.wantErr)
		}
	}
	<-c.done
	if err := c.execute("system_powerdown", false); err == nil {
		t.Error("command on a closed connection succeeded")
	}
	mu.Lock()
	defer mu.Unlock()
	want := []string{"POWERDOWN {}", `SHUTDOWN {"guest": false, "reason": "host-qmp-quit"}`}
	if strings.Join(events, "\n") != strings.Join(want, "\n") {
		t.Errorf("events %q, want %q", events, want)
	}
}

func TestQMPBadGreeting(t *testing.T) {
	client, server := net.Pipe()
	go func() {
		defer server.Close()
		fmt.Fprintln(server, `{"return": {}}`)
	}()
	if _, err := newQMPClient(client, nil); err == nil || !strings.Contains(err.Error(), "greeting") {
		t.Fatalf("newQMPClient() = %v, want a greeting error", err)
	}
}

func TestShutdownReason(t *testing.T) {
	tests := []struct {
		name   string
		events []qmpEvent
		want   string
	}{
		{"none", nil, ""},
		{"poweroff", []qmpEvent{{"SHUTDOWN", json.RawMessage(`{"guest":true,"reason":"guest-shutdown"}`)}}, "guest-shutdown"},
		{"reboot", []qmpEvent{{"RESET", nil}, {"SHUTDOWN", json.RawMessage(`{"guest":true,"reason":"guest-reset"}`)}}, "guest-reset"},
		{"panic first", []qmpEvent{
			{"GUEST_PANICKED", json.RawMessage(`{"action":"exit-failure"}`)},
			{"SHUTDOWN", json.RawMessage(`{"guest":true,"reason":"guest-panic"}`)},
		}, "guest-panicked"},
		{"no data", []qmpEvent{{"SHUTDOWN", nil}}, "shutdown"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			v := &VM{}
			for _, e := range tt.events {
				v.onEvent(e)
			}
			if got := v.ShutdownReason(); got != tt.want {
				t.Errorf("ShutdownReason() = %q, want %q", got, tt.want)
			}
		})
	}
}
