package dhcp6

import (
	"context"
	"net"
	"net/netip"
	"slices"
	"testing"
	"time"

	"github.com/vishvananda/netlink"

	"github.com/ballast-os/ballast/contract"
	"github.com/ballast-os/ballast/init/system/netconf/link"
	"github.com/ballast-os/ballast/tests/nettest"
)

// TestRealServer runs the client over its UDP socket against a DHCPv6 server in another network
// namespace, through a veth pair: it must wait out its link-local address's duplicate address
// detection, get an address and renew it (T1 at 1 s).
func TestRealServer(t *testing.T) {
	if !nettest.InNewNetns(t) {
		return
	}
	peer := nettest.NewNetns(t)
	veth := peer.Veth(t, "c0", "s0", "")
	srv := &nettest.DHCPv6Server{Addr: netip.MustParseAddr("fd00:50::10"), Preferred: 3 * time.Second, Valid: 4 * time.Second,
		T1: time.Second, T2: 2 * time.Second, DNS: []netip.Addr{netip.MustParseAddr("fd00:50::53")}, ServerHW: net.HardwareAddr{2, 0, 0, 0, 0, 1}}
	if err := netlink.LinkSetUp(veth); err != nil {
		t.Fatal(err)
	}
	// The server answers from its link-local address, which must be through DAD first.
	peer.WaitLinkLocal(t, "s0")
	srv.Start(t, peer, "s0")
	l := link.FromNetlink(veth)
	c := New(Config{
		HWAddr: veth.Attrs().HardwareAddr, Conn: &UDPConn{Interface: "c0"},
		Bind: func(old, new *Lease) error {
			for _, a := range new.Addresses {
				if err := link.ReplaceAddress(l, link.Address{Prefix: netip.PrefixFrom(a.Addr, 128), Valid: a.Valid, Preferred: a.Preferred}); err != nil {
					return err
				}
			}
			return nil
		},
		Unbind: func(*Lease) error { return nil },
	})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error)
	go func() { done <- c.Run(ctx) }()
	defer func() { cancel(); <-done }()
	for deadline := time.Now().Add(20 * time.Second); ; time.Sleep(100 * time.Millisecond) {
		st := c.Status()
		if st.State == contract.DHCPBound && st.Renewals >= 1 {
			if !slices.Equal(st.Lease.DNS, srv.DNS) {
				t.Errorf("DNS %v", st.Lease.DNS)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no renewed lease: status %+v, server got %v", st, srv.Received())
		}
	}
	as, err := link.Addresses(l)
	if err != nil || !slices.ContainsFunc(as, func(a link.AddrInfo) bool {
		return a.Prefix == netip.MustParsePrefix("fd00:50::10/128") && !a.Permanent
	}) {
		t.Fatalf("addresses of c0: %+v, %v", as, err)
	}
	if got := srv.Received(); !slices.Contains(got, "SOLICIT") || !slices.Contains(got, "REQUEST") || !slices.Contains(got, "RENEW") {
		t.Errorf("server got %v", got)
	}
}
