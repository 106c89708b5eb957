package nettest

import (
	"net"
	"net/netip"
	"sync"
	"testing"
	"time"

	"github.com/insomniacslk/dhcp/dhcpv6"
	"github.com/insomniacslk/dhcp/dhcpv6/server6"
	"github.com/insomniacslk/dhcp/iana"
)

// DHCPv6Server is a DHCPv6 server for tests (the library's server6): it gives every client the
// address Addr with the lifetimes and times set here, and records the types of the messages it
// receives.
type DHCPv6Server struct {
	Addr             netip.Addr
	Preferred, Valid time.Duration
	T1, T2           time.Duration
	DNS              []netip.Addr
	ServerHW         net.HardwareAddr // for its DUID
	mu               sync.Mutex
	received         []string
	srv              *server6.Server
}

// Start serves on the interface ifname of n until the test ends.
func (s *DHCPv6Server) Start(t testing.TB, n *Netns, ifname string) {
	t.Helper()
	err := n.Do(func() error {
		var err error
		s.srv, err = server6.NewServer(ifname, nil, s.handle)
		return err
	})
	if err != nil {
		t.Fatalf("DHCPv6 server on %s: %v", ifname, err)
	}
	go s.srv.Serve()
	t.Cleanup(func() { s.srv.Close() })
}

// Received returns the types of the messages so far.
func (s *DHCPv6Server) Received() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string(nil), s.received...)
}

func (s *DHCPv6Server) handle(conn net.PacketConn, peer net.Addr, d dhcpv6.DHCPv6) {
	m, ok := d.(*dhcpv6.Message)
	if !ok {
		return
	}
	s.mu.Lock()
	s.received = append(s.received, m.MessageType.String())
	s.mu.Unlock()
	typ := dhcpv6.MessageTypeReply
	switch m.MessageType {
	case dhcpv6.MessageTypeSolicit:
		typ = dhcpv6.MessageTypeAdvertise
	case dhcpv6.MessageTypeRequest, dhcpv6.MessageTypeRenew, dhcpv6.MessageTypeRebind:
	default:
		return
	}
	reply := &dhcpv6.Message{MessageType: typ, TransactionID: m.TransactionID}
	reply.AddOption(m.GetOneOption(dhcpv6.OptionClientID))
	reply.AddOption(dhcpv6.OptServerID(&dhcpv6.DUIDLL{HWType: iana.HWTypeEthernet, LinkLayerAddr: s.ServerHW}))
	ia := &dhcpv6.OptIANA{T1: s.T1, T2: s.T2}
	if req := m.Options.OneIANA(); req != nil {
		ia.IaId = req.IaId
	}
	ia.Options.Add(&dhcpv6.OptIAAddress{IPv6Addr: s.Addr.AsSlice(), PreferredLifetime: s.Preferred, ValidLifetime: s.Valid})
	reply.AddOption(ia)
	if len(s.DNS) > 0 {
		reply.AddOption(dhcpv6.OptDNS(ips(s.DNS)...))
	}
	conn.WriteTo(reply.ToBytes(), peer)
}
