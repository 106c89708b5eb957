// Package settings is the typed model of Ballast's host settings. It is the one place that knows
// which keys exist, what type each has and which values are valid; the API, the datastore and user
// data all decode through it, so a key is accepted or rejected the same way wherever it comes from.
// The reference documentation (docs/settings.md) and the JSON Schema
// (apiserver/schema/settings.schema.json) are generated from these types too.
//
// Every struct field is a pointer, map or slice so that a partial document (a PATCH body, user
// data) can tell "absent" from "set to the empty value". Struct fields are tables, maps are tables
// whose keys the user picks, everything else is a value. The JSON tag names the key in every
// format; the doc tag is the key's documentation; max and min bound sizes (bytes of a string, items
// of a list, entries of a map) and integer values; the key tag names a map's keys in the docs;
// secret:"true" marks a value that must not leave the host (Redact), such as a private key.
package settings

// Settings is the whole settings tree, or a patch of it.
type Settings struct {
	Motd                *string                               `json:"motd,omitempty" max:"4096" doc:"Message of the day, printed on the console after the ready line."`
	Network             *Network                              `json:"network,omitempty" doc:"The host's network identity, name resolution overrides, proxy and interfaces."`
	DNS                 *DNS                                  `json:"dns,omitempty" doc:"Name resolution: the network service writes /etc/resolv.conf from these keys; a list left unset comes from DHCP."`
	NTP                 *NTP                                  `json:"ntp,omitempty" doc:"Time synchronisation."`
	Kernel              *Kernel                               `json:"kernel,omitempty" doc:"Kernel parameters, lockdown and module policy."`
	HostContainers      map[ContainerName]*HostContainer      `json:"host-containers,omitempty" max:"16" key:"name" doc:"Long-running containers that run beside the orchestrated ones, with access to the host (the admin and control containers)."`
	BootstrapContainers map[ContainerName]*BootstrapContainer `json:"bootstrap-containers,omitempty" max:"16" key:"name" doc:"Containers that run to completion at boot, before the orchestrated workload starts."`
	ContainerRuntime    *ContainerRuntime                     `json:"container-runtime,omitempty" doc:"containerd's behaviour for orchestrated containers."`
	OCIDefaults         *OCIDefaults                          `json:"oci-defaults,omitempty" doc:"Adjustments of the hardened OCI runtime spec of every container that is not superpowered."`
	ContainerRegistry   *ContainerRegistry                    `json:"container-registry,omitempty" doc:"How images are pulled: registry mirrors and credentials. Extra CAs come from settings.pki bundles that are trusted; the proxy from settings.network.https-proxy."`
	PKI                 map[BundleName]*PKIBundle             `json:"pki,omitempty" max:"32" key:"bundle" doc:"Extra CA certificate bundles for the host's trust store."`
	API                 *API                                  `json:"api,omitempty" doc:"The host API itself."`
	Updates             *Updates                              `json:"updates,omitempty" doc:"Image updates from the signed update repository: where it is, which version to take and when (waves). The update agent reads these keys at each check, apply and activate (apiclient update ...)."`
	Kubernetes          *Kubernetes                           `json:"kubernetes,omitempty" doc:"The Kubernetes node (the k8s variant): how its kubelet joins the cluster, what it registers with, its limits and runtimes. A change restarts the kubelet. Images without a kubelet store these keys only."`
}

// Network is settings.network.
type Network struct {
	Hostname   *Hostname                    `json:"hostname,omitempty" doc:"Host name of the machine. Unset: the name DHCP gives, else the cloud metadata's, else ballast."`
	Hosts      []HostsEntry                 `json:"hosts,omitzero" max:"256" doc:"Static entries of /etc/hosts: a list of [address, [names...]] pairs, e.g. [[\"10.0.0.1\", [\"db\", \"db.internal\"]]]."`
	HTTPSProxy *ProxyURL                    `json:"https-proxy,omitempty" doc:"Proxy for the container runtime's HTTPS requests (image pulls) and the update agent's requests to the update repository, as host:port or http(s)://host:port."`
	NoProxy    []NoProxyEntry               `json:"no-proxy,omitzero" max:"64" doc:"Hosts, domains (.example.com), addresses and CIDRs reached without the proxy; localhost, 127.0.0.1 and ::1 are always added."`
	Interfaces map[InterfaceName]*Interface `json:"interfaces,omitempty" max:"16" key:"interface" doc:"Addressing of network interfaces: an entry configures the interface of its name, or the one with its mac. Ethernet interfaces without an entry get DHCPv4 and router advertisements."`
}

