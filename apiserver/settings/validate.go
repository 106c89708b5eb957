package settings

import (
	"crypto/tls"
	"errors"
	"fmt"
	"reflect"
	"slices"
	"sort"
	"strings"
	"unicode/utf8"

	"github.com/ballast-os/ballast/contract"
)

// Size limits named by code elsewhere. The rest are the max tags of the model.
const (
	MaxMotdBytes      = 4096
	MaxHostnameBytes  = 253
	MaxHostLabelBytes = 63
)

// Validate checks every value set in s against the rules of its key: its type's syntax, string
// lengths, list lengths, map sizes and integer ranges. Decoding calls it, so Settings from this
// package are always valid; the datastore calls it again on merged patches, whose maps may have
// grown past their bounds.
func (s Settings) Validate() error {
	return validateStruct(reflect.ValueOf(s), []string{Prefix})
}

// ValidateLive checks s as the complete live settings: Validate, plus the rules that span several
// keys and so only hold once every key has arrived (a patch may set them in any order).
func (s Settings) ValidateLive() error {
	if err := s.Validate(); err != nil {
		return err
	}
	for _, check := range []func() error{s.checkRemoteAPI, s.checkContainers, s.checkInterfaces, s.checkLimits, s.checkPKI, s.checkKubernetes} {
		if err := check(); err != nil {
			return err
		}
	}
	return nil
}

func validateStruct(v reflect.Value, path []string) error {
	t := v.Type()
	for i := range t.NumField() {
		f := v.Field(i)
		if f.IsZero() {
			continue
		}
		lim, err := limitsOf(t.Field(i))
		p := appendPath(path, keyName(t.Field(i)))
		if err != nil {
			return keyErr(p, err)
		}
		if err := validateValue(f, lim, p); err != nil {
			return err
		}
	}
	if c, ok := v.Interface().(checker); ok {
		if err := c.check(); err != nil {
			// A table's rule about one of its keys names that key itself.
			if ke := (*KeyError)(nil); errors.As(err, &ke) {
				return err
			}
			return keyErr(path, err)
		}
	}
	return nil
}

func validateValue(v reflect.Value, lim limits, path []string) error {
	if isTable(v.Type()) {
		return validateStruct(v, path)
	}
	switch v.Kind() {
	case reflect.Pointer:
		if v.IsNil() {
			return nil
		}
		return validateValue(v.Elem(), lim, path)
	case reflect.Map:
		if lim.max != nil && int64(v.Len()) > *lim.max {
			return keyErr(path, fmt.Errorf("%d entries are more than the %d allowed", v.Len(), *lim.max))
		}
		keys := v.MapKeys()
		sort.Slice(keys, func(i, j int) bool { return keys[i].String() < keys[j].String() })
		for _, k := range keys {
			p := appendPath(path, k.String())
			if err := checkString(k.String(), limits{}); err != nil {
				return keyErr(p, fmt.Errorf("key: %w", err))
			}
			if c, ok := k.Interface().(checker); ok {
				if err := c.check(); err != nil {
					return keyErr(p, err)
				}
			}
			if err := validateValue(v.MapIndex(k), limits{}, p); err != nil {
				return err
			}
		}
		return nil
	case reflect.Slice:
		if lim.max != nil && int64(v.Len()) > *lim.max {
			return keyErr(path, fmt.Errorf("%d items are more than the %d allowed", v.Len(), *lim.max))
		}
		for i := range v.Len() {
			if err := validateValue(v.Index(i), limits{}, path); err != nil {
				return itemErr(path, i, err)
			}
		}
		return nil
	case reflect.String:
		if err := checkString(v.String(), lim); err != nil {
			return keyErr(path, err)
		}
	case reflect.Int64:
		n := v.Int()
		if lim.min != nil && n < *lim.min || lim.max != nil && n > *lim.max {
			return keyErr(path, fmt.Errorf("%d is not in the range %s", n, lim.rangeText()))
		}
	}
	if c, ok := v.Interface().(checker); ok {
		if err := c.check(); err != nil {
			return keyErr(path, err)
		}
	}
	return nil
}

