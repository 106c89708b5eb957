// Package dhcp4 is the network service's DHCPv4 client: the whole life of a lease as RFC 2131
// 4.4 draws it (INIT → SELECTING/REQUESTING → BOUND → RENEWING at T1 → REBINDING at T2 →
// expiry), INIT-REBOOT to confirm a lease it already has (after a restart of the service, or the
// link's return), and a pause while the link has no carrier. What a lease means for the host
// (addresses, routes) is the caller's: it gets Bind and Unbind calls.
//
// The client builds its messages itself rather than through the library's constructors, which
// draw transaction IDs from the kernel's CRNG and wait for it to be ready: a DHCP transaction ID
// only has to tell exchanges apart, and the network must not wait on entropy at boot.
package dhcp4

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"net/netip"
	"sync"
	"time"

	"github.com/insomniacslk/dhcp/dhcpv4"
	"github.com/insomniacslk/dhcp/iana"

	"github.com/ballast-os/ballast/contract"
	"github.com/ballast-os/ballast/init/system/netconf/clock"
)

// ErrNoResponse is a Conn's answer when no matching reply came in time.
var ErrNoResponse = errors.New("no answer from a DHCP server")

// errLinkDown ends an exchange that the link's loss interrupted.
var errLinkDown = errors.New("link down")

// retryable is an exchange that failed in a way the states wait out and try again: no answer,
// or a socket error. Other errors from exchange end Run.
type retryable struct{ err error }

func (e retryable) Error() string { return e.err.Error() }
func (e retryable) Unwrap() error { return e.err }

func isRetryable(err error) bool {
	var r retryable
	return errors.As(err, &r)
}

// Conn carries one exchange at a time on one interface.
type Conn interface {
	// Exchange sends req from src (the unspecified address while there is no lease) to dst (a
	// server, or the broadcast address) and returns the first reply to it that match accepts:
	// a BOOTREPLY with req's transaction ID and hardware address. After timeout without one it
	// returns ErrNoResponse.
	Exchange(ctx context.Context, req *dhcpv4.DHCPv4, src, dst netip.Addr, timeout time.Duration, match func(*dhcpv4.DHCPv4) bool) (*dhcpv4.DHCPv4, error)
}

// Timing of retransmissions (RFC 2131 4.1): 4 s doubling to 64 s while looking for a server, and
// in RENEWING and REBINDING half the time left, but not less than minRetransmit. The RFC's 60 s
// floor there would make a short lease's whole renewal window one attempt.
const (
	firstRetransmit = 4 * time.Second
	maxRetransmit   = 64 * time.Second
	minRetransmit   = 4 * time.Second
	// requestTries bounds the REQUESTs for an offer before starting over.
	requestTries = 3
	// rebootTries bounds the INIT-REBOOT REQUESTs (4 s and 8 s) before the lease is used on as it
	// is: a short lease must not run out while its server is being asked.
	rebootTries = 2
)

// requested are the options the client asks for.
var requested = []dhcpv4.OptionCode{
	dhcpv4.OptionSubnetMask, dhcpv4.OptionRouter, dhcpv4.OptionDomainNameServer, dhcpv4.OptionHostName,
	dhcpv4.OptionDomainName, dhcpv4.OptionInterfaceMTU, dhcpv4.OptionBroadcastAddress,
	dhcpv4.OptionIPAddressLeaseTime, dhcpv4.OptionRenewTimeValue, dhcpv4.OptionRebindingTimeValue,
	dhcpv4.OptionDNSDomainSearchList, dhcpv4.OptionClasslessStaticRoute,
}

// Config is what a Client needs.
type Config struct {
	HWAddr net.HardwareAddr
	Conn   Conn
	// Clock defaults to the real one.
	Clock clock.Clock
	// Rand draws transaction IDs and retransmission jitter; nil is math/rand/v2, which the Go
	// runtime seeds without waiting for the kernel's CRNG.
	Rand func() uint32
	// Resume is a lease the host already uses (from before a restart): the client confirms it with
	// an INIT-REBOOT REQUEST instead of starting over.
	Resume *Lease
	// Bind makes the host use a lease: old is the lease it replaces (nil for a new one). It must
	// be idempotent; it is called again for a lease the host may already have. An error means
	// the host could not take the lease's address: the client drops the lease and starts over.
	Bind func(old, new *Lease) error
	// Unbind makes the host stop using a lease (it expired, or a server refused it).
	Unbind func(l *Lease) error
	// Report, when set, gets every change of state, on the client's goroutine.
	Report func(Status)
}

