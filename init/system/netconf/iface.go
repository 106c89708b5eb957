package netconf

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/ballast-os/ballast/contract"
	"github.com/ballast-os/ballast/init/system/netconf/dhcp4"
	"github.com/ballast-os/ballast/init/system/netconf/dhcp6"
	"github.com/ballast-os/ballast/init/system/netconf/link"
)

// dhcpMetricBase is the metric of a lease's routes, plus the interface's index: above a static
// route's (0 unless set), and different per interface, so that two interfaces' default routes
// stand side by side, the first interface's preferred.
const dhcpMetricBase = 1024

// iface is one interface the service manages. The manager's goroutine owns it; the DHCP clients'
// goroutines touch only what mu guards.
type iface struct {
	m     *Manager
	link  link.Link
	cfg   contract.NetworkInterface
	label string

	// What the service put there from settings, to take away when settings change.
	staticAddrs  []netip.Prefix
	staticRoutes []link.Route

	v4, v6 *runner

	mu      sync.Mutex
	st4     *dhcp4.Status
	st6     *dhcp6.Status
	errs    map[string]string // by what failed: "static", "dhcp4", "dhcp6"
	dhcpMTU int
}

// runner is a DHCP client's goroutine.
type runner struct {
	setCarrier func(bool)
	cancel     context.CancelFunc
	done       chan struct{}
}

func (r *runner) stop() {
	r.cancel()
	<-r.done
}

// dev is the interface as it is now, for the DHCP clients' goroutines; the manager changes
// i.link and i.cfg only with mu held.
func (i *iface) dev() link.Link {
	i.mu.Lock()
	defer i.mu.Unlock()
	return i.link
}

func (i *iface) setLink(l link.Link) {
	i.mu.Lock()
	defer i.mu.Unlock()
	i.link = l
}

func (i *iface) setErr(what string, err error) {
	i.mu.Lock()
	defer i.mu.Unlock()
	if err == nil {
		delete(i.errs, what)
		return
	}
	i.errs[what] = err.Error()
}

func (i *iface) errText() string {
	i.mu.Lock()
	defer i.mu.Unlock()
	var out []string
	for _, k := range []string{"static", "dhcp4", "dhcp6", "lease"} {
		if e, ok := i.errs[k]; ok {
			out = append(out, k+": "+e)
		}
	}
	return strings.Join(out, "; ")
}

// apply makes the interface match cfg: router advertisements, MTU, up, static addresses and
// routes, and the DHCP clients it asks for. It is idempotent, so a restarted service applies the
// same settings again without disturbing what is there.
func (i *iface) apply(ctx context.Context, cfg contract.NetworkInterface, label string) {
	changed := i.label != label || !equalConfig(i.cfg, cfg)
	i.mu.Lock()
	i.cfg, i.label = cfg, label
	i.mu.Unlock()
	var errs []error
	if err := link.AcceptRA(i.m.opts.ProcSys, i.link); err != nil {
		errs = append(errs, err)
	}
	if cfg.MTU > 0 && i.link.MTU != cfg.MTU {
		if err := link.SetMTU(i.link, cfg.MTU); err != nil {
			errs = append(errs, err)
		} else {
			l := i.link
			l.MTU = cfg.MTU
			i.setLink(l)
		}
	}
	if !i.link.Up {
		if err := link.SetUp(i.link); err != nil {
			errs = append(errs, err)
		}
	}
	errs = append(errs, i.applyStatic(cfg)...)
	i.setErr("static", errors.Join(errs...))
	for _, err := range errs {
		i.m.console.Errorf("network %s: %v", i.link.Name, err)
	}

	if cfg.DHCP4 && i.v4 == nil {
		i.v4 = i.start4(ctx)
	} else if !cfg.DHCP4 && i.v4 != nil {
		i.v4.stop()
		i.v4 = nil
		i.drop4()
	}
	if cfg.DHCP6 && i.v6 == nil {
		i.v6 = i.start6(ctx)
	} else if !cfg.DHCP6 && i.v6 != nil {
		i.v6.stop()
		i.v6 = nil
		i.drop6()
	}
	if changed {
		i.m.console.Milestone("network", "%s configured (%s)%s", i.link.Name, label, i.describe())
	}
}

func equalConfig(a, b contract.NetworkInterface) bool {
	ja, _ := jsonOf(a)
	jb, _ := jsonOf(b)
	return string(ja) == string(jb)
}