// Interface is settings.network.interfaces.<interface>.
type Interface struct {
	MAC       *MACAddress        `json:"mac,omitempty" doc:"Match the interface by its hardware address, e.g. \"52:54:00:12:34:56\", instead of by the entry's name, which is then only a label."`
	DHCP4     *bool              `json:"dhcp4,omitempty" doc:"Configure IPv4 by DHCP. Unset: true unless addresses holds an IPv4 address."`
	DHCP6     *bool              `json:"dhcp6,omitempty" doc:"Configure IPv6 by DHCPv6 (router advertisements are always accepted)."`
	Addresses []InterfaceAddress `json:"addresses,omitzero" max:"16" doc:"Static addresses with their prefix length, e.g. [\"192.168.1.10/24\", \"fd00::10/64\"]."`
	Gateway   *IPAddress         `json:"gateway,omitempty" doc:"Default gateway; needs a static address of the same family."`
	Routes    []Route            `json:"routes,omitzero" max:"64" doc:"Static routes, e.g. [{to = \"10.0.0.0/8\", via = \"192.168.1.1\"}]."`
	MTU       *int64             `json:"mtu,omitempty" min:"68" max:"65535" doc:"MTU in bytes."`
}

// Route is one entry of settings.network.interfaces.<interface>.routes.
type Route struct {
	To     *RouteDestination `json:"to,omitempty" doc:"Destination: a CIDR (10.0.0.0/8) or \"default\". Required."`
	Via    *IPAddress        `json:"via,omitempty" doc:"Next hop; without it the destination is on the link."`
	Metric *int64            `json:"metric,omitempty" min:"0" max:"4294967295" doc:"Route metric; lower is preferred."`
}

// DNS is settings.dns.
type DNS struct {
	NameServers []IPAddress  `json:"name-servers,omitzero" max:"3" doc:"Name servers, in order of preference (the resolver uses at most three)."`
	SearchList  []DomainName `json:"search-list,omitzero" max:"6" doc:"Search domains for short names."`
}

// NTP is settings.ntp.
type NTP struct {
	TimeServers []TimeServer `json:"time-servers,omitzero" max:"16" doc:"NTP servers or pools, as host names (looked up in /etc/hosts, then DNS) or addresses, in order of preference. Without any the clock is left alone and GET /time says unconfigured."`
}

// Kernel is settings.kernel.
type Kernel struct {
	Sysctl   map[SysctlKey]SysctlValue `json:"sysctl,omitempty" max:"256" key:"key" doc:"Kernel parameters by sysctl name, e.g. \"net.ipv4.ip_forward\" = \"1\"; written to /proc/sys at once and at every boot, over Ballast's hardened defaults (below), key by key. Quote names with dots in TOML and in key paths. kernel.modprobe is refused."`
	Lockdown *Lockdown                 `json:"lockdown,omitempty" doc:"Level of the kernel's lockdown security module; integrity when unset. Raised at once; a lower level takes effect at the next boot (the kernel never lowers it while running)."`
	Modules  map[ModuleName]*Module    `json:"modules,omitempty" max:"256" key:"module" doc:"Policy for individual kernel modules."`
}

// Module is settings.kernel.modules.<module>.
type Module struct {
	Allowed  *bool `json:"allowed,omitempty" doc:"Whether the module may be loaded at all. false blocks it at once (unloading it when nothing uses it) and at every boot, also for the kernel's own module requests; true after false takes effect at the next boot."`
	Autoload *bool `json:"autoload,omitempty" doc:"Load the module (from the image's module tree) at once and at every boot, before the services start."`
}

// HostContainer is settings.host-containers.<name>.
type HostContainer struct {
	Source       *ImageRef `json:"source,omitempty" doc:"Image reference, e.g. registry.example.com/admin:v1.2 or ...@sha256:<digest>. Required when enabled."`
	Enabled      *bool     `json:"enabled,omitempty" doc:"Run the container."`
	Superpowered *bool     `json:"superpowered,omitempty" doc:"Run with all capabilities, the host's devices, process and network namespaces, the host's root at /.ballast/rootfs and the API socket; for administration containers only."`
	APIAccess    *bool     `json:"api-access,omitempty" doc:"Bind the API socket (/run/api.sock) and apiclient (/usr/local/bin/apiclient) into the container, e.g. for a control container."`
	HostNetwork  *bool     `json:"host-network,omitempty" doc:"Share the host's network namespace instead of a private one on the container bridge."`
	UserNS       *bool     `json:"user-namespace,omitempty" doc:"Run in a user namespace, so root in the container is an unprivileged id on the host. Unset: settings.oci-defaults.user-namespace."`
	UserData     *Base64   `json:"user-data,omitempty" max:"16384" secret:"true" doc:"Base64-encoded data handed to the container, read-only at /.ballast/user-data."`
}

// BootstrapContainer is settings.bootstrap-containers.<name>.
type BootstrapContainer struct {
	Source       *ImageRef      `json:"source,omitempty" doc:"Image reference. Required unless mode is off."`
	Mode         *BootstrapMode `json:"mode,omitempty" doc:"When the container runs: off, once (the next boot, then off) or always (every boot)."`
	Essential    *bool          `json:"essential,omitempty" doc:"Stop the boot before the ready line when the container cannot run or exits non-zero."`
	Superpowered *bool          `json:"superpowered,omitempty" doc:"Run with the privileges of a superpowered host container, e.g. to prepare the host's disks."`
	UserData     *Base64        `json:"user-data,omitempty" max:"16384" secret:"true" doc:"Base64-encoded data given to the container, read-only at /.ballast/user-data."`
}

