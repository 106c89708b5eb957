package render

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	"github.com/BurntSushi/toml"
	"go.yaml.in/yaml/v2"

	"github.com/ballast-os/ballast/apiserver/settings"
	"github.com/ballast-os/ballast/contract"
	"github.com/ballast-os/ballast/init/harden"
)

// Node is what the image offers a Kubernetes node. The renderer writes the kubelet's files, the
// CRI part of containerd's configuration and the kubelet's sysctls only in an image with a
// kubelet; elsewhere settings.kubernetes is stored and nothing more.
type Node struct {
	// Kubelet: the image runs a kubelet, and its containerd has the CRI plugin (the k8s variant
	// builds them together: the containerd-cri component).
	Kubelet bool
	// GVisor: runsc and its containerd shim are in the image, so the runsc runtime handler can
	// be offered when settings.kubernetes.runtime-classes.gvisor asks for it.
	GVisor bool
}

// DetectNode reads what the image at root offers from the files it has: the kubelet's binary,
// runsc and its shim. The files are the truth; image.json need not say more.
func DetectNode(root string) Node {
	has := func(p string) bool {
		fi, err := os.Stat(filepath.Join(root, p))
		return err == nil && fi.Mode().IsRegular()
	}
	return Node{
		Kubelet: has(contract.KubeletPath),
		GVisor:  has(contract.RunscPath) && has(contract.RunscShimPath),
	}
}

func withKubelet(n Node) bool    { return n.Kubelet }
func withoutKubelet(n Node) bool { return !n.Kubelet }

// Paths the renderer writes for the node, beside the contract's.
const (
	// CNIConfigFile is Ballast's default pod network. CRI takes the first file of CNIConfigDir
	// in name order, so a daemonset's file (usually 10-...) sorts before it.
	CNIConfigFile = contract.CNIConfigDir + "/90-ballast-pods.conflist"
	// CRIRegistryDir holds a hosts.toml per registry (mirrors, CAs) for CRI's pulls; containerd
	// reads it at each pull.
	CRIRegistryDir = "/etc/containerd/certs.d"
	// CRIRegistryCA is the trusted settings.pki bundles, named by the hosts.toml files.
	CRIRegistryCA = CRIRegistryDir + "/ballast-ca.pem"
	// RunscConfig is the runsc shim's options: the systrap platform (no KVM is assumed).
	RunscConfig = "/etc/containerd/runsc.toml"
	// PodNetworkBridge is the default pod network's bridge.
	PodNetworkBridge = "cni0"
	// KubeletFlagsVar is the KubeletEnv variable the system init appends to the kubelet's
	// arguments (contract.Service.ArgsEnv).
	KubeletFlagsVar = contract.KubeletFlagsVar
)

// Ports of the node's services.
const (
	KubeletPort        = 10250 // the kubelet's API, for the API server (logs, exec, metrics)
	KubeletHealthzPort = 10248 // on loopback: contract.KubeletHealthzURL
	CRIStreamPort      = 10010 // on loopback
)

// NodeListeners are the listening sockets of a Kubernetes node's own services, which the
// hardening report accepts. Pods on the host's network add theirs, which it reports.
func NodeListeners() []contract.Listener {
	return []contract.Listener{
		{Proto: "tcp", Port: KubeletPort, Who: "kubelet"}, {Proto: "tcp6", Port: KubeletPort, Who: "kubelet"},
		{Proto: "tcp", Port: KubeletHealthzPort, Who: "kubelet healthz, loopback"},
		{Proto: "tcp", Port: CRIStreamPort, Who: "CRI streaming, loopback"},
	}
}

// Actions of the node.
const (
	// ActionKubeletSysctl writes the sysctls the kubelet's protectKernelDefaults checks and pods'
	// networking needs, under settings.kernel.sysctl.
	ActionKubeletSysctl = "kubelet-sysctl"
	// ActionCRIRegistry writes CRIRegistryDir from the mirrors and the trusted CA bundles.
	ActionCRIRegistry = "cri-registry-hosts"
)

