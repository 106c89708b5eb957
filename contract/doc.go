// Package contract is what the parts of the boot chain agree on: the builder writes these things,
// the initramfs init, the system init and the API server read them. Each contract has one
// declaration here and is imported, never re-spelled:
//
//   - the kernel command line (Cmdline: one Format, one Parse) and the boot parameters on it (Boot);
//   - image identity: /usr/lib/ballast/image.json (Image) and /usr/lib/os-release (OSRelease),
//     and the console's ready line (Ready) that a booted host prints from them;
//   - well-known paths (paths.go);
//   - partition names as a type and the UUIDs derived for them from the root hash (PartitionName);
//   - the Ballast programs and services an image can hold (Programs);
//   - the system init's control protocol (InitClient, ServeInit);
//   - the kernel hardening: the words on every UKI's command line (ImageParams), the hardened
//     sysctl defaults (HardenedSysctls), lockdown levels, the kernel policy file the API server
//     writes and the system init applies at boot (KernelPolicy), the declared listening sockets
//     and what counts as an interpreter (IsInterpreter);
//   - the host logs: where the system init writes them, their files and line format (logs.go).
//
// It imports the standard library only, so the smallest program in the chain, the initramfs
// init, can link it.
package contract
