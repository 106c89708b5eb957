package render

import (
	"encoding/json"
	"fmt"
	"slices"

	"github.com/ballast-os/ballast/apiserver/settings"
	"github.com/ballast-os/ballast/contract"
)

// ContainersConfig is what the host-container manager is told: the container settings with
// their defaults resolved, how images are pulled (mirrors, credentials, the trusted settings.pki
// bundles, the proxy) and settings.oci-defaults.
func ContainersConfig(s settings.Settings) (contract.ContainersConfig, error) {
	var c contract.ContainersConfig
	for _, name := range sortedKeys(s.HostContainers) {
		h := s.HostContainers[settings.ContainerName(name)]
		c.Host = append(c.Host, contract.HostContainer{
			Name: name, Source: derefRef(h.Source), Enabled: isTrue(h.Enabled), Superpowered: isTrue(h.Superpowered),
			APIAccess: isTrue(h.APIAccess), HostNetwork: isTrue(h.HostNetwork), UserNS: isTrue(h.UserNS),
			UserData: derefB64(h.UserData),
		})
	}
	for _, name := range sortedKeys(s.BootstrapContainers) {
		b := s.BootstrapContainers[settings.ContainerName(name)]
		mode := "off"
		if b.Mode != nil {
			mode = string(*b.Mode)
		}
		c.Bootstrap = append(c.Bootstrap, contract.BootstrapContainer{
			Name: name, Source: derefRef(b.Source), Mode: mode, Essential: isTrue(b.Essential),
			Superpowered: isTrue(b.Superpowered), UserData: derefB64(b.UserData),
		})
	}
	if d := s.OCIDefaults; d != nil {
		if len(d.Capabilities) > 0 {
			c.Defaults.Capabilities = map[string]bool{}
			for k, v := range d.Capabilities {
				c.Defaults.Capabilities[k.OCIName()] = v
			}
		}
		for _, name := range sortedKeys(d.ResourceLimits) {
			l := d.ResourceLimits[settings.RlimitName(name)]
			r := contract.Rlimit{Type: settings.RlimitName(name).OCIName(), Hard: rlimit(l.HardLimit), Soft: rlimit(l.SoftLimit)}
			if l.HardLimit == nil {
				r.Hard = r.Soft
			}
			if l.SoftLimit == nil {
				r.Soft = r.Hard
			}
			c.Defaults.Rlimits = append(c.Defaults.Rlimits, r)
		}
		c.Defaults.UserNS = isTrue(d.UserNS)
		if d.MemoryLimit != nil {
			c.Defaults.Memory = *d.MemoryLimit
		}
		if d.PidsLimit != nil {
			c.Defaults.Pids = *d.PidsLimit
		}
		if d.CPUWeight != nil {
			c.Defaults.CPUWeight = uint64(*d.CPUWeight)
		}
	}
	if r := s.ContainerRegistry; r != nil {
		if len(r.Mirrors) > 0 {
			c.Registry.Mirrors = map[string][]string{}
			for k, v := range r.Mirrors {
				c.Registry.Mirrors[string(k)] = convert(v)
			}
		}
		if len(r.Credentials) > 0 {
			c.Registry.Credentials = map[string]contract.RegistryCredential{}
			for k, v := range r.Credentials {
				c.Registry.Credentials[string(k)] = contract.RegistryCredential{Username: deref(v.Username), Password: deref(v.Password)}
			}
		}
	}
	for _, name := range sortedKeys(s.PKI) {
		b := s.PKI[settings.BundleName(name)]
		if b.Data == nil || !isTrue(b.Trusted) {
			continue
		}
		pem, err := b.Data.PEM()
		if err != nil {
			return c, fmt.Errorf("settings.pki.%s.data: %w", name, err)
		}
		c.Registry.CAs = append(c.Registry.CAs, string(pem))
	}
	if n := s.Network; n != nil && n.HTTPSProxy != nil {
		u, err := n.HTTPSProxy.URL()
		if err != nil {
			return c, fmt.Errorf("settings.network.https-proxy: %w", err)
		}
		c.Proxy = u.String()
		c.NoProxy = []string{"localhost", "127.0.0.1", "::1"}
		for _, e := range n.NoProxy {
			if !slices.Contains(c.NoProxy, string(e)) {
				c.NoProxy = append(c.NoProxy, string(e))
			}
		}
	}
	return c, nil
}

func containersConfigJSON(s settings.Settings) (string, error) {
	c, err := ContainersConfig(s)
	if err != nil {
		return "", fmt.Errorf("containers configuration: %w", err)
	}
	b, err := json.MarshalIndent(c, "", "  ")
	if err != nil {
		return "", fmt.Errorf("containers configuration: %w", err)
	}
	return string(b), nil
}

func sortedKeys[K ~string, V any](m map[K]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, string(k))
	}
	slices.Sort(keys)
	return keys
}

func isTrue(b *bool) bool { return b != nil && *b }

func derefRef(r *settings.ImageRef) string {
	if r == nil {
		return ""
	}
	return string(*r)
}

func derefB64(b *settings.Base64) string {
	if b == nil {
		return ""
	}
	return string(*b)
}

// rlimit is a limit as the OCI spec has it: unlimited is all ones.
func rlimit(v *settings.RlimitValue) uint64 {
	if v == nil || *v == settings.Unlimited {
		return ^uint64(0)
	}
	return uint64(*v)
}
