package dhcp4

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/insomniacslk/dhcp/dhcpv4"

	"github.com/ballast-os/ballast/contract"
	"github.com/ballast-os/ballast/init/system/netconf/clock"
)

var (
	t0       = time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC)
	hw       = net.HardwareAddr{0x52, 0x54, 0x00, 0x12, 0x34, 0x56}
	serverID = netip.MustParseAddr("10.0.0.1")
	leased   = netip.MustParseAddr("10.0.0.50")
)

// fakeServer answers exchanges at once on the fake clock, or lets them time out. It writes what
// it sees into the shared trace.
type fakeServer struct {
	clock *clock.Fake
	trace *trace
	lease time.Duration
	t1    time.Duration // 0: the option is left out
	// silent and nak decide, per request and time since t0, whether the server stays quiet or
	// refuses.
	silent func(at time.Duration, kind string) bool
	nak    func(at time.Duration, kind string) bool
	xids   []dhcpv4.TransactionID
}

// kind names a request the way RFC 2131 4.3.2 tells them apart.
func kind(req *dhcpv4.DHCPv4, dst netip.Addr) string {
	switch req.MessageType() {
	case dhcpv4.MessageTypeDiscover:
		return "DISCOVER"
	case dhcpv4.MessageTypeRequest:
	default:
		return req.MessageType().String()
	}
	switch {
	case req.ServerIdentifier() != nil:
		return "REQUEST(selecting)"
	case req.RequestedIPAddress() != nil && req.ClientIPAddr.IsUnspecified():
		return "REQUEST(init-reboot)"
	case !req.ClientIPAddr.IsUnspecified() && dst == ipv4Broadcast:
		return "REQUEST(rebinding)"
	case !req.ClientIPAddr.IsUnspecified():
		return "REQUEST(renewing)"
	}
	return "REQUEST(?)"
}

func (s *fakeServer) Exchange(ctx context.Context, req *dhcpv4.DHCPv4, src, dst netip.Addr, timeout time.Duration, match func(*dhcpv4.DHCPv4) bool) (*dhcpv4.DHCPv4, error) {
	at := s.clock.Now().Sub(t0)
	k := kind(req, dst)
	s.xids = append(s.xids, req.TransactionID)
	s.trace.add(at, "%s %s->%s", k, src, dst)
	checkRequest(s.trace, k, req, src)
	if s.silent != nil && s.silent(at, k) {
		if err := s.clock.Wait(ctx, s.clock.Now().Add(timeout), nil); err != nil {
			return nil, err
		}
		return nil, ErrNoResponse
	}
	typ := dhcpv4.MessageTypeAck
	switch {
	case k == "DISCOVER":
		typ = dhcpv4.MessageTypeOffer
	case s.nak != nil && s.nak(at, k):
		typ = dhcpv4.MessageTypeNak
	}
	mods := []dhcpv4.Modifier{
		dhcpv4.WithReply(req), dhcpv4.WithMessageType(typ),
		dhcpv4.WithOption(dhcpv4.OptServerIdentifier(serverID.AsSlice())),
	}
	if typ != dhcpv4.MessageTypeNak {
		mods = append(mods,
			dhcpv4.WithYourIP(leased.AsSlice()),
			dhcpv4.WithNetmask(net.CIDRMask(24, 32)),
			dhcpv4.WithRouter(serverID.AsSlice()),
			dhcpv4.WithDNS(net.IPv4(10, 0, 0, 53)),
			dhcpv4.WithOption(dhcpv4.OptHostName("from-dhcp")),
			dhcpv4.WithOption(dhcpv4.OptIPAddressLeaseTime(s.lease)))
		if s.t1 > 0 {
			mods = append(mods, dhcpv4.WithOption(dhcpv4.Option{Code: dhcpv4.OptionRenewTimeValue, Value: dhcpv4.Duration(s.t1)}))
		}
	}
	reply, err := dhcpv4.New(mods...)
	if err != nil {
		return nil, err
	}
	if !match(reply) {
		s.trace.add(at, "reply refused by the client")
		return nil, ErrNoResponse
	}
	return reply, nil
}

