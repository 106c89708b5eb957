package dhcp4

import (
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"slices"
	"time"

	"github.com/insomniacslk/dhcp/dhcpv4"
)

// Lease is a bound DHCPv4 lease: what the ACK said, and when.
type Lease struct {
	Address netip.Prefix // the leased address with the subnet's prefix length
	Server  netip.Addr   // the server identifier: renewals go there
	Routers []netip.Addr
	// Routes are the classless static routes (RFC 3442), which replace Routers when present.
	Routes   []Route
	DNS      []netip.Addr
	Domain   string
	Search   []string
	Hostname string
	MTU      int
	// Acquired is when the REQUEST that the ACK answered was sent; the lease's times count from
	// it (RFC 2131 4.4.1), so a slow answer errs on the early side.
	Acquired time.Time
	Duration time.Duration // the lease time
	T1, T2   time.Duration // renewal and rebinding times
	// ACK is the server's message, kept so a restarted client can resume the lease.
	ACK []byte
}

// Route is a classless static route; an invalid Via is a route on the link.
type Route struct {
	To  netip.Prefix
	Via netip.Addr
}

// RenewAt is T1: from then on the client asks the lease's server to extend it.
func (l *Lease) RenewAt() time.Time { return l.Acquired.Add(l.T1) }

// RebindAt is T2: from then on the client asks any server.
func (l *Lease) RebindAt() time.Time { return l.Acquired.Add(l.T2) }

// Expires is when the address must no longer be used.
func (l *Lease) Expires() time.Time { return l.Acquired.Add(l.Duration) }

// Infinite lease times (0xffffffff seconds) are capped, so that adding them to a time stays in
// range and the address lifetimes handed to the kernel fit its 32 bits.
const maxLease = 365 * 24 * time.Hour

// FromACK reads a lease from a server's ACK to a REQUEST sent at sent.
func FromACK(ack *dhcpv4.DHCPv4, sent time.Time) (*Lease, error) {
	if ack.MessageType() != dhcpv4.MessageTypeAck {
		return nil, fmt.Errorf("dhcp4: %s is not an ACK", ack.MessageType())
	}
	ip, ok := netip.AddrFromSlice(ack.YourIPAddr.To4())
	if !ok || ip.IsUnspecified() {
		return nil, errors.New("dhcp4: ACK without an address (yiaddr)")
	}
	l := &Lease{Acquired: sent, ACK: ack.ToBytes()}
	bits := 0
	if m := ack.SubnetMask(); m != nil {
		bits, _ = m.Size()
	}
	if bits == 0 {
		bits = classfulBits(ip)
	}
	l.Address = netip.PrefixFrom(ip, bits)
	if s, ok := netip.AddrFromSlice(ack.ServerIdentifier().To4()); ok {
		l.Server = s
	}
	l.Routers = addrs(ack.Router())
	for _, r := range ack.ClasslessStaticRoute() {
		to, ok := prefixOf(r.Dest)
		if !ok {
			continue
		}
		via, _ := netip.AddrFromSlice(r.Router.To4())
		if via.IsUnspecified() {
			via = netip.Addr{}
		}
		l.Routes = append(l.Routes, Route{To: to, Via: via})
	}
	l.DNS = addrs(ack.DNS())
	l.Domain = ack.DomainName()
	if s := ack.DomainSearch(); s != nil {
		l.Search = slices.Clone(s.Labels)
	}
	l.Hostname = ack.HostName()
	if b := ack.Options.Get(dhcpv4.OptionInterfaceMTU); len(b) == 2 {
		if mtu := int(binary.BigEndian.Uint16(b)); mtu >= 68 {
			l.MTU = mtu
		}
	}
	l.Duration = min(ack.IPAddressLeaseTime(0), maxLease)
	if l.Duration <= 0 {
		return nil, errors.New("dhcp4: ACK without a lease time")
	}
	// RFC 2131 4.4.5: T1 defaults to half the lease, T2 to 7/8 of it; a server's values that are
	// out of order are ignored.
	l.T1 = ack.IPAddressRenewalTime(l.Duration / 2)
	l.T2 = ack.IPAddressRebindingTime(l.Duration * 7 / 8)
	if l.T2 <= 0 || l.T2 > l.Duration {
		l.T2 = l.Duration * 7 / 8
	}
	if l.T1 <= 0 || l.T1 > l.T2 {
		l.T1 = min(l.Duration/2, l.T2)
	}
	return l, nil
}

// classfulBits is the prefix length of an address's class, for a server that sends no mask.
func classfulBits(ip netip.Addr) int {
	switch b := ip.As4()[0]; {
	case b < 128:
		return 8
	case b < 192:
		return 16
	default:
		return 24
	}
}

func addrs(ips []net.IP) []netip.Addr {
	var out []netip.Addr
	for _, ip := range ips {
		if a, ok := netip.AddrFromSlice(ip.To4()); ok && !a.IsUnspecified() {
			out = append(out, a)
		}
	}
	return out
}

func prefixOf(n *net.IPNet) (netip.Prefix, bool) {
	if n == nil {
		return netip.Prefix{}, false
	}
	a, ok := netip.AddrFromSlice(n.IP.To4())
	if !ok {
		return netip.Prefix{}, false
	}
	ones, bits := n.Mask.Size()
	if bits != 32 {
		return netip.Prefix{}, false
	}
	return netip.PrefixFrom(a, ones).Masked(), true
}

// Gateways are the lease's routes as the host installs them: the classless routes when the
// server sent them, otherwise a default route through the first router.
func (l *Lease) Gateways() []Route {
	if len(l.Routes) > 0 {
		return l.Routes
	}
	if len(l.Routers) > 0 {
		return []Route{{To: netip.PrefixFrom(netip.IPv4Unspecified(), 0), Via: l.Routers[0]}}
	}
	return nil
}

// stored is a lease on disk: the ACK it came from and when.
type stored struct {
	HWAddr   string    `json:"hwaddr"`
	Acquired time.Time `json:"acquired"`
	ACK      []byte    `json:"ack"`
}

// Marshal encodes the lease for a restarted client, tied to the hardware address it was given to.
func (l *Lease) Marshal(hw net.HardwareAddr) ([]byte, error) {
	return json.Marshal(stored{HWAddr: hw.String(), Acquired: l.Acquired, ACK: l.ACK})
}

// Unmarshal decodes a stored lease; one given to another hardware address is an error.
func Unmarshal(b []byte, hw net.HardwareAddr) (*Lease, error) {
	var s stored
	if err := json.Unmarshal(b, &s); err != nil {
		return nil, fmt.Errorf("dhcp4: stored lease: %w", err)
	}
	if s.HWAddr != hw.String() {
		return nil, fmt.Errorf("dhcp4: stored lease is for %s, not %s", s.HWAddr, hw)
	}
	ack, err := dhcpv4.FromBytes(s.ACK)
	if err != nil {
		return nil, fmt.Errorf("dhcp4: stored lease: %w", err)
	}
	return FromACK(ack, s.Acquired)
}