// checkString holds the rules every string follows: UTF-8 (JSON and TOML both are), no NUL (no
// file or kernel interface takes one), and the key's length bound.
func checkString(s string, lim limits) error {
	if lim.max != nil && int64(len(s)) > *lim.max {
		return fmt.Errorf("%d bytes is more than the %d allowed", len(s), *lim.max)
	}
	if !utf8.ValidString(s) {
		return errors.New("not valid UTF-8")
	}
	if strings.ContainsRune(s, 0) {
		return errors.New("contains a NUL byte")
	}
	return nil
}

// CheckHostname reports whether h is a host name per RFC 1123: dot-separated labels of letters,
// digits and hyphens, each 1-63 bytes and not starting or ending with a hyphen, 253 bytes at most.
// A trailing dot is refused: sethostname(2) and /etc/hostname want the name without it.
func CheckHostname(h string) error {
	if h == "" {
		return fmt.Errorf("must not be empty")
	}
	if len(h) > MaxHostnameBytes {
		return fmt.Errorf("%d bytes is more than the %d allowed", len(h), MaxHostnameBytes)
	}
	for i, label := range strings.Split(h, ".") {
		if label == "" {
			return fmt.Errorf("%q: label %d is empty", h, i+1)
		}
		if len(label) > MaxHostLabelBytes {
			return fmt.Errorf("%q: label %q is %d bytes, more than the %d allowed", h, label, len(label), MaxHostLabelBytes)
		}
		if label[0] == '-' || label[len(label)-1] == '-' {
			return fmt.Errorf("%q: label %q starts or ends with a hyphen", h, label)
		}
		for _, r := range label {
			if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-') {
				return fmt.Errorf("%q: label %q has %q; only letters, digits and hyphens are allowed", h, label, r)
			}
		}
	}
	return nil
}

// check makes "to" required: a route without a destination means nothing.
func (r Route) check() error {
	if r.To == nil {
		return errors.New("to is required")
	}
	if r.Via != nil && *r.To != "default" {
		to, via := RouteDestination(*r.To), r.Via.Addr()
		if p, err := parsePrefix(string(to)); err == nil && p.Addr().Is4() != via.Is4() {
			return fmt.Errorf("via %s is not of the family of %s", *r.Via, to)
		}
	}
	return nil
}

func (s Settings) checkRemoteAPI() error {
	if s.API == nil || s.API.Remote == nil {
		return nil
	}
	r := s.API.Remote
	path := []string{Prefix, "api", "remote"}
	if r.Enabled == nil || !*r.Enabled {
		return nil
	}
	for _, k := range []struct {
		name string
		set  bool
	}{{"listen", r.Listen != nil}, {"client-ca", r.ClientCA != nil}, {"server-cert", r.ServerCert != nil}, {"server-key", r.ServerKey != nil}} {
		if !k.set {
			return keyErr(appendPath(path, k.name), errors.New("required when settings.api.remote.enabled is true"))
		}
	}
	if _, err := tls.X509KeyPair([]byte(*r.ServerCert), []byte(*r.ServerKey)); err != nil {
		return keyErr(appendPath(path, "server-key"), fmt.Errorf("does not match server-cert: %w", err))
	}
	return nil
}

