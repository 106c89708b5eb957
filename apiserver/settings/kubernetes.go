package settings

import (
	"errors"
	"fmt"
	"net/url"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/ballast-os/ballast/contract"
)

// Kubernetes is settings.kubernetes: how the node's kubelet joins its cluster. The names follow
// Bottlerocket's settings.kubernetes where the meaning is the same. An image without a kubelet
// stores these keys and renders nothing from them.
type Kubernetes struct {
	APIServer          *APIServerURL                        `json:"api-server,omitempty" max:"2048" doc:"URL of the cluster's API server, https://host[:port]. Unset: the kubelet runs standalone (no cluster, no pods), waiting for it."`
	ClusterName        *ClusterName                         `json:"cluster-name,omitempty" doc:"The cluster's name, in the kubeconfigs. Unset: kubernetes."`
	ClusterCertificate *CertBundle                          `json:"cluster-certificate,omitempty" max:"65536" doc:"Base64-encoded PEM of the cluster's CA: the API server's certificate is checked against it, and clients of the kubelet (the API server) must have a certificate it issued. Unset: the API server is checked against the host's trust store and the kubelet accepts no client certificates."`
	BootstrapToken     *BootstrapToken                      `json:"bootstrap-token,omitempty" secret:"true" doc:"Bootstrap token (<id>.<secret>, 6 and 16 of a-z0-9) the kubelet trades for its client certificate on its first join (TLS bootstrapping). The certificate persists on /local, so the token is not needed again."`
	ClusterDNSIP       ClusterDNSIPs                        `json:"cluster-dns-ip,omitzero" max:"3" doc:"Address of the cluster's DNS service, or a list of them, given to pods."`
	ClusterDomain      *DomainName                          `json:"cluster-domain,omitempty" doc:"The cluster's DNS domain, searched by pods. Unset: cluster.local."`
	NodeLabels         map[LabelKey]LabelValue              `json:"node-labels,omitempty" max:"64" key:"label" doc:"Labels the node registers with, e.g. \"example.com/role\" = \"edge\". Under kubernetes.io and k8s.io only the labels a kubelet may set on itself are accepted."`
	NodeTaints         map[LabelKey][]Taint                 `json:"node-taints,omitempty" max:"32" key:"key" doc:"Taints the node registers with: per key a list of \"value:Effect\" (or \":Effect\"), Effect one of NoSchedule, PreferNoSchedule, NoExecute, e.g. \"dedicated\" = [\"gpu:NoSchedule\"]."`
	MaxPods            *int64                               `json:"max-pods,omitempty" min:"1" max:"10000" doc:"Most pods the node runs. Unset: 110."`
	PodPidsLimit       *int64                               `json:"pod-pids-limit,omitempty" min:"16" max:"4194304" doc:"Most processes and threads the containers of one pod may run together, so a fork bomb in a pod stays in it. Unset: 4096."`
	EvictionHard       map[EvictionSignal]EvictionThreshold `json:"eviction-hard,omitempty" max:"8" key:"signal" doc:"Hard eviction thresholds by signal, a quantity or a percentage, e.g. \"memory.available\" = \"100Mi\". Unset: the kubelet's defaults."`
	KubeReserved       *Reserved                            `json:"kube-reserved,omitempty" doc:"Resources set aside for the kubelet and the container runtime, out of the node's allocatable."`
	SystemReserved     *Reserved                            `json:"system-reserved,omitempty" doc:"Resources set aside for the OS (init, apiserver, kernel), out of the node's allocatable."`
	ProviderID         *ProviderID                          `json:"provider-id,omitempty" max:"256" doc:"The node's ID at its cloud provider, e.g. aws:///us-east-1a/i-0123456789abcdef0."`
	CloudProvider      *CloudProvider                       `json:"cloud-provider,omitempty" doc:"external: a cloud controller manager initialises the node (the kubelet taints it until then). Unset: none."`
	HostnameOverride   *NodeName                            `json:"hostname-override,omitempty" doc:"The node's name in the cluster. Unset: the host name, in lower case."`
	NodeIP             *IPAddress                           `json:"node-ip,omitempty" doc:"The address the node reports to the cluster. Unset: the kubelet picks the address of its host name, else of the default route's interface."`
	ShutdownGrace      *GraceDuration                       `json:"shutdown-grace-period,omitempty" doc:"How long a shutdown or reboot waits for pods to stop (graceful node shutdown), at most 90s. Unset: 30s; 0s turns graceful node shutdown off."`
	ShutdownGraceCrit  *GraceDuration                       `json:"shutdown-grace-period-for-critical-pods,omitempty" doc:"The part of shutdown-grace-period kept for critical pods, which stop last. Unset: 10s (0s when shutdown-grace-period is below it)."`
	AllowPrivileged    *bool                                `json:"allow-privileged-pods,omitempty" doc:"Let pods run privileged containers and share the host's PID or IPC namespace (the node's pod policy refuses them otherwise). Read at each pod, no restart. Unset: false."`
	RuntimeClasses     *RuntimeClasses                      `json:"runtime-classes,omitempty" doc:"Container runtimes offered to pods as CRI runtime handlers, beside runc."`
	DefaultCNI         *DefaultCNI                          `json:"default-cni,omitempty" doc:"Ballast's own pod network (bridge, host-local, portmap, loopback), for clusters without a CNI daemonset."`
}

