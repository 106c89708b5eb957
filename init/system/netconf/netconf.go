// Package netconf is the network service: a long-running manager that keeps the host's network
// as settings say. Per interface (matched by MAC or name, Ethernet ones by default) it applies
// static addresses, routes and the MTU, takes router advertisements (the kernel does SLAAC), and
// runs DHCPv4 (by default) and DHCPv6 (when asked) clients for the whole life of their leases. It
// writes /etc/resolv.conf (settings.dns, else DHCP) and names the host (settings, else DHCP,
// else cloud metadata, else the default). It follows link changes (carrier loss and return)
// through netlink, its configuration file (contract.NetworkConfigPath) by polling it, and
// reports what is in effect to contract.NetworkStatePath, which the apiserver serves as
// GET /network.
//
// Stopping leaves the host as it is: addresses stay, and the next instance resumes the leases
// stored under the state directory, so a restart (the apiserver asks for one when settings
// change) does not drop connectivity.
package netconf

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"

	"github.com/ballast-os/ballast/contract"
	"github.com/ballast-os/ballast/init/console"
	"github.com/ballast-os/ballast/init/system/netconf/clock"
	"github.com/ballast-os/ballast/init/system/netconf/dhcp4"
	"github.com/ballast-os/ballast/init/system/netconf/dhcp6"
	"github.com/ballast-os/ballast/init/system/netconf/link"
)

// Options configure the service. Paths are the host's in production and temporary ones in tests.
type Options struct {
	ConfigPath string // contract.NetworkConfigPath
	// StateDir holds state.json (contract.NetworkStatePath's name) and leases/.
	StateDir         string
	ResolvConf       string // /etc/resolv.conf; "" writes none
	HostnameFile     string // /etc/hostname; "" writes none
	MetadataHostname string // contract.MetadataHostnamePath
	ProcSys          string // /proc/sys
	DefaultHostname  string // the system init's name for the host
	// SetHostname and GetHostname reach the kernel's host name; a nil SetHostname leaves it.
	SetHostname func(string) error
	GetHostname func() (string, error)
	// ConfigPoll is how often the configuration file is looked at [2 s].
	ConfigPoll time.Duration
	Console    *console.Writer
	Log        *slog.Logger
	// Clock, NewConn4 and NewConn6 default to the real ones.
	Clock    clock.Clock
	NewConn4 func(link.Link) dhcp4.Conn
	NewConn6 func(link.Link) dhcp6.Conn
}

// Manager is the running service.
type Manager struct {
	opts    Options
	console *console.Writer
	log     *slog.Logger
	changed chan struct{}
	reload  chan struct{}

	cfg      contract.NetworkConfig
	cfgBytes []byte
	cfgErr   string
	ifaces   map[int]*iface
	prev     contract.NetworkState // what the previous instance reported, to take over from
	// hostnameSet is the name this service last gave the kernel.
	hostnameSet string
	resolv      string // what it last wrote to resolv.conf
	metadata    string // MetadataHostname as last read
}

// New returns a service that has not started.
func New(opts Options) *Manager {
	if opts.ConfigPoll <= 0 {
		opts.ConfigPoll = 2 * time.Second
	}
	if opts.GetHostname == nil {
		opts.GetHostname = os.Hostname
	}
	if opts.Console == nil {
		opts.Console = console.Default
	}
	if opts.Log == nil {
		opts.Log = slog.New(slog.DiscardHandler)
	}
	return &Manager{opts: opts, console: opts.Console, log: opts.Log,
		changed: make(chan struct{}, 1), reload: make(chan struct{}, 1), ifaces: map[int]*iface{}}
}

// Reload makes the service read its configuration file now (SIGHUP).
func (m *Manager) Reload() {
	select {
	case m.reload <- struct{}{}:
	default:
	}
}

// dirty asks for the state, resolv.conf and the host name to be brought up to date.
func (m *Manager) dirty() {
	select {
	case m.changed <- struct{}{}:
	default:
	}
}

// flushDelay gathers the bursts of netlink notifications that one change makes.
const flushDelay = 100 * time.Millisecond

