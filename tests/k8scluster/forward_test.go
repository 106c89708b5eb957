package k8scluster

import (
	"io"
	"net"
	"testing"
	"time"
)

// TestForwarderHalfClose sends a request, half-closes, and reads the whole answer back through
// a forwarder: the way a TLS client and the apiserver end their streams.
func TestForwarderHalfClose(t *testing.T) {
	backend, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer backend.Close()
	go func() {
		for {
			c, err := backend.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				b, _ := io.ReadAll(c) // until the client's half-close crosses the forwarder
				c.Write(append([]byte("echo:"), b...))
			}()
		}
	}()
	front, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	f := forward(front, func() (net.Conn, error) { return net.Dial("tcp", backend.Addr().String()) })
	for i := range 3 {
		c, err := net.Dial("tcp", front.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		c.SetDeadline(time.Now().Add(5 * time.Second))
		c.Write([]byte("hello"))
		c.(*net.TCPConn).CloseWrite()
		got, err := io.ReadAll(c)
		c.Close()
		if err != nil || string(got) != "echo:hello" {
			t.Errorf("connection %d: %q %v, want echo:hello", i, got, err)
		}
	}
	// A connection open at Close is cut.
	c, err := net.Dial("tcp", front.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.Write([]byte("x"))
	time.Sleep(100 * time.Millisecond)
	f.Close()
	c.SetDeadline(time.Now().Add(5 * time.Second))
	if _, err := io.ReadAll(c); err != nil {
		t.Errorf("read after Close: %v, want EOF", err)
	}
	if _, err := net.DialTimeout("tcp", front.Addr().String(), time.Second); err == nil {
		t.Error("the forwarder still accepts after Close")
	}
}
