package contract

// The host-container manager's files.
//
// ContainersConfigPath (ContainersConfig) is rendered by the apiserver from
// settings.host-containers, settings.bootstrap-containers, settings.oci-defaults,
// settings.container-registry and the trusted settings.pki bundles, at every start and on every
// change of those keys. The manager reads it at start and again whenever the file is replaced: a
// container enabled, disabled or changed through the API takes effect without a restart of the
// manager or of the containers that did not change. The file holds credentials and user data, so
// it is readable by root only.
//
// ContainersStatePath (ContainersState) is written by the manager, replaced atomically on every
// change of a container's state; the apiserver serves its entries in GET /services after the
// system services.
//
// ContainersSocket is the manager's control socket, for the apiserver only: POST /exec upgrades
// to the exec stream protocol (ExecFrame*). The manager listens on it once the bootstrap
// containers are done, which is its readiness: the ready line waits for it.
//
// Each container's stdout and stderr are a log (logs.go) named after the container, in
// ContainerLogDir (persistent) or ContainerVolatileLogDir.
const (
	// In SecretsDir: it holds registry credentials and user data.
	ContainersConfigPath    = SecretsDir + "/containers.json"
	ContainersDir           = "/run/ballast/containers"
	ContainersStatePath     = ContainersDir + "/state.json"
	ContainersSocket        = ContainersDir + "/control.sock"
	ContainerLogDir         = VarOnData + "/log/containers"
	ContainerVolatileLogDir = "/run/ballast/container-logs"
	// ContainerStorageDir/<name> is a host container's own persistent directory, at
	// ContainerStorage inside it.
	ContainerStorageDir = LocalDir + "/host-containers"
	// ContainerBootstrapDone records the bootstrap containers in mode once that completed, so a
	// later boot does not run them again.
	ContainerBootstrapDone = VarOnData + "/lib/ballast/bootstrap-done.json"
	// CIDataMount is where the NoCloud volume stays mounted, read-only, for the host's life, so
	// an image archive shipped on it is oci-archive:/run/cidata/<file>.
	CIDataMount = "/run/cidata"
)

// Paths inside a container.
const (
	ContainerUserData = "/.ballast/user-data" // the container's settings user-data, decoded, read-only
	ContainerStorage  = "/.ballast/storage"   // a host container's persistent directory
	ContainerHostRoot = "/.ballast/rootfs"    // the host's root, in a superpowered container
)

// The container runtime's network: a bridge with NAT to the outside, addresses from host-local.
const (
	ContainerBridge  = "ballast0"
	ContainerSubnet  = "10.89.0.0/16"
	CNIPluginDir     = "/usr/libexec/cni"
	ContainerNetDir  = ContainersDir + "/netns" // a container's network namespace, bind-mounted
	ContainerCNIData = ContainersDir + "/cni"   // host-local's leases and CNI's cache, this boot only
)

// ContainersNamespace is the containerd namespace of Ballast's host and bootstrap containers.
const ContainersNamespace = "ballast"

// ContainersConfig is what the manager runs.
type ContainersConfig struct {
	Host      []HostContainer      `json:"host,omitempty"`
	Bootstrap []BootstrapContainer `json:"bootstrap,omitempty"`
	Defaults  ContainerDefaults    `json:"defaults,omitzero"`
	Registry  RegistryConfig       `json:"registry,omitzero"`
	// Proxy is settings.network.https-proxy as a URL and NoProxy its exceptions: image pulls go
	// through it.
	Proxy   string   `json:"proxy,omitempty"`
	NoProxy []string `json:"no_proxy,omitempty"`
}

// HostContainer is one entry of settings.host-containers, defaults resolved.
type HostContainer struct {
	Name         string `json:"name"`
	Source       string `json:"source"`
	Enabled      bool   `json:"enabled"`
	Superpowered bool   `json:"superpowered,omitempty"`
	APIAccess    bool   `json:"api_access,omitempty"`
	HostNetwork  bool   `json:"host_network,omitempty"`
	UserNS       bool   `json:"user_namespace,omitempty"`
	UserData     string `json:"user_data,omitempty"` // base64
}

// BootstrapContainer is one entry of settings.bootstrap-containers.
type BootstrapContainer struct {
	Name         string `json:"name"`
	Source       string `json:"source,omitempty"`
	Mode         string `json:"mode"` // off, once, always
	Essential    bool   `json:"essential,omitempty"`
	Superpowered bool   `json:"superpowered,omitempty"`
	UserData     string `json:"user_data,omitempty"`
}

// ContainerDefaults is settings.oci-defaults: how the hardened spec of a container that is not
// superpowered is adjusted.
type ContainerDefaults struct {
	Capabilities map[string]bool `json:"capabilities,omitempty"` // CAP_ names: true adds, false drops
	Rlimits      []Rlimit        `json:"rlimits,omitempty"`
	UserNS       bool            `json:"user_namespace,omitempty"`
	Memory       int64           `json:"memory,omitempty"`
	Pids         int64           `json:"pids,omitempty"`
	CPUWeight    uint64          `json:"cpu_weight,omitempty"`
}

// Rlimit is a process resource limit by its RLIMIT_ name.
type Rlimit struct {
	Type string `json:"type"`
	Hard uint64 `json:"hard"`
	Soft uint64 `json:"soft"`
}

// RegistryConfig says how images are pulled.
type RegistryConfig struct {
	// Mirrors by registry host ("*" for all), tried in order before the registry.
	Mirrors map[string][]string `json:"mirrors,omitempty"`
	// Credentials by registry host.
	Credentials map[string]RegistryCredential `json:"credentials,omitempty"`
	// CAs are PEM certificates trusted besides the system's.
	CAs []string `json:"cas,omitempty"`
}

// RegistryCredential is a registry's user name and password.
type RegistryCredential struct {
	Username string `json:"username"`
	Password string `json:"password"`
}

// ContainersState is the manager's view of its containers.
type ContainersState struct {
	Containers []ServiceStatus `json:"containers"`
}

// Kinds of ServiceStatus entries.
const (
	KindHostContainer      = "host-container"
	KindBootstrapContainer = "bootstrap-container"
)

// ForbiddenCapabilities are never given to a container that is not superpowered, whatever
// settings.oci-defaults.capabilities says: each one is a way out of the container or into the
// host's kernel. Settings refuse them, and the runtime's spec refuses them again.
func ForbiddenCapabilities() []string {
	return []string{
		"CAP_BPF", "CAP_DAC_READ_SEARCH", "CAP_MKNOD", "CAP_NET_ADMIN", "CAP_NET_RAW", "CAP_PERFMON",
		"CAP_SYS_ADMIN", "CAP_SYS_BOOT", "CAP_SYS_MODULE", "CAP_SYS_PTRACE", "CAP_SYS_RAWIO", "CAP_SYS_TIME",
	}
}