// describe is the configuration's short form for the console.
func (i *iface) describe() string {
	var parts []string
	if i.cfg.DHCP4 {
		parts = append(parts, "dhcp4")
	}
	if i.cfg.DHCP6 {
		parts = append(parts, "dhcp6")
	}
	parts = append(parts, i.cfg.Addresses...)
	if i.cfg.Gateway != "" {
		parts = append(parts, "gateway "+i.cfg.Gateway)
	}
	for _, r := range i.cfg.Routes {
		s := "route " + r.To
		if r.Via != "" {
			s += " via " + r.Via
		}
		parts = append(parts, s)
	}
	if i.cfg.MTU > 0 {
		parts = append(parts, fmt.Sprintf("mtu %d", i.cfg.MTU))
	}
	if len(parts) == 0 {
		return ": nothing"
	}
	return ": " + strings.Join(parts, ", ")
}

// applyStatic sets the static addresses and routes, removing the ones it set before that the
// configuration no longer has.
func (i *iface) applyStatic(cfg contract.NetworkInterface) []error {
	var errs []error
	var addrs []netip.Prefix
	for _, a := range cfg.Addresses {
		if p, err := netip.ParsePrefix(a); err == nil {
			addrs = append(addrs, p)
		}
	}
	routes := staticRoutes(cfg, i.link.Index)
	for _, r := range i.staticRoutes {
		if !slices.Contains(routes, r) {
			if err := link.RemoveRoute(r); err != nil {
				errs = append(errs, err)
			}
		}
	}
	for _, a := range i.staticAddrs {
		if !slices.Contains(addrs, a) {
			if err := link.RemoveAddress(i.link, a); err != nil {
				errs = append(errs, err)
			}
		}
	}
	for _, a := range addrs {
		if err := link.ReplaceAddress(i.link, link.Address{Prefix: a}); err != nil {
			errs = append(errs, err)
		}
	}
	i.staticAddrs = addrs
	for _, r := range routes {
		if err := link.EnsureRoute(r); err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", i.link.Name, err))
		}
	}
	i.staticRoutes = routes
	return errs
}

// staticRoutes are an entry's routes: its gateway as a default route, and its routes.
func staticRoutes(cfg contract.NetworkInterface, index int) []link.Route {
	var out []link.Route
	if gw, err := netip.ParseAddr(cfg.Gateway); err == nil {
		out = append(out, link.Route{To: defaultOf(gw), Via: gw, Index: index, Protocol: link.ProtoStatic})
	}
	for _, r := range cfg.Routes {
		to, err := routeTo(r.To)
		if err != nil {
			continue
		}
		rt := link.Route{To: to, Index: index, Protocol: link.ProtoStatic}
		if via, err := netip.ParseAddr(r.Via); err == nil {
			rt.Via = via
			if r.To == "default" {
				rt.To = defaultOf(via)
			}
		}
		if r.Metric != nil {
			rt.Metric = int(*r.Metric)
		}
		out = append(out, rt)
	}
	return out
}

func defaultOf(a netip.Addr) netip.Prefix {
	if a.Is4() {
		return netip.PrefixFrom(netip.IPv4Unspecified(), 0)
	}
	return netip.PrefixFrom(netip.IPv6Unspecified(), 0)
}

// stopAll stops the DHCP clients, leaving their leases on the host for the next service to resume.
func (i *iface) stopAll() {
	for _, r := range []*runner{i.v4, i.v6} {
		if r != nil {
			r.stop()
		}
	}
	i.v4, i.v6 = nil, nil
}

// setCarrier passes the link's carrier on to the clients.
func (i *iface) setCarrier(up bool) {
	for _, r := range []*runner{i.v4, i.v6} {
		if r != nil {
			r.setCarrier(up)
		}
	}
}

func (i *iface) leaseFile(family string) string {
	return filepath.Join(i.m.opts.StateDir, "leases", i.dev().Name+"."+family)
}

// start4 starts the DHCPv4 client, resuming the stored lease when there is one.
func (i *iface) start4(ctx context.Context) *runner {
	var resume *dhcp4.Lease
	if b, err := os.ReadFile(i.leaseFile("dhcp4")); err == nil {
		if l, err := dhcp4.Unmarshal(b, i.link.MAC); err == nil {
			resume = l
		} else {
			i.m.log.Warn("stored lease not resumed", "interface", i.link.Name, "err", err)
		}
	}
	name := i.link.Name
	conn := i.m.opts.NewConn4
	if conn == nil {
		conn = func(l link.Link) dhcp4.Conn {
			return &dhcp4.RawConn{Interface: &net.Interface{Index: l.Index, Name: l.Name, HardwareAddr: l.MAC}}
		}
	}
	c := dhcp4.New(dhcp4.Config{
		HWAddr: i.link.MAC, Conn: conn(i.link), Clock: i.m.opts.Clock, Resume: resume,
		Bind: i.bind4, Unbind: i.unbind4,
		Report: func(s dhcp4.Status) {
			i.mu.Lock()
			i.st4 = &s
			i.mu.Unlock()
			i.setErr("dhcp4", s.Err)
			i.m.log.Info("dhcp4", "interface", name, "state", s.State, "err", s.Err)
			i.m.dirty()
		},
	})
	c.SetCarrier(i.link.Carrier)
	return i.run(ctx, name, c.Run, c.SetCarrier)
}