// Run runs the service until ctx is done. It returns an error only when it cannot watch the
// kernel's links; the system init then starts it again.
func (m *Manager) Run(ctx context.Context) error {
	if err := os.MkdirAll(filepath.Join(m.opts.StateDir, "leases"), 0o755); err != nil {
		return fmt.Errorf("state directory: %w", err)
	}
	m.loadConfig()
	m.takeOver()
	if lo, err := netlink.LinkByName("lo"); err == nil {
		if err := netlink.LinkSetUp(lo); err != nil {
			m.console.Errorf("network lo: up: %v", err)
		}
	}
	done := make(chan struct{})
	defer close(done)
	subErr := func(err error) { m.log.Error("netlink subscription", "err", err) }
	links := make(chan netlink.LinkUpdate, 64)
	if err := netlink.LinkSubscribeWithOptions(links, done, netlink.LinkSubscribeOptions{ListExisting: true, ErrorCallback: subErr}); err != nil {
		return fmt.Errorf("watch links: %w", err)
	}
	addrs := make(chan netlink.AddrUpdate, 64)
	if err := netlink.AddrSubscribeWithOptions(addrs, done, netlink.AddrSubscribeOptions{ErrorCallback: subErr}); err != nil {
		return fmt.Errorf("watch addresses: %w", err)
	}
	routes := make(chan netlink.RouteUpdate, 64)
	if err := netlink.RouteSubscribeWithOptions(routes, done, netlink.RouteSubscribeOptions{ErrorCallback: subErr}); err != nil {
		return fmt.Errorf("watch routes: %w", err)
	}
	poll := time.NewTicker(m.opts.ConfigPoll)
	defer poll.Stop()
	var flush <-chan time.Time
	m.dirty()
	for {
		select {
		case u, ok := <-links:
			if !ok {
				m.stop()
				return errors.New("the kernel's link notifications stopped")
			}
			m.onLink(ctx, u)
		case _, ok := <-addrs:
			if ok {
				m.dirty()
			}
		case _, ok := <-routes:
			if ok {
				m.dirty()
			}
		case <-poll.C:
			if m.loadConfig() {
				m.reconfigure(ctx)
			}
			// The apiserver writes the metadata host name once the metadata service answers.
			if m.metadataChanged() {
				m.dirty()
			}
		case <-m.reload:
			if m.loadConfig() {
				m.reconfigure(ctx)
			}
		case <-m.changed:
			if flush == nil {
				flush = time.After(flushDelay)
			}
		case <-flush:
			flush = nil
			m.flush()
		case <-ctx.Done():
			m.stop()
			return nil
		}
	}
}

// takeOver picks up where the previous instance left off, from its last state: what it configured
// statically (see previousStatic), the host name it set, which this service may change, and the
// resolv.conf it wrote, which is left alone while it is still right.
func (m *Manager) takeOver() {
	m.prev = readState(m.statePath())
	m.hostnameSet = m.prev.Hostname.Name
	if b, err := os.ReadFile(m.opts.ResolvConf); err == nil {
		m.resolv = string(b)
	}
}

// stop ends the DHCP clients, leaving their leases in place, and writes the last state.
func (m *Manager) stop() {
	for _, i := range m.ifaces {
		i.stopAll()
	}
	m.flush()
}

func (m *Manager) statePath() string {
	return filepath.Join(m.opts.StateDir, filepath.Base(contract.NetworkStatePath))
}

// loadConfig reads the configuration file and reports whether it changed. A broken file is
// reported and the configuration in effect kept.
func (m *Manager) loadConfig() bool {
	cfg, b, err := readConfig(m.opts.ConfigPath)
	if err != nil {
		if msg := err.Error(); msg != m.cfgErr {
			m.cfgErr = msg
			m.console.Errorf("network: %v; keeping the configuration in effect", err)
		}
		return false
	}
	m.cfgErr = ""
	if m.cfgBytes != nil && string(b) == string(m.cfgBytes) {
		return false
	}
	first := m.cfgBytes == nil
	m.cfg, m.cfgBytes = cfg, b
	if m.cfgBytes == nil {
		m.cfgBytes = []byte{}
	}
	if !first {
		m.console.Milestone("network", "configuration %s changed", m.opts.ConfigPath)
	}
	return true
}

