package settings

import (
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"net/url"
	"path"
	"regexp"
	"slices"
	"strconv"
	"strings"

	"github.com/ballast-os/ballast/contract"
)

// The model's named value types implement these. A type's rules live with it, so a value is
// checked the same way in a PATCH body, in user data and in the datastore, and the docs and the
// schema describe exactly those rules.
type (
	checker interface{ check() error }
	// described types say how the docs and the JSON Schema present them.
	described interface{ describe() typeSpec }
	// treeDecoder types decode themselves from a generic tree value, for values that are not a
	// plain string, bool or integer.
	treeDecoder interface{ decodeTree(v any) error }
)

// typeSpec presents a value type in the docs and the JSON Schema.
type typeSpec struct {
	name   string         // in the docs' type column, e.g. "IP address"
	enum   []string       // allowed values, when there is a fixed set
	schema map[string]any // JSON Schema of the value; nil derives it from the Go kind
}

func stringSchema(extra map[string]any) map[string]any {
	s := map[string]any{"type": "string"}
	for k, v := range extra {
		s[k] = v
	}
	return s
}

// Hostname is a host name per RFC 1123.
type Hostname string

func (h Hostname) check() error { return CheckHostname(string(h)) }
func (Hostname) describe() typeSpec {
	return typeSpec{name: "host name (RFC 1123)", schema: stringSchema(map[string]any{"format": "hostname", "minLength": 1, "maxLength": MaxHostnameBytes})}
}

// DomainName is a DNS domain, with the syntax of a host name.
type DomainName string

func (d DomainName) check() error { return CheckHostname(string(d)) }
func (DomainName) describe() typeSpec {
	return typeSpec{name: "domain name", schema: stringSchema(map[string]any{"format": "hostname", "minLength": 1, "maxLength": MaxHostnameBytes})}
}

// IPAddress is an IPv4 or IPv6 address without a zone.
type IPAddress string

func (a IPAddress) check() error {
	_, err := parseIP(string(a))
	return err
}
func (IPAddress) describe() typeSpec {
	return typeSpec{name: "IP address", schema: map[string]any{"type": "string", "anyOf": []any{
		map[string]any{"format": "ipv4"}, map[string]any{"format": "ipv6"}}}}
}

// Addr returns the parsed address; the zero Addr if a is not valid.
func (a IPAddress) Addr() netip.Addr {
	ip, _ := parseIP(string(a))
	return ip
}

func parseIP(s string) (netip.Addr, error) {
	ip, err := netip.ParseAddr(s)
	if err != nil {
		return netip.Addr{}, fmt.Errorf("%q is not an IP address", s)
	}
	if ip.Zone() != "" {
		return netip.Addr{}, fmt.Errorf("%q: zones are not supported", s)
	}
	return ip, nil
}

// InterfaceAddress is an address with its prefix length, e.g. 192.168.1.10/24.
type InterfaceAddress string

func (a InterfaceAddress) check() error {
	_, err := parsePrefix(string(a))
	return err
}
func (InterfaceAddress) describe() typeSpec {
	return typeSpec{name: "address/prefix length", schema: stringSchema(map[string]any{"pattern": `^[0-9A-Fa-f:.]+/[0-9]{1,3}$`})}
}

// Prefix returns the parsed address and prefix length; the zero Prefix if a is not valid.
func (a InterfaceAddress) Prefix() netip.Prefix {
	p, _ := parsePrefix(string(a))
	return p
}

func parsePrefix(s string) (netip.Prefix, error) {
	p, err := netip.ParsePrefix(s)
	if err != nil {
		return netip.Prefix{}, fmt.Errorf("%q is not an address/prefix length", s)
	}
	return p, nil
}

// RouteDestination is "default" or a network in CIDR notation.
type RouteDestination string

func (d RouteDestination) check() error {
	if d == "default" {
		return nil
	}
	p, err := parsePrefix(string(d))
	if err != nil {
		return fmt.Errorf("%q is neither \"default\" nor a CIDR", string(d))
	}
	if p.Masked() != p {
		return fmt.Errorf("%q has host bits set; the network is %s", string(d), p.Masked())
	}
	return nil
}
func (RouteDestination) describe() typeSpec {
	return typeSpec{name: "CIDR or \"default\"", schema: stringSchema(map[string]any{"pattern": `^(default|[0-9A-Fa-f:.]+/[0-9]{1,3})$`})}
}