// KubeletSysctls are the kernel settings a kubelet node needs: the values kubelet 1.31 checks with
// protectKernelDefaults (it refuses to start when one differs; pkg/kubelet/cm's
// setupKernelTunables), IPv4 forwarding for pods, and bridged pod traffic through iptables, which
// kube-proxy's rules need. settings.kernel.sysctl overrides them key by key.
func KubeletSysctls() [][2]string {
	return [][2]string{
		{"vm.overcommit_memory", "1"},
		{"vm.panic_on_oom", "0"},
		{"kernel.panic", "10"},
		{"kernel.panic_on_oops", "1"},
		{"kernel.keys.root_maxkeys", "1000000"},
		{"kernel.keys.root_maxbytes", "25000000"},
		{"net.ipv4.ip_forward", "1"},
		{"net.bridge.bridge-nf-call-iptables", "1"},
		{"net.bridge.bridge-nf-call-ip6tables", "1"},
	}
}

// kubeletSysctls returns KubeletSysctls without the keys settings.kernel.sysctl sets.
func kubeletSysctls(s settings.Settings) [][2]string {
	var out [][2]string
	for _, kv := range KubeletSysctls() {
		overridden := false
		if s.Kernel != nil {
			for k := range s.Kernel.Sysctl {
				if k.ProcPath() == contract.SysctlPath(kv[0]) {
					overridden = true
				}
			}
		}
		if !overridden {
			out = append(out, kv)
		}
	}
	return out
}

// kubeletSysctl is ActionKubeletSysctl. br_netfilter's keys appear once the boot modules are
// loaded: a missing key waits for them once.
func (r *Renderer) kubeletSysctl(ctx context.Context, s settings.Settings) error {
	if r.ProcDir == "" {
		return nil
	}
	k := harden.Kernel{Proc: r.ProcDir}
	write := func(only []string) (missing []string, err error) {
		var errs []error
		for _, kv := range kubeletSysctls(s) {
			if only != nil && !slices.Contains(only, kv[0]) {
				continue
			}
			if err := k.WriteSysctl(kv[0], kv[1]); err != nil {
				if errors.Is(err, harden.ErrNoSysctl) {
					missing = append(missing, kv[0])
				}
				errs = append(errs, err)
			}
		}
		return missing, errors.Join(errs...)
	}
	missing, err := write(nil)
	if len(missing) == 0 || r.WaitBoot == nil {
		return err
	}
	if werr := r.WaitBoot(ctx); werr != nil {
		return errors.Join(err, werr)
	}
	_, err = write(missing)
	return err
}

// joined reports whether the node has a cluster to join.
func joined(s settings.Settings) bool {
	return s.Kubernetes != nil && s.Kubernetes.APIServer != nil
}

func kube(s settings.Settings) settings.Kubernetes {
	if s.Kubernetes == nil {
		return settings.Kubernetes{}
	}
	return *s.Kubernetes
}

// KubeletConfig is the part of kubelet.config.k8s.io/v1beta1 KubeletConfiguration Ballast sets.
// Field names are the kubelet's.
type KubeletConfig struct {
	Kind                            string            `yaml:"kind"`
	APIVersion                      string            `yaml:"apiVersion"`
	EnableServer                    bool              `yaml:"enableServer"`
	ReadOnlyPort                    int               `yaml:"readOnlyPort"`
	HealthzBindAddress              string            `yaml:"healthzBindAddress"`
	HealthzPort                     int               `yaml:"healthzPort"`
	Authentication                  KubeletAuthn      `yaml:"authentication"`
	Authorization                   KubeletAuthz      `yaml:"authorization"`
	TLSMinVersion                   string            `yaml:"tlsMinVersion"`
	TLSCipherSuites                 []string          `yaml:"tlsCipherSuites"`
	RotateCertificates              bool              `yaml:"rotateCertificates"`
	ServerTLSBootstrap              bool              `yaml:"serverTLSBootstrap"`
	ProtectKernelDefaults           bool              `yaml:"protectKernelDefaults"`
	SeccompDefault                  bool              `yaml:"seccompDefault"`
	SerializeImagePulls             bool              `yaml:"serializeImagePulls"`
	CgroupDriver                    string            `yaml:"cgroupDriver"`
	ContainerRuntimeEndpoint        string            `yaml:"containerRuntimeEndpoint"`
	ClusterDomain                   string            `yaml:"clusterDomain"`
	ClusterDNS                      []string          `yaml:"clusterDNS,omitempty"`
	MaxPods                         int64             `yaml:"maxPods"`
	PodPidsLimit                    int64             `yaml:"podPidsLimit"`
	EvictionHard                    map[string]string `yaml:"evictionHard,omitempty"`
	KubeReserved                    map[string]string `yaml:"kubeReserved,omitempty"`
	SystemReserved                  map[string]string `yaml:"systemReserved,omitempty"`
	RegisterWithTaints              []KubeletTaint    `yaml:"registerWithTaints,omitempty"`
	ProviderID                      string            `yaml:"providerID,omitempty"`
	ShutdownGracePeriod             string            `yaml:"shutdownGracePeriod"`
	ShutdownGracePeriodCriticalPods string            `yaml:"shutdownGracePeriodCriticalPods"`
	VolumePluginDir                 string            `yaml:"volumePluginDir"`
	ResolvConf                      string            `yaml:"resolvConf"`
	StaticPodPath                   string            `yaml:"staticPodPath,omitempty"`
}