// checkRequest notes in the trace what a request carries that its kind must not.
func checkRequest(tr *trace, k string, req *dhcpv4.DHCPv4, src netip.Addr) {
	bad := func(what string) { tr.add(-1, "BAD %s: %s", k, what) }
	if !slices.Equal(req.Options.Get(dhcpv4.OptionClientIdentifier), append([]byte{1}, hw...)) {
		bad("client identifier")
	}
	switch k {
	case "REQUEST(renewing)", "REQUEST(rebinding)":
		// RFC 2131 table 5: ciaddr set, no requested address or server identifier.
		if !req.ClientIPAddr.Equal(leased.AsSlice()) || src != leased || req.RequestedIPAddress() != nil {
			bad("ciaddr/src/requested address")
		}
	case "DISCOVER", "REQUEST(selecting)", "REQUEST(init-reboot)":
		if src.IsValid() && !src.IsUnspecified() {
			bad("source address before a lease")
		}
	}
}

// trace is what happened, in order, with the fake time since t0.
type trace struct {
	mu    sync.Mutex
	lines []string
}

func (tr *trace) add(at time.Duration, format string, args ...any) {
	tr.mu.Lock()
	defer tr.mu.Unlock()
	tr.lines = append(tr.lines, fmt.Sprintf("%5.1fs ", at.Seconds())+fmt.Sprintf(format, args...))
}

func (tr *trace) String() string {
	tr.mu.Lock()
	defer tr.mu.Unlock()
	return strings.Join(tr.lines, "\n")
}

type story struct {
	server  *fakeServer
	clock   *clock.Fake
	trace   *trace
	client  *Client
	resume  *Lease
	events  map[time.Duration]func(*Client)
	bound   *Lease // what the host has
	reports []Status
}

// play runs a client against the fake server until the fake time end and returns the trace.
func (s *story) play(t *testing.T, end time.Duration) string {
	t.Helper()
	s.clock = clock.NewFake(t0, t0.Add(end))
	s.trace = &trace{}
	s.server.clock, s.server.trace = s.clock, s.trace
	xid := uint32(0)
	s.client = New(Config{
		HWAddr: hw, Conn: s.server, Clock: s.clock, Resume: s.resume,
		// No jitter, and transaction IDs that count, so the story is the same every time.
		Rand: func() uint32 { xid++; return xid*2001 + 1000 },
		Bind: func(old, new *Lease) error {
			if old != s.bound && s.bound != nil && old != nil {
				s.trace.add(-1, "BAD bind: old lease is not the host's")
			}
			s.bound = new
			s.trace.add(s.clock.Now().Sub(t0), "bind %s until +%s", new.Address, new.Expires().Sub(t0))
			return nil
		},
		Unbind: func(l *Lease) error {
			if l != s.bound {
				s.trace.add(-1, "BAD unbind of a lease the host does not have")
			}
			s.bound = nil
			s.trace.add(s.clock.Now().Sub(t0), "unbind %s", l.Address)
			return nil
		},
		Report: func(st Status) {
			s.reports = append(s.reports, st)
			s.trace.add(s.clock.Now().Sub(t0), "state %s", st.State)
		},
	})
	for at, fn := range s.events {
		s.clock.At(t0.Add(at), func() { fn(s.client) })
	}
	err := s.client.Run(context.Background())
	if !errors.Is(err, clock.ErrEnd) {
		t.Fatalf("Run = %v, want the end of the fake time\n%s", err, s.trace)
	}
	if strings.Contains(s.trace.String(), "BAD") {
		t.Errorf("trace has problems:\n%s", s.trace)
	}
	return s.trace.String()
}

