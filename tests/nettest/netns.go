// Package nettest gives tests networks of their own: the calling test re-run in a new network
// namespace (InNewNetns), a second namespace to put peers in (Netns) with veth pairs and tap
// devices reaching into it, and DHCP servers that run there and record what they see. Everything
// needs root, which tests check with testutil.Root first.
package nettest

import (
	"fmt"
	"net"
	"os"
	"os/exec"
	"regexp"
	"runtime"
	"strings"
	"syscall"
	"testing"
	"time"
	"unsafe"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"

	"github.com/ballast-os/ballast/tests/testutil"
)

// childEnv marks the re-run of a test inside its own network namespace.
const childEnv = "BALLAST_NETNS_TEST"

// InNewNetns runs the calling test in a child process (this test binary, running just this test)
// that starts in a new network namespace, where the test may make links, addresses and routes
// without touching the host's, and where every goroutine and socket of the code under test is in
// that namespace. It returns true in the child, where the test goes on with loopback up; in the
// parent it waits for the child, fails the test if the child did not pass it, and returns false.
func InNewNetns(t *testing.T) bool {
	t.Helper()
	if os.Getenv(childEnv) == t.Name() {
		lo, err := netlink.LinkByName("lo")
		if err == nil {
			err = netlink.LinkSetUp(lo)
		}
		if err != nil {
			t.Fatalf("loopback in the new network namespace: %v", err)
		}
		return true
	}
	testutil.Root(t, "network namespaces")
	var pattern []string
	for _, part := range strings.Split(t.Name(), "/") {
		pattern = append(pattern, "^"+regexp.QuoteMeta(part)+"$")
	}
	cmd := exec.Command(os.Args[0], "-test.run="+strings.Join(pattern, "/"), "-test.v", "-test.count=1")
	cmd.Env = append(os.Environ(), childEnv+"="+t.Name())
	cmd.SysProcAttr = &syscall.SysProcAttr{Cloneflags: syscall.CLONE_NEWNET}
	out, err := cmd.CombinedOutput()
	// A pattern that matched nothing would pass without running anything.
	passed := strings.Contains(string(out), "--- PASS: "+t.Name()+" ")
	if err != nil || !passed {
		t.Fatalf("in a new network namespace: %v\n%s", err, out)
	}
	if testing.Verbose() {
		t.Logf("in a new network namespace:\n%s", out)
	}
	return false
}

// Netns is a network namespace held by a goroutine locked to one of its threads: Do runs code
// there. Sockets stay in the namespace they were made in, so a server started in Do serves
// there after Do returns.
type Netns struct {
	Handle netns.NsHandle
	// NL is a netlink handle that works inside the namespace from any goroutine.
	NL    *netlink.Handle
	do    chan func()
	close chan struct{}
}

// NewNetns makes a new network namespace with loopback up, removed when the test ends.
func NewNetns(t testing.TB) *Netns {
	t.Helper()
	testutil.Root(t, "network namespaces")
	n := &Netns{do: make(chan func()), close: make(chan struct{})}
	ready := make(chan error)
	go func() {
		// The thread is never unlocked: it ends with the goroutine, so no other goroutine runs
		// on a thread in the namespace.
		runtime.LockOSThread()
		h, err := netns.New()
		if err != nil {
			ready <- fmt.Errorf("new network namespace: %w", err)
			return
		}
		n.Handle = h
		ready <- nil
		for {
			select {
			case f := <-n.do:
				f()
			case <-n.close:
				return
			}
		}
	}()
	if err := <-ready; err != nil {
		t.Fatal(err)
	}
	nl, err := netlink.NewHandleAt(n.Handle)
	if err != nil {
		t.Fatalf("netlink in the namespace: %v", err)
	}
	n.NL = nl
	t.Cleanup(func() {
		close(n.close)
		nl.Close()
		n.Handle.Close()
	})
	lo, err := nl.LinkByName("lo")
	if err == nil {
		err = nl.LinkSetUp(lo)
	}
	if err != nil {
		t.Fatalf("loopback in the namespace: %v", err)
	}
	return n
}