// Status is where a client is.
type Status struct {
	State    string // one of contract's DHCP states
	Lease    *Lease // nil without one
	Renewals int    // renewals of this lease since it was bound
	Err      error  // the last failure, nil after a success
}

// Client runs the lease life of one interface. SetCarrier may be called from any goroutine.
type Client struct {
	cfg   Config
	clock clock.Clock
	wake  chan struct{}

	mu       sync.Mutex
	carrier  bool
	interupt context.CancelFunc // cancels the exchange in flight
	status   Status
}

// New returns a client whose link has carrier.
func New(cfg Config) *Client {
	c := &Client{cfg: cfg, clock: cfg.Clock, wake: make(chan struct{}, 1), carrier: true}
	if c.clock == nil {
		c.clock = clock.Real{}
	}
	if c.cfg.Rand == nil {
		c.cfg.Rand = rand.Uint32
	}
	return c
}

// SetCarrier tells the client whether its link is connected. Losing carrier interrupts the
// exchange in flight and pauses the client, which keeps its lease until it expires; carrier's
// return makes it confirm the lease (INIT-REBOOT), as RFC 2131 3.7 asks of a client that may
// have moved.
func (c *Client) SetCarrier(up bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.carrier == up {
		return
	}
	c.carrier = up
	if !up && c.interupt != nil {
		c.interupt()
	}
	select {
	case c.wake <- struct{}{}:
	default:
	}
}

func (c *Client) hasCarrier() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.carrier
}

// Status returns the last reported status.
func (c *Client) Status() Status {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.status
}

// run is one Run's state.
type run struct {
	*Client
	state    string
	lease    *Lease
	offer    *dhcpv4.DHCPv4
	renewals int
	err      error
	timeout  time.Duration // the next retransmission wait while looking for a server
}

// Run runs the client until ctx is done, and returns ctx's error. It leaves the lease in place:
// a service that stops keeps the host's address, and the next one resumes it.
func (c *Client) Run(ctx context.Context) error {
	r := &run{Client: c, state: contract.DHCPInit, timeout: firstRetransmit}
	if l := c.cfg.Resume; l != nil && c.clock.Now().Before(l.Expires()) {
		r.lease, r.state = l, contract.DHCPInitReboot
	}
	for {
		if err := ctx.Err(); err != nil {
			return err
		}
		var err error
		if !c.hasCarrier() {
			err = r.linkDown(ctx)
		} else {
			switch r.state {
			case contract.DHCPInit:
				err = r.discover(ctx)
			case contract.DHCPRequesting:
				err = r.request(ctx)
			case contract.DHCPInitReboot:
				err = r.initReboot(ctx)
			case contract.DHCPBound:
				err = r.bound(ctx)
			case contract.DHCPRenewing, contract.DHCPRebinding:
				err = r.extend(ctx)
			default:
				return fmt.Errorf("dhcp4: unknown state %q", r.state)
			}
		}
		if err != nil {
			return err
		}
	}
}

func (r *run) report() {
	s := Status{State: r.state, Lease: r.lease, Renewals: r.renewals, Err: r.err}
	if !r.hasCarrier() {
		s.State = contract.DHCPLinkDown
	}
	r.mu.Lock()
	same := r.status.State == s.State && r.status.Lease == s.Lease && r.status.Renewals == s.Renewals && errText(r.status.Err) == errText(s.Err)
	r.status = s
	r.mu.Unlock()
	if !same && r.cfg.Report != nil {
		r.cfg.Report(s)
	}
}

