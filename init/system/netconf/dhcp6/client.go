// Package dhcp6 is the network service's DHCPv6 client for non-temporary addresses (IA_NA),
// RFC 8415: Solicit → Advertise → Request → Reply, Renew at T1 to the lease's server, Rebind at T2
// to any, the addresses dropped when their valid lifetimes end. A lease it already has (after a
// restart of the service, or the link's return) is confirmed with a Rebind, which any server can
// answer, rather than started over. Router advertisements and SLAAC are the kernel's; this client
// runs only where settings ask for DHCPv6.
//
// As in package dhcp4, messages are built here with transaction IDs from math/rand/v2, not from
// the kernel's CRNG, which the library's constructors would wait for.
package dhcp6

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"sync"
	"time"

	"github.com/insomniacslk/dhcp/dhcpv6"
	"github.com/insomniacslk/dhcp/iana"

	"github.com/ballast-os/ballast/contract"
	"github.com/ballast-os/ballast/init/system/netconf/clock"
)

// ErrNoResponse is a Conn's answer when no matching reply came in time.
var ErrNoResponse = errors.New("no answer from a DHCPv6 server")

var errLinkDown = errors.New("link down")

// Conn carries one exchange at a time on one interface, to All_DHCP_Relay_Agents_and_Servers.
type Conn interface {
	// Exchange sends req and returns the first reply with its transaction ID that match accepts,
	// or ErrNoResponse after timeout.
	Exchange(ctx context.Context, req *dhcpv6.Message, timeout time.Duration, match func(*dhcpv6.Message) bool) (*dhcpv6.Message, error)
}

// Retransmission (RFC 8415 7.6, simplified): 1 s doubling to 120 s while soliciting, and in
// RENEWING and REBINDING half the time left, at least minRetransmit.
const (
	firstRetransmit = time.Second
	maxRetransmit   = 120 * time.Second
	minRetransmit   = 4 * time.Second
	requestTries    = 3
	rebootTries     = 2
)

// Config is what a Client needs.
type Config struct {
	HWAddr net.HardwareAddr
	Conn   Conn
	Clock  clock.Clock // nil: the real one
	// Rand draws transaction IDs; nil is math/rand/v2.
	Rand   func() uint32
	Resume *Lease
	// Bind and Unbind are as in package dhcp4: the host's side of a lease.
	Bind   func(old, new *Lease) error
	Unbind func(l *Lease) error
	Report func(Status)
}

// Status is where a client is.
type Status struct {
	State    string
	Lease    *Lease
	Renewals int
	Err      error
}

// Client runs the DHCPv6 lease life of one interface.
type Client struct {
	cfg   Config
	clock clock.Clock
	wake  chan struct{}
	duid  dhcpv6.DUID
	iaid  [4]byte

	mu       sync.Mutex
	carrier  bool
	interupt context.CancelFunc
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
	// DUID-LL (RFC 8415 11.4): stable for the interface, with no clock in it, which a host
	// whose clock is not set yet could not give.
	c.duid = &dhcpv6.DUIDLL{HWType: iana.HWTypeEthernet, LinkLayerAddr: cfg.HWAddr}
	if n := len(cfg.HWAddr); n >= 4 {
		copy(c.iaid[:], cfg.HWAddr[n-4:])
	}
	return c
}

// SetCarrier is as in package dhcp4: losing carrier pauses the client, its return confirms the
// lease.
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

type run struct {
	*Client
	state    string
	lease    *Lease
	adv      *dhcpv6.Message
	renewals int
	err      error
	timeout  time.Duration
}

// Run runs the client until ctx is done; the lease stays on the host.
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
				err = r.solicit(ctx)
			case contract.DHCPRequesting:
				err = r.request(ctx)
			case contract.DHCPInitReboot:
				err = r.confirm(ctx)
			case contract.DHCPBound:
				err = r.bound(ctx)
			case contract.DHCPRenewing, contract.DHCPRebinding:
				err = r.extend(ctx)
			default:
				return fmt.Errorf("dhcp6: unknown state %q", r.state)
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