func lines(l ...string) string { return strings.Join(l, "\n") }

func TestLeaseLife(t *testing.T) {
	tests := []struct {
		name   string
		story  story
		end    time.Duration
		want   string
		status string // the last reported state
	}{{
		name: "renewed at T1 again and again",
		// 20 s leases with T1 10 s: renewed every 10 s, never rebinding.
		story: story{server: &fakeServer{lease: 20 * time.Second, t1: 10 * time.Second}},
		end:   25 * time.Second,
		want: lines(
			"  0.0s state init",
			"  0.0s DISCOVER 0.0.0.0->255.255.255.255",
			"  0.0s state requesting",
			"  0.0s REQUEST(selecting) 0.0.0.0->255.255.255.255",
			"  0.0s bind 10.0.0.50/24 until +20s",
			"  0.0s state bound",
			" 10.0s state renewing",
			" 10.0s REQUEST(renewing) 10.0.0.50->10.0.0.1",
			" 10.0s bind 10.0.0.50/24 until +30s",
			" 10.0s state bound",
			" 20.0s state renewing",
			" 20.0s REQUEST(renewing) 10.0.0.50->10.0.0.1",
			" 20.0s bind 10.0.0.50/24 until +40s",
			" 20.0s state bound"),
		status: contract.DHCPBound,
	}, {
		name: "server gone: renewing, rebinding, expiry, discovery",
		// T1 and T2 default to 10 s and 17.5 s. Renewing retries after half the time left (at
		// least 4 s), rebinding until the lease ends at 20 s; then the address goes.
		story: story{server: &fakeServer{lease: 20 * time.Second,
			silent: func(at time.Duration, _ string) bool { return at > 5*time.Second }}},
		end: 40 * time.Second,
		want: lines(
			"  0.0s state init",
			"  0.0s DISCOVER 0.0.0.0->255.255.255.255",
			"  0.0s state requesting",
			"  0.0s REQUEST(selecting) 0.0.0.0->255.255.255.255",
			"  0.0s bind 10.0.0.50/24 until +20s",
			"  0.0s state bound",
			" 10.0s state renewing",
			" 10.0s REQUEST(renewing) 10.0.0.50->10.0.0.1",
			" 14.0s state renewing",
			" 14.0s REQUEST(renewing) 10.0.0.50->10.0.0.1",
			" 17.5s state rebinding",
			" 17.5s REQUEST(rebinding) 10.0.0.50->255.255.255.255",
			" 20.0s unbind 10.0.0.50/24",
			" 20.0s state init",
			" 20.0s DISCOVER 0.0.0.0->255.255.255.255",
			" 24.0s state init", // reported again: its error is now the silence
			" 24.0s DISCOVER 0.0.0.0->255.255.255.255",
			" 32.0s DISCOVER 0.0.0.0->255.255.255.255"),
		status: contract.DHCPInit,
	}, {
		name: "renewal refused: address dropped, new lease",
		story: story{server: &fakeServer{lease: 20 * time.Second,
			nak: func(_ time.Duration, k string) bool { return k == "REQUEST(renewing)" }}},
		end: 12 * time.Second,
		want: lines(
			"  0.0s state init",
			"  0.0s DISCOVER 0.0.0.0->255.255.255.255",
			"  0.0s state requesting",
			"  0.0s REQUEST(selecting) 0.0.0.0->255.255.255.255",
			"  0.0s bind 10.0.0.50/24 until +20s",
			"  0.0s state bound",
			" 10.0s state renewing",
			" 10.0s REQUEST(renewing) 10.0.0.50->10.0.0.1",
			" 10.0s unbind 10.0.0.50/24",
			" 10.0s state init",
			" 10.0s DISCOVER 0.0.0.0->255.255.255.255",
			" 10.0s state requesting",
			" 10.0s REQUEST(selecting) 0.0.0.0->255.255.255.255",
			" 10.0s bind 10.0.0.50/24 until +30s",
			" 10.0s state bound"),
		status: contract.DHCPBound,
	}, {
		name: "resumed lease confirmed with a REQUEST, no DISCOVER",
		story: story{server: &fakeServer{lease: 20 * time.Second},
			resume: &Lease{Address: netip.MustParsePrefix("10.0.0.50/24"), Server: serverID, Acquired: t0.Add(-5 * time.Second),
				Duration: 20 * time.Second, T1: 10 * time.Second, T2: 17 * time.Second}},
		end: 8 * time.Second,
		want: lines(
			"  0.0s state init-reboot",
			"  0.0s REQUEST(init-reboot) 0.0.0.0->255.255.255.255",
			"  0.0s bind 10.0.0.50/24 until +20s",
			"  0.0s state bound"),
		status: contract.DHCPBound,
	}, {
		name: "resumed lease without an answer: used on, renewed at its T1",
		story: story{server: &fakeServer{lease: 20 * time.Second,
			silent: func(_ time.Duration, k string) bool { return k == "REQUEST(init-reboot)" }},
			resume: &Lease{Address: netip.MustParsePrefix("10.0.0.50/24"), Server: serverID, Acquired: t0.Add(-5 * time.Second),
				Duration: 60 * time.Second, T1: 20 * time.Second, T2: 50 * time.Second}},
		end: 16 * time.Second,
		want: lines(
			"  0.0s state init-reboot",
			"  0.0s REQUEST(init-reboot) 0.0.0.0->255.255.255.255",
			"  4.0s REQUEST(init-reboot) 0.0.0.0->255.255.255.255",
			" 12.0s bind 10.0.0.50/24 until +55s",
			" 12.0s state bound",
			" 15.0s state renewing",
			" 15.0s REQUEST(renewing) 10.0.0.50->10.0.0.1",
			" 15.0s bind 10.0.0.50/24 until +35s",
			" 15.0s state bound"),
		status: contract.DHCPBound,
	}, {
		name: "expired stored lease: discovery",
		story: story{server: &fakeServer{lease: 20 * time.Second},
			resume: &Lease{Address: netip.MustParsePrefix("10.0.0.50/24"), Acquired: t0.Add(-time.Hour), Duration: time.Minute}},
		end: time.Second,
		want: lines(
			"  0.0s state init",
			"  0.0s DISCOVER 0.0.0.0->255.255.255.255",
			"  0.0s state requesting",
			"  0.0s REQUEST(selecting) 0.0.0.0->255.255.255.255",
			"  0.0s bind 10.0.0.50/24 until +20s",
			"  0.0s state bound"),
		status: contract.DHCPBound,
	}, {
		name: "link lost and back: quiet meanwhile, then INIT-REBOOT",
		story: story{server: &fakeServer{lease: 20 * time.Second},
			events: map[time.Duration]func(*Client){
				5 * time.Second: func(c *Client) { c.SetCarrier(false) },
				8 * time.Second: func(c *Client) { c.SetCarrier(true) },
			}},
		end: 9 * time.Second,
		want: lines(
			"  0.0s state init",
			"  0.0s DISCOVER 0.0.0.0->255.255.255.255",
			"  0.0s state requesting",
			"  0.0s REQUEST(selecting) 0.0.0.0->255.255.255.255",
			"  0.0s bind 10.0.0.50/24 until +20s",
			"  0.0s state bound",
			"  5.0s state link-down",
			"  8.0s state init-reboot",
			"  8.0s REQUEST(init-reboot) 0.0.0.0->255.255.255.255",
			"  8.0s bind 10.0.0.50/24 until +28s",
			"  8.0s state bound"),
		status: contract.DHCPBound,
	}, {
		name: "link lost past the lease's end: address dropped, discovery on return",
		story: story{server: &fakeServer{lease: 20 * time.Second},
			events: map[time.Duration]func(*Client){
				5 * time.Second:  func(c *Client) { c.SetCarrier(false) },
				30 * time.Second: func(c *Client) { c.SetCarrier(true) },
			}},
		end: 31 * time.Second,
		want: lines(
			"  0.0s state init",
			"  0.0s DISCOVER 0.0.0.0->255.255.255.255",
			"  0.0s state requesting",
			"  0.0s REQUEST(selecting) 0.0.0.0->255.255.255.255",
			"  0.0s bind 10.0.0.50/24 until +20s",
			"  0.0s state bound",
			"  5.0s state link-down",
			" 20.0s unbind 10.0.0.50/24",
			" 20.0s state link-down",
			" 30.0s state init",
			" 30.0s DISCOVER 0.0.0.0->255.255.255.255",
			" 30.0s state requesting",
			" 30.0s REQUEST(selecting) 0.0.0.0->255.255.255.255",
			" 30.0s bind 10.0.0.50/24 until +50s",
			" 30.0s state bound"),
		status: contract.DHCPBound,
	}, {
		name: "link lost during a renewal: the exchange stops",
		story: story{server: &fakeServer{lease: 20 * time.Second,
			silent: func(at time.Duration, _ string) bool { return at > 5*time.Second }},
			events: map[time.Duration]func(*Client){12 * time.Second: func(c *Client) { c.SetCarrier(false) }}},
		end: 19 * time.Second,
		want: lines(
			"  0.0s state init",
			"  0.0s DISCOVER 0.0.0.0->255.255.255.255",
			"  0.0s state requesting",
			"  0.0s REQUEST(selecting) 0.0.0.0->255.255.255.255",
			"  0.0s bind 10.0.0.50/24 until +20s",
			"  0.0s state bound",
			" 10.0s state renewing",
			" 10.0s REQUEST(renewing) 10.0.0.50->10.0.0.1",
			" 12.0s state link-down"),
		status: contract.DHCPLinkDown,
	}}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := tt.story.play(t, tt.end)
			if got != tt.want {
				t.Errorf("trace:\n%s\nwant:\n%s", got, tt.want)
			}
			if st := tt.story.client.Status(); st.State != tt.status {
				t.Errorf("last status %+v, want state %s", st, tt.status)
			}
		})
	}
}