// KubeletAuthn is KubeletConfiguration.authentication.
type KubeletAuthn struct {
	Anonymous struct {
		Enabled bool `yaml:"enabled"`
	} `yaml:"anonymous"`
	Webhook struct {
		Enabled  bool   `yaml:"enabled"`
		CacheTTL string `yaml:"cacheTTL,omitempty"`
	} `yaml:"webhook"`
	X509 struct {
		ClientCAFile string `yaml:"clientCAFile,omitempty"`
	} `yaml:"x509"`
}

// KubeletAuthz is KubeletConfiguration.authorization.
type KubeletAuthz struct {
	Mode string `yaml:"mode"`
}

// KubeletTaint is one of KubeletConfiguration.registerWithTaints.
type KubeletTaint struct {
	Key    string `yaml:"key"`
	Value  string `yaml:"value,omitempty"`
	Effect string `yaml:"effect"`
}

// kubeletTLSCiphers are the suites the kubelet's server offers over TLS 1.2: forward secret
// AEADs only (TLS 1.3's are not configurable and all fine).
var kubeletTLSCiphers = []string{
	"TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256", "TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256",
	"TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384", "TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384",
	"TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256", "TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256",
}

// KubeletConfiguration returns the kubelet's configuration for s. Hardened whatever the
// settings: no read-only port, no anonymous requests, every request authorised by the API
// server (webhook), the kernel defaults protected, RuntimeDefault seccomp for every pod, no
// static pods. Until settings.kubernetes.api-server is set the kubelet runs standalone and
// serves nothing but its healthz on loopback: webhooks need an API server.
func KubeletConfiguration(s settings.Settings) KubeletConfig {
	k := kube(s)
	c := KubeletConfig{
		Kind: "KubeletConfiguration", APIVersion: "kubelet.config.k8s.io/v1beta1",
		EnableServer: joined(s), ReadOnlyPort: 0,
		HealthzBindAddress: "127.0.0.1", HealthzPort: KubeletHealthzPort,
		TLSMinVersion: "VersionTLS12", TLSCipherSuites: kubeletTLSCiphers,
		RotateCertificates: true, ServerTLSBootstrap: false,
		ProtectKernelDefaults: true, SeccompDefault: true, SerializeImagePulls: true,
		CgroupDriver: "cgroupfs", ContainerRuntimeEndpoint: "unix://" + contract.ContainerdSocket,
		ClusterDomain: settings.DefaultClusterDomain, MaxPods: settings.DefaultMaxPods,
		PodPidsLimit:    settings.DefaultPodPidsLimit,
		VolumePluginDir: contract.KubeletRoot + "/plugins/volume/exec",
		ResolvConf:      "/etc/resolv.conf",
	}
	c.Authentication.Anonymous.Enabled = false
	if joined(s) {
		c.Authentication.Webhook.Enabled, c.Authentication.Webhook.CacheTTL = true, "2m0s"
		c.Authorization.Mode = "Webhook"
	} else {
		// Standalone: enableServer is false, so nothing is served to authorise.
		c.Authorization.Mode = "AlwaysAllow"
	}
	if k.ClusterCertificate != nil {
		c.Authentication.X509.ClientCAFile = contract.KubeletClusterCA
	}
	if k.ClusterDomain != nil {
		c.ClusterDomain = string(*k.ClusterDomain)
	}
	for _, ip := range k.ClusterDNSIP {
		c.ClusterDNS = append(c.ClusterDNS, string(ip))
	}
	if k.MaxPods != nil {
		c.MaxPods = *k.MaxPods
	}
	if k.PodPidsLimit != nil {
		c.PodPidsLimit = *k.PodPidsLimit
	}
	if len(k.EvictionHard) > 0 {
		c.EvictionHard = map[string]string{}
		for sig, th := range k.EvictionHard {
			c.EvictionHard[string(sig)] = string(th)
		}
	}
	c.KubeReserved, c.SystemReserved = reserved(k.KubeReserved), reserved(k.SystemReserved)
	for _, key := range sortedKeys(k.NodeTaints) {
		for _, t := range k.NodeTaints[settings.LabelKey(key)] {
			value, effect, _ := t.Split() // validated
			c.RegisterWithTaints = append(c.RegisterWithTaints, KubeletTaint{Key: key, Value: value, Effect: effect})
		}
	}
	if k.ProviderID != nil {
		c.ProviderID = string(*k.ProviderID)
	}
	// Graceful node shutdown asks logind for a delay inhibitor through the D-Bus system bus
	// (contract.DBusSystemSocket), which the system init answers; 0s turns it off.
	grace, crit := k.ShutdownGracePeriods()
	c.ShutdownGracePeriod, c.ShutdownGracePeriodCriticalPods = grace.String(), crit.String()
	return c
}

