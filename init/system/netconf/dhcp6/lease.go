package dhcp6

import (
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"slices"
	"time"

	"github.com/insomniacslk/dhcp/dhcpv6"
	"github.com/insomniacslk/dhcp/iana"
)

// Lease is a bound DHCPv6 lease of non-temporary addresses (IA_NA).
type Lease struct {
	Addresses []Address
	ServerID  []byte // the server's DUID: Renew goes to it
	DNS       []netip.Addr
	Search    []string
	// Acquired is when the message that the Reply answered was sent.
	Acquired time.Time
	T1, T2   time.Duration
	Reply    []byte // kept so a restarted client can resume the lease
}

// Address is a leased address and its lifetimes.
type Address struct {
	Addr      netip.Addr
	Preferred time.Duration
	Valid     time.Duration
}

// Lifetimes of "infinity" (0xffffffff s) are capped, so that times stay in range and the kernel's
// 32-bit lifetimes hold them.
const maxLifetime = 365 * 24 * time.Hour

// RenewAt is T1.
func (l *Lease) RenewAt() time.Time { return l.Acquired.Add(l.T1) }

// RebindAt is T2.
func (l *Lease) RebindAt() time.Time { return l.Acquired.Add(l.T2) }

// Expires is when the last of the addresses' valid lifetimes ends.
func (l *Lease) Expires() time.Time {
	var longest time.Duration
	for _, a := range l.Addresses {
		longest = max(longest, a.Valid)
	}
	return l.Acquired.Add(longest)
}

// FromReply reads a lease from a server's Reply to a message sent at sent. A Reply that refuses
// (a status other than success, for the message or the IA_NA) or holds no address is an error.
func FromReply(reply *dhcpv6.Message, sent time.Time) (*Lease, error) {
	if reply.MessageType != dhcpv6.MessageTypeReply && reply.MessageType != dhcpv6.MessageTypeAdvertise {
		return nil, fmt.Errorf("dhcp6: %s is not a Reply", reply.MessageType)
	}
	if st := reply.Options.Status(); st != nil && st.StatusCode != iana.StatusSuccess {
		return nil, fmt.Errorf("dhcp6: server says %s: %s", st.StatusCode, st.StatusMessage)
	}
	ia := reply.Options.OneIANA()
	if ia == nil {
		return nil, errors.New("dhcp6: Reply without IA_NA")
	}
	if st := ia.Options.Status(); st != nil && st.StatusCode != iana.StatusSuccess {
		return nil, fmt.Errorf("dhcp6: server says %s for the addresses: %s", st.StatusCode, st.StatusMessage)
	}
	l := &Lease{Acquired: sent, Reply: reply.ToBytes()}
	if sid := reply.Options.ServerID(); sid != nil {
		l.ServerID = sid.ToBytes()
	}
	shortest := maxLifetime
	for _, a := range ia.Options.Addresses() {
		ip, ok := netip.AddrFromSlice(a.IPv6Addr)
		if !ok || !ip.Is6() || a.ValidLifetime <= 0 {
			continue // RFC 8415 21.6: a valid lifetime of 0 withdraws the address
		}
		addr := Address{Addr: ip.Unmap(), Preferred: min(a.PreferredLifetime, maxLifetime), Valid: min(a.ValidLifetime, maxLifetime)}
		addr.Preferred = min(addr.Preferred, addr.Valid)
		l.Addresses = append(l.Addresses, addr)
		shortest = min(shortest, max(addr.Preferred, time.Second))
	}
	if len(l.Addresses) == 0 {
		return nil, errors.New("dhcp6: Reply without an address")
	}
	for _, ip := range reply.Options.DNS() {
		if a, ok := netip.AddrFromSlice(ip); ok {
			l.DNS = append(l.DNS, a.Unmap())
		}
	}
	if s := reply.Options.DomainSearchList(); s != nil {
		l.Search = slices.Clone(s.Labels)
	}
	// RFC 8415 21.4: T1 and T2 of 0 leave the times to the client: 0.5 and 0.8 of the shortest
	// preferred lifetime.
	l.T1, l.T2 = min(ia.T1, maxLifetime), min(ia.T2, maxLifetime)
	if l.T1 <= 0 {
		l.T1 = shortest / 2
	}
	if l.T2 <= 0 || l.T2 < l.T1 {
		l.T2 = max(shortest*4/5, l.T1)
	}
	return l, nil
}

type stored struct {
	HWAddr   string    `json:"hwaddr"`
	Acquired time.Time `json:"acquired"`
	Reply    []byte    `json:"reply"`
}

// Marshal encodes the lease for a restarted client, tied to the interface's hardware address.
func (l *Lease) Marshal(hw net.HardwareAddr) ([]byte, error) {
	return json.Marshal(stored{HWAddr: hw.String(), Acquired: l.Acquired, Reply: l.Reply})
}

// Unmarshal decodes a stored lease; one for another hardware address is an error.
func Unmarshal(b []byte, hw net.HardwareAddr) (*Lease, error) {
	var s stored
	if err := json.Unmarshal(b, &s); err != nil {
		return nil, fmt.Errorf("dhcp6: stored lease: %w", err)
	}
	if s.HWAddr != hw.String() {
		return nil, fmt.Errorf("dhcp6: stored lease is for %s, not %s", s.HWAddr, hw)
	}
	m, err := dhcpv6.MessageFromBytes(s.Reply)
	if err != nil {
		return nil, fmt.Errorf("dhcp6: stored lease: %w", err)
	}
	return FromReply(m, s.Acquired)
}
