// Package netconf brings the host's network up at boot: loopback, then DHCPv4 on every Ethernet
// link, applying the leased address and default route. DNS and the settings-driven interface model
// (network.interfaces.*) are rendered by the apiserver; this only gives the host an address so the
// remote API and container pulls can reach it.
package netconf

import (
	"context"
	"errors"
	"fmt"
	"net"
	"sort"
	"strings"
	"time"

	"github.com/u-root/u-root/pkg/dhclient"
	"github.com/vishvananda/netlink"
)

// Lease is what one interface got.
type Lease struct {
	Interface string
	Address   string
	Router    string
}

// Candidates picks the links to configure from their names and types: Ethernet devices only, not
// loopback, bridges or veths (those belong to the container runtime).
func Candidates(links []netlink.Link) []netlink.Link {
	var out []netlink.Link
	for _, l := range links {
		a := l.Attrs()
		if a.Flags&net.FlagLoopback != 0 || l.Type() != "device" || a.EncapType != "ether" {
			continue
		}
		if strings.HasPrefix(a.Name, "veth") || strings.HasPrefix(a.Name, "docker") || strings.HasPrefix(a.Name, "cni") {
			continue
		}
		out = append(out, l)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Attrs().Name < out[j].Attrs().Name })
	return out
}

// Up brings lo up and runs DHCPv4 on every candidate link, configuring each lease it gets.
func Up(ctx context.Context, timeout time.Duration) ([]Lease, error) {
	if lo, err := netlink.LinkByName("lo"); err == nil {
		if err := netlink.LinkSetUp(lo); err != nil {
			return nil, fmt.Errorf("netconf: lo up: %w", err)
		}
	}
	all, err := netlink.LinkList()
	if err != nil {
		return nil, fmt.Errorf("netconf: list links: %w", err)
	}
	links := Candidates(all)
	if len(links) == 0 {
		return nil, errors.New("netconf: no Ethernet interface")
	}
	var ups []netlink.Link
	for _, l := range links {
		up, err := dhclient.IfUp(l.Attrs().Name, 5*time.Second)
		if err != nil {
			continue
		}
		ups = append(ups, up)
	}
	if len(ups) == 0 {
		return nil, errors.New("netconf: no interface came up")
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	cfg := dhclient.Config{Timeout: timeout / 3, Retries: 3}
	var leases []Lease
	var errs []error
	for r := range dhclient.SendRequests(ctx, ups, true, false, cfg, 5*time.Second) {
		name := r.Interface.Attrs().Name
		if r.Err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", name, r.Err))
			continue
		}
		if err := r.Lease.Configure(); err != nil {
			errs = append(errs, fmt.Errorf("%s: configure: %w", name, err))
			continue
		}
		l := Lease{Interface: name}
		if p, ok := r.Lease.(*dhclient.Packet4); ok {
			l.Address = p.P.YourIPAddr.String()
			if rs := p.P.Router(); len(rs) > 0 {
				l.Router = rs[0].String()
			}
		}
		leases = append(leases, l)
	}
	if len(leases) == 0 {
		return nil, fmt.Errorf("netconf: no DHCP lease: %w", errors.Join(errs...))
	}
	return leases, nil
}
