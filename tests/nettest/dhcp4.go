package nettest

import (
	"fmt"
	"net"
	"net/netip"
	"sync"
	"testing"
	"time"

	"github.com/insomniacslk/dhcp/dhcpv4"
	"github.com/insomniacslk/dhcp/dhcpv4/server4"
	"golang.org/x/net/ipv4"
)

// DHCPv4Server is a DHCPv4 server for tests (the library's server4 with a small allocator): one
// address per client hardware address, counting up from First. It records every message it
// receives and can be told to stay silent, to test a client's renewal, rebinding and expiry.
type DHCPv4Server struct {
	ServerIP  netip.Addr
	First     netip.Addr // the first address it gives
	Bits      int        // prefix length of the subnet
	LeaseTime time.Duration
	T1        time.Duration // 0: the option is left out (clients take half the lease)
	Routers   []netip.Addr
	DNS       []netip.Addr
	Hostname  string
	Domain    string

	mu       sync.Mutex
	silent   bool
	received []Received
	leases   map[string]netip.Addr
	conn     *dstConn
	srv      *server4.Server
}

// Received is a message the server got.
type Received struct {
	At     time.Time
	Kind   string // DISCOVER, REQUEST(selecting), REQUEST(init-reboot), REQUEST(renewing) or REQUEST(rebinding), RELEASE...
	HWAddr string
	CIAddr netip.Addr
	// Requested is option 50, the address an INIT-REBOOT or SELECTING client asks for.
	Requested netip.Addr
	// Unicast is whether it came to the server's own address (a renewal) rather than broadcast.
	Unicast bool
}

func (r Received) String() string {
	return fmt.Sprintf("%s %s ciaddr=%s requested=%s unicast=%v", r.At.Format("15:04:05.000"), r.Kind, r.CIAddr, r.Requested, r.Unicast)
}

// Start serves on the interface ifname of n until the test ends.
func (s *DHCPv4Server) Start(t testing.TB, n *Netns, ifname string) {
	t.Helper()
	s.leases = map[string]netip.Addr{}
	s.conn = &dstConn{dst: map[dhcpv4.TransactionID]net.IP{}}
	err := n.Do(func() error {
		udp, err := server4.NewIPv4UDPConn(ifname, &net.UDPAddr{Port: dhcpv4.ServerPort})
		if err != nil {
			return err
		}
		s.conn.udp, s.conn.pc = udp, ipv4.NewPacketConn(udp)
		// The destination of each datagram (IP_PKTINFO) tells a renewal, sent to the server's
		// address, from a rebinding client's broadcast.
		if err := s.conn.pc.SetControlMessage(ipv4.FlagDst, true); err != nil {
			return err
		}
		s.srv, err = server4.NewServer(ifname, nil, s.handle, server4.WithConn(s.conn))
		return err
	})
	if err != nil {
		t.Fatalf("DHCPv4 server on %s: %v", ifname, err)
	}
	go s.srv.Serve()
	t.Cleanup(func() { s.srv.Close() })
}

// SetSilent makes the server ignore every message (true) or answer again (false).
func (s *DHCPv4Server) SetSilent(silent bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.silent = silent
}

// Received returns the messages so far.
func (s *DHCPv4Server) Received() []Received {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Received(nil), s.received...)
}

// Kind names a client message the way RFC 2131 4.3.2 tells REQUESTs apart.
func Kind(m *dhcpv4.DHCPv4, unicast bool) string {
	if m.MessageType() != dhcpv4.MessageTypeRequest {
		return m.MessageType().String()
	}
	switch {
	case m.ServerIdentifier() != nil:
		return "REQUEST(selecting)"
	case m.RequestedIPAddress() != nil && m.ClientIPAddr.IsUnspecified():
		return "REQUEST(init-reboot)"
	case !m.ClientIPAddr.IsUnspecified() && unicast:
		return "REQUEST(renewing)"
	case !m.ClientIPAddr.IsUnspecified():
		return "REQUEST(rebinding)"
	}
	return "REQUEST"
}