func reserved(r *settings.Reserved) map[string]string {
	if r == nil {
		return nil
	}
	m := map[string]string{}
	for name, q := range map[string]*settings.Quantity{"cpu": r.CPU, "memory": r.Memory, "ephemeral-storage": r.EphemeralStorage} {
		if q != nil {
			m[name] = string(*q)
		}
	}
	if len(m) == 0 {
		return nil
	}
	return m
}

func kubeletConfigFile(s settings.Settings, _ Node) ([]byte, error) {
	b, err := yaml.Marshal(KubeletConfiguration(s))
	if err != nil {
		return nil, fmt.Errorf("kubelet configuration: %w", err)
	}
	return append([]byte("# Rendered from settings.kubernetes by the apiserver, for the kubelet.\n"), b...), nil
}

// Kubeconfig is the part of a client-go kubeconfig (v1 Config) the bootstrap kubeconfig uses.
type Kubeconfig struct {
	APIVersion     string              `yaml:"apiVersion"`
	Kind           string              `yaml:"kind"`
	Clusters       []KubeconfigCluster `yaml:"clusters"`
	Users          []KubeconfigUser    `yaml:"users"`
	Contexts       []KubeconfigContext `yaml:"contexts"`
	CurrentContext string              `yaml:"current-context"`
}

// KubeconfigCluster is one of Kubeconfig.clusters.
type KubeconfigCluster struct {
	Name    string `yaml:"name"`
	Cluster struct {
		Server               string `yaml:"server"`
		CertificateAuthority string `yaml:"certificate-authority,omitempty"`
	} `yaml:"cluster"`
}

// KubeconfigUser is one of Kubeconfig.users.
type KubeconfigUser struct {
	Name string `yaml:"name"`
	User struct {
		Token string `yaml:"token,omitempty"`
	} `yaml:"user"`
}

// KubeconfigContext is one of Kubeconfig.contexts.
type KubeconfigContext struct {
	Name    string `yaml:"name"`
	Context struct {
		Cluster string `yaml:"cluster"`
		User    string `yaml:"user"`
	} `yaml:"context"`
}

const bootstrapUser = "kubelet-bootstrap"

// BootstrapKubeconfig returns the kubeconfig the kubelet bootstraps with, ok false until
// settings.kubernetes.api-server is set.
func BootstrapKubeconfig(s settings.Settings) (kc Kubeconfig, ok bool) {
	if !joined(s) {
		return Kubeconfig{}, false
	}
	k := kube(s)
	name := settings.DefaultClusterName
	if k.ClusterName != nil {
		name = string(*k.ClusterName)
	}
	kc = Kubeconfig{APIVersion: "v1", Kind: "Config", CurrentContext: bootstrapUser}
	cl := KubeconfigCluster{Name: name}
	cl.Cluster.Server = string(*k.APIServer)
	if k.ClusterCertificate != nil {
		cl.Cluster.CertificateAuthority = contract.KubeletClusterCA
	}
	u := KubeconfigUser{Name: bootstrapUser}
	if k.BootstrapToken != nil {
		u.User.Token = string(*k.BootstrapToken)
	}
	ctx := KubeconfigContext{Name: bootstrapUser}
	ctx.Context.Cluster, ctx.Context.User = name, bootstrapUser
	kc.Clusters, kc.Users, kc.Contexts = []KubeconfigCluster{cl}, []KubeconfigUser{u}, []KubeconfigContext{ctx}
	return kc, true
}