// linkDown waits for the carrier, or for the lease to run out meanwhile.
func (r *run) linkDown(ctx context.Context) error {
	r.report()
	until := r.clock.Now().Add(24 * time.Hour)
	if r.lease != nil {
		until = r.lease.Expires()
	}
	if err := r.clock.Wait(ctx, until, r.wake); err != nil {
		return err
	}
	if r.lease != nil && !r.clock.Now().Before(r.lease.Expires()) {
		r.expire()
	}
	if r.hasCarrier() {
		r.state = contract.DHCPInit
		if r.lease != nil {
			r.state = contract.DHCPInitReboot
		}
	}
	return nil
}

// exchange runs one exchange that the link's loss interrupts: it fails with errLinkDown, a
// retryable error (no answer; a socket error, after waiting the timeout out so that a broken
// socket does not spin), or an error that ends Run (ctx's, the clock's).
func (r *run) exchange(ctx context.Context, req *dhcpv4.DHCPv4, src, dst netip.Addr, timeout time.Duration, match func(*dhcpv4.DHCPv4) bool) (*dhcpv4.DHCPv4, error) {
	xctx, cancel := context.WithCancel(ctx)
	defer cancel()
	r.mu.Lock()
	if !r.carrier {
		r.mu.Unlock()
		return nil, errLinkDown
	}
	r.interupt = cancel
	r.mu.Unlock()
	defer func() {
		r.mu.Lock()
		r.interupt = nil
		r.mu.Unlock()
	}()
	reply, err := r.cfg.Conn.Exchange(xctx, req, src, dst, timeout, match)
	switch {
	case err == nil:
		return reply, nil
	case ctx.Err() != nil:
		return nil, ctx.Err()
	case xctx.Err() != nil:
		return nil, errLinkDown
	case errors.Is(err, ErrNoResponse):
		return nil, retryable{err}
	}
	if werr := r.clock.Wait(xctx, r.clock.Now().Add(timeout), nil); werr != nil {
		if ctx.Err() == nil && xctx.Err() != nil {
			return nil, errLinkDown
		}
		return nil, werr
	}
	return nil, retryable{err}
}

// discover is INIT and SELECTING: DISCOVER, and the first OFFER.
func (r *run) discover(ctx context.Context) error {
	r.report()
	req := r.message(dhcpv4.MessageTypeDiscover)
	offer, err := r.exchange(ctx, req, ipv4Any, ipv4Broadcast, r.jitter(r.timeout), isType(dhcpv4.MessageTypeOffer))
	switch {
	case errors.Is(err, errLinkDown):
		return nil
	case isRetryable(err):
		r.err = err
		r.timeout = min(2*r.timeout, maxRetransmit)
		return nil
	case err != nil:
		return err
	}
	if offer.YourIPAddr.To4() == nil || offer.YourIPAddr.IsUnspecified() || offer.ServerIdentifier() == nil {
		r.err = fmt.Errorf("offer from %s without an address or server identifier", offer.ServerIPAddr)
		return nil
	}
	r.offer, r.state = offer, contract.DHCPRequesting
	return nil
}

// request is REQUESTING: REQUEST the offered address from the server that offered it.
func (r *run) request(ctx context.Context) error {
	r.report()
	server := r.offer.ServerIdentifier()
	timeout := firstRetransmit
	for range requestTries {
		req := r.message(dhcpv4.MessageTypeRequest,
			dhcpv4.WithOption(dhcpv4.OptRequestedIPAddress(r.offer.YourIPAddr)),
			dhcpv4.WithOption(dhcpv4.OptServerIdentifier(server)))
		sent := r.clock.Now()
		reply, err := r.exchange(ctx, req, ipv4Any, ipv4Broadcast, r.jitter(timeout),
			both(isType(dhcpv4.MessageTypeAck, dhcpv4.MessageTypeNak), fromServer(server)))
		switch {
		case errors.Is(err, errLinkDown):
			r.state = contract.DHCPInit
			return nil
		case isRetryable(err):
			r.err = err
			timeout *= 2
			continue
		case err != nil:
			return err
		}
		r.ack(reply, sent, nil)
		return nil
	}
	r.state = contract.DHCPInit
	return nil
}