func (s *DHCPv4Server) handle(conn net.PacketConn, peer net.Addr, m *dhcpv4.DHCPv4) {
	if m.OpCode != dhcpv4.OpcodeBootRequest {
		return
	}
	ciaddr, _ := netip.AddrFromSlice(m.ClientIPAddr.To4())
	requested, _ := netip.AddrFromSlice(m.RequestedIPAddress().To4())
	unicast := s.conn.takeDst(m.TransactionID).Equal(s.ServerIP.AsSlice())
	s.mu.Lock()
	s.received = append(s.received, Received{At: time.Now(), Kind: Kind(m, unicast), HWAddr: m.ClientHWAddr.String(),
		CIAddr: ciaddr, Requested: requested, Unicast: unicast})
	silent := s.silent
	addr, ok := s.leases[m.ClientHWAddr.String()]
	if !ok {
		addr = s.First
		for i := 0; i < len(s.leases); i++ {
			addr = addr.Next()
		}
		s.leases[m.ClientHWAddr.String()] = addr
	}
	s.mu.Unlock()
	if silent {
		return
	}
	var typ dhcpv4.MessageType
	switch m.MessageType() {
	case dhcpv4.MessageTypeDiscover:
		typ = dhcpv4.MessageTypeOffer
	case dhcpv4.MessageTypeRequest:
		asked := requested
		if !asked.IsValid() || asked.IsUnspecified() {
			asked = ciaddr
		}
		typ = dhcpv4.MessageTypeAck
		if asked != addr {
			typ = dhcpv4.MessageTypeNak
		}
	default:
		return
	}
	reply, err := dhcpv4.NewReplyFromRequest(m, dhcpv4.WithMessageType(typ),
		dhcpv4.WithOption(dhcpv4.OptServerIdentifier(s.ServerIP.AsSlice())))
	if err != nil {
		return
	}
	if typ != dhcpv4.MessageTypeNak {
		reply.YourIPAddr = addr.AsSlice()
		reply.UpdateOption(dhcpv4.OptSubnetMask(net.CIDRMask(s.Bits, 32)))
		reply.UpdateOption(dhcpv4.OptIPAddressLeaseTime(s.LeaseTime))
		if s.T1 > 0 {
			reply.UpdateOption(dhcpv4.Option{Code: dhcpv4.OptionRenewTimeValue, Value: dhcpv4.Duration(s.T1)})
		}
		if len(s.Routers) > 0 {
			reply.UpdateOption(dhcpv4.OptRouter(ips(s.Routers)...))
		}
		if len(s.DNS) > 0 {
			reply.UpdateOption(dhcpv4.OptDNS(ips(s.DNS)...))
		}
		if s.Hostname != "" {
			reply.UpdateOption(dhcpv4.OptHostName(s.Hostname))
		}
		if s.Domain != "" {
			reply.UpdateOption(dhcpv4.OptDomainName(s.Domain))
		}
	}
	// To the client's address once it has one (RFC 2131 4.1), broadcast before.
	dst := &net.UDPAddr{IP: net.IPv4bcast, Port: dhcpv4.ClientPort}
	if !ciaddr.IsUnspecified() && typ != dhcpv4.MessageTypeNak {
		dst.IP = ciaddr.AsSlice()
	}
	conn.WriteTo(reply.ToBytes(), dst)
}

// dstConn is the server's socket, remembering the destination address of each message by its
// transaction ID for the handler (server4 hands it only the sender).
type dstConn struct {
	udp *net.UDPConn
	pc  *ipv4.PacketConn
	mu  sync.Mutex
	dst map[dhcpv4.TransactionID]net.IP
}

func (c *dstConn) ReadFrom(b []byte) (int, net.Addr, error) {
	n, cm, src, err := c.pc.ReadFrom(b)
	if err == nil && cm != nil && n >= 8 {
		var xid dhcpv4.TransactionID
		copy(xid[:], b[4:8])
		c.mu.Lock()
		c.dst[xid] = cm.Dst
		c.mu.Unlock()
	}
	return n, src, err
}

func (c *dstConn) takeDst(xid dhcpv4.TransactionID) net.IP {
	c.mu.Lock()
	defer c.mu.Unlock()
	d := c.dst[xid]
	delete(c.dst, xid)
	return d
}

func (c *dstConn) WriteTo(b []byte, addr net.Addr) (int, error) { return c.udp.WriteTo(b, addr) }
func (c *dstConn) Close() error                                 { return c.udp.Close() }
func (c *dstConn) LocalAddr() net.Addr                          { return c.udp.LocalAddr() }
func (c *dstConn) SetDeadline(t time.Time) error                { return c.udp.SetDeadline(t) }
func (c *dstConn) SetReadDeadline(t time.Time) error            { return c.udp.SetReadDeadline(t) }
func (c *dstConn) SetWriteDeadline(t time.Time) error           { return c.udp.SetWriteDeadline(t) }

func ips(l []netip.Addr) []net.IP {
	out := make([]net.IP, len(l))
	for i, a := range l {
		out[i] = a.AsSlice()
	}
	return out
}
