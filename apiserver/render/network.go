package render

import (
	"encoding/json"
	"fmt"
	"slices"

	"github.com/ballast-os/ballast/apiserver/settings"
	"github.com/ballast-os/ballast/contract"
)

// NetworkConfig is what the network service is told about settings: the interface entries with
// their defaults resolved, settings.dns and settings.network.hostname.
func NetworkConfig(s settings.Settings) contract.NetworkConfig {
	var c contract.NetworkConfig
	if s.DNS != nil {
		c.DNS.NameServers = convert(s.DNS.NameServers)
		c.DNS.Search = convert(s.DNS.SearchList)
	}
	if s.Network == nil {
		return c
	}
	if s.Network.Hostname != nil {
		c.Hostname = string(*s.Network.Hostname)
	}
	keys := make([]string, 0, len(s.Network.Interfaces))
	for k := range s.Network.Interfaces {
		keys = append(keys, string(k))
	}
	slices.Sort(keys)
	for _, k := range keys {
		i := s.Network.Interfaces[settings.InterfaceName(k)]
		e := contract.NetworkInterface{Key: k, Addresses: convert(i.Addresses)}
		if i.MAC != nil {
			e.MAC = i.MAC.Canonical()
		}
		// Static IPv4 addresses mean the interface is addressed by hand; DHCPv4 besides them
		// must be asked for.
		e.DHCP4 = !slices.ContainsFunc(i.Addresses, func(a settings.InterfaceAddress) bool { return a.Prefix().Addr().Is4() })
		if i.DHCP4 != nil {
			e.DHCP4 = *i.DHCP4
		}
		if i.DHCP6 != nil {
			e.DHCP6 = *i.DHCP6
		}
		if i.Gateway != nil {
			e.Gateway = string(*i.Gateway)
		}
		if i.MTU != nil {
			e.MTU = int(*i.MTU)
		}
		for _, r := range i.Routes {
			nr := contract.NetworkRoute{To: string(*r.To)}
			if r.Via != nil {
				nr.Via = string(*r.Via)
			}
			if r.Metric != nil {
				m := uint32(*r.Metric)
				nr.Metric = &m
			}
			e.Routes = append(e.Routes, nr)
		}
		c.Interfaces = append(c.Interfaces, e)
	}
	return c
}

func networkConfigJSON(s settings.Settings) (string, error) {
	b, err := json.MarshalIndent(NetworkConfig(s), "", "  ")
	if err != nil {
		return "", fmt.Errorf("network configuration: %w", err)
	}
	return string(b), nil
}