// Do runs f on the namespace's thread and returns its error.
func (n *Netns) Do(f func() error) error {
	errc := make(chan error, 1)
	n.do <- func() { errc <- f() }
	return <-errc
}

// ListenPacket is net.ListenPacket inside the namespace: the socket stays there wherever it is
// used later.
func (n *Netns) ListenPacket(network, address string) (net.PacketConn, error) {
	var c net.PacketConn
	err := n.Do(func() (err error) {
		c, err = net.ListenPacket(network, address)
		return err
	})
	return c, err
}

// Veth makes a veth pair: local in the caller's namespace, peer in n with address peerAddr
// (a CIDR), both up. It returns the local link.
func (n *Netns) Veth(t testing.TB, local, peer, peerAddr string) netlink.Link {
	t.Helper()
	err := netlink.LinkAdd(&netlink.Veth{
		LinkAttrs: netlink.LinkAttrs{Name: local},
		PeerName:  peer, PeerNamespace: netlink.NsFd(n.Handle),
	})
	if err != nil {
		t.Fatalf("veth %s/%s: %v", local, peer, err)
	}
	t.Cleanup(func() {
		if l, err := netlink.LinkByName(local); err == nil {
			netlink.LinkDel(l)
		}
	})
	l, err := netlink.LinkByName(local)
	if err != nil {
		t.Fatal(err)
	}
	n.up(t, peer, peerAddr)
	return l
}

// up brings a link of the namespace up, with the addresses (CIDRs) given.
func (n *Netns) up(t testing.TB, name string, addrs ...string) {
	t.Helper()
	l, err := n.NL.LinkByName(name)
	if err != nil {
		t.Fatalf("%s in the namespace: %v", name, err)
	}
	for _, addr := range addrs {
		if addr == "" {
			continue
		}
		a, err := netlink.ParseAddr(addr)
		if err != nil {
			t.Fatal(err)
		}
		if err := n.NL.AddrAdd(l, a); err != nil {
			t.Fatalf("%s: address %s: %v", name, addr, err)
		}
	}
	if err := n.NL.LinkSetUp(l); err != nil {
		t.Fatalf("%s up: %v", name, err)
	}
}

// Tap makes a tap device in n with the addresses given (CIDRs), up, and returns the file that
// carries its frames, for QEMU's -netdev tap,fd=N. The device goes when the file is closed and the
// test ends.
func (n *Netns) Tap(t testing.TB, name string, addrs ...string) *os.File {
	t.Helper()
	var f *os.File
	err := n.Do(func() error {
		fd, err := unix.Open("/dev/net/tun", unix.O_RDWR|unix.O_CLOEXEC, 0)
		if err != nil {
			return fmt.Errorf("/dev/net/tun: %w", err)
		}
		var req [unix.IFNAMSIZ + 64]byte
		copy(req[:unix.IFNAMSIZ-1], name)
		*(*uint16)(unsafe.Pointer(&req[unix.IFNAMSIZ])) = unix.IFF_TAP | unix.IFF_NO_PI
		if _, _, errno := unix.Syscall(unix.SYS_IOCTL, uintptr(fd), unix.TUNSETIFF, uintptr(unsafe.Pointer(&req[0]))); errno != 0 {
			unix.Close(fd)
			return fmt.Errorf("TUNSETIFF %s: %w", name, errno)
		}
		f = os.NewFile(uintptr(fd), "/dev/net/tun:"+name)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	n.up(t, name, addrs...)
	return f
}

// WaitLinkLocal waits until the namespace's interface has a link-local IPv6 address that
// duplicate address detection is done with, so a server there can answer from it.
func (n *Netns) WaitLinkLocal(t testing.TB, name string) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		l, err := n.NL.LinkByName(name)
		if err != nil {
			t.Fatal(err)
		}
		as, err := n.NL.AddrList(l, netlink.FAMILY_V6)
		if err != nil {
			t.Fatal(err)
		}
		for _, a := range as {
			if a.IP.IsLinkLocalUnicast() && a.Flags&unix.IFA_F_TENTATIVE == 0 {
				return
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s has no usable link-local address: %v", name, as)
		}
		time.Sleep(50 * time.Millisecond)
	}
}
