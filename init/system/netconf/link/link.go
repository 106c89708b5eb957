// Package link is what the network service does to the kernel's network configuration, through
// netlink and /proc/sys: interfaces (up, MTU, router advertisements), addresses with lifetimes,
// and routes, each tagged with the protocol that says who added it; and reading them back for
// the service's state. It works in the network namespace of the calling process.
package link

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"time"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

// Link is a network interface.
type Link struct {
	Index   int
	Name    string
	MAC     net.HardwareAddr
	MTU     int
	Up      bool // administratively
	Carrier bool
	// Ethernet is a plain Ethernet device: what the service configures without being told to.
	// Loopback, bridges, veths and the container runtime's devices are not.
	Ethernet bool
}

// FromNetlink describes a netlink link.
func FromNetlink(l netlink.Link) Link {
	a := l.Attrs()
	return Link{
		Index: a.Index, Name: a.Name, MAC: a.HardwareAddr, MTU: a.MTU,
		Up:       a.Flags&net.FlagUp != 0,
		Carrier:  a.RawFlags&unix.IFF_LOWER_UP != 0,
		Ethernet: isEthernet(l),
	}
}

func isEthernet(l netlink.Link) bool {
	a := l.Attrs()
	if a.Flags&net.FlagLoopback != 0 || l.Type() != "device" || a.EncapType != "ether" {
		return false
	}
	for _, p := range []string{"veth", "docker", "cni", "flannel", "cilium"} {
		if strings.HasPrefix(a.Name, p) {
			return false
		}
	}
	return true
}

// retries bounds the re-reads of a netlink dump that changed while it was read.
const retries = 5

func dump[T any](f func() ([]T, error)) ([]T, error) {
	var err error
	for range retries {
		var out []T
		if out, err = f(); !errors.Is(err, netlink.ErrDumpInterrupted) {
			return out, err
		}
	}
	return nil, err
}

// List returns the interfaces, loopback included, by index.
func List() ([]Link, error) {
	ls, err := dump(netlink.LinkList)
	if err != nil {
		return nil, fmt.Errorf("list interfaces: %w", err)
	}
	out := make([]Link, 0, len(ls))
	for _, l := range ls {
		out = append(out, FromNetlink(l))
	}
	slices.SortFunc(out, func(a, b Link) int { return a.Index - b.Index })
	return out, nil
}

// SetUp brings an interface up.
func SetUp(l Link) error {
	if err := netlink.LinkSetUp(&netlink.Device{LinkAttrs: netlink.LinkAttrs{Index: l.Index}}); err != nil {
		return fmt.Errorf("%s: up: %w", l.Name, err)
	}
	return nil
}

// SetMTU sets an interface's MTU.
func SetMTU(l Link, mtu int) error {
	if err := netlink.LinkSetMTU(&netlink.Device{LinkAttrs: netlink.LinkAttrs{Index: l.Index}}, mtu); err != nil {
		return fmt.Errorf("%s: mtu %d: %w", l.Name, mtu, err)
	}
	return nil
}

// AcceptRA makes the kernel take router advertisements on the interface and configure addresses
// from their prefixes (SLAAC), even when forwarding is on, as it is on a host that runs
// containers (accept_ra 2; 1 would be ignored then). procSys stands for /proc/sys.
func AcceptRA(procSys string, l Link) error {
	dir := filepath.Join(procSys, "net/ipv6/conf", l.Name)
	for _, kv := range [][2]string{{"disable_ipv6", "0"}, {"accept_ra", "2"}, {"autoconf", "1"}} {
		if err := os.WriteFile(filepath.Join(dir, kv[0]), []byte(kv[1]), 0o644); err != nil {
			return fmt.Errorf("%s: %w", l.Name, err)
		}
	}
	return nil
}

// Address is an address to give an interface. Lifetimes of 0 are forever; the kernel removes an
// address when its valid lifetime ends, so a leased address goes even if the service is not there
// to remove it.
type Address struct {
	Prefix    netip.Prefix
	Valid     time.Duration
	Preferred time.Duration
}