func bootstrapKubeconfigFile(s settings.Settings, _ Node) ([]byte, error) {
	kc, ok := BootstrapKubeconfig(s)
	if !ok {
		return nil, nil
	}
	b, err := yaml.Marshal(kc)
	if err != nil {
		return nil, fmt.Errorf("bootstrap kubeconfig: %w", err)
	}
	return b, nil
}

func clusterCAFile(s settings.Settings, _ Node) ([]byte, error) {
	k := kube(s)
	if k.ClusterCertificate == nil {
		return nil, nil
	}
	b, err := k.ClusterCertificate.PEM()
	if err != nil {
		return nil, fmt.Errorf("settings.kubernetes.cluster-certificate: %w", err)
	}
	return b, nil
}

// KubeletFlags returns the flags the kubelet takes only on its command line, after the fixed
// ones of its service (contract.Programs): the kubeconfigs once there is a cluster to join,
// then what settings ask for. Values are validated and hold no blanks, so the list survives
// the blank-separated environment variable it travels in.
func KubeletFlags(s settings.Settings) []string {
	k := kube(s)
	var flags []string
	if joined(s) {
		flags = append(flags, "--kubeconfig="+contract.KubeletKubeconfig, "--bootstrap-kubeconfig="+contract.KubeletBootstrapKubeconfig)
	}
	if len(k.NodeLabels) > 0 {
		var labels []string
		for _, key := range sortedKeys(k.NodeLabels) {
			labels = append(labels, key+"="+string(k.NodeLabels[settings.LabelKey(key)]))
		}
		flags = append(flags, "--node-labels="+strings.Join(labels, ","))
	}
	if k.HostnameOverride != nil {
		flags = append(flags, "--hostname-override="+string(*k.HostnameOverride))
	}
	if k.NodeIP != nil {
		flags = append(flags, "--node-ip="+string(*k.NodeIP))
	}
	if k.CloudProvider != nil {
		flags = append(flags, "--cloud-provider="+string(*k.CloudProvider))
	}
	return flags
}

func kubeletEnvFile(s settings.Settings, _ Node) ([]byte, error) {
	return []byte("# Rendered from settings.kubernetes by the apiserver: the kubelet's command-line flags.\n" +
		KubeletFlagsVar + "=" + strings.Join(KubeletFlags(s), " ") + "\n"), nil
}

// CNIConfList is a CNI network configuration list.
type CNIConfList struct {
	CNIVersion string           `json:"cniVersion"`
	Name       string           `json:"name"`
	Plugins    []map[string]any `json:"plugins"`
}

// DefaultPodNetwork returns Ballast's pod network for s, ok false when
// settings.kubernetes.default-cni.enabled is false. Pods get addresses of the subnet on a bridge
// and reach out through the node's address (masquerade); hostPort works through portmap. CRI
// brings up each pod's loopback itself with the loopback plugin.
func DefaultPodNetwork(s settings.Settings) (CNIConfList, bool) {
	k := kube(s)
	subnet := settings.DefaultPodSubnet
	if d := k.DefaultCNI; d != nil {
		if d.Enabled != nil && !*d.Enabled {
			return CNIConfList{}, false
		}
		if d.Subnet != nil {
			subnet = string(*d.Subnet)
		}
	}
	defRoute := "0.0.0.0/0"
	if !strings.Contains(subnet, ".") {
		defRoute = "::/0"
	}
	return CNIConfList{CNIVersion: "1.0.0", Name: "ballast-pods", Plugins: []map[string]any{
		{
			"type": "bridge", "bridge": PodNetworkBridge, "isGateway": true, "ipMasq": true, "hairpinMode": true,
			"ipam": map[string]any{
				"type":    "host-local",
				"ranges":  [][]map[string]string{{{"subnet": subnet}}},
				"routes":  []map[string]string{{"dst": defRoute}},
				"dataDir": contract.CNIStateDir + "/networks",
			},
		},
		{"type": "portmap", "capabilities": map[string]bool{"portMappings": true}},
	}}, true
}