// initReboot is INIT-REBOOT: ask any server to confirm the lease's address. Without an answer the
// lease is used on until its timers say otherwise (RFC 2131 3.2).
func (r *run) initReboot(ctx context.Context) error {
	r.report()
	timeout := firstRetransmit
	for range rebootTries {
		left := r.lease.Expires().Sub(r.clock.Now())
		if left <= 0 {
			break
		}
		req := r.message(dhcpv4.MessageTypeRequest,
			dhcpv4.WithOption(dhcpv4.OptRequestedIPAddress(r.lease.Address.Addr().AsSlice())))
		sent := r.clock.Now()
		reply, err := r.exchange(ctx, req, ipv4Any, ipv4Broadcast, min(r.jitter(timeout), left), isType(dhcpv4.MessageTypeAck, dhcpv4.MessageTypeNak))
		switch {
		case errors.Is(err, errLinkDown):
			return nil
		case isRetryable(err):
			r.err = err
			timeout *= 2
			continue
		case err != nil:
			return err
		}
		r.ack(reply, sent, r.lease)
		return nil
	}
	// Keep using it: make sure the host does (a resumed lease), and follow its timers.
	if r.state = r.timerState(); r.state == contract.DHCPInit {
		r.expire()
		return nil
	}
	if err := r.cfg.Bind(nil, r.lease); err != nil {
		r.err = errors.Join(r.err, fmt.Errorf("bind %s: %w", r.lease.Address, err))
	}
	return nil
}

// timerState is the state the lease's timers put it in now.
func (r *run) timerState() string {
	now := r.clock.Now()
	switch {
	case now.Before(r.lease.RenewAt()):
		return contract.DHCPBound
	case now.Before(r.lease.RebindAt()):
		return contract.DHCPRenewing
	case now.Before(r.lease.Expires()):
		return contract.DHCPRebinding
	}
	return contract.DHCPInit
}

// bound waits for T1.
func (r *run) bound(ctx context.Context) error {
	r.report()
	if err := r.clock.Wait(ctx, r.lease.RenewAt(), r.wake); err != nil {
		return err
	}
	if !r.clock.Now().Before(r.lease.RenewAt()) {
		r.state = r.timerState()
		if r.state == contract.DHCPInit {
			r.expire()
		}
	}
	return nil
}

// extend is RENEWING (a unicast REQUEST to the lease's server) and REBINDING (broadcast, to any
// server), each until its deadline: T2, and the lease's end.
func (r *run) extend(ctx context.Context) error {
	r.state = r.timerState()
	if r.state == contract.DHCPInit {
		r.expire()
		return nil
	}
	r.report()
	deadline, dst := r.lease.RebindAt(), r.lease.Server
	if r.state == contract.DHCPRebinding || !dst.IsValid() {
		deadline, dst = r.lease.Expires(), ipv4Broadcast
	}
	left := deadline.Sub(r.clock.Now())
	timeout := min(max(left/2, minRetransmit), left)
	addr := r.lease.Address.Addr()
	req := r.message(dhcpv4.MessageTypeRequest, dhcpv4.WithClientIP(addr.AsSlice()))
	sent := r.clock.Now()
	match := isType(dhcpv4.MessageTypeAck, dhcpv4.MessageTypeNak)
	if r.state == contract.DHCPRenewing {
		match = both(match, fromServer(r.lease.Server.AsSlice()))
	}
	reply, err := r.exchange(ctx, req, addr, dst, timeout, match)
	switch {
	case errors.Is(err, errLinkDown):
		return nil
	case isRetryable(err):
		r.err = fmt.Errorf("%s: %w", r.state, err)
		return nil
	case err != nil:
		return err
	}
	r.ack(reply, sent, r.lease)
	return nil
}