// Reserved is settings.kubernetes.kube-reserved and .system-reserved.
type Reserved struct {
	CPU              *Quantity `json:"cpu,omitempty" doc:"CPU, e.g. \"100m\" (a tenth of a CPU) or \"1\"."`
	Memory           *Quantity `json:"memory,omitempty" doc:"Memory, e.g. \"256Mi\"."`
	EphemeralStorage *Quantity `json:"ephemeral-storage,omitempty" doc:"Local storage on /local, e.g. \"1Gi\"."`
}

// RuntimeClasses is settings.kubernetes.runtime-classes.
type RuntimeClasses struct {
	GVisor *bool `json:"gvisor,omitempty" doc:"Register gVisor (runsc, systrap platform) as the CRI runtime handler runsc, for a RuntimeClass with handler: runsc. Only where the image has runsc; elsewhere it is stored only. Unset: false."`
}

// DefaultCNI is settings.kubernetes.default-cni.
type DefaultCNI struct {
	Enabled *bool             `json:"enabled,omitempty" doc:"Write the default pod network configuration. Turn it off when the cluster's CNI daemonset writes its own. Unset: true."`
	Subnet  *RouteDestination `json:"subnet,omitempty" doc:"The pods' subnet on this node (host-local addresses, masqueraded behind the node). Unset: 10.88.0.0/16. Every node of a cluster using the default network needs its own."`
}

// Defaults of settings.kubernetes that code elsewhere (rendering, docs) needs by name.
const (
	DefaultClusterName     = "kubernetes"
	DefaultClusterDomain   = "cluster.local"
	DefaultMaxPods         = 110
	DefaultPodPidsLimit    = 4096
	DefaultShutdownGrace   = 30 * time.Second
	DefaultShutdownCrit    = 10 * time.Second
	DefaultPodSubnet       = "10.88.0.0/16"
	maxKubernetesNameBytes = 100
)

// APIServerURL is the cluster API server's URL: https, a host, an optional port and path.
type APIServerURL string

