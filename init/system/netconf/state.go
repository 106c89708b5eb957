package netconf

import (
	"encoding/hex"
	"net/netip"
	"slices"
	"time"

	"github.com/ballast-os/ballast/contract"
	"github.com/ballast-os/ballast/init/system/netconf/dhcp4"
	"github.com/ballast-os/ballast/init/system/netconf/dhcp6"
	"github.com/ballast-os/ballast/init/system/netconf/link"
)

// state describes what is in effect, from the kernel (links, addresses, routes) and the clients.
func (m *Manager) state(snap []ifaceStatus, dns contract.DNSState, hn contract.HostnameState) contract.NetworkState {
	now := time.Now()
	if m.opts.Clock != nil {
		now = m.opts.Clock.Now()
	}
	st := contract.NetworkState{Updated: now.UTC(), Interfaces: []contract.InterfaceState{}, Routes: []contract.RouteState{}, DNS: dns, Hostname: hn}
	names := map[int]string{}
	if ls, err := link.List(); err == nil {
		for _, l := range ls {
			names[l.Index] = l.Name
		}
	}
	for _, s := range snap {
		i, st4, st6 := s.iface, s.st4, s.st6
		d := i.link
		is := contract.InterfaceState{Name: d.Name, MAC: d.MAC.String(), MTU: d.MTU, Up: d.Up, Carrier: d.Carrier,
			Config: i.label, Addresses: []contract.AddressState{}, Error: i.errText()}
		if st4 != nil {
			is.DHCP4 = lease4State(st4)
		}
		if st6 != nil {
			is.DHCP6 = lease6State(st6)
		}
		addrs, err := link.Addresses(d)
		if err != nil && is.Error == "" {
			is.Error = err.Error()
		}
		for _, a := range addrs {
			as := contract.AddressState{Address: a.Prefix.String(), Source: classify(a, i.staticAddrs, st4, st6)}
			if a.Valid > 0 {
				until := now.Add(a.Valid).UTC()
				as.ValidUntil = &until
			}
			is.Addresses = append(is.Addresses, as)
		}
		st.Interfaces = append(st.Interfaces, is)
	}
	if rs, err := link.Routes(); err == nil {
		for _, r := range rs {
			rs := contract.RouteState{To: r.To.String(), Interface: names[r.Index], Metric: r.Metric, Protocol: link.ProtocolName(r.Protocol)}
			if r.To.Bits() == 0 {
				rs.To = "default"
			}
			if r.Via.IsValid() {
				rs.Via = r.Via.String()
			}
			st.Routes = append(st.Routes, rs)
		}
	}
	return st
}

// classify says where an interface's address came from.
func classify(a link.AddrInfo, static []netip.Prefix, st4 *dhcp4.Status, st6 *dhcp6.Status) string {
	switch {
	case slices.Contains(static, a.Prefix):
		return contract.SourceStatic
	case st4 != nil && st4.Lease != nil && st4.Lease.Address == a.Prefix:
		return contract.SourceDHCP4
	case st6 != nil && st6.Lease != nil && slices.ContainsFunc(st6.Lease.Addresses, func(l dhcp6.Address) bool { return v6Prefix(l) == a.Prefix }):
		return contract.SourceDHCP6
	case a.Prefix.Addr().Is6() && a.Prefix.Addr().IsLinkLocalUnicast():
		return contract.SourceLinkLocal
	case a.Prefix.Addr().Is6() && !a.Permanent:
		return contract.SourceSLAAC
	}
	return contract.SourceOther
}

func timePtr(t time.Time) *time.Time {
	u := t.UTC()
	return &u
}

func lease4State(s *dhcp4.Status) *contract.LeaseState {
	ls := &contract.LeaseState{State: s.State, Renewals: s.Renewals}
	if s.Err != nil {
		ls.Error = s.Err.Error()
	}
	l := s.Lease
	if l == nil {
		return ls
	}
	ls.Addresses = []string{l.Address.String()}
	ls.Server = l.Server.String()
	for _, r := range l.Routers {
		ls.Routers = append(ls.Routers, r.String())
	}
	for _, d := range l.DNS {
		ls.DNS = append(ls.DNS, d.String())
	}
	ls.Search = l.Search
	if len(ls.Search) == 0 && l.Domain != "" {
		ls.Search = []string{l.Domain}
	}
	ls.Hostname, ls.MTU = l.Hostname, l.MTU
	ls.Acquired, ls.RenewAt, ls.RebindAt, ls.Expires = timePtr(l.Acquired), timePtr(l.RenewAt()), timePtr(l.RebindAt()), timePtr(l.Expires())
	return ls
}

func lease6State(s *dhcp6.Status) *contract.LeaseState {
	ls := &contract.LeaseState{State: s.State, Renewals: s.Renewals}
	if s.Err != nil {
		ls.Error = s.Err.Error()
	}
	l := s.Lease
	if l == nil {
		return ls
	}
	for _, a := range l.Addresses {
		ls.Addresses = append(ls.Addresses, v6Prefix(a).String())
	}
	ls.Server = hex.EncodeToString(l.ServerID)
	for _, d := range l.DNS {
		ls.DNS = append(ls.DNS, d.String())
	}
	ls.Search = l.Search
	ls.Acquired, ls.RenewAt, ls.RebindAt, ls.Expires = timePtr(l.Acquired), timePtr(l.RenewAt()), timePtr(l.RebindAt()), timePtr(l.Expires())
	return ls
}
