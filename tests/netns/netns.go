// Package netns gives a test a network namespace of its own: tap devices in it whose file
// descriptors QEMU takes as NICs (tests/qemu Config.Taps), and a way to run code inside it, so the
// sockets that code opens (UDP servers for DHCP or NTP, which QEMU's user networking cannot carry)
// live in the namespace and see the guest's traffic. The host's own network is never touched.
//
//	ns := netns.New(t)
//	tap := ns.Tap(t, "tap0", netip.MustParsePrefix("10.0.3.1/24"))
//	conn, err := ns.ListenPacket("udp", "10.0.3.1:123")
//	vm, err := qemu.Start(ctx, qemu.Config{..., Taps: []qemu.Tap{{File: tap}}})
//
// Creating namespaces and tap devices needs root (testutil.Root).
package netns

import (
	"fmt"
	"net"
	"net/netip"
	"os"
	"runtime"
	"testing"

	"github.com/vishvananda/netlink"
	vnetns "github.com/vishvananda/netns"
	"golang.org/x/sys/unix"

	"github.com/ballast-os/ballast/tests/testutil"
)

// NS is a network namespace that lives as long as its test.
type NS struct {
	handle vnetns.NsHandle
}

// New creates a network namespace with its loopback up; the test's end releases it.
func New(t testing.TB) *NS {
	t.Helper()
	testutil.Root(t, "network namespaces and tap devices")
	var h vnetns.NsHandle
	err := onThread(func() error {
		var err error
		h, err = vnetns.New() // unshares this thread, which onThread then retires
		return err
	})
	if err != nil {
		t.Fatalf("netns: new network namespace: %v", err)
	}
	n := &NS{handle: h}
	t.Cleanup(func() { h.Close() })
	nl := n.netlink(t)
	lo, err := nl.LinkByName("lo")
	if err == nil {
		err = nl.LinkSetUp(lo)
	}
	if err != nil {
		t.Fatalf("netns: loopback up: %v", err)
	}
	return n
}

// onThread runs f on a locked OS thread that is never handed back to the scheduler: f may leave
// it in another namespace, and Go ends a thread whose goroutine exits while locked to it.
func onThread(f func() error) error {
	errc := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		errc <- f()
	}()
	return <-errc
}

// Do runs f inside the namespace. Sockets f opens stay there, wherever they are used later.
func (n *NS) Do(f func() error) error {
	return onThread(func() error {
		if err := vnetns.Set(n.handle); err != nil {
			return fmt.Errorf("netns: enter namespace: %w", err)
		}
		return f()
	})
}

// ListenPacket is net.ListenPacket inside the namespace.
func (n *NS) ListenPacket(network, address string) (net.PacketConn, error) {
	var c net.PacketConn
	err := n.Do(func() (err error) {
		c, err = net.ListenPacket(network, address)
		return err
	})
	return c, err
}

// Listen is net.Listen inside the namespace.
func (n *NS) Listen(network, address string) (net.Listener, error) {
	var l net.Listener
	err := n.Do(func() (err error) {
		l, err = net.Listen(network, address)
		return err
	})
	return l, err
}

func (n *NS) netlink(t testing.TB) *netlink.Handle {
	t.Helper()
	h, err := netlink.NewHandleAt(n.handle)
	if err != nil {
		t.Fatalf("netns: netlink in the namespace: %v", err)
	}
	t.Cleanup(h.Close)
	return h
}

// Tap creates a tap device in the namespace (Ethernet frames, no packet information header), gives
// it addrs and brings it up. The returned file is the device's queue: QEMU inherits it as a NIC's
// backend, and the device goes away when the last holder closes it (the test's copy is closed at
// its end).
func (n *NS) Tap(t testing.TB, name string, addrs ...netip.Prefix) *os.File {
	t.Helper()
	var f *os.File
	err := n.Do(func() error {
		fd, err := unix.Open("/dev/net/tun", unix.O_RDWR|unix.O_CLOEXEC, 0)
		if err != nil {
			return fmt.Errorf("open /dev/net/tun: %w", err)
		}
		ifr, err := unix.NewIfreq(name)
		if err == nil {
			ifr.SetUint16(unix.IFF_TAP | unix.IFF_NO_PI)
			err = unix.IoctlIfreq(fd, unix.TUNSETIFF, ifr)
		}
		if err != nil {
			unix.Close(fd)
			return fmt.Errorf("TUNSETIFF %s: %w", name, err)
		}
		f = os.NewFile(uintptr(fd), "/dev/net/tun:"+name)
		return nil
	})
	if err != nil {
		t.Fatalf("netns: tap %s: %v", name, err)
	}
	t.Cleanup(func() { f.Close() })
	nl := n.netlink(t)
	link, err := nl.LinkByName(name)
	if err != nil {
		t.Fatalf("netns: tap %s: %v", name, err)
	}
	for _, a := range addrs {
		ipnet := &net.IPNet{IP: a.Addr().AsSlice(), Mask: net.CIDRMask(a.Bits(), a.Addr().BitLen())}
		if err := nl.AddrAdd(link, &netlink.Addr{IPNet: ipnet}); err != nil {
			t.Fatalf("netns: tap %s: address %s: %v", name, a, err)
		}
	}
	if err := nl.LinkSetUp(link); err != nil {
		t.Fatalf("netns: tap %s up: %v", name, err)
	}
	return f
}
