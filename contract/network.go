package contract

import "time"

// The network service's two files.
//
// NetworkConfigPath (NetworkConfig) is written by the apiserver from settings.network.interfaces,
// settings.dns and settings.network.hostname, and read by the network service: at start, whenever
// the file changes (the apiserver renders it at its own start, after the network service started),
// and after the restart the apiserver asks for when a commit changes it. Without the file the
// service applies the defaults: DHCPv4 and router advertisements on every Ethernet interface, DNS
// and the host name from DHCP.
//
// NetworkStatePath (NetworkState) is written by the network service, replaced atomically on every
// change, and served by the apiserver as GET /network. Leases live beside it in NetworkLeaseDir,
// so that a restarted service resumes them (DHCPREQUEST for the address it has) instead of
// dropping them.

// DefaultHostname is the host's name until settings, DHCP or cloud metadata give one: the system
// init sets it at boot, and the network service goes back to it when nothing else names the host.
const DefaultHostname = "ballast"

// NetworkConfig is the network service's configuration.
type NetworkConfig struct {
	// Interfaces are the settings' entries, in the order of their keys. Interfaces no entry
	// matches get DefaultInterface.
	Interfaces []NetworkInterface `json:"interfaces,omitempty"`
	// DNS holds settings.dns; an empty list leaves that part of /etc/resolv.conf to DHCP.
	DNS NetworkDNS `json:"dns,omitzero"`
	// Hostname is settings.network.hostname; "" lets DHCP or cloud metadata name the host.
	Hostname string `json:"hostname,omitempty"`
}

// NetworkInterface is one entry of settings.network.interfaces, its defaults resolved.
type NetworkInterface struct {
	// Key is the entry's name. It matches the interface of that name unless MAC is set.
	Key string `json:"key"`
	// MAC matches the interface with this hardware address (lower case, colon-separated).
	MAC       string         `json:"mac,omitempty"`
	DHCP4     bool           `json:"dhcp4"`
	DHCP6     bool           `json:"dhcp6"`
	Addresses []string       `json:"addresses,omitempty"` // address/prefix length
	Gateway   string         `json:"gateway,omitempty"`
	Routes    []NetworkRoute `json:"routes,omitempty"`
	MTU       int            `json:"mtu,omitempty"` // 0 leaves the MTU as the driver or DHCP set it
}

// NetworkRoute is a static route: To is a CIDR or "default"; Via "" is on the link.
type NetworkRoute struct {
	To     string  `json:"to"`
	Via    string  `json:"via,omitempty"`
	Metric *uint32 `json:"metric,omitempty"`
}

// NetworkDNS is what settings.dns says for /etc/resolv.conf.
type NetworkDNS struct {
	NameServers []string `json:"name_servers,omitempty"`
	Search      []string `json:"search,omitempty"`
}

// DefaultInterface is the configuration of an Ethernet interface that no entry matches.
func DefaultInterface() NetworkInterface {
	return NetworkInterface{DHCP4: true}
}

// Sources of addresses, host names and DNS servers in NetworkState.
const (
	SourceStatic    = "static"     // settings.network.interfaces
	SourceDHCP4     = "dhcp4"      // a DHCPv4 lease
	SourceDHCP6     = "dhcp6"      // a DHCPv6 lease
	SourceSLAAC     = "slaac"      // the kernel, from a router advertisement
	SourceLinkLocal = "link-local" // the kernel's fe80::/64 address
	SourceOther     = "other"      // not the network service's (added by hand, or by a container runtime)
	SourceSettings  = "settings"   // settings.dns, settings.network.hostname
	SourceMetadata  = "metadata"   // the cloud's instance metadata (MetadataHostnamePath)
	SourceDefault   = "default"    // the system init's name for the host
	SourceNone      = "none"       // nothing gave a value
)

// DHCP client states in NetworkState (RFC 2131 4.4, and their DHCPv6 counterparts).
const (
	DHCPInit       = "init"        // looking for a server (DISCOVER / SOLICIT)
	DHCPRequesting = "requesting"  // asking for an offered address
	DHCPInitReboot = "init-reboot" // confirming a lease it already had (after a restart, or the link's return)
	DHCPBound      = "bound"
	DHCPRenewing   = "renewing"  // after T1: asking the server that gave the lease
	DHCPRebinding  = "rebinding" // after T2: asking any server
	DHCPLinkDown   = "link-down" // no carrier: the lease is kept until it expires, nothing is sent
)