func (i *iface) start6(ctx context.Context) *runner {
	var resume *dhcp6.Lease
	if b, err := os.ReadFile(i.leaseFile("dhcp6")); err == nil {
		if l, err := dhcp6.Unmarshal(b, i.link.MAC); err == nil {
			resume = l
		}
	}
	name := i.link.Name
	conn := i.m.opts.NewConn6
	if conn == nil {
		conn = func(l link.Link) dhcp6.Conn { return &dhcp6.UDPConn{Interface: l.Name} }
	}
	c := dhcp6.New(dhcp6.Config{
		HWAddr: i.link.MAC, Conn: conn(i.link), Clock: i.m.opts.Clock, Resume: resume,
		Bind: i.bind6, Unbind: i.unbind6,
		Report: func(s dhcp6.Status) {
			i.mu.Lock()
			i.st6 = &s
			i.mu.Unlock()
			i.setErr("dhcp6", s.Err)
			i.m.log.Info("dhcp6", "interface", name, "state", s.State, "err", s.Err)
			i.m.dirty()
		},
	})
	c.SetCarrier(i.link.Carrier)
	return i.run(ctx, name, c.Run, c.SetCarrier)
}

func (i *iface) run(ctx context.Context, name string, run func(context.Context) error, setCarrier func(bool)) *runner {
	ctx, cancel := context.WithCancel(ctx)
	r := &runner{setCarrier: setCarrier, cancel: cancel, done: make(chan struct{})}
	go func() {
		defer close(r.done)
		if err := run(ctx); err != nil && ctx.Err() == nil {
			i.m.console.Errorf("network %s: DHCP client: %v", name, err)
		}
	}()
	return r
}

// routes4 are the routes a DHCPv4 lease installs.
func (i *iface) routes4(l *dhcp4.Lease) []link.Route {
	var out []link.Route
	index := i.dev().Index
	metric := dhcpMetricBase + index
	for _, g := range l.Gateways() {
		// A router outside the leased subnet (a /32 lease, as some clouds give) is reached on
		// the link.
		if g.Via.IsValid() && !l.Address.Masked().Contains(g.Via) {
			onLink := link.Route{To: netip.PrefixFrom(g.Via, 32), Index: index, Metric: metric, Protocol: link.ProtoDHCP}
			if !slices.Contains(out, onLink) {
				out = append(out, onLink)
			}
		}
		out = append(out, link.Route{To: g.To, Via: g.Via, Index: index, Metric: metric, Protocol: link.ProtoDHCP})
	}
	return out
}

// bind4 puts a DHCPv4 lease on the interface: its address, with the lease's lifetime so the
// kernel drops it should the service not be there to; its routes; its MTU unless settings set
// one. Then it stores the lease for a restarted service.
func (i *iface) bind4(old, l *dhcp4.Lease) error {
	d := i.dev()
	left := time.Until(l.Expires())
	if c := i.m.opts.Clock; c != nil {
		left = l.Expires().Sub(c.Now())
	}
	if err := link.ReplaceAddress(d, link.Address{Prefix: l.Address, Valid: left, Preferred: left}); err != nil {
		return err
	}
	var errs []error
	if old != nil && old.Address != l.Address {
		errs = append(errs, link.RemoveAddress(d, old.Address))
	}
	routes := i.routes4(l)
	if old != nil {
		for _, r := range i.routes4(old) {
			if !slices.Contains(routes, r) {
				errs = append(errs, link.RemoveRoute(r))
			}
		}
	}
	for _, r := range routes {
		if err := link.EnsureRoute(r); err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", d.Name, err))
		}
	}
	if l.MTU > 0 && i.staticMTU() == 0 && l.MTU != d.MTU {
		errs = append(errs, link.SetMTU(d, l.MTU))
	}
	if b, err := l.Marshal(d.MAC); err == nil {
		errs = append(errs, writeFile(i.leaseFile("dhcp4"), b))
	}
	switch {
	case old == nil || old.Address != l.Address:
		i.m.console.Milestone("network", "%s dhcp4 %s from %s, lease %s%s", d.Name, l.Address, l.Server, l.Duration, routers(l))
	default:
		i.m.console.Milestone("network", "%s dhcp4 renewed %s, lease %s, until %s", d.Name, l.Address, l.Duration, l.Expires().UTC().Format(time.TimeOnly))
	}
	i.leaseTrouble(errors.Join(errs...))
	return nil
}

