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
	// ModprobePath is Ballast's module loader, which the kernel runs for its own module requests
	// (kernel.modprobe) and which refuses modules the kernel policy blocks.
	ModprobePath = "/usr/sbin/modprobe"
	// EmptyFile is an empty file on the verified root; the system init bind-mounts it read-only
	// over the files of blocked modules, so nothing can load them from the image.
	EmptyFile = "/usr/lib/ballast/empty"
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
	APISocket    = "/run/api.sock"                      // the host API (HTTP over a Unix socket)
	InitSocket   = "/run/ballast/init.sock"             // the system init's control protocol
	DatastoreDir = "/local/var/lib/ballast/datastore"   // the API server's settings
	ShellHome    = "/local/root"                        // HOME of dev images' console shell
	RandomSeed   = "/local/var/lib/ballast/random-seed" // kept across boots for the kernel's random pool
	TimeState    = "/run/ballast/time.json"             // TimeStatus, written by the time service for GET /time
	// BootModules exists once the system init has loaded the image's boot modules and written
	// their sysctls; services start before that, and wait for it where they need a module.
	BootModules = "/run/ballast/boot-modules"
	// KernelPolicyPath is KernelPolicy: settings.kernel as the system init applies it at boot.
	KernelPolicyPath = "/local/var/lib/ballast/kernel-policy.json"
)

// Configuration files the apiserver renders from settings for other services.
const (
	TimeConfig       = "/etc/ballast/ntp.conf"       // TimeConfigFile, from settings.ntp, for the time service
	ProxyEnv         = "/etc/ballast/proxy.env"      // HTTPS_PROXY and NO_PROXY for the services that fetch
	ContainerdConfig = "/etc/containerd/config.toml" // from settings.container-runtime
)

// The container runtime's places.
const (
	ContainerdSocket = "/run/containerd/containerd.sock"
	ContainerdRoot   = VarOnData + "/lib/containerd" // images, snapshots, containers: kept across boots
	ContainerdState  = "/run/containerd"             // sockets, shims, mounts: this boot only
)

// Kernel interfaces the hardening reads and writes.
const (
	SecurityFS     = "/sys/kernel/security"
	LockdownFile   = SecurityFS + "/lockdown" // "none [integrity] confidentiality"
	LSMFile        = SecurityFS + "/lsm"      // the active LSMs, comma-separated
	SELinuxEnforce = "/sys/fs/selinux/enforce"
)

// Host logs (logs.go): the system init writes them, the API server reads them.
const (
	PersistentLogDir = VarOnData + "/log/ballast" // every source's log, kept across reboots
	// LogDir holds this boot's lines of a source whose persistent log cannot be written.
	LogDir   = "/run/ballast/logs"
	BootID   = "/proc/sys/kernel/random/boot_id" // marks each boot's start in the logs
	KmsgPath = "/dev/kmsg"                       // the kernel's log records
)

// The network service's files (network.go).
const (
	NetworkConfigPath = "/etc/ballast/network.json" // NetworkConfig, rendered by the apiserver
	NetworkDir        = "/run/ballast/network"      // the network service's run-time state
	NetworkStatePath  = NetworkDir + "/state.json"  // NetworkState, served as GET /network
	NetworkLeaseDir   = NetworkDir + "/leases"      // <interface>.dhcp4|dhcp6, resumed after a restart
	// MetadataHostnamePath is a host name from cloud instance metadata, written by the apiserver
	// at every start on EC2 (local-hostname); the network service uses it when neither settings
	// nor DHCP name the host, and looks at it as often as at its configuration.
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