// ProxyURL is a proxy's address: host:port or an http(s) URL without a path.
type ProxyURL string

func (p ProxyURL) check() error {
	_, err := p.URL()
	return err
}

// URL returns the proxy as a URL, with http:// added when no scheme was given.
func (p ProxyURL) URL() (*url.URL, error) {
	s := string(p)
	if strings.ContainsFunc(s, func(r rune) bool { return r <= ' ' || r == 0x7f }) {
		return nil, fmt.Errorf("%q contains spaces or control characters", s)
	}
	if !strings.Contains(s, "://") {
		s = "http://" + s
	}
	u, err := url.Parse(s)
	if err != nil {
		return nil, fmt.Errorf("%q is not a URL: %w", string(p), err)
	}
	if u.Scheme != "http" && u.Scheme != "https" {
		return nil, fmt.Errorf("%q: scheme %q is not http or https", string(p), u.Scheme)
	}
	if u.Hostname() == "" {
		return nil, fmt.Errorf("%q has no host", string(p))
	}
	if u.Path != "" && u.Path != "/" || u.RawQuery != "" || u.Fragment != "" {
		return nil, fmt.Errorf("%q: a proxy address has no path, query or fragment", string(p))
	}
	if port := u.Port(); port != "" {
		if n, err := strconv.Atoi(port); err != nil || n < 1 || n > 65535 {
			return nil, fmt.Errorf("%q: port %q is not 1-65535", string(p), port)
		}
	}
	return u, nil
}
func (ProxyURL) describe() typeSpec {
	return typeSpec{name: "host:port or http(s) URL", schema: stringSchema(map[string]any{"minLength": 1, "maxLength": 2048})}
}

// NoProxyEntry is one entry of a no-proxy list: a host, .domain, address, CIDR or "*".
type NoProxyEntry string

var noProxyRe = regexp.MustCompile(`^(\*|\.?[A-Za-z0-9_.:\[\]/-]+)$`)

func (e NoProxyEntry) check() error {
	if len(e) > MaxHostnameBytes || !noProxyRe.MatchString(string(e)) {
		return fmt.Errorf("%q is not a host, .domain, address, CIDR or *", string(e))
	}
	return nil
}
func (NoProxyEntry) describe() typeSpec {
	return typeSpec{name: "host, .domain, address or CIDR", schema: stringSchema(map[string]any{"pattern": noProxyRe.String(), "maxLength": MaxHostnameBytes})}
}

// TimeServer is an NTP server: a host name or an address.
type TimeServer string

func (s TimeServer) check() error {
	if _, err := netip.ParseAddr(string(s)); err == nil {
		return nil
	}
	if err := CheckHostname(string(s)); err != nil {
		return fmt.Errorf("neither an IP address nor a host name: %w", err)
	}
	return nil
}
func (TimeServer) describe() typeSpec {
	return typeSpec{name: "host name or IP address", schema: stringSchema(map[string]any{"minLength": 1, "maxLength": MaxHostnameBytes})}
}

// InterfaceName is a network interface name as the kernel allows it.
type InterfaceName string

var ifNameRe = regexp.MustCompile(`^[A-Za-z0-9_.-]{1,15}$`)

func (n InterfaceName) check() error {
	if !ifNameRe.MatchString(string(n)) || n == "." || n == ".." {
		return fmt.Errorf("%q is not an interface name: 1-15 of letters, digits, '_', '.', '-'", string(n))
	}
	return nil
}
func (InterfaceName) describe() typeSpec {
	return typeSpec{name: "interface name", schema: stringSchema(map[string]any{"pattern": ifNameRe.String()})}
}

// MACAddress is an Ethernet hardware address, six colon-separated hex bytes.
type MACAddress string

var macRe = regexp.MustCompile(`^[0-9A-Fa-f]{2}(:[0-9A-Fa-f]{2}){5}$`)