func cniConfigFile(s settings.Settings, _ Node) ([]byte, error) {
	c, ok := DefaultPodNetwork(s)
	if !ok {
		return nil, nil
	}
	return marshalJSON(c)
}

// CRIConfig returns containerd's whole configuration for an image with the CRI plugin: what
// the plain image's template says (root, state, socket, downloads), then CRI's images (the pause
// image pinned, registries from settings.container-registry), runtimes (runc; runsc when asked
// for and installed), SELinux labels for pods and the CNI directories.
func CRIConfig(s settings.Settings, n Node) (map[string]any, error) {
	downloads := int64(DefaultMaxConcurrentDownloads)
	if r := s.ContainerRuntime; r != nil && r.MaxConcurrentDownloads != nil {
		downloads = *r.MaxConcurrentDownloads
	}
	images := map[string]any{
		"snapshotter":              "overlayfs",
		"max_concurrent_downloads": downloads,
		// Pinned: CRI reports the image pinned, so the kubelet's image GC never removes it; it is
		// imported from the image's archive and never pulled.
		"pinned_images": map[string]any{"sandbox": contract.PauseImageRef},
		"registry":      criRegistry(s),
	}
	// Every handler starts from Ballast's hardened spec (runtime/spec.CRIBaseSpec).
	runc := map[string]any{
		"runtime_type":      "io.containerd.runc.v2",
		"base_runtime_spec": contract.CRIBaseSpecPath,
		"options":           map[string]any{"BinaryName": "/usr/sbin/runc", "SystemdCgroup": false},
	}
	runtimes := map[string]any{contract.RuntimeHandlerRunc: runc}
	if n.GVisor && gvisorEnabled(s) {
		runtimes[contract.RuntimeHandlerGVisor] = map[string]any{
			"runtime_type":      "io.containerd.runsc.v1",
			"base_runtime_spec": contract.CRIBaseSpecPath,
			"options":           map[string]any{"TypeUrl": "io.containerd.runsc.v1.options", "ConfigPath": RunscConfig},
		}
	}
	runtime := map[string]any{
		// Each pod gets its own MCS categories under the policy's pod types, from the part of
		// the categories host containers do not use (runtime/mcs.PodCategories).
		"enable_selinux":                         true,
		"selinux_category_range":                 contract.CRISELinuxCategoryRange,
		"device_ownership_from_security_context": true,
		"containerd": map[string]any{
			"default_runtime_name": contract.RuntimeHandlerRunc,
			"runtimes":             runtimes,
		},
		"cni": map[string]any{
			"bin_dirs":     []string{contract.CNIPluginDir, contract.CNIExtraPluginDir},
			"conf_dir":     contract.CNIConfigDir,
			"max_conf_num": 1,
		},
	}
	if r := s.ContainerRuntime; r != nil {
		if r.MaxContainerLogLineSize != nil {
			runtime["max_container_log_line_size"] = int64(*r.MaxContainerLogLineSize)
		}
		if r.EnableUnprivilegedPorts != nil {
			runtime["enable_unprivileged_ports"] = *r.EnableUnprivilegedPorts
		}
		if r.EnableUnprivilegedICMP != nil {
			runtime["enable_unprivileged_icmp"] = *r.EnableUnprivilegedICMP
		}
	}
	return map[string]any{
		"version": 3,
		"root":    contract.ContainerdRoot,
		"state":   contract.ContainerdState,
		"grpc":    map[string]any{"address": contract.ContainerdSocket},
		"plugins": map[string]any{
			// exec, attach and port-forward streams, proxied by the kubelet: on loopback, at a
			// fixed port the hardening report declares (NodeListeners).
			"io.containerd.grpc.v1.cri":       map[string]any{"stream_server_address": "127.0.0.1", "stream_server_port": strconv.Itoa(CRIStreamPort)},
			"io.containerd.transfer.v1.local": map[string]any{"max_concurrent_downloads": downloads},
			// The node's pod policy (ballast-pod-policy) is a required NRI plugin: while it is not
			// connected, no pod container is created. containerd starts no plugin itself.
			"io.containerd.nri.v1.nri": map[string]any{
				"disable": false, "socket_path": contract.NRISocket,
				"plugin_path": "/usr/lib/ballast/nri/plugins", "plugin_config_path": "/usr/lib/ballast/nri/conf.d",
				"default_validator": map[string]any{"enable": true, "required_plugins": []string{contract.PodPolicyPlugin}},
			},
			"io.containerd.cri.v1.images":  images,
			"io.containerd.cri.v1.runtime": runtime,
		},
	}, nil
}

