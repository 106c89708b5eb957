package contract

import "time"

// The Kubernetes node (variants/k8s.toml): where the kubelet, CRI and the CNI plugins find their
// configuration and keep their state. Everything under /var is on /local (VarDir is bound to
// VarOnData), so the node's identity and serving certificate survive reboots and updates.
const (
	KubeletPath = "/usr/bin/kubelet"

	KubernetesConfigDir = "/etc/kubernetes" // rendered by the apiserver from settings.kubernetes
	// KubeletConfigPath is the KubeletConfiguration (kubelet.config.k8s.io/v1beta1) file.
	KubeletConfigPath = KubernetesConfigDir + "/kubelet/config.yaml"
	// KubeletBootstrapKubeconfig carries the bootstrap token for TLS bootstrapping; the kubelet
	// trades it for a client certificate and writes KubeletKubeconfig.
	KubeletBootstrapKubeconfig = KubernetesConfigDir + "/kubelet/bootstrap-kubeconfig"
	// KubeletClusterCA is settings.kubernetes.cluster-certificate (PEM), which both kubeconfigs
	// and the kubelet's client CA file name.
	KubeletClusterCA = KubernetesConfigDir + "/pki/ca.crt"
	// KubeletEnv holds the flags the kubelet takes only on its command line (node labels, the
	// provider ID's cloud-provider setting), KEY=VALUE lines for the service's EnvFile.
	KubeletEnv = KubernetesConfigDir + "/kubelet/env"
	// KubeletFlagsVar is KubeletEnv's variable holding those flags, blank-separated; the kubelet's
	// Service.ArgsEnv names it.
	KubeletFlagsVar = "KUBELET_FLAGS"

	KubeletRoot = VarDir + "/lib/kubelet" // pods' volumes, plugins, the kubelet's checkpoints
	// KubeletKubeconfig is written by the kubelet after TLS bootstrapping and points at its
	// rotated client certificate in KubeletPKIDir; it persists, so a reboot does not bootstrap again.
	KubeletKubeconfig = KubeletRoot + "/kubeconfig"
	KubeletPKIDir     = KubeletRoot + "/pki" // kubelet-client-current.pem, kubelet.crt/.key (serving)
	// PodLogDir holds the pods' logs; the kubelet also links them into /var/log/containers, beside
	// the host containers' logs (ContainerLogDir), under names that cannot collide (<pod>_<ns>_...).
	PodLogDir   = VarDir + "/log/pods"
	CNIStateDir = VarDir + "/lib/cni" // host-local's leases and libcni's cache for pods
	NetnsDir    = "/run/netns"        // pod network namespaces (CRI), this boot only

	// CNIConfigDir is where CRI reads pod network configurations: Ballast's default bridge
	// configuration is rendered there unless a cluster's CNI daemonset writes its own.
	CNIConfigDir = "/etc/cni/net.d"
	// CNIExtraPluginDir is a writable plugin directory for CNI daemonsets that install their
	// binaries (they expect /opt/cni/bin); CRI searches CNIPluginDir first.
	CNIExtraPluginDir = "/opt/cni/bin"
	// CNIExtraPluginDirOnData is where CNIExtraPluginDir leads (a link in the read-only root):
	// on /local, so installed plugins survive reboots; the system init makes it.
	CNIExtraPluginDirOnData = VarDir + "/lib/cni/bin"
	// MachineIDPath is the node's machine ID, which the kubelet reports (nodeInfo.machineID);
	// /etc is a tmpfs, so the system init writes it at every boot from MachineIDState, drawn once.
	MachineIDPath  = "/etc/machine-id"
	MachineIDState = VarOnData + "/lib/ballast/machine-id"

	// KubeletHealthzURL answers 200 once the kubelet runs its sync loop (its healthz on loopback).
	KubeletHealthzURL = "http://127.0.0.1:10248/healthz"

	// CRINamespace is containerd's namespace for everything the kubelet runs.
	CRINamespace = "k8s.io"
	// PauseImageArchive is the pod sandbox ("pause") image, built into the root as an OCI image
	// layout tarball and imported into CRINamespace before the kubelet starts; PauseImageRef is
	// the name CRI is configured to use, so it never pulls one.
	PauseImageArchive = "/usr/share/ballast/images/pause.tar"
	PauseImageRef     = "localhost/ballast/pause:3.10"

	// DBusSystemSocket is where the kubelet's graceful node shutdown looks for logind (through
	// the D-Bus system bus); Ballast's system init answers there with the subset it uses.
	DBusSystemSocket = "/run/dbus/system_bus_socket"
	// DBusSystemBusAddress is the kubelet's DBUS_SYSTEM_BUS_ADDRESS: godbus's default is under
	// /var/run, which is on the data partition.
	DBusSystemBusAddress = "unix:path=" + DBusSystemSocket

	// RuntimeHandlerRunc and RuntimeHandlerGVisor are CRI runtime handlers, the names a
	// RuntimeClass's handler field gives.
	RuntimeHandlerRunc   = "runc"
	RuntimeHandlerGVisor = "runsc"
	RunscPath            = "/usr/bin/runsc"
	RunscShimPath        = "/usr/bin/containerd-shim-runsc-v1"
	// RunscAdapterPath is the runsc the shim runs (runtime/runsclabel): it drops the SELinux
	// process label CRI gives every pod, which runsc refuses, and runs RunscPath.
	RunscAdapterPath = "/usr/libexec/ballast/runsc-adapter"

	// NodeReadyPath is the program the system init runs for the boot health gate's look at the
	// node (init/k8snode): it prints the node's name and exits 0 when the Node is Ready.
	NodeReadyPath = "/usr/libexec/ballast/node-ready"

	// CRIBaseSpecPath is the base OCI spec of pod containers (runtime/spec.CRIBaseSpec), built
	// into the root; containerd's CRI section names it as base_runtime_spec of each handler.
	CRIBaseSpecPath = "/usr/share/ballast/cri-base.json"
	// NRISocket is where containerd's NRI listens for external plugins (its CRI section's
	// socket_path); the node's pod policy (PodPolicyPath) connects there.
	NRISocket = "/run/nri/nri.sock"
	// PodPolicyPlugin is the pod policy's NRI plugin name (index PodPolicyPluginIndex), the
	// name containerd's NRI default validator lists as required, so no pod container is
	// created while the policy is not connected.
	PodPolicyPlugin      = "ballast-pod-policy"
	PodPolicyPluginIndex = "10"
	PodPolicyPath        = "/usr/bin/ballast-pod-policy"
	// PodPolicyConfig is the pod policy's settings, rendered by the apiserver from
	// settings.kubernetes (JSON: {"allow-privileged-pods": false}); the policy reads it again
	// at each pod and container it decides on, so a change needs no restart. A missing file is
	// the defaults.
	PodPolicyConfig = KubernetesConfigDir + "/pod-policy.json"
	// CRISELinuxContexts gives the SELinux labels of pods (runtime/spec.CRISELinuxContexts):
	// the path containerd's SELinux library (go-selinux) reads first, built into the root.
	CRISELinuxContexts = "/usr/share/containers/selinux/contexts"
	// CRISELinuxCategoryRange is containerd's CRI selinux_category_range: pods' category pairs
	// are allocated from c0 to c<CRISELinuxCategoryRange-1>, host containers' from the rest
	// (runtime/mcs.PodCategories, which a test holds equal).
	CRISELinuxCategoryRange = 512
)

// LogindInhibitDelayMax is logind's InhibitDelayMaxUSec on a Kubernetes node: the longest the
// system init's shutdown waits for the kubelet's delay lock (its graceful node shutdown). The
// kubelet's shutdownGracePeriod must not exceed it: a longer one makes the kubelet try to raise
// it through systemd, which Ballast does not have, and its graceful shutdown stays off.
const LogindInhibitDelayMax = 90 * time.Second