func (u APIServerURL) check() error {
	s := string(u)
	if strings.ContainsFunc(s, func(r rune) bool { return r <= ' ' || r == 0x7f }) {
		return fmt.Errorf("%q contains spaces or control characters", s)
	}
	p, err := url.Parse(s)
	if err != nil {
		return fmt.Errorf("%q is not a URL: %w", s, err)
	}
	if p.Scheme != "https" || p.Host == "" || p.Opaque != "" {
		// The bootstrap token and the node's credentials go to it: never in clear text.
		return fmt.Errorf("%q: want https://host[:port]", s)
	}
	if p.User != nil || p.RawQuery != "" || p.ForceQuery || p.Fragment != "" {
		return fmt.Errorf("%q: an API server URL has no user, query or fragment", s)
	}
	if port := p.Port(); port != "" {
		if n, err := strconv.Atoi(port); err != nil || n < 1 || n > 65535 {
			return fmt.Errorf("%q: port %q is not 1-65535", s, port)
		}
	}
	return nil
}
func (APIServerURL) describe() typeSpec {
	return typeSpec{name: "https URL", schema: stringSchema(map[string]any{"format": "uri", "pattern": "^https://"})}
}

// ClusterName names the cluster in the kubeconfigs.
type ClusterName string

var clusterNameRe = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_.-]{0,99}$`)

func (n ClusterName) check() error {
	if !clusterNameRe.MatchString(string(n)) {
		return fmt.Errorf("%q is not a cluster name: 1-%d of letters, digits, '_', '.', '-', starting with a letter or digit", string(n), maxKubernetesNameBytes)
	}
	return nil
}
func (ClusterName) describe() typeSpec {
	return typeSpec{name: "name", schema: stringSchema(map[string]any{"pattern": clusterNameRe.String()})}
}

// BootstrapToken is a Kubernetes bootstrap token, <6 of a-z0-9>.<16 of a-z0-9>.
type BootstrapToken string

var bootstrapTokenRe = regexp.MustCompile(`^[a-z0-9]{6}\.[a-z0-9]{16}$`)

func (t BootstrapToken) check() error {
	if !bootstrapTokenRe.MatchString(string(t)) {
		// The value is a secret: the error does not repeat it.
		return errors.New("not a bootstrap token: want <id>.<secret>, 6 and 16 of a-z and 0-9")
	}
	return nil
}
func (BootstrapToken) describe() typeSpec {
	return typeSpec{name: "bootstrap token", schema: stringSchema(map[string]any{"pattern": bootstrapTokenRe.String()})}
}

// ClusterDNSIPs is one address or a list of them; user data may give a single string, as
// Bottlerocket's does.
type ClusterDNSIPs []IPAddress

func (l *ClusterDNSIPs) decodeTree(x any) error {
	if s, ok := x.(string); ok {
		*l = ClusterDNSIPs{IPAddress(s)}
		return nil
	}
	items, ok := asList(x)
	if !ok {
		return fmt.Errorf("expected an address or a list of addresses, got %s", describeValue(x))
	}
	out := make(ClusterDNSIPs, 0, len(items))
	for i, it := range items {
		s, ok := it.(string)
		if !ok {
			return fmt.Errorf("item %d: expected string, got %s", i+1, describeValue(it))
		}
		out = append(out, IPAddress(s))
	}
	*l = out
	return nil
}
func (ClusterDNSIPs) describe() typeSpec {
	ip := IPAddress("").describe().schema
	return typeSpec{name: "IP address or list of them", schema: map[string]any{"oneOf": []any{
		ip, map[string]any{"type": "array", "items": ip, "minItems": 1, "maxItems": 3}}}}
}

// LabelKey is a Kubernetes label (or taint) key: [prefix/]name, the prefix a DNS subdomain of at
// most 253 bytes, the name 1-63 of alphanumerics, '-', '_', '.', starting and ending alphanumeric.
type LabelKey string

var labelNameRe = regexp.MustCompile(`^[A-Za-z0-9]([A-Za-z0-9_.-]{0,61}[A-Za-z0-9])?$`)

func (k LabelKey) check() error {
	prefix, name, hasPrefix := strings.Cut(string(k), "/")
	if !hasPrefix {
		prefix, name = "", string(k)
	}
	if hasPrefix {
		if err := checkDNSSubdomain(prefix); err != nil {
			return fmt.Errorf("%q: prefix: %w", string(k), err)
		}
	}
	if !labelNameRe.MatchString(name) {
		return fmt.Errorf("%q: name %q is not 1-63 of letters, digits, '-', '_', '.', starting and ending with a letter or digit", string(k), name)
	}
	return nil
}

// Prefix returns the key's prefix, "" when it has none.
func (k LabelKey) Prefix() string {
	p, _, ok := strings.Cut(string(k), "/")
	if !ok {
		return ""
	}
	return p
}
func (LabelKey) describe() typeSpec {
	return typeSpec{name: "label key ([prefix/]name)", schema: stringSchema(map[string]any{"minLength": 1, "maxLength": 317})}
}

// checkDNSSubdomain is RFC 1123's subdomain in lower case, as Kubernetes wants prefixes.
func checkDNSSubdomain(s string) error {
	if err := CheckHostname(s); err != nil {
		return err
	}
	if strings.ToLower(s) != s {
		return fmt.Errorf("%q has upper case letters", s)
	}
	return nil
}

// LabelValue is a label's value: empty, or like a label key's name.
type LabelValue string

func (v LabelValue) check() error {
	if v != "" && !labelNameRe.MatchString(string(v)) {
		return fmt.Errorf("%q is not a label value: empty, or 1-63 of letters, digits, '-', '_', '.', starting and ending with a letter or digit", string(v))
	}
	return nil
}
func (LabelValue) describe() typeSpec {
	return typeSpec{name: "label value", schema: stringSchema(map[string]any{"maxLength": 63, "pattern": `^([A-Za-z0-9]([A-Za-z0-9_.-]{0,61}[A-Za-z0-9])?)?$`})}
}

// kubeletLabelNamespaces are the kubernetes.io and k8s.io prefixes under which a kubelet may set
// any label on its own node; kubeletLabels are the single labels it may set besides. Anything
// else there is refused by the kubelet at start (and by the NodeRestriction admission), so the
// setting refuses it first.
var (
	kubeletLabelNamespaces = []string{"kubelet.kubernetes.io", "node.kubernetes.io"}
	kubeletLabels          = []string{
		"kubernetes.io/hostname", "kubernetes.io/instance-type", "kubernetes.io/os", "kubernetes.io/arch",
		"beta.kubernetes.io/instance-type", "beta.kubernetes.io/os", "beta.kubernetes.io/arch",
		"failure-domain.beta.kubernetes.io/zone", "failure-domain.beta.kubernetes.io/region",
		"topology.kubernetes.io/zone", "topology.kubernetes.io/region",
	}
)

// checkNodeLabel refuses a label in the kubernetes.io or k8s.io namespaces the kubelet may not set.
func checkNodeLabel(k LabelKey) error {
	p := k.Prefix()
	reserved := func(ns string) bool { return p == ns || strings.HasSuffix(p, "."+ns) }
	if !reserved("kubernetes.io") && !reserved("k8s.io") {
		return nil
	}
	if slices.Contains(kubeletLabels, string(k)) {
		return nil
	}
	for _, ns := range kubeletLabelNamespaces {
		if p == ns || strings.HasSuffix(p, "."+ns) {
			return nil
		}
	}
	return fmt.Errorf("%q is in the kubernetes.io/k8s.io namespaces, where a kubelet may set only labels under %s and %s",
		string(k), strings.Join(kubeletLabelNamespaces, ", "), strings.Join(kubeletLabels, ", "))
}

// Taint is one taint of a key: "value:Effect", the value possibly empty.
type Taint string

var taintEffects = []string{"NoSchedule", "PreferNoSchedule", "NoExecute"}

func (t Taint) check() error {
	_, _, err := t.Split()
	return err
}

// Split returns the taint's value and effect.
func (t Taint) Split() (value, effect string, err error) {
	i := strings.LastIndexByte(string(t), ':')
	if i < 0 {
		return "", "", fmt.Errorf("%q is not value:Effect (Effect one of %s)", string(t), strings.Join(taintEffects, ", "))
	}
	value, effect = string(t)[:i], string(t)[i+1:]
	if err := LabelValue(value).check(); err != nil {
		return "", "", fmt.Errorf("%q: value: %w", string(t), err)
	}
	if !slices.Contains(taintEffects, effect) {
		return "", "", fmt.Errorf("%q: effect %q is not one of %s", string(t), effect, strings.Join(taintEffects, ", "))
	}
	return value, effect, nil
}
func (Taint) describe() typeSpec {
	return typeSpec{name: "value:Effect", schema: stringSchema(map[string]any{"pattern": `^[A-Za-z0-9_.-]*:(NoSchedule|PreferNoSchedule|NoExecute)$`})}
}

// EvictionSignal is a kubelet eviction signal.
type EvictionSignal string

var evictionSignals = []string{
	"memory.available", "nodefs.available", "nodefs.inodesFree", "imagefs.available", "imagefs.inodesFree",
	"containerfs.available", "containerfs.inodesFree", "pid.available",
}

func (s EvictionSignal) check() error { return checkEnum(string(s), evictionSignals) }
func (EvictionSignal) describe() typeSpec {
	return typeSpec{name: "eviction signal", enum: slices.Clone(evictionSignals)}
}

// EvictionThreshold is a quantity ("100Mi", "1000") or a percentage ("10%", "2.5%") of the
// signal's capacity.
type EvictionThreshold string

func (t EvictionThreshold) check() error {
	if p, ok := strings.CutSuffix(string(t), "%"); ok {
		f, err := strconv.ParseFloat(p, 64)
		if err != nil || !percentRe.MatchString(p) || f <= 0 || f > 100 {
			return fmt.Errorf("%q is not a percentage above 0 and at most 100", string(t))
		}
		return nil
	}
	if err := Quantity(t).check(); err != nil {
		return fmt.Errorf("neither a percentage nor a quantity: %w", err)
	}
	return nil
}

var percentRe = regexp.MustCompile(`^[0-9]+(\.[0-9]+)?$`)

func (EvictionThreshold) describe() typeSpec {
	return typeSpec{name: "quantity or percentage", schema: stringSchema(map[string]any{"minLength": 1, "maxLength": 64})}
}

// Quantity is a Kubernetes resource quantity, not negative: a decimal number with a binary
// (Ki Mi Gi Ti Pi Ei) or decimal (m k M G T P E) suffix, or an exponent (e3).
type Quantity string

var quantityRe = regexp.MustCompile(`^([0-9]+(\.[0-9]*)?|\.[0-9]+)(Ki|Mi|Gi|Ti|Pi|Ei|m|k|M|G|T|P|E|[eE][+-]?[0-9]+)?$`)

func (q Quantity) check() error {
	if len(q) > 64 || !quantityRe.MatchString(string(q)) {
		return fmt.Errorf("%q is not a quantity like 100m, 1.5, 256Mi or 2G", string(q))
	}
	return nil
}
func (Quantity) describe() typeSpec {
	return typeSpec{name: "quantity", schema: stringSchema(map[string]any{"pattern": quantityRe.String(), "maxLength": 64})}
}

// ProviderID is a node's ID at its cloud provider: <provider>://<id>.
type ProviderID string

var providerIDRe = regexp.MustCompile(`^[a-z][a-z0-9+.-]*://[^\s]*$`)