func TestRenewalsCountedAndErrorsCleared(t *testing.T) {
	s := story{server: &fakeServer{lease: 20 * time.Second, t1: 10 * time.Second,
		silent: func(at time.Duration, _ string) bool { return at > 15*time.Second && at < 25*time.Second }}}
	s.play(t, 35*time.Second)
	var sawErr bool
	for _, r := range s.reports {
		if r.Err != nil && r.State == contract.DHCPRenewing {
			sawErr = true
		}
	}
	last := s.client.Status()
	// Renewed at 10 s; silent at 20 s; renewed at 25 s (rebinding from 27.5 s on would be later).
	if !sawErr || last.State != contract.DHCPBound || last.Err != nil || last.Renewals != 2 || last.Lease.Hostname != "from-dhcp" {
		t.Fatalf("last status %+v (error seen while renewing: %v)\n%s", last, sawErr, s.trace)
	}
}

func TestTransactionIDsFromRand(t *testing.T) {
	s := story{server: &fakeServer{lease: 20 * time.Second, t1: 10 * time.Second}}
	s.play(t, 15*time.Second)
	if len(s.server.xids) != 3 {
		t.Fatalf("%d requests", len(s.server.xids))
	}
	// Rand also draws the jitter, so the IDs are every other draw: 1, 3, 5.
	for i, x := range s.server.xids {
		want := uint32(2*i+1)*2001 + 1000
		if got := uint32(x[0])<<24 | uint32(x[1])<<16 | uint32(x[2])<<8 | uint32(x[3]); got != want {
			t.Errorf("request %d: xid %d, want %d from Rand", i, got, want)
		}
	}
}