// retryable is as in package dhcp4.
type retryable struct{ err error }

func (e retryable) Error() string { return e.err.Error() }
func (e retryable) Unwrap() error { return e.err }

func isRetryable(err error) bool {
	var r retryable
	return errors.As(err, &r)
}

func (r *run) exchange(ctx context.Context, req *dhcpv6.Message, timeout time.Duration, match func(*dhcpv6.Message) bool) (*dhcpv6.Message, error) {
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
	reply, err := r.cfg.Conn.Exchange(xctx, req, timeout, func(m *dhcpv6.Message) bool {
		// Replies carry the client's DUID back (RFC 8415 16.10).
		cid := m.Options.ClientID()
		return cid != nil && cid.Equal(r.duid) && match(m)
	})
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
	// A socket error (the link-local address may still be tentative): wait the timeout out.
	if werr := r.clock.Wait(xctx, r.clock.Now().Add(timeout), nil); werr != nil {
		if ctx.Err() == nil && xctx.Err() != nil {
			return nil, errLinkDown
		}
		return nil, werr
	}
	return nil, retryable{err}
}

func (r *run) solicit(ctx context.Context) error {
	r.report()
	req := r.message(dhcpv6.MessageTypeSolicit, dhcpv6.WithIAID(r.iaid))
	adv, err := r.exchange(ctx, req, r.timeout, isType(dhcpv6.MessageTypeAdvertise))
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
	if _, err := FromReply(adv, r.clock.Now()); err != nil {
		r.err = err
		r.timeout = min(2*r.timeout, maxRetransmit)
		return nil
	}
	r.adv, r.state = adv, contract.DHCPRequesting
	return nil
}

func (r *run) request(ctx context.Context) error {
	r.report()
	timeout := firstRetransmit
	for range requestTries {
		req := r.message(dhcpv6.MessageTypeRequest,
			dhcpv6.WithOption(r.adv.GetOneOption(dhcpv6.OptionServerID)),
			dhcpv6.WithOption(r.adv.Options.OneIANA()))
		sent := r.clock.Now()
		reply, err := r.exchange(ctx, req, timeout, isType(dhcpv6.MessageTypeReply))
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
		r.take(reply, sent, nil)
		return nil
	}
	r.state = contract.DHCPInit
	return nil
}

// confirm asks any server to extend a lease the host already has (a Rebind); without an answer
// the lease is used on by its timers.
func (r *run) confirm(ctx context.Context) error {
	r.report()
	timeout := firstRetransmit
	for range rebootTries {
		left := r.lease.Expires().Sub(r.clock.Now())
		if left <= 0 {
			break
		}
		sent := r.clock.Now()
		reply, err := r.exchange(ctx, r.extendMessage(dhcpv6.MessageTypeRebind), min(timeout, left), isType(dhcpv6.MessageTypeReply))
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
		r.take(reply, sent, r.lease)
		return nil
	}
	if r.state = r.timerState(); r.state == contract.DHCPInit {
		r.expire()
		return nil
	}
	if err := r.cfg.Bind(nil, r.lease); err != nil {
		r.err = errors.Join(r.err, fmt.Errorf("bind: %w", err))
	}
	return nil
}

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

func (r *run) bound(ctx context.Context) error {
	r.report()
	if err := r.clock.Wait(ctx, r.lease.RenewAt(), r.wake); err != nil {
		return err
	}
	if !r.clock.Now().Before(r.lease.RenewAt()) {
		if r.state = r.timerState(); r.state == contract.DHCPInit {
			r.expire()
		}
	}
	return nil
}