func (p ProviderID) check() error {
	if !providerIDRe.MatchString(string(p)) {
		return fmt.Errorf("%q is not a provider ID like aws:///us-east-1a/i-0123456789abcdef0", string(p))
	}
	return nil
}
func (ProviderID) describe() typeSpec {
	return typeSpec{name: "provider ID", schema: stringSchema(map[string]any{"pattern": providerIDRe.String()})}
}

// CloudProvider is the kubelet's --cloud-provider: only external is left in Kubernetes 1.31.
type CloudProvider string

func (c CloudProvider) check() error { return checkEnum(string(c), c.describe().enum) }
func (CloudProvider) describe() typeSpec {
	return typeSpec{name: "string", enum: []string{"external"}}
}

// NodeName is a node's name: a DNS subdomain in lower case.
type NodeName string

func (n NodeName) check() error { return checkDNSSubdomain(string(n)) }
func (NodeName) describe() typeSpec {
	return typeSpec{name: "node name (lower-case DNS name)", schema: stringSchema(map[string]any{"format": "hostname", "pattern": "^[a-z0-9.-]+$", "maxLength": MaxHostnameBytes})}
}

// GraceDuration is a duration as Go and the kubelet write it ("30s", "1m30s"), 0 to MaxGrace.
type GraceDuration string