func ipNet(p netip.Prefix) *net.IPNet {
	return &net.IPNet{IP: p.Addr().AsSlice(), Mask: net.CIDRMask(p.Bits(), p.Addr().BitLen())}
}

// lifetime is a lifetime in the kernel's whole seconds, at least 1 (0 would mean forever).
func lifetime(d time.Duration) int {
	return max(int((d+time.Second-1)/time.Second), 1)
}

// ReplaceAddress adds an address, or updates its lifetimes when the interface has it.
func ReplaceAddress(l Link, a Address) error {
	na := &netlink.Addr{IPNet: ipNet(a.Prefix)}
	if a.Valid > 0 {
		na.ValidLft = lifetime(a.Valid)
		na.PreferedLft = min(lifetime(a.Preferred), na.ValidLft)
		if a.Preferred <= 0 {
			na.PreferedLft = na.ValidLft
		}
	}
	if err := netlink.AddrReplace(&netlink.Device{LinkAttrs: netlink.LinkAttrs{Index: l.Index}}, na); err != nil {
		return fmt.Errorf("%s: address %s: %w", l.Name, a.Prefix, err)
	}
	return nil
}

// RemoveAddress removes an address; one the interface does not have is not an error.
func RemoveAddress(l Link, p netip.Prefix) error {
	err := netlink.AddrDel(&netlink.Device{LinkAttrs: netlink.LinkAttrs{Index: l.Index}}, &netlink.Addr{IPNet: ipNet(p)})
	if err != nil && !errors.Is(err, syscall.EADDRNOTAVAIL) && !errors.Is(err, syscall.ENOENT) && !errors.Is(err, syscall.ENODEV) {
		return fmt.Errorf("%s: remove address %s: %w", l.Name, p, err)
	}
	return nil
}

// AddrInfo is an address the interface has.
type AddrInfo struct {
	Prefix    netip.Prefix
	Permanent bool // no lifetime: configured, not learned
	// Valid is the valid lifetime left; 0 for a permanent address.
	Valid     time.Duration
	Tentative bool // IPv6 duplicate address detection is not done
}

// Addresses returns an interface's addresses, IPv4 first.
func Addresses(l Link) ([]AddrInfo, error) {
	as, err := dump(func() ([]netlink.Addr, error) {
		return netlink.AddrList(&netlink.Device{LinkAttrs: netlink.LinkAttrs{Index: l.Index}}, netlink.FAMILY_ALL)
	})
	if err != nil {
		return nil, fmt.Errorf("%s: list addresses: %w", l.Name, err)
	}
	var out []AddrInfo
	for _, a := range as {
		ip, ok := netip.AddrFromSlice(a.IP)
		if !ok {
			continue
		}
		ones, _ := a.Mask.Size()
		ai := AddrInfo{
			Prefix:    netip.PrefixFrom(ip.Unmap(), ones),
			Permanent: a.Flags&unix.IFA_F_PERMANENT != 0,
			Tentative: a.Flags&unix.IFA_F_TENTATIVE != 0,
		}
		// The kernel reports 0xffffffff for forever.
		if a.ValidLft > 0 && uint32(a.ValidLft) != 0xffffffff {
			ai.Valid = time.Duration(a.ValidLft) * time.Second
		}
		out = append(out, ai)
	}
	slices.SortStableFunc(out, func(a, b AddrInfo) int {
		if a.Prefix.Addr().Is4() != b.Prefix.Addr().Is4() {
			if a.Prefix.Addr().Is4() {
				return -1
			}
			return 1
		}
		return 0
	})
	return out, nil
}

// Route protocols: who added a route (rtnetlink.h's RTPROT_*).
const (
	ProtoKernel = unix.RTPROT_KERNEL
	ProtoBoot   = unix.RTPROT_BOOT
	ProtoStatic = unix.RTPROT_STATIC // settings.network.interfaces
	ProtoRA     = unix.RTPROT_RA
	ProtoDHCP   = unix.RTPROT_DHCP // a DHCP lease
)

// Route is a route in the main table. An invalid Via is a route on the link.
type Route struct {
	To       netip.Prefix
	Via      netip.Addr
	Index    int // interface
	Metric   int
	Protocol int
}