// onLink takes a link's appearance, change or removal.
func (m *Manager) onLink(ctx context.Context, u netlink.LinkUpdate) {
	l := link.FromNetlink(u.Link)
	i := m.ifaces[l.Index]
	if u.Header.Type == unix.RTM_DELLINK {
		if i != nil {
			i.stopAll()
			delete(m.ifaces, l.Index)
			m.console.Milestone("network", "%s removed", l.Name)
			m.dirty()
		}
		return
	}
	if i == nil {
		m.manage(ctx, l)
		return
	}
	old := i.link
	i.setLink(l)
	if old.Name != l.Name {
		m.reconfigure(ctx)
	}
	if old.Carrier != l.Carrier {
		if l.Carrier {
			m.console.Milestone("network", "%s link up", l.Name)
		} else {
			m.console.Milestone("network", "%s link down: leases kept until they expire", l.Name)
		}
		i.setCarrier(l.Carrier)
	}
	m.dirty()
}

// manage starts managing a link if the configuration covers it.
func (m *Manager) manage(ctx context.Context, l link.Link) {
	cfg, label, ok := match(m.cfg, l)
	if !ok {
		return
	}
	i := &iface{m: m, link: l, errs: map[string]string{}}
	i.staticAddrs, i.staticRoutes = m.previousStatic(l)
	m.ifaces[l.Index] = i
	i.apply(ctx, cfg, label)
	m.dirty()
}

// reconfigure applies the configuration to every link.
func (m *Manager) reconfigure(ctx context.Context) {
	for idx, i := range m.ifaces {
		cfg, label, ok := match(m.cfg, i.link)
		if !ok {
			// No longer covered: take away what the service put there.
			i.apply(ctx, contract.NetworkInterface{}, "")
			i.stopAll()
			delete(m.ifaces, idx)
			continue
		}
		i.apply(ctx, cfg, label)
	}
	ls, err := link.List()
	if err != nil {
		m.console.Errorf("network: %v", err)
	}
	for _, l := range ls {
		if m.ifaces[l.Index] == nil {
			m.manage(ctx, l)
		}
	}
	m.dirty()
}

// previousStatic is what the previous instance of the service configured statically on the
// interface, from its last state: a restart must still be able to take it away.
func (m *Manager) previousStatic(l link.Link) ([]netip.Prefix, []link.Route) {
	var addrs []netip.Prefix
	var routes []link.Route
	for _, i := range m.prev.Interfaces {
		if i.Name != l.Name {
			continue
		}
		for _, a := range i.Addresses {
			if p, err := netip.ParsePrefix(a.Address); err == nil && a.Source == contract.SourceStatic {
				addrs = append(addrs, p)
			}
		}
	}
	for _, r := range m.prev.Routes {
		if r.Interface != l.Name || r.Protocol != link.ProtocolName(link.ProtoStatic) {
			continue
		}
		rt := link.Route{Index: l.Index, Metric: r.Metric, Protocol: link.ProtoStatic}
		var err error
		if rt.To, err = parseTo(r.To, r.Via); err != nil {
			continue
		}
		rt.Via, _ = netip.ParseAddr(r.Via)
		routes = append(routes, rt)
	}
	return addrs, routes
}

func parseTo(to, via string) (netip.Prefix, error) {
	if to == "default" {
		if v, err := netip.ParseAddr(via); err == nil {
			return defaultOf(v), nil
		}
	}
	return routeTo(to)
}

// byIndex returns the managed interfaces in index order, the order their leases count in.
func (m *Manager) byIndex() []*iface {
	out := make([]*iface, 0, len(m.ifaces))
	for _, i := range m.ifaces {
		out = append(out, i)
	}
	slices.SortFunc(out, func(a, b *iface) int { return a.link.Index - b.link.Index })
	return out
}

// ifaceStatus is an interface with its clients' status at one moment.
type ifaceStatus struct {
	iface *iface
	st4   *dhcp4.Status
	st6   *dhcp6.Status
}

func (m *Manager) snapshot() []ifaceStatus {
	var out []ifaceStatus
	for _, i := range m.byIndex() {
		i.mu.Lock()
		out = append(out, ifaceStatus{iface: i, st4: i.st4, st6: i.st6})
		i.mu.Unlock()
	}
	return out
}

