package netns

import (
	"bytes"
	"encoding/binary"
	"net"
	"net/netip"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// What the namespace holds is not on the host, and the tap's file is the device's queue: an ARP
// request written into it is answered by the namespace's kernel through it.
func TestNamespaceAndTap(t *testing.T) {
	ns := New(t)
	tap := ns.Tap(t, "tap0", netip.MustParsePrefix("10.0.3.1/24"))

	c, err := ns.ListenPacket("udp", "10.0.3.1:0")
	if err != nil {
		t.Fatalf("listen on the tap's address inside the namespace: %v", err)
	}
	c.Close()
	if c, err := net.ListenPacket("udp", "10.0.3.1:0"); err == nil {
		c.Close()
		t.Fatal("the tap's address is on the host too: the namespace leaks")
	}

	guest := net.HardwareAddr{0x02, 0, 0, 0, 0, 1}
	req := arpRequest(guest, netip.MustParseAddr("10.0.3.99"), netip.MustParseAddr("10.0.3.1"))
	if _, err := tap.Write(req); err != nil {
		t.Fatal(err)
	}
	fd := int(tap.Fd())
	deadline := time.Now().Add(5 * time.Second)
	buf := make([]byte, 2048)
	for {
		pfd := []unix.PollFd{{Fd: int32(fd), Events: unix.POLLIN}}
		if n, err := unix.Poll(pfd, int(time.Until(deadline).Milliseconds())); n < 1 || err != nil {
			t.Fatalf("no ARP reply from the namespace: %v", err)
		}
		n, err := unix.Read(fd, buf)
		if err != nil {
			t.Fatal(err)
		}
		f := buf[:n]
		// Other frames (IPv6 router solicitations) may come first.
		if n >= 42 && binary.BigEndian.Uint16(f[12:]) == 0x0806 && binary.BigEndian.Uint16(f[20:]) == 2 {
			if !bytes.Equal(f[0:6], guest) || !bytes.Equal(f[28:32], []byte{10, 0, 3, 1}) {
				t.Fatalf("ARP reply % x", f)
			}
			return
		}
	}
}

// arpRequest is an Ethernet broadcast asking who has target, from mac at src.
func arpRequest(mac net.HardwareAddr, src, target netip.Addr) []byte {
	f := make([]byte, 42)
	copy(f[0:6], []byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff})
	copy(f[6:12], mac)
	binary.BigEndian.PutUint16(f[12:], 0x0806) // ARP
	binary.BigEndian.PutUint16(f[14:], 1)      // Ethernet
	binary.BigEndian.PutUint16(f[16:], 0x0800) // IPv4
	f[18], f[19] = 6, 4
	binary.BigEndian.PutUint16(f[20:], 1) // request
	copy(f[22:28], mac)
	s, d := src.As4(), target.As4()
	copy(f[28:32], s[:])
	copy(f[38:42], d[:])
	return f
}
