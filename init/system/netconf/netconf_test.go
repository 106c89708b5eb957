package netconf

import (
	"net"
	"reflect"
	"testing"

	"github.com/vishvananda/netlink"
)

func TestCandidates(t *testing.T) {
	dev := func(name, encap string, flags net.Flags) netlink.Link {
		return &netlink.Device{LinkAttrs: netlink.LinkAttrs{Name: name, EncapType: encap, Flags: flags}}
	}
	links := []netlink.Link{
		dev("lo", "loopback", net.FlagLoopback),
		dev("eth1", "ether", 0),
		dev("eth0", "ether", 0),
		dev("veth12ab", "ether", 0),
		&netlink.Bridge{LinkAttrs: netlink.LinkAttrs{Name: "cni0", EncapType: "ether"}},
		dev("sit0", "sit", 0),
	}
	var got []string
	for _, l := range Candidates(links) {
		got = append(got, l.Attrs().Name)
	}
	if want := []string{"eth0", "eth1"}; !reflect.DeepEqual(got, want) {
		t.Fatalf("Candidates = %v, want %v", got, want)
	}
}