func (m MACAddress) check() error {
	if !macRe.MatchString(string(m)) {
		return fmt.Errorf("%q is not a MAC address like 52:54:00:12:34:56", string(m))
	}
	return nil
}
func (MACAddress) describe() typeSpec {
	return typeSpec{name: "MAC address", schema: stringSchema(map[string]any{"pattern": macRe.String()})}
}

// Canonical returns the address in lower case, as the kernel prints it.
func (m MACAddress) Canonical() string { return strings.ToLower(string(m)) }

// SysctlKey is a sysctl name, dotted or slashed ("net.ipv4.ip_forward", "net/ipv4/ip_forward").
type SysctlKey string

var sysctlKeyRe = regexp.MustCompile(`^[a-z][a-z0-9_]*([./][A-Za-z0-9_-]+)+$`)

func (k SysctlKey) check() error {
	if len(k) > 256 || !sysctlKeyRe.MatchString(string(k)) {
		return fmt.Errorf("%q is not a sysctl name: like net.ipv4.ip_forward (letters, digits, '_', '-', separated by '.' or '/')", string(k))
	}
	if k.ProcPath() == contract.SysctlPath(contract.ModprobeSysctl) {
		// Pointing the kernel's module requests elsewhere would step around the module policy.
		return fmt.Errorf("%s names Ballast's module loader (%s) and is not a setting; use settings.kernel.modules", contract.ModprobeSysctl, contract.ModprobePath)
	}
	return nil
}
func (SysctlKey) describe() typeSpec {
	return typeSpec{name: "sysctl name", schema: stringSchema(map[string]any{"pattern": sysctlKeyRe.String(), "maxLength": 256})}
}

// ProcPath returns the key's file under /proc/sys. Dots separate levels in the dotted form; in the
// slashed form a dot belongs to the name (an interface like eth0.100), as sysctl(8) has it.
func (k SysctlKey) ProcPath() string { return contract.SysctlPath(string(k)) }

// SysctlValue is a sysctl value: one line, words separated by blanks.
type SysctlValue string

func (v SysctlValue) check() error {
	if v == "" || len(v) > 4096 || strings.ContainsAny(string(v), "\n\r") {
		return fmt.Errorf("want 1-4096 bytes on one line")
	}
	return nil
}
func (SysctlValue) describe() typeSpec {
	return typeSpec{name: "string (one line)", schema: stringSchema(map[string]any{"minLength": 1, "maxLength": 4096, "pattern": `^[^\r\n]+$`})}
}

// Lockdown is the kernel lockdown mode.
type Lockdown string

func (l Lockdown) check() error { return checkEnum(string(l), l.describe().enum) }
func (Lockdown) describe() typeSpec {
	return typeSpec{name: "string", enum: []string{"none", "integrity", "confidentiality"}}
}

// ModuleName is a kernel module name.
type ModuleName string

var moduleRe = regexp.MustCompile(`^[A-Za-z0-9_-]{1,55}$`)

func (m ModuleName) check() error {
	if !moduleRe.MatchString(string(m)) {
		return fmt.Errorf("%q is not a module name: 1-55 of letters, digits, '_', '-'", string(m))
	}
	return nil
}
func (ModuleName) describe() typeSpec {
	return typeSpec{name: "module name", schema: stringSchema(map[string]any{"pattern": moduleRe.String()})}
}

// ContainerName names a host or bootstrap container.
type ContainerName string

