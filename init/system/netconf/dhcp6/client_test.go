package dhcp6

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/insomniacslk/dhcp/dhcpv6"
	"github.com/insomniacslk/dhcp/iana"

	"github.com/ballast-os/ballast/contract"
	"github.com/ballast-os/ballast/init/system/netconf/clock"
)

var (
	t0       = time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC)
	hw       = net.HardwareAddr{0x52, 0x54, 0x00, 0x12, 0x34, 0x56}
	leased   = netip.MustParseAddr("fd00:1::50")
	serverID = &dhcpv6.DUIDLL{HWType: iana.HWTypeEthernet, LinkLayerAddr: net.HardwareAddr{2, 0, 0, 0, 0, 1}}
)

type fakeServer struct {
	clock     *clock.Fake
	log       []string
	preferred time.Duration
	valid     time.Duration
	t1, t2    time.Duration
	silent    func(at time.Duration, typ dhcpv6.MessageType) bool
	refuse    func(at time.Duration, typ dhcpv6.MessageType) bool
}

func (s *fakeServer) Exchange(ctx context.Context, req *dhcpv6.Message, timeout time.Duration, match func(*dhcpv6.Message) bool) (*dhcpv6.Message, error) {
	at := s.clock.Now().Sub(t0)
	line := fmt.Sprintf("%5.1fs %s", at.Seconds(), req.MessageType)
	if sid := req.Options.ServerID(); sid != nil {
		line += " to-server"
	}
	if ia := req.Options.OneIANA(); ia != nil {
		for _, a := range ia.Options.Addresses() {
			line += " " + a.IPv6Addr.String()
		}
	}
	s.log = append(s.log, line)
	if s.silent != nil && s.silent(at, req.MessageType) {
		if err := s.clock.Wait(ctx, s.clock.Now().Add(timeout), nil); err != nil {
			return nil, err
		}
		return nil, ErrNoResponse
	}
	typ := dhcpv6.MessageTypeReply
	if req.MessageType == dhcpv6.MessageTypeSolicit {
		typ = dhcpv6.MessageTypeAdvertise
	}
	reply := &dhcpv6.Message{MessageType: typ, TransactionID: req.TransactionID}
	reply.AddOption(req.GetOneOption(dhcpv6.OptionClientID))
	reply.AddOption(dhcpv6.OptServerID(serverID))
	ia := &dhcpv6.OptIANA{IaId: req.Options.OneIANA().IaId, T1: s.t1, T2: s.t2}
	if s.refuse != nil && s.refuse(at, req.MessageType) {
		ia.Options.Add(&dhcpv6.OptStatusCode{StatusCode: iana.StatusNoBinding, StatusMessage: "who are you"})
	} else {
		ia.Options.Add(&dhcpv6.OptIAAddress{IPv6Addr: leased.AsSlice(), PreferredLifetime: s.preferred, ValidLifetime: s.valid})
	}
	reply.AddOption(ia)
	reply.AddOption(dhcpv6.OptDNS(net.ParseIP("fd00:1::53")))
	if !match(reply) {
		return nil, ErrNoResponse
	}
	return reply, nil
}

func play(t *testing.T, s *fakeServer, resume *Lease, events map[time.Duration]func(*Client), end time.Duration) (string, *Client) {
	t.Helper()
	s.clock = clock.NewFake(t0, t0.Add(end))
	var bound *Lease
	n := uint32(0)
	c := New(Config{HWAddr: hw, Conn: s, Clock: s.clock, Resume: resume,
		Rand: func() uint32 { n++; return n },
		Bind: func(old, new *Lease) error {
			bound = new
			s.log = append(s.log, fmt.Sprintf("%5.1fs bind %s until +%s", s.clock.Now().Sub(t0).Seconds(), new.Addresses[0].Addr, new.Expires().Sub(t0)))
			return nil
		},
		Unbind: func(l *Lease) error {
			if l != bound {
				t.Errorf("unbind of a lease the host does not have")
			}
			s.log = append(s.log, fmt.Sprintf("%5.1fs unbind", s.clock.Now().Sub(t0).Seconds()))
			return nil
		},
		Report: func(st Status) {
			s.log = append(s.log, fmt.Sprintf("%5.1fs state %s", s.clock.Now().Sub(t0).Seconds(), st.State))
		},
	})
	for at, fn := range events {
		s.clock.At(t0.Add(at), func() { fn(c) })
	}
	if err := c.Run(context.Background()); !errors.Is(err, clock.ErrEnd) {
		t.Fatalf("Run = %v", err)
	}
	return strings.Join(s.log, "\n"), c
}