// MaxGrace bounds the grace periods: it is logind's InhibitDelayMaxUSec as the system init
// answers it (contract.LogindInhibitDelayMax). A longer period makes the kubelet try to raise
// that maximum through systemd, which Ballast does not have, and its graceful shutdown stays off.
const MaxGrace = contract.LogindInhibitDelayMax

func (d GraceDuration) check() error {
	_, err := d.Duration()
	return err
}

// Duration returns the parsed duration.
func (d GraceDuration) Duration() (time.Duration, error) {
	v, err := time.ParseDuration(string(d))
	if err != nil {
		return 0, fmt.Errorf("%q is not a duration like 30s or 1m30s", string(d))
	}
	if v < 0 || v > MaxGrace {
		return 0, fmt.Errorf("%q is not between 0s and %s", string(d), MaxGrace)
	}
	if v%time.Second != 0 {
		return 0, fmt.Errorf("%q is not a whole number of seconds", string(d))
	}
	return v, nil
}
func (GraceDuration) describe() typeSpec {
	return typeSpec{name: "duration", schema: stringSchema(map[string]any{"pattern": `^([0-9]+(h|m|s))+$`})}
}

// check holds the rules between the keys of settings.kubernetes and its node labels' namespaces.
func (k Kubernetes) check() error {
	for _, key := range sortedMapKeys(k.NodeLabels) {
		if err := checkNodeLabel(key); err != nil {
			return keyErr([]string{Prefix, "kubernetes", "node-labels", string(key)}, err)
		}
	}
	for _, key := range sortedMapKeys(k.NodeTaints) {
		if len(k.NodeTaints[key]) == 0 {
			return keyErr([]string{Prefix, "kubernetes", "node-taints", string(key)}, errors.New("want at least one value:Effect"))
		}
	}
	return nil
}