func (s Settings) checkContainers() error {
	for _, name := range sortedMapKeys(s.HostContainers) {
		c := s.HostContainers[name]
		if c.Enabled != nil && *c.Enabled && c.Source == nil {
			return keyErr([]string{Prefix, "host-containers", string(name), "source"}, errors.New("required when the container is enabled"))
		}
	}
	for _, name := range sortedMapKeys(s.BootstrapContainers) {
		c := s.BootstrapContainers[name]
		if c.Source == nil && (c.Mode == nil || *c.Mode != "off") {
			return keyErr([]string{Prefix, "bootstrap-containers", string(name), "source"}, errors.New("required unless mode is off"))
		}
		// A container's log and its entry in GET /services go by its name alone.
		if _, dup := s.HostContainers[name]; dup {
			return keyErr([]string{Prefix, "bootstrap-containers", string(name)}, errors.New("a host container has this name; container names are shared by both kinds"))
		}
	}
	for _, kind := range []string{"host-containers", "bootstrap-containers"} {
		names := sortedMapKeys(s.HostContainers)
		if kind == "bootstrap-containers" {
			names = sortedMapKeys(s.BootstrapContainers)
		}
		for _, name := range names {
			if slices.Contains(ReservedContainerNames(), string(name)) {
				return keyErr([]string{Prefix, kind, string(name)}, fmt.Errorf("%q names a system service or log; pick another name", string(name)))
			}
		}
	}
	if d := s.OCIDefaults; d != nil {
		for _, c := range sortedMapKeys(d.Capabilities) {
			if d.Capabilities[c] && slices.Contains(contract.ForbiddenCapabilities(), c.OCIName()) {
				return keyErr([]string{Prefix, "oci-defaults", "capabilities", string(c)},
					errors.New("only superpowered containers get this capability; it cannot be a default"))
			}
		}
	}
	if r := s.ContainerRegistry; r != nil {
		for _, host := range sortedMapKeys(r.Credentials) {
			c := r.Credentials[host]
			path := []string{Prefix, "container-registry", "credentials", string(host)}
			if host == "*" {
				return keyErr(path, errors.New("credentials name one registry, not *"))
			}
			if (c.Username == nil) != (c.Password == nil) {
				return keyErr(path, errors.New("username and password go together"))
			}
		}
	}
	return nil
}

// ReservedContainerNames are the names a container may not take: its log and its line in GET
// /services would be a system service's.
func ReservedContainerNames() []string {
	names := []string{contract.KernelLogSource, contract.InitLogSource}
	for _, p := range contract.Programs() {
		if p.Service != nil {
			names = append(names, p.Service.ID)
		}
	}
	return names
}

func (s Settings) checkInterfaces() error {
	if s.Network == nil {
		return nil
	}
	macs := map[string]InterfaceName{}
	for _, name := range sortedMapKeys(s.Network.Interfaces) {
		i := s.Network.Interfaces[name]
		if i.MAC != nil {
			// Two entries for one interface would fight over it.
			if other, dup := macs[i.MAC.Canonical()]; dup {
				return keyErr([]string{Prefix, "network", "interfaces", string(name), "mac"},
					fmt.Errorf("%s is already the mac of entry %s", *i.MAC, other))
			}
			macs[i.MAC.Canonical()] = name
		}
		if i.Gateway == nil {
			continue
		}
		gw := i.Gateway.Addr()
		ok := false
		for _, a := range i.Addresses {
			if a.Prefix().Addr().Is4() == gw.Is4() {
				ok = true
			}
		}
		if !ok {
			return keyErr([]string{Prefix, "network", "interfaces", string(name), "gateway"},
				fmt.Errorf("%s needs a static address of its family in addresses", *i.Gateway))
		}
	}
	return nil
}

func (s Settings) checkLimits() error {
	if s.OCIDefaults == nil {
		return nil
	}
	for _, name := range sortedMapKeys(s.OCIDefaults.ResourceLimits) {
		l := s.OCIDefaults.ResourceLimits[name]
		if l.HardLimit == nil || l.SoftLimit == nil || *l.HardLimit == Unlimited {
			continue
		}
		if *l.SoftLimit == Unlimited || *l.SoftLimit > *l.HardLimit {
			return keyErr([]string{Prefix, "oci-defaults", "resource-limits", string(name), "soft-limit"},
				fmt.Errorf("%d is more than the hard limit %d", *l.SoftLimit, *l.HardLimit))
		}
	}
	return nil
}

func (s Settings) checkPKI() error {
	for _, name := range sortedMapKeys(s.PKI) {
		b := s.PKI[name]
		if b.Trusted != nil && *b.Trusted && b.Data == nil {
			return keyErr([]string{Prefix, "pki", string(name), "data"}, errors.New("required when the bundle is trusted"))
		}
	}
	return nil
}

func sortedMapKeys[K ~string, V any](m map[K]V) []K {
	keys := make([]K, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Slice(keys, func(i, j int) bool { return keys[i] < keys[j] })
	return keys
}