// PodPolicyConfig is contract.PodPolicyConfig: the pod policy's settings.
type PodPolicyConfig struct {
	AllowPrivilegedPods bool `json:"allow-privileged-pods"`
}

func podPolicyFile(s settings.Settings, _ Node) ([]byte, error) {
	k := kube(s)
	return marshalJSON(PodPolicyConfig{AllowPrivilegedPods: k.AllowPrivileged != nil && *k.AllowPrivileged})
}

func gvisorEnabled(s settings.Settings) bool {
	k := kube(s)
	return k.RuntimeClasses != nil && k.RuntimeClasses.GVisor != nil && *k.RuntimeClasses.GVisor
}

// criRegistry is CRI's registry configuration: mirrors and CAs through the hosts.toml directory,
// credentials per registry host (containerd 2.4 still reads registry.configs.<host>.auth, and
// hosts.toml has no place for them).
func criRegistry(s settings.Settings) map[string]any {
	reg := map[string]any{"config_path": CRIRegistryDir}
	if r := s.ContainerRegistry; r != nil && len(r.Credentials) > 0 {
		configs := map[string]any{}
		for _, host := range sortedKeys(r.Credentials) {
			c := r.Credentials[settings.RegistryHost(host)]
			if c == nil || c.Username == nil || c.Password == nil {
				continue
			}
			configs[host] = map[string]any{"auth": map[string]any{"username": *c.Username, "password": *c.Password}}
		}
		if len(configs) > 0 {
			reg["configs"] = configs
		}
	}
	return reg
}

func criConfigFile(s settings.Settings, n Node) ([]byte, error) {
	c, err := CRIConfig(s, n)
	if err != nil {
		return nil, err
	}
	var b bytes.Buffer
	b.WriteString("# Rendered by the apiserver for containerd with CRI, from settings.container-runtime,\n# settings.container-registry, settings.pki and settings.kubernetes.runtime-classes.\n")
	if err := toml.NewEncoder(&b).Encode(c); err != nil {
		return nil, fmt.Errorf("containerd configuration: %w", err)
	}
	return b.Bytes(), nil
}

func runscConfigFile(s settings.Settings, n Node) ([]byte, error) {
	if !n.GVisor || !gvisorEnabled(s) {
		return nil, nil
	}
	// systrap: gVisor's platform that needs no KVM (ptrace's successor), so the handler works in
	// any VM. The sandbox's own host network is off: pods get theirs from CNI. The shim runs
	// runsc through Ballast's adapter, which drops the pods' SELinux process label runsc refuses.
	// Inside the sandbox, where neither SELinux nor the host's seccomp filter sees a pod's
	// calls: oci-seccomp has the sentry apply the pod's seccomp profile (the pod policy's, which
	// refuses ptrace as runc pods' does); in-sandbox-cgroup v2 mounts the pod's cgroup read-only,
	// as the spec asks (v1's per-controller mounts are writable whatever the spec says).
	return []byte(`# Rendered from settings.kubernetes.runtime-classes.gvisor by the apiserver, for the runsc shim.
binary_name = "` + contract.RunscAdapterPath + `"

[runsc_config]
  platform = "systrap"
  oci-seccomp = "true"
  in-sandbox-cgroup = "v2"
`), nil
}

