package contract

import (
	"fmt"
	"syscall"
)

// Program is one entry of the table of what Ballast puts into images: how the builder gets the
// binary, where it lands, how it is labelled, what the SBOM calls it, and the service the system
// init runs from it. Adding a program to images is adding an entry to Programs.
type Program struct {
	// Name is the program's name in a variant's programs.include.
	Name string
	// Main is the Go main package, relative to the repository root, that the builder compiles.
	// Empty for a program that comes from a Debian package (Package).
	Main string
	// Package is the Debian package that provides the binary when Main is empty; the variant
	// must list it.
	Package string
	// Component is the pinned Go component (packages/go-components.toml) that installs the
	// binary, when neither Main nor Package is set; the variant must list it, or another component that installs Path, in packages.go.
	Component string
	// Path is where the binary lands: in the root, or in the initramfs when Initramfs is set.
	Path string
	// Label is the SELinux file type the builder gives a binary it compiles into the root
	// (system_u:object_r:<Label>:s0). Files from packages and the initramfs take theirs from
	// the filecon statements of selinux/policy; the type must be declared there.
	Label string
	// Initramfs puts the program into the initramfs instead of the root.
	Initramfs bool
	// Always puts the program into every image; variants do not list it.
	Always bool
	// DevOnly refuses the program in production variants.
	DevOnly bool
	// Service is what the system init runs from the program; nil for a tool.
	Service *Service
}

// Readiness says when the system init counts a service as ready.
type Readiness int

// Readiness checks.
const (
	ReadyWhenStarted    Readiness = iota // as soon as the process runs
	ReadyWhenAPIAnswers                  // when GET /os on APISocket answers 200
	ReadyWhenListening                   // when the Unix socket Service.Socket accepts a connection
)

// HealthCheck says what makes a service healthy for the boot health gate.
type HealthCheck int

// Health checks.
const (
	HealthRunning HealthCheck = iota // running, and not in a crash loop
	// HealthKubernetesNode: the kubelet's Node object is registered and its Ready condition is
	// True, read from the API server with the kubelet's own credentials (KubeletKubeconfig). A
	// node that never joins its cluster does not bless a new version.
	HealthKubernetesNode
)

// RestartPolicy says when an exited service is started again.
type RestartPolicy int

// Restart policies.
const (
	RestartAlways    RestartPolicy = iota // after any exit
	RestartOnFailure                      // after a non-zero exit or a death by signal
	RestartNever                          // never
)

// Service is how the system init runs a program.
type Service struct {
	// ID names the service in image.json, on the console, in GET /services and its log.
	ID string
	// Depends names services that must be ready before this one starts; the system init leaves
	// out those the image does not run.
	Depends []string
	Args    []string
	Env     []string // besides PATH=/usr/bin:/usr/sbin
	// EnvFile holds KEY=VALUE lines (and # comments) added to Env at each start, so a restart
	// takes a rewritten file; a missing file adds nothing.
	EnvFile string
	// ArgsEnv names a variable of EnvFile whose value, split at blanks, is appended to Args at
	// each start: flags a program takes only on its command line, rendered from settings (the
	// kubelet's node labels). Unset or empty appends nothing.
	ArgsEnv string
	// StopsBefore names services this one talks to but does not wait for at start: it is
	// stopped before them. The system init leaves out those the image does not run.
	StopsBefore []string
	// Socket is the Unix socket ReadyWhenListening waits for.
	Socket  string
	Ready   Readiness
	Restart RestartPolicy
	// StopSignal asks the service to stop; 0 means SIGTERM.
	StopSignal syscall.Signal
	// ReadyLine holds the ready line until the service is ready, besides the API: a service
	// whose work must be done before the host counts as booted (the bootstrap containers).
	ReadyLine bool
	// Health is what, besides running without a crash loop, the boot health gate waits for before
	// a trial boot is blessed (updates): HealthRunning for most services.
	Health HealthCheck
	// Console runs the service on the console's terminal, once the ready line and the motd are out
	// (the dev console shell); its output is the console, not a log file.
	Console bool
}

