package link

import (
	"net"
	"net/netip"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/vishvananda/netlink"

	"github.com/ballast-os/ballast/tests/nettest"
)

func TestIsEthernet(t *testing.T) {
	dev := func(name, encap string, flags net.Flags) netlink.Link {
		return &netlink.Device{LinkAttrs: netlink.LinkAttrs{Name: name, EncapType: encap, Flags: flags}}
	}
	for _, tt := range []struct {
		link netlink.Link
		want bool
	}{
		{dev("eth0", "ether", 0), true},
		{dev("enp0s3", "ether", 0), true},
		{dev("lo", "loopback", net.FlagLoopback), false},
		{dev("veth12ab", "ether", 0), false},
		{dev("cni0", "ether", 0), false},
		{dev("sit0", "sit", 0), false},
		{&netlink.Bridge{LinkAttrs: netlink.LinkAttrs{Name: "br0", EncapType: "ether"}}, false},
		{&netlink.Veth{LinkAttrs: netlink.LinkAttrs{Name: "x0", EncapType: "ether"}}, false},
	} {
		if got := isEthernet(tt.link); got != tt.want {
			t.Errorf("isEthernet(%s %s) = %v", tt.link.Type(), tt.link.Attrs().Name, got)
		}
	}
}

// TestKernel runs the netlink and /proc/sys operations against a real kernel, in a network
// namespace of the test's own.
func TestKernel(t *testing.T) {
	if !nettest.InNewNetns(t) {
		return
	}
	// veth pairs, as every kernel has them (a dummy device needs a module the host may lack).
	for _, name := range []string{"d0", "d1"} {
		if err := netlink.LinkAdd(&netlink.Veth{LinkAttrs: netlink.LinkAttrs{Name: name}, PeerName: name + "p"}); err != nil {
			t.Fatal(err)
		}
		p, err := netlink.LinkByName(name + "p")
		if err == nil {
			err = netlink.LinkSetUp(p)
		}
		if err != nil {
			t.Fatal(err)
		}
	}
	ls, err := List()
	if err != nil {
		t.Fatal(err)
	}
	byName := map[string]Link{}
	for _, l := range ls {
		byName[l.Name] = l
	}
	d0, d1 := byName["d0"], byName["d1"]
	if d0.Index == 0 || d0.Ethernet || d0.Up || !byName["lo"].Up {
		t.Fatalf("links: %+v", ls)
	}
	for _, l := range []Link{d0, d1} {
		if err := SetUp(l); err != nil {
			t.Fatal(err)
		}
	}
	if err := SetMTU(d0, 1280); err != nil {
		t.Fatal(err)
	}
	if err := AcceptRA("/proc/sys", d0); err != nil {
		t.Fatal(err)
	}
	for f, want := range map[string]string{"accept_ra": "2", "autoconf": "1", "disable_ipv6": "0"} {
		if b, _ := os.ReadFile("/proc/sys/net/ipv6/conf/d0/" + f); strings.TrimSpace(string(b)) != want {
			t.Errorf("%s = %q, want %s", f, b, want)
		}
	}

	static, leased := netip.MustParsePrefix("10.9.0.2/24"), netip.MustParsePrefix("10.9.1.2/24")
	if err := ReplaceAddress(d0, Address{Prefix: static}); err != nil {
		t.Fatal(err)
	}
	if err := ReplaceAddress(d0, Address{Prefix: leased, Valid: 90 * time.Second}); err != nil {
		t.Fatal(err)
	}
	// Again with a new lifetime: replaced, not doubled.
	if err := ReplaceAddress(d0, Address{Prefix: leased, Valid: 60 * time.Second, Preferred: 30 * time.Second}); err != nil {
		t.Fatal(err)
	}
	as, err := Addresses(d0)
	if err != nil {
		t.Fatal(err)
	}
	find := func(p netip.Prefix) (AddrInfo, bool) {
		i := slices.IndexFunc(as, func(a AddrInfo) bool { return a.Prefix == p })
		if i < 0 {
			return AddrInfo{}, false
		}
		return as[i], true
	}
	if a, ok := find(static); !ok || !a.Permanent || a.Valid != 0 {
		t.Errorf("static address: %+v %v", a, ok)
	}
	if a, ok := find(leased); !ok || a.Permanent || a.Valid <= 50*time.Second || a.Valid > 60*time.Second {
		t.Errorf("leased address: %+v %v (all: %+v)", a, ok, as)
	}
	if !as[0].Prefix.Addr().Is4() {
		t.Errorf("IPv4 addresses do not come first: %+v", as)
	}

	// Routes: idempotent, side by side on two interfaces with the same metric (IPv4), tagged.
	gw := netip.MustParseAddr("10.9.0.1")
	r0 := Route{To: netip.MustParsePrefix("0.0.0.0/0"), Via: gw, Index: d0.Index, Metric: 1024, Protocol: ProtoDHCP}
	if err := ReplaceAddress(d1, Address{Prefix: netip.MustParsePrefix("10.8.0.2/24")}); err != nil {
		t.Fatal(err)
	}
	r1 := Route{To: netip.MustParsePrefix("0.0.0.0/0"), Via: netip.MustParseAddr("10.8.0.1"), Index: d1.Index, Metric: 1024, Protocol: ProtoDHCP}
	onLink := Route{To: netip.MustParsePrefix("172.16.0.0/12"), Index: d0.Index, Protocol: ProtoStatic}
	for _, r := range []Route{r0, r0, r1, onLink, onLink} {
		if err := EnsureRoute(r); err != nil {
			t.Fatalf("EnsureRoute(%v): %v", r, err)
		}
	}
	rs, err := Routes()
	if err != nil {
		t.Fatal(err)
	}
	count := func(r Route) int {
		n := 0
		for _, x := range rs {
			if same(x, r) && x.Protocol == r.Protocol {
				n++
			}
		}
		return n
	}
	for _, r := range []Route{r0, r1, onLink} {
		if n := count(r); n != 1 {
			t.Errorf("route %v (protocol %s) is there %d times: %+v", r, ProtocolName(r.Protocol), n, rs)
		}
	}
	for _, r := range []Route{r0, r0, onLink} {
		if err := RemoveRoute(r); err != nil {
			t.Errorf("RemoveRoute(%v): %v", r, err)
		}
	}
	if err := RemoveAddress(d0, leased); err != nil {
		t.Fatal(err)
	}
	if err := RemoveAddress(d0, leased); err != nil {
		t.Errorf("removing an address twice: %v", err)
	}
	rs, _ = Routes()
	if count(r0) != 0 || count(onLink) != 0 || count(r1) != 1 {
		t.Errorf("after removal: %+v", rs)
	}
	if ProtocolName(ProtoDHCP) != "dhcp" || ProtocolName(ProtoStatic) != "static" || ProtocolName(ProtoRA) != "ra" {
		t.Errorf("protocol names %s %s %s", ProtocolName(ProtoDHCP), ProtocolName(ProtoStatic), ProtocolName(ProtoRA))
	}
}