// checkKubernetes holds the rules that need both grace periods, which may arrive in two patches.
func (s Settings) checkKubernetes() error {
	k := s.Kubernetes
	if k == nil {
		return nil
	}
	grace, crit := k.ShutdownGrace.orDefault(DefaultShutdownGrace), k.ShutdownGraceCrit.orDefault(DefaultShutdownCrit)
	if k.ShutdownGraceCrit != nil && crit > grace {
		return keyErr([]string{Prefix, "kubernetes", "shutdown-grace-period-for-critical-pods"},
			fmt.Errorf("%s is longer than shutdown-grace-period (%s)", crit, grace))
	}
	return nil
}

func (d *GraceDuration) orDefault(def time.Duration) time.Duration {
	if d == nil {
		return def
	}
	v, err := d.Duration()
	if err != nil {
		return def
	}
	return v
}

// ShutdownGracePeriods returns the kubelet's shutdownGracePeriod and
// shutdownGracePeriodCriticalPods: the settings, else the defaults; the critical pods' share is
// cut to the whole period when only the period was set below the default share.
func (k *Kubernetes) ShutdownGracePeriods() (grace, critical time.Duration) {
	if k == nil {
		return DefaultShutdownGrace, DefaultShutdownCrit
	}
	grace, critical = k.ShutdownGrace.orDefault(DefaultShutdownGrace), k.ShutdownGraceCrit.orDefault(DefaultShutdownCrit)
	if critical > grace {
		critical = grace
	}
	return grace, critical
}
