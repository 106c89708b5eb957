package netconf

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"net/netip"
	"os"
	"strings"

	"github.com/ballast-os/ballast/contract"
	"github.com/ballast-os/ballast/init/system/netconf/link"
)

// maxConfig bounds the configuration file; sixteen interfaces with all their keys are far below.
const maxConfig = 1 << 20

// readConfig reads the configuration file. A missing file is the empty configuration (every
// default); the bytes are returned so a caller can tell whether the file changed.
func readConfig(path string) (contract.NetworkConfig, []byte, error) {
	var c contract.NetworkConfig
	b, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return c, nil, nil
	}
	if err != nil {
		return c, nil, err
	}
	if len(b) > maxConfig {
		return c, b, fmt.Errorf("%s: more than %d bytes", path, maxConfig)
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&c); err != nil {
		return c, b, fmt.Errorf("%s: %w", path, err)
	}
	if err := checkConfig(c); err != nil {
		return c, b, fmt.Errorf("%s: %w", path, err)
	}
	return c, b, nil
}

// checkConfig checks what the service parses itself. The apiserver renders the file from
// validated settings, so this catches a file written by hand, or a drift between the two.
func checkConfig(c contract.NetworkConfig) error {
	for _, i := range c.Interfaces {
		where := "interfaces." + i.Key
		for _, a := range i.Addresses {
			if _, err := netip.ParsePrefix(a); err != nil {
				return fmt.Errorf("%s: address %q: %w", where, a, err)
			}
		}
		if i.Gateway != "" {
			if _, err := netip.ParseAddr(i.Gateway); err != nil {
				return fmt.Errorf("%s: gateway %q: %w", where, i.Gateway, err)
			}
		}
		for _, r := range i.Routes {
			if _, err := routeTo(r.To); err != nil {
				return fmt.Errorf("%s: route to %q: %w", where, r.To, err)
			}
			if r.Via != "" {
				if _, err := netip.ParseAddr(r.Via); err != nil {
					return fmt.Errorf("%s: route via %q: %w", where, r.Via, err)
				}
			}
		}
	}
	for _, s := range c.DNS.NameServers {
		if _, err := netip.ParseAddr(s); err != nil {
			return fmt.Errorf("dns: name server %q: %w", s, err)
		}
	}
	return nil
}

// routeTo parses a route's destination; "default" is IPv4's (see staticRoutes for IPv6's).
func routeTo(s string) (netip.Prefix, error) {
	if s == "default" {
		return netip.PrefixFrom(netip.IPv4Unspecified(), 0), nil
	}
	p, err := netip.ParsePrefix(s)
	if err != nil {
		return p, err
	}
	return p.Masked(), nil
}

// match finds the configuration of an interface: the entry with its MAC address, else the entry
// named after it (one without a MAC: a MAC entry is only a label by its name). Ethernet
// interfaces without an entry get the default; other interfaces are left alone (ok false).
func match(c contract.NetworkConfig, l link.Link) (cfg contract.NetworkInterface, label string, ok bool) {
	mac := strings.ToLower(l.MAC.String())
	for _, i := range c.Interfaces {
		if i.MAC != "" && mac != "" && strings.EqualFold(i.MAC, mac) {
			return i, "settings.network.interfaces." + i.Key, true
		}
	}
	for _, i := range c.Interfaces {
		if i.MAC == "" && i.Key == l.Name {
			return i, "settings.network.interfaces." + i.Key, true
		}
	}
	if l.Ethernet {
		return contract.DefaultInterface(), "default", true
	}
	return contract.NetworkInterface{}, "", false
}