// CRIRegistryHosts returns the hosts.toml files of CRIRegistryDir by directory name ("_default"
// for every registry without its own): each registry's mirrors, then those of "*", tried in
// order before the registry itself; the trusted settings.pki bundles as CAs of every host. With
// neither mirrors nor CAs there are none.
func CRIRegistryHosts(s settings.Settings) (map[string][]byte, []byte, error) {
	var cas []byte
	for _, name := range sortedKeys(s.PKI) {
		b := s.PKI[settings.BundleName(name)]
		if b == nil || b.Data == nil || !isTrue(b.Trusted) {
			continue
		}
		pem, err := b.Data.PEM()
		if err != nil {
			return nil, nil, fmt.Errorf("settings.pki.%s.data: %w", name, err)
		}
		cas = append(cas, pem...)
		if len(pem) > 0 && pem[len(pem)-1] != '\n' {
			cas = append(cas, '\n')
		}
	}
	mirrors := map[settings.RegistryHost][]settings.RegistryEndpoint{}
	if r := s.ContainerRegistry; r != nil {
		mirrors = r.Mirrors
	}
	hosts := map[string][]byte{}
	dirs := sortedKeys(mirrors)
	if len(cas) > 0 && !slices.Contains(dirs, "*") {
		dirs = append(dirs, "*")
	}
	for _, host := range dirs {
		var list []settings.RegistryEndpoint
		list = append(list, mirrors[settings.RegistryHost(host)]...)
		if host != "*" {
			list = append(list, mirrors["*"]...)
		}
		b, err := hostsTOML(list, len(cas) > 0)
		if err != nil {
			return nil, nil, fmt.Errorf("settings.container-registry.mirrors.%s: %w", host, err)
		}
		dir := host
		if host == "*" {
			dir = "_default"
		}
		hosts[dir] = b
	}
	return hosts, cas, nil
}

// hostsTOML is one registry's hosts.toml. Without a server key the registry itself is the last
// host tried, with the top-level ca.
func hostsTOML(mirrors []settings.RegistryEndpoint, ca bool) ([]byte, error) {
	var b bytes.Buffer
	b.WriteString("# Rendered from settings.container-registry and settings.pki by the apiserver, for CRI's pulls.\n")
	if ca {
		fmt.Fprintf(&b, "ca = [%q]\n", CRIRegistryCA)
	}
	for _, m := range mirrors {
		key, err := tomlKey(string(m))
		if err != nil {
			return nil, err
		}
		fmt.Fprintf(&b, "\n[host.%s]\n  capabilities = [\"pull\", \"resolve\"]\n", key)
		if ca {
			fmt.Fprintf(&b, "  ca = [%q]\n", CRIRegistryCA)
		}
	}
	return b.Bytes(), nil
}

// tomlKey quotes s as a TOML basic-string key. Endpoints are validated URLs: no control
// characters, so JSON's escaping is TOML's.
func tomlKey(s string) (string, error) {
	b, err := marshalJSONCompact(s)
	if err != nil {
		return "", err
	}
	return string(b), nil
}

// criRegistryHosts is ActionCRIRegistry: CRIRegistryDir made to hold exactly CRIRegistryHosts.
// No restart: containerd reads the directory at each pull.
func (r *Renderer) criRegistryHosts(_ context.Context, s settings.Settings) error {
	hosts, cas, err := CRIRegistryHosts(s)
	if err != nil {
		return err
	}
	dir := r.hostPath(CRIRegistryDir)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("%s: %w", CRIRegistryDir, err)
	}
	var errs []error
	entries, err := os.ReadDir(dir)
	if err != nil {
		return fmt.Errorf("%s: %w", CRIRegistryDir, err)
	}
	for _, e := range entries {
		if _, keep := hosts[e.Name()]; e.IsDir() && !keep {
			errs = append(errs, os.RemoveAll(filepath.Join(dir, e.Name())))
		}
	}
	caPath := r.hostPath(CRIRegistryCA)
	if len(cas) > 0 {
		errs = append(errs, writeIfChanged(caPath, cas, 0o644))
	} else if err := os.Remove(caPath); err != nil && !errors.Is(err, os.ErrNotExist) {
		errs = append(errs, err)
	}
	for _, name := range sortedKeys(hosts) {
		d := filepath.Join(dir, name)
		if err := os.MkdirAll(d, 0o755); err != nil {
			errs = append(errs, err)
			continue
		}
		errs = append(errs, writeIfChanged(filepath.Join(d, "hosts.toml"), hosts[name], 0o644))
	}
	return errors.Join(errs...)
}

func writeIfChanged(path string, content []byte, mode os.FileMode) error {
	if old, err := os.ReadFile(path); err == nil && bytes.Equal(old, content) {
		return nil
	}
	return writeFile(path, content, mode)
}

// marshalJSON is a file's JSON: indented, with a final newline.
func marshalJSON(v any) ([]byte, error) {
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return nil, err
	}
	return append(b, '\n'), nil
}

func marshalJSONCompact(v any) ([]byte, error) {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return nil, err
	}
	return bytes.TrimRight(b.Bytes(), "\n"), nil
}
