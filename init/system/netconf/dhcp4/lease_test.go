package dhcp4

import (
	"encoding/binary"
	"net"
	"net/netip"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/insomniacslk/dhcp/dhcpv4"
	"github.com/insomniacslk/dhcp/rfc1035label"
)

func ack(t *testing.T, mods ...dhcpv4.Modifier) *dhcpv4.DHCPv4 {
	t.Helper()
	m, err := dhcpv4.New(append([]dhcpv4.Modifier{dhcpv4.WithMessageType(dhcpv4.MessageTypeAck), dhcpv4.WithHwAddr(hw),
		dhcpv4.WithYourIP(net.IPv4(192, 168, 5, 20)), dhcpv4.WithOption(dhcpv4.OptServerIdentifier(net.IPv4(192, 168, 5, 1)))}, mods...)...)
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func TestFromACK(t *testing.T) {
	mtu := make([]byte, 2)
	binary.BigEndian.PutUint16(mtu, 1400)
	sent := time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)
	full := ack(t,
		dhcpv4.WithNetmask(net.CIDRMask(22, 32)),
		dhcpv4.WithOption(dhcpv4.OptIPAddressLeaseTime(time.Hour)),
		dhcpv4.WithRouter(net.IPv4(192, 168, 5, 1)),
		dhcpv4.WithDNS(net.IPv4(192, 168, 5, 53), net.IPv4(0, 0, 0, 0)),
		dhcpv4.WithOption(dhcpv4.OptDomainName("lan.example")),
		dhcpv4.WithOption(dhcpv4.OptDomainSearch(&rfc1035label.Labels{Labels: []string{"a.example", "b.example"}})),
		dhcpv4.WithOption(dhcpv4.OptHostName("node-3")),
		dhcpv4.WithGeneric(dhcpv4.OptionInterfaceMTU, mtu),
		dhcpv4.WithOption(dhcpv4.OptClasslessStaticRoute(
			&dhcpv4.Route{Dest: &net.IPNet{IP: net.IPv4(10, 0, 0, 0), Mask: net.CIDRMask(8, 32)}, Router: net.IPv4(192, 168, 5, 2)},
			&dhcpv4.Route{Dest: &net.IPNet{IP: net.IPv4(192, 168, 4, 0), Mask: net.CIDRMask(22, 32)}, Router: net.IPv4(0, 0, 0, 0)})),
	)
	l, err := FromACK(full, sent)
	if err != nil {
		t.Fatal(err)
	}
	want := &Lease{
		Address: netip.MustParsePrefix("192.168.5.20/22"), Server: netip.MustParseAddr("192.168.5.1"),
		Routers: []netip.Addr{netip.MustParseAddr("192.168.5.1")},
		Routes: []Route{{To: netip.MustParsePrefix("10.0.0.0/8"), Via: netip.MustParseAddr("192.168.5.2")},
			{To: netip.MustParsePrefix("192.168.4.0/22")}},
		DNS: []netip.Addr{netip.MustParseAddr("192.168.5.53")}, Domain: "lan.example", Search: []string{"a.example", "b.example"},
		Hostname: "node-3", MTU: 1400, Acquired: sent, Duration: time.Hour, T1: 30 * time.Minute, T2: 52*time.Minute + 30*time.Second,
		ACK: full.ToBytes(),
	}
	if !reflect.DeepEqual(l, want) {
		t.Fatalf("FromACK:\n%+v\nwant\n%+v", l, want)
	}
	// Classless routes replace the router option (RFC 3442).
	if g := l.Gateways(); !reflect.DeepEqual(g, want.Routes) {
		t.Errorf("Gateways = %v", g)
	}
	if !l.RenewAt().Equal(sent.Add(30*time.Minute)) || !l.Expires().Equal(sent.Add(time.Hour)) {
		t.Errorf("RenewAt %v Expires %v", l.RenewAt(), l.Expires())
	}

	// Round trip through the lease file, tied to the hardware address.
	b, err := l.Marshal(hw)
	if err != nil {
		t.Fatal(err)
	}
	back, err := Unmarshal(b, hw)
	if err != nil || !reflect.DeepEqual(back, l) {
		t.Fatalf("Unmarshal = %+v, %v", back, err)
	}
	if _, err := Unmarshal(b, net.HardwareAddr{2, 0, 0, 0, 0, 1}); err == nil || !strings.Contains(err.Error(), "is for 52:54:00:12:34:56") {
		t.Errorf("Unmarshal for another interface = %v", err)
	}
}