func (r *run) extend(ctx context.Context) error {
	if r.state = r.timerState(); r.state == contract.DHCPInit {
		r.expire()
		return nil
	}
	r.report()
	deadline, typ := r.lease.RebindAt(), dhcpv6.MessageTypeRenew
	if r.state == contract.DHCPRebinding {
		deadline, typ = r.lease.Expires(), dhcpv6.MessageTypeRebind
	}
	left := deadline.Sub(r.clock.Now())
	timeout := min(max(left/2, minRetransmit), left)
	sent := r.clock.Now()
	reply, err := r.exchange(ctx, r.extendMessage(typ), timeout, isType(dhcpv6.MessageTypeReply))
	switch {
	case errors.Is(err, errLinkDown):
		return nil
	case isRetryable(err):
		r.err = fmt.Errorf("%s: %w", r.state, err)
		return nil
	case err != nil:
		return err
	}
	r.take(reply, sent, r.lease)
	return nil
}

// extendMessage is a Renew (to the lease's server) or a Rebind (to any) for the lease's addresses.
func (r *run) extendMessage(typ dhcpv6.MessageType) *dhcpv6.Message {
	var addrs []dhcpv6.OptIAAddress
	for _, a := range r.lease.Addresses {
		addrs = append(addrs, dhcpv6.OptIAAddress{IPv6Addr: a.Addr.AsSlice()})
	}
	mods := []dhcpv6.Modifier{dhcpv6.WithIAID(r.iaid), dhcpv6.WithIANA(addrs...)}
	if typ == dhcpv6.MessageTypeRenew {
		if sid, err := dhcpv6.DUIDFromBytes(r.lease.ServerID); err == nil {
			mods = append(mods, dhcpv6.WithServerID(sid))
		}
	}
	return r.message(typ, mods...)
}

// take binds the lease a Reply carries (replacing old), or, when the Reply refuses, drops old
// and starts over.
func (r *run) take(reply *dhcpv6.Message, sent time.Time, old *Lease) {
	l, err := FromReply(reply, sent)
	if err == nil {
		if err = r.cfg.Bind(old, l); err != nil {
			err = fmt.Errorf("bind: %w", err)
		}
	}
	if err != nil {
		r.err = err
		if old != nil {
			r.unbind(old)
		}
		r.lease, r.state = nil, contract.DHCPInit
		r.timeout = min(2*r.timeout, maxRetransmit)
		return
	}
	if old != nil && sameAddresses(old, l) {
		r.renewals++
	} else {
		r.renewals = 0
	}
	r.lease, r.state, r.err, r.timeout = l, contract.DHCPBound, nil, firstRetransmit
}

func sameAddresses(a, b *Lease) bool {
	if len(a.Addresses) != len(b.Addresses) {
		return false
	}
	for i := range a.Addresses {
		if a.Addresses[i].Addr != b.Addresses[i].Addr {
			return false
		}
	}
	return true
}

func (r *run) expire() {
	r.err = errors.New("lease expired")
	r.unbind(r.lease)
	r.lease, r.state, r.timeout = nil, contract.DHCPInit, firstRetransmit
	r.report()
}

func (r *run) unbind(l *Lease) {
	if err := r.cfg.Unbind(l); err != nil {
		r.err = errors.Join(r.err, fmt.Errorf("unbind: %w", err))
	}
}

// message builds a client message with a fresh transaction ID, the client's DUID, the elapsed
// time and the options it asks for.
func (r *run) message(typ dhcpv6.MessageType, mods ...dhcpv6.Modifier) *dhcpv6.Message {
	x := r.cfg.Rand()
	m := &dhcpv6.Message{MessageType: typ, TransactionID: dhcpv6.TransactionID{byte(x >> 16), byte(x >> 8), byte(x)}}
	m.AddOption(dhcpv6.OptClientID(r.duid))
	m.AddOption(dhcpv6.OptElapsedTime(0))
	m.AddOption(dhcpv6.OptRequestedOption(dhcpv6.OptionDNSRecursiveNameServer, dhcpv6.OptionDomainSearchList))
	for _, mod := range mods {
		mod(m)
	}
	return m
}

func isType(t dhcpv6.MessageType) func(*dhcpv6.Message) bool {
	return func(m *dhcpv6.Message) bool { return m.MessageType == t }
}

func errText(err error) string {
	if err == nil {
		return ""
	}
	return err.Error()
}