// NetworkState is what the network service reports: GET /network.
type NetworkState struct {
	// Updated is when the state last changed.
	Updated    time.Time        `json:"updated"`
	Interfaces []InterfaceState `json:"interfaces"`
	// Routes are the main table's routes, IPv4 then IPv6, the kernel's local and multicast
	// routes left out.
	Routes   []RouteState  `json:"routes"`
	DNS      DNSState      `json:"dns"`
	Hostname HostnameState `json:"hostname"`
}

// InterfaceState is one network interface: loopback, bridges and veths are not listed.
type InterfaceState struct {
	Name    string `json:"name"`
	MAC     string `json:"mac"`
	MTU     int    `json:"mtu"`
	Up      bool   `json:"up"`      // administratively up
	Carrier bool   `json:"carrier"` // the link is connected
	// Config names the settings entry that configures the interface
	// ("settings.network.interfaces.<key>"), or "default".
	Config    string         `json:"config"`
	Addresses []AddressState `json:"addresses"`
	DHCP4     *LeaseState    `json:"dhcp4,omitempty"`
	DHCP6     *LeaseState    `json:"dhcp6,omitempty"`
	// Error is the last problem configuring the interface, "" when there is none.
	Error string `json:"error,omitempty"`
}

// AddressState is an address of an interface, with its prefix length.
type AddressState struct {
	Address string `json:"address"`
	Source  string `json:"source"` // one of the Source constants
	// ValidUntil is when the kernel drops the address; absent for a permanent one.
	ValidUntil *time.Time `json:"valid_until,omitempty"`
}

// LeaseState is a DHCP client and its lease. The lease fields are empty while it has none.
type LeaseState struct {
	State string `json:"state"` // one of the DHCP state constants
	// Addresses are the leased addresses with their prefix length (one for DHCPv4).
	Addresses []string `json:"addresses,omitempty"`
	Server    string   `json:"server,omitempty"` // DHCPv4: server identifier; DHCPv6: server DUID in hex
	Routers   []string `json:"routers,omitempty"`
	DNS       []string `json:"dns,omitempty"`
	Search    []string `json:"search,omitempty"`
	Hostname  string   `json:"hostname,omitempty"`
	MTU       int      `json:"mtu,omitempty"`
	// Acquired is when the server last confirmed the lease (its ACK or Reply), which the times
	// below count from.
	Acquired *time.Time `json:"acquired,omitempty"`
	RenewAt  *time.Time `json:"renew_at,omitempty"`  // T1
	RebindAt *time.Time `json:"rebind_at,omitempty"` // T2
	Expires  *time.Time `json:"expires,omitempty"`
	// Renewals counts the renewals of this lease since it was first bound.
	Renewals int `json:"renewals"`
	// Error is the last failed exchange, "" after a success.
	Error string `json:"error,omitempty"`
}

// RouteState is one route.
type RouteState struct {
	To        string `json:"to"` // CIDR, or "default"
	Via       string `json:"via,omitempty"`
	Interface string `json:"interface,omitempty"`
	Metric    int    `json:"metric"`
	// Protocol is who added it: kernel, boot, static, dhcp, ra, or the kernel's number.
	Protocol string `json:"protocol"`
}

// DNSState is what /etc/resolv.conf says and where it came from.
type DNSState struct {
	Servers []string `json:"servers"`
	Search  []string `json:"search"`
	// Source is "settings", "dhcp" (with the interfaces in Sources) or "none"; settings and DHCP
	// mix when settings.dns sets only one of its lists ("settings+dhcp").
	Source  string   `json:"source"`
	Sources []string `json:"sources,omitempty"` // the leases that gave servers or domains, e.g. "dhcp4 eth0"
}

// HostnameState is the host's name and what gave it.
type HostnameState struct {
	Name string `json:"name"`
	// Source is settings, dhcp4 <interface>, dhcp6 <interface>, metadata or default.
	Source string `json:"source"`
}