func TestFromACKTimes(t *testing.T) {
	tests := []struct {
		name             string
		mods             []dhcpv4.Modifier
		t1, t2, duration time.Duration
		bits             int
		err              string
	}{
		{name: "defaults", mods: []dhcpv4.Modifier{dhcpv4.WithOption(dhcpv4.OptIPAddressLeaseTime(80 * time.Second))},
			t1: 40 * time.Second, t2: 70 * time.Second, duration: 80 * time.Second, bits: 24},
		{name: "server's T1 and T2", mods: []dhcpv4.Modifier{dhcpv4.WithOption(dhcpv4.OptIPAddressLeaseTime(80 * time.Second)),
			dhcpv4.WithOption(dhcpv4.Option{Code: dhcpv4.OptionRenewTimeValue, Value: dhcpv4.Duration(10 * time.Second)}),
			dhcpv4.WithOption(dhcpv4.Option{Code: dhcpv4.OptionRebindingTimeValue, Value: dhcpv4.Duration(20 * time.Second)})},
			t1: 10 * time.Second, t2: 20 * time.Second, duration: 80 * time.Second, bits: 24},
		{name: "T2 past the lease ignored", mods: []dhcpv4.Modifier{dhcpv4.WithOption(dhcpv4.OptIPAddressLeaseTime(80 * time.Second)),
			dhcpv4.WithOption(dhcpv4.Option{Code: dhcpv4.OptionRebindingTimeValue, Value: dhcpv4.Duration(90 * time.Second)})},
			t1: 40 * time.Second, t2: 70 * time.Second, duration: 80 * time.Second, bits: 24},
		{name: "infinite lease capped", mods: []dhcpv4.Modifier{dhcpv4.WithGeneric(dhcpv4.OptionIPAddressLeaseTime, []byte{0xff, 0xff, 0xff, 0xff})},
			t1: maxLease / 2, t2: maxLease * 7 / 8, duration: maxLease, bits: 24},
		{name: "no lease time", err: "without a lease time"},
		{name: "no address", mods: []dhcpv4.Modifier{dhcpv4.WithYourIP(net.IPv4zero)}, err: "without an address"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			l, err := FromACK(ack(t, tt.mods...), time.Now())
			if tt.err != "" {
				if err == nil || !strings.Contains(err.Error(), tt.err) {
					t.Fatalf("FromACK = %v, want %q", err, tt.err)
				}
				return
			}
			if err != nil || l.T1 != tt.t1 || l.T2 != tt.t2 || l.Duration != tt.duration || l.Address.Bits() != tt.bits {
				t.Fatalf("FromACK = %+v, %v", l, err)
			}
		})
	}
}

// TestFraming checks the headers RawConn writes: the receive side parses them back, and the IPv4
// and UDP checksums verify (the kernel of a server drops a datagram whose UDP checksum does not;
// the netns test in package netconf sends these through a real kernel).
func TestFraming(t *testing.T) {
	src, dst := netip.MustParseAddr("10.0.0.50"), netip.MustParseAddr("10.0.0.1")
	for _, payload := range [][]byte{[]byte("even"), []byte("odd"), make([]byte, 300)} {
		f := ipv4UDP(src, dst, 68, 67, payload)
		if checksum(f[:20], 0) != 0 {
			t.Errorf("IPv4 header checksum does not verify")
		}
		var pseudo uint32 = 10<<8 + 0 + 0<<8 + 50 + 10<<8 + 0 + 0<<8 + 1 + 17 + uint32(len(f)-20)
		if checksum(f[20:], pseudo) != 0 {
			t.Errorf("UDP checksum does not verify for %d bytes", len(payload))
		}
		// Swap the ports, as a reply would have them.
		binary.BigEndian.PutUint16(f[22:], 68)
		got, ok := udpPayload(f, 68)
		if !ok || string(got) != string(payload) {
			t.Errorf("udpPayload = %q, %v", got, ok)
		}
		if _, ok := udpPayload(f, 67); ok {
			t.Errorf("udpPayload took a datagram to another port")
		}
		if _, ok := udpPayload(f[:25], 68); ok {
			t.Errorf("udpPayload took a truncated datagram")
		}
	}
}