// ContainerRuntime is settings.container-runtime.
type ContainerRuntime struct {
	MaxContainerLogLineSize *LogLineSize `json:"max-container-log-line-size,omitempty" min:"-1" max:"1073741824" doc:"Longest container log line in bytes before it is split; -1 for no limit (0 is refused)."`
	MaxConcurrentDownloads  *int64       `json:"max-concurrent-downloads,omitempty" min:"1" max:"1024" doc:"Layers downloaded at once per image."`
	EnableUnprivilegedPorts *bool        `json:"enable-unprivileged-ports,omitempty" doc:"Let unprivileged containers bind ports below 1024."`
	EnableUnprivilegedICMP  *bool        `json:"enable-unprivileged-icmp,omitempty" doc:"Let unprivileged containers open ICMP echo sockets."`
}

// OCIDefaults is settings.oci-defaults.
type OCIDefaults struct {
	Capabilities   map[Capability]bool           `json:"capabilities,omitempty" max:"64" key:"capability" doc:"Linux capabilities granted (true) or not (false) by default, by name in kebab case without CAP_ (e.g. net-bind-service)."`
	ResourceLimits map[RlimitName]*ResourceLimit `json:"resource-limits,omitempty" max:"16" key:"limit" doc:"Default process resource limits (RLIMIT_*), by name (e.g. max-open-files)."`
	UserNS         *bool                         `json:"user-namespace,omitempty" doc:"Run containers in a user namespace unless they say otherwise."`
	MemoryLimit    *int64                        `json:"memory-limit,omitempty" min:"4194304" max:"1099511627776" doc:"Memory limit of a container's cgroup in bytes (swap included); 536870912 when unset."`
	PidsLimit      *int64                        `json:"pids-limit,omitempty" min:"16" max:"4194304" doc:"Most processes and threads in a container's cgroup; 1024 when unset."`
	CPUWeight      *int64                        `json:"cpu-weight,omitempty" min:"1" max:"10000" doc:"cgroup v2 cpu.weight of a container; 100 (the kernel's default share) when unset."`
}

// ContainerRegistry is settings.container-registry.
type ContainerRegistry struct {
	Mirrors     map[RegistryHost][]RegistryEndpoint  `json:"mirrors,omitempty" max:"32" key:"registry" doc:"Endpoints tried, in order, before the registry itself, e.g. \"docker.io\" = [\"https://mirror.example.com\"]. The key \"*\" applies to every registry."`
	Credentials map[RegistryHost]*RegistryCredential `json:"credentials,omitempty" max:"32" key:"registry" doc:"Credentials by registry host (host or host:port)."`
}

// RegistryCredential is settings.container-registry.credentials.<registry>.
type RegistryCredential struct {
	Username *string `json:"username,omitempty" max:"256" doc:"User name for basic authentication or a token exchange. Needs password."`
	Password *string `json:"password,omitempty" max:"4096" secret:"true" doc:"Password or token."`
}

// ResourceLimit is settings.oci-defaults.resource-limits.<limit>.
type ResourceLimit struct {
	HardLimit *RlimitValue `json:"hard-limit,omitempty" doc:"Hard limit: a number, or -1 or \"unlimited\"."`
	SoftLimit *RlimitValue `json:"soft-limit,omitempty" doc:"Soft limit: a number, or -1 or \"unlimited\"; at most the hard limit."`
}

// PKIBundle is settings.pki.<bundle>.
type PKIBundle struct {
	Data    *CertBundle `json:"data,omitempty" max:"65536" doc:"Base64-encoded PEM bundle of one or more CA certificates."`
	Trusted *bool       `json:"trusted,omitempty" doc:"Add the bundle to the trust store; false keeps it stored but untrusted. Trusting needs data."`
}

// API is settings.api.
type API struct {
	Remote *RemoteAPI `json:"remote,omitempty" doc:"The API on TCP with mutual TLS 1.3, beside the local socket."`
}

// RemoteAPI is settings.api.remote.
type RemoteAPI struct {
	Enabled    *bool          `json:"enabled,omitempty" doc:"Serve the API on listen. Needs listen, client-ca, server-cert and server-key."`
	Listen     *ListenAddress `json:"listen,omitempty" doc:"TCP address, host:port, e.g. \":8443\" or \"10.0.0.5:8443\"."`
	ClientCA   *PEMCerts      `json:"client-ca,omitempty" max:"65536" doc:"PEM CA certificates; only clients with a certificate issued by one of them are served."`
	ServerCert *PEMCerts      `json:"server-cert,omitempty" max:"65536" doc:"PEM server certificate, then any intermediates."`
	ServerKey  *PEMKey        `json:"server-key,omitempty" max:"16384" secret:"true" doc:"PEM private key of server-cert."`
}
