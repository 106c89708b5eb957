package dhcp4

import (
	"context"
	"net"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/vishvananda/netlink"

	"github.com/ballast-os/ballast/contract"
	"github.com/ballast-os/ballast/init/system/netconf/link"
	"github.com/ballast-os/ballast/tests/nettest"
)

// TestRealServer runs the client over its raw socket against a DHCP server in another network
// namespace, through a veth pair and two kernels: the frames it builds must pass their checks,
// and renewals (unicast) and rebinding (broadcast) must reach the server as such. The lease is
// 4 s with T1 at 1 s, so the whole life, expiry included, takes seconds.
func TestRealServer(t *testing.T) {
	if !nettest.InNewNetns(t) {
		return
	}
	peer := nettest.NewNetns(t)
	veth := peer.Veth(t, "c0", "s0", "192.168.50.1/24")
	srv := &nettest.DHCPv4Server{ServerIP: netip.MustParseAddr("192.168.50.1"), First: netip.MustParseAddr("192.168.50.10"),
		Bits: 24, LeaseTime: 4 * time.Second, T1: time.Second, Routers: []netip.Addr{netip.MustParseAddr("192.168.50.1")}}
	srv.Start(t, peer, "s0")
	if err := netlink.LinkSetUp(veth); err != nil {
		t.Fatal(err)
	}
	l := link.FromNetlink(veth)
	ifi, err := net.InterfaceByIndex(l.Index)
	if err != nil {
		t.Fatal(err)
	}

	var mu sync.Mutex
	var events []string
	note := func(s string) { mu.Lock(); events = append(events, s); mu.Unlock() }
	c := New(Config{
		HWAddr: ifi.HardwareAddr, Conn: &RawConn{Interface: ifi},
		Bind: func(old, new *Lease) error {
			note("bind " + new.Address.String())
			return link.ReplaceAddress(l, link.Address{Prefix: new.Address, Valid: time.Until(new.Expires())})
		},
		Unbind: func(old *Lease) error {
			note("unbind " + old.Address.String())
			return link.RemoveAddress(l, old.Address)
		},
		Report: func(s Status) { note("state " + s.State) },
	})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error)
	go func() { done <- c.Run(ctx) }()
	defer func() { cancel(); <-done }()

	waitFor := func(what string, d time.Duration, ok func() bool) {
		t.Helper()
		for deadline := time.Now().Add(d); !ok(); time.Sleep(50 * time.Millisecond) {
			if time.Now().After(deadline) {
				mu.Lock()
				defer mu.Unlock()
				t.Fatalf("no %s within %s; client: %s; server got:\n%v", what, d, strings.Join(events, ", "), srv.Received())
			}
		}
	}
	kinds := func() []string {
		var k []string
		for _, r := range srv.Received() {
			k = append(k, r.Kind)
		}
		return k
	}
	hasAddr := func() bool {
		as, _ := link.Addresses(l)
		return slices.ContainsFunc(as, func(a link.AddrInfo) bool {
			return a.Prefix == netip.MustParsePrefix("192.168.50.10/24") && !a.Permanent
		})
	}
	waitFor("lease", 10*time.Second, func() bool { return c.Status().State == contract.DHCPBound && hasAddr() })
	waitFor("renewal", 5*time.Second, func() bool { return c.Status().Renewals >= 1 })
	for _, r := range srv.Received() {
		if r.Kind == "REQUEST(renewing)" && (!r.Unicast || r.CIAddr != netip.MustParseAddr("192.168.50.10")) {
			t.Errorf("renewal %v: want unicast from the leased address", r)
		}
	}

	srv.SetSilent(true)
	waitFor("rebinding", 6*time.Second, func() bool { return slices.Contains(kinds(), "REQUEST(rebinding)") })
	waitFor("expiry", 6*time.Second, func() bool { return c.Status().State == contract.DHCPInit && !hasAddr() })
	srv.SetSilent(false)
	waitFor("a new lease", 12*time.Second, func() bool { return c.Status().State == contract.DHCPBound && hasAddr() })

	k := kinds()
	for _, want := range []string{"DISCOVER", "REQUEST(selecting)", "REQUEST(renewing)", "REQUEST(rebinding)"} {
		if !slices.Contains(k, want) {
			t.Errorf("the server never got a %s: %v", want, k)
		}
	}
	mu.Lock()
	defer mu.Unlock()
	if !slices.Contains(events, "unbind 192.168.50.10/24") {
		t.Errorf("the expired lease was not unbound: %v", events)
	}
}