func TestLeaseLife(t *testing.T) {
	tests := []struct {
		name   string
		server *fakeServer
		resume *Lease
		events map[time.Duration]func(*Client)
		end    time.Duration
		want   []string
	}{{
		name:   "solicit, request, renew at T1",
		server: &fakeServer{preferred: 20 * time.Second, valid: 30 * time.Second, t1: 10 * time.Second, t2: 16 * time.Second},
		end:    15 * time.Second,
		want: []string{
			"  0.0s state init", "  0.0s SOLICIT", "  0.0s state requesting", "  0.0s REQUEST to-server fd00:1::50",
			"  0.0s bind fd00:1::50 until +30s", "  0.0s state bound",
			" 10.0s state renewing", " 10.0s RENEW to-server fd00:1::50", " 10.0s bind fd00:1::50 until +40s", " 10.0s state bound"},
	}, {
		name: "server gone: renew, rebind, addresses dropped at their valid lifetime",
		// T1 and T2 of 0: 0.5 and 0.8 of the preferred lifetime.
		server: &fakeServer{preferred: 20 * time.Second, valid: 30 * time.Second,
			silent: func(at time.Duration, _ dhcpv6.MessageType) bool { return at > 0 }},
		end: 31 * time.Second,
		want: []string{
			"  0.0s state init", "  0.0s SOLICIT", "  0.0s state requesting", "  0.0s REQUEST to-server fd00:1::50",
			"  0.0s bind fd00:1::50 until +30s", "  0.0s state bound",
			" 10.0s state renewing", " 10.0s RENEW to-server fd00:1::50", " 14.0s state renewing", " 14.0s RENEW to-server fd00:1::50",
			" 16.0s state rebinding", " 16.0s REBIND fd00:1::50", " 23.0s state rebinding", " 23.0s REBIND fd00:1::50", " 27.0s REBIND fd00:1::50",
			" 30.0s unbind", " 30.0s state init", " 30.0s SOLICIT", " 31.0s state init", " 31.0s SOLICIT"},
	}, {
		name: "renewal refused: dropped, solicited again",
		server: &fakeServer{preferred: 20 * time.Second, valid: 30 * time.Second,
			refuse: func(_ time.Duration, typ dhcpv6.MessageType) bool { return typ == dhcpv6.MessageTypeRenew }},
		end: 11 * time.Second,
		want: []string{
			"  0.0s state init", "  0.0s SOLICIT", "  0.0s state requesting", "  0.0s REQUEST to-server fd00:1::50",
			"  0.0s bind fd00:1::50 until +30s", "  0.0s state bound",
			" 10.0s state renewing", " 10.0s RENEW to-server fd00:1::50", " 10.0s unbind",
			" 10.0s state init", " 10.0s SOLICIT", " 10.0s state requesting", " 10.0s REQUEST to-server fd00:1::50",
			" 10.0s bind fd00:1::50 until +40s", " 10.0s state bound"},
	}, {
		name:   "resumed lease confirmed with a Rebind",
		server: &fakeServer{preferred: 20 * time.Second, valid: 30 * time.Second},
		resume: &Lease{Addresses: []Address{{Addr: leased, Preferred: 20 * time.Second, Valid: 30 * time.Second}},
			Acquired: t0.Add(-5 * time.Second), T1: 10 * time.Second, T2: 16 * time.Second},
		end:  2 * time.Second,
		want: []string{"  0.0s state init-reboot", "  0.0s REBIND fd00:1::50", "  0.0s bind fd00:1::50 until +30s", "  0.0s state bound"},
	}, {
		name:   "link lost and back",
		server: &fakeServer{preferred: 20 * time.Second, valid: 30 * time.Second},
		events: map[time.Duration]func(*Client){2 * time.Second: func(c *Client) { c.SetCarrier(false) }, 4 * time.Second: func(c *Client) { c.SetCarrier(true) }},
		end:    5 * time.Second,
		want: []string{
			"  0.0s state init", "  0.0s SOLICIT", "  0.0s state requesting", "  0.0s REQUEST to-server fd00:1::50",
			"  0.0s bind fd00:1::50 until +30s", "  0.0s state bound", "  2.0s state link-down",
			"  4.0s state init-reboot", "  4.0s REBIND fd00:1::50", "  4.0s bind fd00:1::50 until +34s", "  4.0s state bound"},
	}}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, _ := play(t, tt.server, tt.resume, tt.events, tt.end)
			if want := strings.Join(tt.want, "\n"); got != want {
				t.Errorf("trace:\n%s\nwant:\n%s", got, want)
			}
		})
	}
}

func TestFromReplyAndStore(t *testing.T) {
	s := &fakeServer{preferred: 20 * time.Second, valid: 30 * time.Second, t1: 7 * time.Second, t2: 12 * time.Second}
	_, c := play(t, s, nil, nil, time.Second)
	st := c.Status()
	if st.State != contract.DHCPBound || st.Lease == nil {
		t.Fatalf("status %+v", st)
	}
	l := st.Lease
	if l.T1 != 7*time.Second || l.T2 != 12*time.Second || !reflect.DeepEqual(l.DNS, []netip.Addr{netip.MustParseAddr("fd00:1::53")}) ||
		!reflect.DeepEqual(l.Addresses, []Address{{Addr: leased, Preferred: 20 * time.Second, Valid: 30 * time.Second}}) {
		t.Fatalf("lease %+v", l)
	}
	b, err := l.Marshal(hw)
	if err != nil {
		t.Fatal(err)
	}
	back, err := Unmarshal(b, hw)
	if err != nil || !reflect.DeepEqual(back, l) {
		t.Fatalf("Unmarshal = %+v, %v", back, err)
	}
	if _, err := Unmarshal(b, net.HardwareAddr{2, 0, 0, 0, 0, 9}); err == nil {
		t.Fatal("a lease for another interface was taken")
	}
}
