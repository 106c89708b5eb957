package netconf

import (
	"fmt"
	"net/netip"
	"slices"
	"strings"

	"github.com/ballast-os/ballast/contract"
)

// The resolver reads at most three name servers and six search domains (resolv.conf(5)).
const (
	maxNameServers = 3
	maxSearch      = 6
)

// leaseNames is what one lease says about names: its DNS servers, search domains, host name.
type leaseNames struct {
	Source   string // e.g. "dhcp4 eth0"
	Servers  []netip.Addr
	Search   []string
	Domain   string
	Hostname string
}

// resolver decides /etc/resolv.conf: each of settings.dns's lists when set, else what the leases
// give, in interface order. It returns the file and the state that describes it.
func resolver(set contract.NetworkDNS, leases []leaseNames) (string, contract.DNSState) {
	st := contract.DNSState{Servers: []string{}, Search: []string{}}
	var used []string
	use := func(src string) {
		if !slices.Contains(used, src) {
			used = append(used, src)
		}
	}
	serversFrom, searchFrom := contract.SourceNone, contract.SourceNone
	if len(set.NameServers) > 0 {
		st.Servers = append(st.Servers, set.NameServers...)
		serversFrom = contract.SourceSettings
	} else {
		for _, l := range leases {
			for _, s := range l.Servers {
				if a := s.String(); !slices.Contains(st.Servers, a) && len(st.Servers) < maxNameServers {
					st.Servers = append(st.Servers, a)
					use(l.Source)
					serversFrom = "dhcp"
				}
			}
		}
	}
	if len(set.Search) > 0 {
		st.Search = append(st.Search, set.Search...)
		searchFrom = contract.SourceSettings
	} else {
		for _, l := range leases {
			domains := l.Search
			if len(domains) == 0 && l.Domain != "" {
				domains = []string{l.Domain}
			}
			for _, d := range domains {
				d = strings.TrimSuffix(d, ".")
				if d != "" && !slices.Contains(st.Search, d) && len(st.Search) < maxSearch {
					st.Search = append(st.Search, d)
					use(l.Source)
					searchFrom = "dhcp"
				}
			}
		}
	}
	switch {
	case serversFrom == searchFrom:
		st.Source = serversFrom
	case serversFrom == contract.SourceNone:
		st.Source = searchFrom
	case searchFrom == contract.SourceNone:
		st.Source = serversFrom
	default:
		st.Source = "settings+dhcp"
	}
	st.Sources = used

	var b strings.Builder
	fmt.Fprintf(&b, "# Written by the network service from %s", describe(serversFrom, searchFrom, used))
	b.WriteString("; settings.dns overrides DHCP.\n")
	for _, s := range st.Servers {
		fmt.Fprintf(&b, "nameserver %s\n", s)
	}
	if len(st.Search) > 0 {
		fmt.Fprintf(&b, "search %s\n", strings.Join(st.Search, " "))
	}
	return b.String(), st
}

func describe(servers, search string, leases []string) string {
	what := func(src string) string {
		if src == "dhcp" {
			return "DHCP (" + strings.Join(leases, ", ") + ")"
		}
		return src
	}
	switch {
	case servers == contract.SourceNone && search == contract.SourceNone:
		return "nothing (no settings.dns, no DHCP lease with name servers)"
	case servers == search:
		return what(servers)
	}
	return "name servers: " + what(servers) + ", search: " + what(search)
}

// hostname picks the host's name: settings.network.hostname, else the first lease's host name
// (interface order, DHCPv4 before DHCPv6), else cloud metadata's, else the default.
func hostname(settings string, leases []leaseNames, metadata, def string) contract.HostnameState {
	if settings != "" {
		return contract.HostnameState{Name: settings, Source: contract.SourceSettings}
	}
	for _, l := range leases {
		if validHostname(l.Hostname) {
			return contract.HostnameState{Name: l.Hostname, Source: l.Source}
		}
	}
	if validHostname(metadata) {
		return contract.HostnameState{Name: metadata, Source: contract.SourceMetadata}
	}
	return contract.HostnameState{Name: def, Source: contract.SourceDefault}
}

// validHostname is RFC 1123's host name within the kernel's 64 bytes: a server's name is not
// trusted to be either.
func validHostname(h string) bool {
	if h == "" || len(h) > 64 {
		return false
	}
	for _, label := range strings.Split(h, ".") {
		if label == "" || len(label) > 63 || label[0] == '-' || label[len(label)-1] == '-' {
			return false
		}
		for _, r := range label {
			if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-') {
				return false
			}
		}
	}
	return true
}