// ack takes a server's answer to a REQUEST: an ACK binds the lease it carries (replacing old), a
// NAK drops old and starts over.
func (r *run) ack(reply *dhcpv4.DHCPv4, sent time.Time, old *Lease) {
	if reply.MessageType() == dhcpv4.MessageTypeNak {
		r.err = fmt.Errorf("NAK from %s: %s", reply.ServerIdentifier(), reply.Message())
		if old != nil {
			r.unbind(old)
		}
		r.lease, r.state, r.timeout = nil, contract.DHCPInit, firstRetransmit
		return
	}
	l, err := FromACK(reply, sent)
	if err == nil {
		err = r.cfg.Bind(old, l)
		if err != nil {
			err = fmt.Errorf("bind %s: %w", l.Address, err)
		}
	}
	if err != nil {
		// The host could not take the lease: look for another after a while.
		r.err = err
		if old != nil {
			r.unbind(old)
		}
		r.lease, r.state = nil, contract.DHCPInit
		r.timeout = min(2*r.timeout, maxRetransmit)
		return
	}
	if old != nil && old.Address == l.Address {
		r.renewals++
	} else {
		r.renewals = 0
	}
	r.lease, r.state, r.err, r.timeout = l, contract.DHCPBound, nil, firstRetransmit
}

// expire drops a lease whose time is up.
func (r *run) expire() {
	r.err = fmt.Errorf("lease of %s expired", r.lease.Address)
	r.unbind(r.lease)
	r.lease, r.state, r.timeout = nil, contract.DHCPInit, firstRetransmit
	r.report()
}

func (r *run) unbind(l *Lease) {
	if err := r.cfg.Unbind(l); err != nil {
		r.err = errors.Join(r.err, fmt.Errorf("unbind %s: %w", l.Address, err))
	}
}

var (
	ipv4Any       = netip.IPv4Unspecified()
	ipv4Broadcast = netip.AddrFrom4([4]byte{255, 255, 255, 255})
)

// message builds a request with a fresh transaction ID and the options every one carries.
func (r *run) message(typ dhcpv4.MessageType, mods ...dhcpv4.Modifier) *dhcpv4.DHCPv4 {
	var xid dhcpv4.TransactionID
	binary.BigEndian.PutUint32(xid[:], r.cfg.Rand())
	m := &dhcpv4.DHCPv4{
		OpCode:        dhcpv4.OpcodeBootRequest,
		HWType:        iana.HWTypeEthernet,
		ClientHWAddr:  r.cfg.HWAddr,
		TransactionID: xid,
		ClientIPAddr:  net.IPv4zero,
		YourIPAddr:    net.IPv4zero,
		ServerIPAddr:  net.IPv4zero,
		GatewayIPAddr: net.IPv4zero,
		Options:       dhcpv4.Options{},
	}
	m.UpdateOption(dhcpv4.OptMessageType(typ))
	// RFC 2132 9.14: type 1 (Ethernet) and the hardware address, the usual client identifier.
	m.UpdateOption(dhcpv4.OptClientIdentifier(append([]byte{1}, r.cfg.HWAddr...)))
	m.UpdateOption(dhcpv4.OptParameterRequestList(requested...))
	m.UpdateOption(dhcpv4.OptMaxMessageSize(1500))
	for _, mod := range mods {
		mod(m)
	}
	return m
}

// jitter spreads retransmissions by up to a second either way (RFC 2131 4.1), so that clients
// that lost their server together do not come back in step.
func (r *run) jitter(d time.Duration) time.Duration {
	return d + time.Duration(int64(r.cfg.Rand()%2001)-1000)*time.Millisecond
}

func isType(types ...dhcpv4.MessageType) func(*dhcpv4.DHCPv4) bool {
	return func(m *dhcpv4.DHCPv4) bool {
		for _, t := range types {
			if m.MessageType() == t {
				return true
			}
		}
		return false
	}
}

func fromServer(id net.IP) func(*dhcpv4.DHCPv4) bool {
	return func(m *dhcpv4.DHCPv4) bool { return m.ServerIdentifier().Equal(id) }
}

func both(a, b func(*dhcpv4.DHCPv4) bool) func(*dhcpv4.DHCPv4) bool {
	return func(m *dhcpv4.DHCPv4) bool { return a(m) && b(m) }
}

func errText(err error) string {
	if err == nil {
		return ""
	}
	return err.Error()
}