// leaseTrouble reports what went wrong around a lease whose address the host took: a route, the
// MTU, the lease file. It does not make the client give the lease up; the address is what counts.
func (i *iface) leaseTrouble(err error) {
	i.setErr("lease", err)
	if err != nil {
		i.m.console.Errorf("network %s: %v", i.dev().Name, err)
	}
}

func routers(l *dhcp4.Lease) string {
	var vias []string
	for _, g := range l.Gateways() {
		if g.Via.IsValid() {
			vias = append(vias, g.Via.String())
		}
	}
	if len(vias) == 0 {
		return ""
	}
	return ", router " + strings.Join(vias, " ")
}

// staticMTU is the MTU settings give the interface, 0 for none.
func (i *iface) staticMTU() int {
	i.mu.Lock()
	defer i.mu.Unlock()
	return i.cfg.MTU
}

// unbind4 takes a lease off the interface.
func (i *iface) unbind4(l *dhcp4.Lease) error {
	d := i.dev()
	var errs []error
	for _, r := range i.routes4(l) {
		errs = append(errs, link.RemoveRoute(r))
	}
	errs = append(errs, link.RemoveAddress(d, l.Address))
	if err := os.Remove(i.leaseFile("dhcp4")); err != nil && !errors.Is(err, os.ErrNotExist) {
		errs = append(errs, err)
	}
	i.m.console.Milestone("network", "%s dhcp4 lease of %s ended: address removed", d.Name, l.Address)
	return errors.Join(errs...)
}

// drop4 takes the current DHCPv4 lease off when DHCPv4 is turned off.
func (i *iface) drop4() {
	i.mu.Lock()
	st := i.st4
	i.st4 = nil
	delete(i.errs, "dhcp4")
	i.mu.Unlock()
	if st != nil && st.Lease != nil {
		if err := i.unbind4(st.Lease); err != nil {
			i.m.console.Errorf("network %s: %v", i.link.Name, err)
		}
	}
	os.Remove(i.leaseFile("dhcp4"))
}

func v6Prefix(a dhcp6.Address) netip.Prefix { return netip.PrefixFrom(a.Addr, 128) }

func (i *iface) bind6(old, l *dhcp6.Lease) error {
	d := i.dev()
	for _, a := range l.Addresses {
		if err := link.ReplaceAddress(d, link.Address{Prefix: v6Prefix(a), Valid: a.Valid, Preferred: a.Preferred}); err != nil {
			return err
		}
	}
	var errs []error
	if old != nil {
		for _, a := range old.Addresses {
			if !slices.ContainsFunc(l.Addresses, func(b dhcp6.Address) bool { return b.Addr == a.Addr }) {
				errs = append(errs, link.RemoveAddress(d, v6Prefix(a)))
			}
		}
	}
	if b, err := l.Marshal(d.MAC); err == nil {
		errs = append(errs, writeFile(i.leaseFile("dhcp6"), b))
	}
	var addrs []string
	for _, a := range l.Addresses {
		addrs = append(addrs, a.Addr.String())
	}
	verb := "dhcp6"
	if old != nil {
		verb = "dhcp6 renewed"
	}
	i.m.console.Milestone("network", "%s %s %s, valid %s", d.Name, verb, strings.Join(addrs, " "), l.Expires().Sub(l.Acquired))
	i.leaseTrouble(errors.Join(errs...))
	return nil
}

func (i *iface) unbind6(l *dhcp6.Lease) error {
	d := i.dev()
	var errs []error
	for _, a := range l.Addresses {
		errs = append(errs, link.RemoveAddress(d, v6Prefix(a)))
	}
	if err := os.Remove(i.leaseFile("dhcp6")); err != nil && !errors.Is(err, os.ErrNotExist) {
		errs = append(errs, err)
	}
	i.m.console.Milestone("network", "%s dhcp6 lease ended: addresses removed", d.Name)
	return errors.Join(errs...)
}

func (i *iface) drop6() {
	i.mu.Lock()
	st := i.st6
	i.st6 = nil
	delete(i.errs, "dhcp6")
	i.mu.Unlock()
	if st != nil && st.Lease != nil {
		if err := i.unbind6(st.Lease); err != nil {
			i.m.console.Errorf("network %s: %v", i.link.Name, err)
		}
	}
	os.Remove(i.leaseFile("dhcp6"))
}