// Programs is the table, in service start order.
func Programs() []Program {
	return []Program{
		{
			Name: "initramfs-init", Main: "./init/initramfs/cmd/initramfs-init", Path: InitramfsInit,
			Initramfs: true, Always: true,
		},
		{
			Name: "system-init", Main: "./init/system/cmd/system-init", Path: SystemInitPath,
			Label: "init_exec_t", Always: true,
		},
		{
			// Every image: the kernel runs it for its own module requests (ModprobeSysctl), so the
			// module policy holds for them as for everyone else.
			Name: "modprobe", Main: "./init/modprobe/cmd/modprobe", Path: ModprobePath,
			Label: "modprobe_exec_t", Always: true,
		},
		{
			Name: "netconf", Main: "./init/system/cmd/netconf", Path: "/usr/bin/netconf", Label: "netconf_exec_t",
			// The network manager: DHCP leases for their whole life, static addresses and routes,
			// resolv.conf and the host name. Ready at once: the ready line does not wait for DHCP.
			// A restart keeps the addresses and resumes the leases from NetworkLeaseDir.
			Service: &Service{ID: "network", Restart: RestartAlways},
		},
		{
			Name: "apiserver", Main: "./apiserver/cmd/apiserver", Path: "/usr/bin/apiserver", Label: "api_exec_t",
			// Its flags default to the paths in this package. It starts while the system init
			// loads the boot modules, and waits for them only to mount a seed volume or apply a
			// setting that needs a module.
			Service: &Service{ID: "apiserver", Ready: ReadyWhenAPIAnswers, Restart: RestartAlways,
				Args: []string{"--boot-modules=" + BootModules}},
		},
		{
			Name: "timesync", Main: "./init/system/cmd/timesync", Path: "/usr/bin/timesync", Label: "timesync_exec_t",
			// The apiserver renders TimeConfig before it answers, and restarts the service when the
			// file changes.
			Service: &Service{ID: "time", Restart: RestartAlways, Depends: []string{"apiserver"}},
		},
		{
			// The container runtime's daemon, configured by the apiserver (ContainerdConfig, the
			// proxy in ProxyEnv) and restarted when those change; its state is on /local.
			Name: "containerd", Component: "containerd", Path: "/usr/bin/containerd",
			Service: &Service{ID: "containerd", Depends: []string{"apiserver"}, Restart: RestartAlways,
				Args: []string{"--config", ContainerdConfig}, EnvFile: ProxyEnv,
				Ready: ReadyWhenListening, Socket: ContainerdSocket},
		},
		{
			// The host-container manager: bootstrap containers, then host containers, through
			// containerd. It reads ContainersConfigPath (rendered by the apiserver) again when the
			// file changes, so it is not restarted for a settings change; it listens on
			// ContainersSocket once the bootstrap containers are done, and the ready line waits
			// for that; without bootstrap containers due, it listens before containerd answers,
			// so the ready line does not wait for containerd. It stops before containerd, so it
			// can stop its containers.
			Name: "host-containers", Main: "./runtime/cmd/hostctr", Path: "/usr/bin/hostctr", Label: "hostctr_exec_t",
			Service: &Service{ID: "host-containers", Depends: []string{"apiserver"}, StopsBefore: []string{"containerd"}, Restart: RestartAlways,
				Ready: ReadyWhenListening, Socket: ContainersSocket, ReadyLine: true},
		},
		{
			// The boot health gate's look at a Kubernetes node (HealthKubernetesNode): the system
			// init runs it, in its own domain, with the kubelet's credentials; a tool, not a service.
			Name: "node-ready", Main: "./init/k8snode/cmd/node-ready", Path: NodeReadyPath, Label: "init_exec_t",
		},
		{
			// The Kubernetes node agent (variants/k8s.toml). The apiserver renders its
			// configuration from settings.kubernetes (KubeletConfigPath, the kubeconfigs, the
			// flags in KubeletEnv) and restarts it when they change. Until
			// settings.kubernetes.api-server is set the flags name no kubeconfig and the kubelet
			// runs standalone, serving only its healthz, instead of failing in a loop. Its root
			// directory is made rshared by the kubelet itself (volume mounts propagate to the
			// containers), on the /var that is /local's. The pause image is imported by the
			// host-container manager (PauseImageArchive).
			Name: "kubelet", Component: "kubernetes", Path: KubeletPath,
			// It stops before the network and the pod policy: the end of its graceful node
			// shutdown is the pods' statuses sent to the API server.
			Service: &Service{ID: "kubelet", Depends: []string{"containerd"}, StopsBefore: []string{"network", "pod-policy"},
				Restart: RestartAlways, EnvFile: KubeletEnv, ArgsEnv: KubeletFlagsVar, Health: HealthKubernetesNode,
				// Graceful node shutdown finds logind on the system bus; godbus's default address
				// is under /var/run, which is on the data partition.
				Env:  []string{"DBUS_SYSTEM_BUS_ADDRESS=" + DBusSystemBusAddress},
				Args: []string{"--config=" + KubeletConfigPath, "--root-dir=" + KubeletRoot, "--cert-dir=" + KubeletPKIDir}},
		},
		{
			// The Kubernetes node's pod policy, a required NRI plugin of containerd's CRI: no pod
			// container is created while it is not connected. It reads PodPolicyConfig (rendered
			// from settings.kubernetes) at each decision.
			Name: "ballast-pod-policy", Main: "./runtime/cmd/ballast-pod-policy", Path: PodPolicyPath, Label: "podpolicy_exec_t",
			Service: &Service{ID: "pod-policy", Depends: []string{"containerd"}, Restart: RestartAlways},
		},
		{
			// gVisor's runsc as its containerd shim runs it (runtime/runsclabel); a tool of the
			// container runtime, labelled like runsc.
			Name: "runsc-adapter", Main: "./runtime/cmd/runsc-adapter", Path: RunscAdapterPath, Label: "runtime_exec_t",
		},
		{
			Name: "apiclient", Main: "./apiserver/cmd/apiclient", Path: "/usr/bin/apiclient", Label: "apiclient_exec_t",
		},
		{
			Name: "console-shell", Package: "busybox-static", Path: "/usr/bin/sh", DevOnly: true,
			Service: &Service{
				ID: "console-shell", Console: true, Restart: RestartAlways,
				Env: []string{"TERM=vt220", "SHELL=/usr/bin/sh"},
				// An interactive ash ignores SIGTERM.
				StopSignal: syscall.SIGHUP,
			},
		},
	}
}

// FindProgram returns the named program of the table.
func FindProgram(name string) (Program, error) {
	for _, p := range Programs() {
		if p.Name == name {
			return p, nil
		}
	}
	return Program{}, fmt.Errorf("unknown program %q", name)
}

// FindService returns the program whose service has this ID.
func FindService(id string) (Program, error) {
	for _, p := range Programs() {
		if p.Service != nil && p.Service.ID == id {
			return p, nil
		}
	}
	return Program{}, fmt.Errorf("unknown service %q", id)
}

// ServicesOf returns the IDs of the services the named programs run, in table (start) order.
func ServicesOf(programs []string) []string {
	in := map[string]bool{}
	for _, n := range programs {
		in[n] = true
	}
	var ids []string
	for _, p := range Programs() {
		if p.Service != nil && (in[p.Name] || p.Always) {
			ids = append(ids, p.Service.ID)
		}
	}
	return ids
}
