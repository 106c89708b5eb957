package contract

// Paths in the image's root filesystem, written by the builder.
const (
	SystemInitPath = "/usr/sbin/init"              // PID 1 after switch_root
	InitramfsInit  = "/init"                       // the initramfs init, inside the initramfs
	OSReleasePath  = "/usr/lib/os-release"         // OSRelease
	ImageInfoPath  = "/usr/lib/ballast/image.json" // Image
	ModulesDir     = "/usr/lib/modules"            // <kernel release>/..., with modules.dep
	// KernelModules is where module loaders look: the initramfs holds its modules there, and in the
	// root /lib leads to /usr/lib.
	KernelModules = "/lib/modules"
	FactoryEtc    = "/usr/share/factory/etc"           // copied into the tmpfs /etc at every boot
	DefaultsPath  = "/usr/share/ballast/defaults.toml" // the image's default settings (TOML user data)
	CABundle      = FactoryEtc + "/ssl/certs/ca-certificates.crt"
)

// Mount points the initramfs prepares and the system init relies on.
const (
	NewRoot   = "/sysroot" // where the initramfs mounts the verified root before switch_root
	LocalDir  = "/local"   // the data partition
	VarDir    = "/var"     // bound to /local/var
	VarOnData = LocalDir + "/var"
)

// Run-time paths on a booted host.
const (
	APISocket    = "/run/api.sock"                    // the host API (HTTP over a Unix socket)
	InitSocket   = "/run/ballast/init.sock"           // the system init's control protocol
	LogDir       = "/run/ballast/logs"                // <service>.log, written by the system init
	DatastoreDir = "/local/var/lib/ballast/datastore" // the API server's settings
	ShellHome    = "/local/root"                      // HOME of dev images' console shell
)

// The network service's files (network.go).
const (
	NetworkConfigPath = "/etc/ballast/network.json" // NetworkConfig, rendered by the apiserver
	NetworkDir        = "/run/ballast/network"      // the network service's run-time state
	NetworkStatePath  = NetworkDir + "/state.json"  // NetworkState, served as GET /network
	NetworkLeaseDir   = NetworkDir + "/leases"      // <interface>.dhcp4|dhcp6, resumed after a restart
	// MetadataHostnamePath is a host name from cloud instance metadata, for whoever reads the
	// metadata service to write; the network service uses it when neither settings nor DHCP name
	// the host.
	MetadataHostnamePath = NetworkDir + "/metadata-hostname"
)

// The development PKI of dev variants: file names in a PKI directory (build/<variant>/pki for
// `apiclient --pki`), and where dev images serve the remote API.
const (
	PKICACert     = "ca.pem"
	PKICAKey      = "ca-key.pem"
	PKIServerCert = "server.pem"
	PKIServerKey  = "server-key.pem"
	PKIClientCert = "client.pem"
	PKIClientKey  = "client-key.pem"
	DevAPIListen  = ":50443"
	DevAPIPort    = 50443
)
