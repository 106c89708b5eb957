package contract

// The SELinux policy in the image. The builder compiles selinux/policy/*.cil with secilc; the
// same sources give the file_contexts the root is labelled with, so no file can carry a type
// the policy lacks. The initramfs init loads the policy from the verified root, enforcing,
// before it mounts /local or execs the system init.
const (
	SELinuxDir          = "/usr/lib/ballast/selinux"
	SELinuxPolicy       = SELinuxDir + "/policy.33"     // the binary policy, version 33
	SELinuxFileContexts = SELinuxDir + "/file_contexts" // secilc's, for labelling /local, /dev and /run at boot
	SELinuxFS           = "/sys/fs/selinux"
	SELinuxLoad         = SELinuxFS + "/load"
	SELinuxPolicyVers   = SELinuxFS + "/policyvers"
	// SELinuxDenials is the number of AVC denials the system init has seen in the kernel log
	// this boot (a decimal number), for the hardening report.
	SELinuxDenials = "/run/ballast/selinux-denials"
	// InitramfsWithoutSELinux, in an initramfs, makes the initramfs init skip the policy load.
	// Only the builder's benchmark option puts it there (pipeline.Options.BenchWithoutSELinux,
	// refused for production variants), so the SELinux benchmark can boot the same image with and
	// without the policy; no setting or command line word has that effect.
	InitramfsWithoutSELinux = "/etc/ballast-bench-without-selinux"
)

// SecretsDir holds rendered configuration with secrets in it. The policy gives the directory, and so
// every file the apiserver renders into it, the type secret_t (a type transition on its name), which
// only the apiserver and the host-container manager may read.
const SecretsDir = "/etc/ballast/private"

// SELinux contexts the programs agree on. Types are declared in selinux/policy; a type named
// here and missing there fails the builder's policy test.
const (
	SELinuxUser       = "system_u"
	SELinuxRole       = "system_r"
	SELinuxObjectRole = "object_r"
	// The level of everything that is not a container's.
	SELinuxLevel = "s0"
)

// Context is user:role:type:level with the fixed user and role of a process (role system_r)
// or, when object is true, of a file (object_r).
func Context(typ, level string, object bool) string {
	role := SELinuxRole
	if object {
		role = SELinuxObjectRole
	}
	return SELinuxUser + ":" + role + ":" + typ + ":" + level
}

// Types the inits label with themselves, where no file_contexts line can say (a tmpfs root made
// at boot) or where a label given at run time must be recognised.
const (
	SELinuxEtcType = "etc_t" // the tmpfs /etc and the factory files copied to it
	SELinuxRunType = "run_t" // /run's root
	SELinuxTmpType = "tmp_t" // /tmp's and /dev/shm's roots
	// SELinuxContainerFileType is a container's files; the runtime adds the container's
	// categories, which a relabel of /local keeps.
	SELinuxContainerFileType = "container_file_t"
)