var nameRe = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_-]{0,62}$`)

func (n ContainerName) check() error { return checkName(string(n)) }
func (ContainerName) describe() typeSpec {
	return typeSpec{name: "name", schema: stringSchema(map[string]any{"pattern": nameRe.String()})}
}

// BundleName names a PKI bundle.
type BundleName string

func (n BundleName) check() error { return checkName(string(n)) }
func (BundleName) describe() typeSpec {
	return typeSpec{name: "name", schema: stringSchema(map[string]any{"pattern": nameRe.String()})}
}

func checkName(n string) error {
	if !nameRe.MatchString(n) {
		return fmt.Errorf("%q is not a name: 1-63 of letters, digits, '_', '-', starting with a letter or digit", n)
	}
	return nil
}

// ImageRef is a container image reference: [registry[:port]/]path[:tag][@digest].
type ImageRef string

// The reference grammar, one piece at a time (as the distribution spec gives it).
var imageRefRe = func() *regexp.Regexp {
	const (
		alnum     = `[a-z0-9]+`
		separator = `(?:[._]|__|[-]+)`
		component = alnum + `(?:` + separator + alnum + `)*`
		domainCmp = `(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])`
		domain    = `(?:` + domainCmp + `(?:\.` + domainCmp + `)*|\[[0-9A-Fa-f:]+\])(?::[0-9]+)?`
		tag       = `[\w][\w.-]{0,127}`
		digest    = `[A-Za-z][A-Za-z0-9]*(?:[-_+.][A-Za-z][A-Za-z0-9]*)*:[0-9A-Fa-f]{32,}`
		name      = `(?:` + domain + `/)?` + component + `(?:/` + component + `)*`
	)
	return regexp.MustCompile(`^(` + name + `)(?::(` + tag + `))?(?:@(` + digest + `))?$`)
}()

// OCIArchivePrefix starts an ImageRef that names an image archive on the host (an OCI image
// layout tarball or a `docker save` tarball) instead of a registry's image.
const OCIArchivePrefix = "oci-archive:"

// Archive returns the path of an oci-archive: reference; ok is false for a registry reference.
func (r ImageRef) Archive() (path string, ok bool) {
	return strings.CutPrefix(string(r), OCIArchivePrefix)
}

func (r ImageRef) check() error {
	if p, ok := r.Archive(); ok {
		if !strings.HasPrefix(p, "/") || path.Clean(p) != p || strings.ContainsFunc(p, func(c rune) bool { return c < ' ' || c == 0x7f }) {
			return fmt.Errorf("%q: an archive is oci-archive:<absolute clean path>, e.g. oci-archive:/run/cidata/admin.tar", string(r))
		}
		return nil
	}
	m := imageRefRe.FindStringSubmatch(string(r))
	if m == nil {
		return fmt.Errorf("%q is not an image reference like registry.example.com/name:tag", string(r))
	}
	if len(m[1]) > 255 {
		return fmt.Errorf("image name is %d bytes, more than the 255 allowed", len(m[1]))
	}
	return nil
}
func (ImageRef) describe() typeSpec {
	return typeSpec{name: "image reference or oci-archive:<path>", schema: stringSchema(map[string]any{"minLength": 1, "maxLength": 1024})}
}

// Base64 is base64-encoded (standard alphabet, padded) data.
type Base64 string

func (b Base64) check() error {
	if _, err := base64.StdEncoding.DecodeString(string(b)); err != nil {
		return fmt.Errorf("not base64: %w", err)
	}
	return nil
}
func (Base64) describe() typeSpec {
	return typeSpec{name: "base64", schema: stringSchema(map[string]any{"contentEncoding": "base64"})}
}

// BootstrapMode says when a bootstrap container runs.
type BootstrapMode string

func (m BootstrapMode) check() error { return checkEnum(string(m), m.describe().enum) }
func (BootstrapMode) describe() typeSpec {
	return typeSpec{name: "string", enum: []string{"off", "once", "always"}}
}

// Capability is a Linux capability in kebab case without the CAP_ prefix.
type Capability string

var capabilities = []string{
	"audit-control", "audit-read", "audit-write", "block-suspend", "bpf", "checkpoint-restore",
	"chown", "dac-override", "dac-read-search", "fowner", "fsetid", "ipc-lock", "ipc-owner", "kill",
	"lease", "linux-immutable", "mac-admin", "mac-override", "mknod", "net-admin",
	"net-bind-service", "net-broadcast", "net-raw", "perfmon", "setfcap", "setgid", "setpcap",
	"setuid", "sys-admin", "sys-boot", "sys-chroot", "sys-module", "sys-nice", "sys-pacct",
	"sys-ptrace", "sys-rawio", "sys-resource", "sys-time", "sys-tty-config", "syslog", "wake-alarm",
}

func (c Capability) check() error { return checkEnum(string(c), capabilities) }

// OCIName is the capability's name in an OCI spec, e.g. CAP_NET_BIND_SERVICE.
func (c Capability) OCIName() string {
	return "CAP_" + strings.ToUpper(strings.ReplaceAll(string(c), "-", "_"))
}
func (Capability) describe() typeSpec {
	return typeSpec{name: "capability", enum: slices.Clone(capabilities)}
}

// RlimitName names a process resource limit.
type RlimitName string

// rlimits maps the setting names to the RLIMIT_ names.
var rlimits = map[string]string{
	"max-address-space": "RLIMIT_AS", "max-core-file-size": "RLIMIT_CORE", "max-cpu-time": "RLIMIT_CPU",
	"max-data-size": "RLIMIT_DATA", "max-file-locks": "RLIMIT_LOCKS", "max-file-size": "RLIMIT_FSIZE",
	"max-locked-memory": "RLIMIT_MEMLOCK", "max-msgqueue-size": "RLIMIT_MSGQUEUE",
	"max-nice-priority": "RLIMIT_NICE", "max-open-files": "RLIMIT_NOFILE",
	"max-pending-signals": "RLIMIT_SIGPENDING", "max-processes": "RLIMIT_NPROC",
	"max-realtime-priority": "RLIMIT_RTPRIO", "max-realtime-timeout": "RLIMIT_RTTIME",
	"max-resident-set": "RLIMIT_RSS", "max-stack-size": "RLIMIT_STACK",
}

func (n RlimitName) check() error {
	if _, ok := rlimits[string(n)]; !ok {
		return checkEnum(string(n), rlimitNames())
	}
	return nil
}
func (RlimitName) describe() typeSpec { return typeSpec{name: "limit name", enum: rlimitNames()} }

// OCIName returns the limit's name in an OCI runtime spec, e.g. RLIMIT_NOFILE.
func (n RlimitName) OCIName() string { return rlimits[string(n)] }

func rlimitNames() []string {
	names := make([]string, 0, len(rlimits))
	for k := range rlimits {
		names = append(names, k)
	}
	slices.Sort(names)
	return names
}

// RlimitValue is a resource limit: a count, or -1 for unlimited. User data and PATCH bodies may
// write "unlimited" for -1.
type RlimitValue int64

// Unlimited is the RlimitValue without a limit.
const Unlimited RlimitValue = -1

func (v RlimitValue) check() error {
	if v < -1 {
		return fmt.Errorf("%d is not a limit: want 0 or more, or -1 for unlimited", int64(v))
	}
	return nil
}

func (v *RlimitValue) decodeTree(x any) error {
	if s, ok := x.(string); ok {
		if s != "unlimited" {
			return fmt.Errorf("expected an integer or \"unlimited\", got %q", s)
		}
		*v = Unlimited
		return nil
	}
	i, ok := asInt(x)
	if !ok {
		return fmt.Errorf("expected an integer or \"unlimited\", got %s", describeValue(x))
	}
	*v = RlimitValue(i)
	return nil
}
func (RlimitValue) describe() typeSpec {
	return typeSpec{name: "integer or \"unlimited\"", schema: map[string]any{"oneOf": []any{
		map[string]any{"type": "integer", "minimum": -1},
		map[string]any{"const": "unlimited"}}}}
}

// LogLineSize is the longest container log line in bytes, or -1 for no limit.
type LogLineSize int64

func (n LogLineSize) check() error {
	if n == 0 {
		return errors.New("0 is not a size: want a positive number, or -1 for no limit")
	}
	return nil
}
func (LogLineSize) describe() typeSpec {
	return typeSpec{name: "integer", schema: map[string]any{"type": "integer", "not": map[string]any{"const": 0}}}
}

// HostsEntry is one line of /etc/hosts: an address and its names. It is written as a pair
// [address, [names...]], as Bottlerocket's user data has it.
type HostsEntry struct {
	Address IPAddress
	Names   []Hostname
}

const maxHostsNames = 16

func (e HostsEntry) check() error {
	if err := e.Address.check(); err != nil {
		return err
	}
	if len(e.Names) == 0 || len(e.Names) > maxHostsNames {
		return fmt.Errorf("%s: want 1-%d names, got %d", e.Address, maxHostsNames, len(e.Names))
	}
	for _, n := range e.Names {
		if err := n.check(); err != nil {
			return fmt.Errorf("%s: %w", e.Address, err)
		}
	}
	return nil
}

func (e *HostsEntry) decodeTree(x any) error {
	pair, ok := asList(x)
	if !ok || len(pair) != 2 {
		return fmt.Errorf("expected a pair [address, [names...]], got %s", describeValue(x))
	}
	addr, ok := pair[0].(string)
	if !ok {
		return fmt.Errorf("address: expected string, got %s", describeValue(pair[0]))
	}
	names, ok := asList(pair[1])
	if !ok {
		return fmt.Errorf("names: expected a list of strings, got %s", describeValue(pair[1]))
	}
	if len(names) > maxHostsNames {
		return fmt.Errorf("%s: want 1-%d names, got %d", addr, maxHostsNames, len(names))
	}
	e.Address, e.Names = IPAddress(addr), make([]Hostname, 0, len(names))
	for _, n := range names {
		s, ok := n.(string)
		if !ok {
			return fmt.Errorf("names: expected a list of strings, got an item of type %s", describeValue(n))
		}
		e.Names = append(e.Names, Hostname(s))
	}
	return nil
}

// MarshalJSON writes the entry as its pair.
func (e HostsEntry) MarshalJSON() ([]byte, error) {
	names := e.Names
	if names == nil {
		names = []Hostname{}
	}
	return json.Marshal([]any{e.Address, names})
}
func (HostsEntry) describe() typeSpec {
	return typeSpec{name: "[address, [names]]", schema: map[string]any{
		"type": "array", "minItems": 2, "maxItems": 2,
		"prefixItems": []any{
			IPAddress("").describe().schema,
			map[string]any{"type": "array", "minItems": 1, "maxItems": maxHostsNames, "items": Hostname("").describe().schema},
		},
		"items": false,
	}}
}

// ListenAddress is a TCP address to listen on, host:port; an empty host means every address.
type ListenAddress string

func (a ListenAddress) check() error {
	host, port, err := net.SplitHostPort(string(a))
	if err != nil {
		return fmt.Errorf("%q is not host:port: %w", string(a), err)
	}
	// Port 0 lets the kernel pick one, which only tests have a use for.
	if n, err := strconv.Atoi(port); err != nil || n < 0 || n > 65535 {
		return fmt.Errorf("%q: port %q is not 0-65535", string(a), port)
	}
	if host == "" {
		return nil
	}
	if _, err := parseIP(host); err == nil {
		return nil
	}
	if err := CheckHostname(host); err != nil {
		return fmt.Errorf("%q: host is neither an address nor a host name", string(a))
	}
	return nil
}
func (ListenAddress) describe() typeSpec {
	return typeSpec{name: "host:port", schema: stringSchema(map[string]any{"pattern": `^.*:[0-9]{1,5}$`, "maxLength": 300})}
}

// PEMCerts is one or more PEM-encoded X.509 certificates.
type PEMCerts string

func (p PEMCerts) check() error {
	_, err := ParseCertificates([]byte(p))
	return err
}
func (PEMCerts) describe() typeSpec {
	return typeSpec{name: "PEM certificates", schema: stringSchema(map[string]any{"pattern": "-----BEGIN CERTIFICATE-----"})}
}

// ParseCertificates parses a PEM bundle of certificates; anything else in it is an error.
func ParseCertificates(b []byte) ([]*x509.Certificate, error) {
	var certs []*x509.Certificate
	for n := 1; ; n++ {
		var block *pem.Block
		block, b = pem.Decode(b)
		if block == nil {
			break
		}
		if block.Type != "CERTIFICATE" {
			return nil, fmt.Errorf("PEM block %d is %q, want CERTIFICATE", n, block.Type)
		}
		c, err := x509.ParseCertificate(block.Bytes)
		if err != nil {
			return nil, fmt.Errorf("PEM block %d: %w", n, err)
		}
		certs = append(certs, c)
	}
	if strings.TrimSpace(string(b)) != "" {
		return nil, errors.New("not PEM, or text after the last PEM block")
	}
	if len(certs) == 0 {
		return nil, errors.New("no PEM certificate")
	}
	return certs, nil
}

// PEMKey is one PEM-encoded private key (PKCS #8, SEC 1 EC or PKCS #1 RSA).
type PEMKey string

func (p PEMKey) check() error {
	block, rest := pem.Decode([]byte(p))
	if block == nil {
		return errors.New("no PEM private key")
	}
	if strings.TrimSpace(string(rest)) != "" {
		return errors.New("text after the PEM private key")
	}
	var err error
	switch block.Type {
	case "PRIVATE KEY":
		_, err = x509.ParsePKCS8PrivateKey(block.Bytes)
	case "EC PRIVATE KEY":
		_, err = x509.ParseECPrivateKey(block.Bytes)
	case "RSA PRIVATE KEY":
		_, err = x509.ParsePKCS1PrivateKey(block.Bytes)
	default:
		return fmt.Errorf("PEM block is %q, want a private key", block.Type)
	}
	if err != nil {
		return fmt.Errorf("private key: %w", err)
	}
	return nil
}
func (PEMKey) describe() typeSpec {
	return typeSpec{name: "PEM private key", schema: stringSchema(map[string]any{"pattern": "-----BEGIN [A-Z ]*PRIVATE KEY-----"})}
}

// CertBundle is a base64-encoded PEM bundle of certificates, as settings.pki.<bundle>.data has it.
type CertBundle string

func (c CertBundle) check() error {
	_, err := c.Certificates()
	return err
}

// PEM returns the decoded bundle.
func (c CertBundle) PEM() ([]byte, error) {
	b, err := base64.StdEncoding.DecodeString(string(c))
	if err != nil {
		return nil, fmt.Errorf("not base64: %w", err)
	}
	return b, nil
}

// Certificates returns the bundle's certificates.
func (c CertBundle) Certificates() ([]*x509.Certificate, error) {
	b, err := c.PEM()
	if err != nil {
		return nil, err
	}
	return ParseCertificates(b)
}
func (CertBundle) describe() typeSpec {
	return typeSpec{name: "base64 of PEM certificates", schema: stringSchema(map[string]any{"contentEncoding": "base64"})}
}

func checkEnum(v string, allowed []string) error {
	if slices.Contains(allowed, v) {
		return nil
	}
	return fmt.Errorf("%q is not one of %s", v, strings.Join(allowed, ", "))
}

// RegistryHost names a registry as image references do: host or host:port, or "*" for every
// registry (mirrors only).
type RegistryHost string

func (h RegistryHost) check() error {
	s := string(h)
	if s == "*" {
		return nil
	}
	host, port, err := net.SplitHostPort(s)
	if err != nil {
		host, port = s, ""
	}
	if port != "" {
		if n, err := strconv.Atoi(port); err != nil || n < 1 || n > 65535 {
			return fmt.Errorf("%q: port %q is not 1-65535", s, port)
		}
	}
	if _, err := netip.ParseAddr(strings.Trim(host, "[]")); err == nil {
		return nil
	}
	if err := CheckHostname(host); err != nil {
		return fmt.Errorf("%q is not a registry host[:port]: %w", s, err)
	}
	return nil
}
func (RegistryHost) describe() typeSpec {
	return typeSpec{name: "registry host[:port]", schema: stringSchema(map[string]any{"minLength": 1, "maxLength": 261})}
}

// RegistryEndpoint is a mirror's base URL, http:// or https://, without a path beyond "/".
type RegistryEndpoint string

func (e RegistryEndpoint) check() error {
	u, err := url.Parse(string(e))
	if err != nil {
		return fmt.Errorf("%q is not a URL: %w", string(e), err)
	}
	if u.Scheme != "http" && u.Scheme != "https" || u.Host == "" {
		return fmt.Errorf("%q: want http(s)://host[:port]", string(e))
	}
	if u.User != nil || u.RawQuery != "" || u.Fragment != "" {
		return fmt.Errorf("%q: no user, query or fragment (credentials go in settings.container-registry.credentials)", string(e))
	}
	return nil
}
func (RegistryEndpoint) describe() typeSpec {
	return typeSpec{name: "URL", schema: stringSchema(map[string]any{"format": "uri", "maxLength": 1024})}
}