// flush brings resolv.conf, the host name and the state file up to date.
func (m *Manager) flush() {
	// One snapshot of the clients serves resolv.conf, the host name and the state file: a lease
	// bound between two reads would otherwise show in the state with DNS that does not have it yet.
	snap := m.snapshot()
	var names []leaseNames
	for _, s := range snap {
		i, st4, st6 := s.iface, s.st4, s.st6
		if st4 != nil && st4.Lease != nil {
			l := st4.Lease
			names = append(names, leaseNames{Source: "dhcp4 " + i.link.Name, Servers: l.DNS, Search: l.Search, Domain: l.Domain, Hostname: l.Hostname})
		}
		if st6 != nil && st6.Lease != nil {
			names = append(names, leaseNames{Source: "dhcp6 " + i.link.Name, Servers: st6.Lease.DNS, Search: st6.Lease.Search})
		}
	}
	content, dns := resolver(m.cfg.DNS, names)
	if content != m.resolv && m.opts.ResolvConf != "" {
		if err := writeFile(m.opts.ResolvConf, []byte(content)); err != nil {
			m.console.Errorf("network: %v", err)
		} else {
			m.resolv = content
			m.console.Milestone("network", "dns %s search %s (%s)", orDash(dns.Servers), orDash(dns.Search), dnsSource(dns))
		}
	}
	var metadata string
	if b, err := os.ReadFile(m.opts.MetadataHostname); err == nil {
		metadata = strings.TrimSpace(string(b))
	}
	hn := hostname(m.cfg.Hostname, names, metadata, m.opts.DefaultHostname)
	m.applyHostname(hn)
	st := m.state(snap, dns, hn)
	b, err := json.MarshalIndent(st, "", "  ")
	if err == nil {
		err = writeFile(m.statePath(), append(b, '\n'))
	}
	if err != nil {
		m.console.Errorf("network: state: %v", err)
	}
}

func orDash(l []string) string {
	if len(l) == 0 {
		return "-"
	}
	return strings.Join(l, " ")
}

func dnsSource(d contract.DNSState) string {
	if len(d.Sources) == 0 {
		return d.Source
	}
	return d.Source + ": " + strings.Join(d.Sources, ", ")
}

// applyHostname gives the kernel the chosen name. A name from settings always goes in. Another
// one replaces only the default or a name this service set: a name someone else set (the
// apiserver applying settings before this service has read them) stays.
func (m *Manager) applyHostname(hn contract.HostnameState) {
	cur, err := m.opts.GetHostname()
	if err != nil || cur == hn.Name {
		return
	}
	if hn.Source != contract.SourceSettings && cur != m.opts.DefaultHostname && cur != m.hostnameSet {
		return
	}
	if m.opts.SetHostname != nil {
		if err := m.opts.SetHostname(hn.Name); err != nil {
			m.console.Errorf("network: sethostname %q: %v", hn.Name, err)
			return
		}
	}
	if m.opts.HostnameFile != "" {
		if err := writeFile(m.opts.HostnameFile, []byte(hn.Name+"\n")); err != nil {
			m.console.Errorf("network: %v", err)
		}
	}
	m.hostnameSet = hn.Name
	m.console.Milestone("network", "hostname %s (%s)", hn.Name, hn.Source)
}

// writeFile replaces a file through a rename, so readers never see half of it.
func writeFile(path string, b []byte) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return err
	}
	f, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".tmp-")
	if err != nil {
		return err
	}
	_, err = f.Write(b)
	if err == nil {
		err = f.Chmod(0o644)
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(f.Name(), path)
	}
	if err != nil {
		os.Remove(f.Name())
		return fmt.Errorf("write %s: %w", path, err)
	}
	return nil
}

func jsonOf(v any) ([]byte, error) { return json.Marshal(v) }

// readState reads the previous instance's state; none, or a broken one, is the empty state.
func readState(path string) contract.NetworkState {
	var st contract.NetworkState
	if b, err := os.ReadFile(path); err == nil {
		json.Unmarshal(b, &st)
	}
	return st
}

// metadataChanged reads MetadataHostname and reports whether it changed since the last call.
func (m *Manager) metadataChanged() bool {
	b, _ := os.ReadFile(m.opts.MetadataHostname)
	name := strings.TrimSpace(string(b))
	if name == m.metadata {
		return false
	}
	m.metadata = name
	return true
}