func (r Route) String() string {
	s := r.To.String()
	if r.Via.IsValid() {
		s += " via " + r.Via.String()
	}
	return fmt.Sprintf("%s metric %d", s, r.Metric)
}

func (r Route) netlink() *netlink.Route {
	nr := &netlink.Route{LinkIndex: r.Index, Dst: ipNet(r.To), Priority: r.Metric, Protocol: netlink.RouteProtocol(r.Protocol),
		Table: unix.RT_TABLE_MAIN, Family: netlink.FAMILY_V4}
	if r.To.Addr().Is6() {
		nr.Family = netlink.FAMILY_V6
	}
	if r.Via.IsValid() {
		nr.Gw = r.Via.AsSlice()
	} else {
		nr.Scope = netlink.SCOPE_LINK
	}
	return nr
}

// same reports whether two routes are one: destination, next hop, interface and metric.
func same(a, b Route) bool {
	return a.To == b.To && a.Via == b.Via && a.Index == b.Index && a.Metric == b.Metric
}

// EnsureRoute adds a route unless the table has it.
func EnsureRoute(r Route) error {
	have, err := Routes()
	if err != nil {
		return err
	}
	if slices.ContainsFunc(have, func(h Route) bool { return same(h, r) }) {
		return nil
	}
	err = netlink.RouteAdd(r.netlink())
	if errors.Is(err, syscall.EEXIST) && r.To.Addr().Is4() {
		// IPv4 keys a route by destination and metric, whatever its interface: another
		// interface's route of the same metric is in the way. Both may be, side by side.
		err = netlink.RouteAppend(r.netlink())
	}
	if err != nil {
		return fmt.Errorf("add route %s: %w", r, err)
	}
	return nil
}

// RemoveRoute removes a route; one the table does not have is not an error.
func RemoveRoute(r Route) error {
	err := netlink.RouteDel(r.netlink())
	if err != nil && !errors.Is(err, syscall.ESRCH) && !errors.Is(err, syscall.ENOENT) && !errors.Is(err, syscall.ENODEV) {
		return fmt.Errorf("remove route %s: %w", r, err)
	}
	return nil
}

// Routes returns the unicast routes of the main table, IPv4 then IPv6. A multipath route is one
// route per next hop.
func Routes() ([]Route, error) {
	var out []Route
	for _, fam := range []int{netlink.FAMILY_V4, netlink.FAMILY_V6} {
		rs, err := dump(func() ([]netlink.Route, error) { return netlink.RouteList(nil, fam) })
		if err != nil {
			return nil, fmt.Errorf("list routes: %w", err)
		}
		for _, r := range rs {
			if r.Type != unix.RTN_UNICAST || r.Table != unix.RT_TABLE_MAIN || r.Dst == nil {
				continue
			}
			to, ok := prefixOf(r.Dst)
			if !ok {
				continue
			}
			hops := []*netlink.NexthopInfo{{LinkIndex: r.LinkIndex, Gw: r.Gw}}
			if len(r.MultiPath) > 0 {
				hops = r.MultiPath
			}
			for _, h := range hops {
				rt := Route{To: to, Index: h.LinkIndex, Metric: r.Priority, Protocol: int(r.Protocol)}
				if gw, ok := netip.AddrFromSlice(h.Gw); ok && !gw.IsUnspecified() {
					rt.Via = gw.Unmap()
				}
				out = append(out, rt)
			}
		}
	}
	return out, nil
}

func prefixOf(n *net.IPNet) (netip.Prefix, bool) {
	ip, ok := netip.AddrFromSlice(n.IP)
	if !ok {
		return netip.Prefix{}, false
	}
	ones, bits := n.Mask.Size()
	if bits == 0 {
		return netip.Prefix{}, false
	}
	if bits == 32 {
		ip = ip.Unmap()
	}
	return netip.PrefixFrom(ip, ones), true
}

// ProtocolName names a route protocol as ip-route(8) does.
func ProtocolName(p int) string {
	return netlink.RouteProtocol(p).String()
}
