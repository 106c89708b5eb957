package spec

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"

	"github.com/containerd/containerd/v2/core/containers"
	"github.com/containerd/containerd/v2/pkg/namespaces"
	"github.com/containerd/containerd/v2/pkg/oci"
	"github.com/opencontainers/runtime-spec/specs-go"

	"github.com/ballast-os/ballast/contract"
)

// CRIBaseSpec is the base OCI spec containerd's CRI starts every pod container from
// (base_runtime_spec of a runtime handler, contract.CRIBaseSpecPath): containerd's default
// spec, with the capabilities and open-file limit of a Ballast container that is not
// superpowered. It depends on nothing but these defaults, so the builder writes it into the
// root, the same file for every architecture.
//
// What CRI (containerd v2.4.2, internal/cri/server/container_create.go and
// internal/cri/opts) does with each field of a base spec, which decides what belongs here:
//   - process.capabilities: kept when the pod's securityContext.capabilities is unset (the
//     kubelet sends none then); add and drop lists are applied to it ("ALL" replaces it);
//     privileged replaces it with every capability. Ambient is always cleared.
//   - process.rlimits: kept (CRI clears rlimits only when there is no base spec), so
//     RLIMIT_NOFILE is DefaultNoFile rather than containerd's default of 1024.
//   - process.noNewPrivileges: overwritten, from securityContext.allowPrivilegeEscalation.
//   - linux.maskedPaths, linux.readonlyPaths: overwritten, from the kubelet's (the defaults
//     unless procMount is Unmasked); privileged clears them.
//   - linux.seccomp: overwritten for RuntimeDefault and Localhost; kept for Unconfined; cleared
//     for privileged. It is left out here: containerd's profile is made for the architecture
//     the generator runs on, and the node's pod policy (runtime/nripolicy) sets Ballast's
//     strict profile on the node itself.
//   - root.readonly: kept, for every pod, so it stays false here: images that write into their
//     root are common in clusters; a pod asks for readOnlyRootFilesystem.
//   - linux.namespaces: kept, with CRI's paths for the pod's network, IPC, UTS and PID
//     namespaces and a cgroup namespace added (cgroup v2, not privileged).
//   - mounts: kept, CRI's own (and the pod's volumes) added over them by destination.
//   - linux.cgroupsPath, linux.resources, process args/env/user/cwd, hostname, annotations,
//     SELinux labels: overwritten from the pod.
//
// The pod sandbox ("pause") container does not use a base spec.
func CRIBaseSpec() (*specs.Spec, error) {
	ctx := namespaces.WithNamespace(context.Background(), contract.CRINamespace)
	s, err := oci.GenerateSpecWithPlatform(ctx, nil, "linux", &containers.Container{ID: "cri-base"},
		oci.WithCapabilities(slices.Sorted(slices.Values(DefaultCapabilities()))),
		oci.WithAmbientCapabilities(nil),
		oci.WithNoNewPrivileges,
		withRlimits(nil),
		// CRI sets the pod's own; the generator's would name this function's placeholder ID.
		oci.WithCgroup(""),
	)
	if err != nil {
		return nil, fmt.Errorf("spec: CRI base spec: %w", err)
	}
	return s, nil
}

// CRIBaseSpecJSON is CRIBaseSpec as containerd reads it, indented, the same bytes each time.
func CRIBaseSpecJSON() ([]byte, error) {
	s, err := CRIBaseSpec()
	if err != nil {
		return nil, err
	}
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetIndent("", "  ")
	if err := enc.Encode(s); err != nil {
		return nil, fmt.Errorf("spec: CRI base spec: %w", err)
	}
	return b.Bytes(), nil
}

// WriteCRIBaseSpec writes CRIBaseSpecJSON to path (the builder: the staged root's
// contract.CRIBaseSpecPath), making its directory.
func WriteCRIBaseSpec(path string) error {
	b, err := CRIBaseSpecJSON()
	if err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return fmt.Errorf("spec: CRI base spec %s: %w", path, err)
	}
	if err := os.WriteFile(path, b, 0o644); err != nil {
		return fmt.Errorf("spec: CRI base spec %s: %w", path, err)
	}
	return nil
}

// CRISELinuxContexts is the file (contract.CRISELinuxContexts) containerd's SELinux library
// (go-selinux) takes pod labels from when CRI runs with enable_selinux: pod_t processes and
// pod_file_t files. go-selinux replaces the level with a category pair it allocates below
// containerd's selinux_category_range (mcs.PodCategories), apart from the host containers'.
// It reads this path before /etc/selinux/<SELINUXTYPE>/contexts/lxc_contexts, so the file is
// in the read-only root and Ballast needs no /etc/selinux.
func CRISELinuxContexts() []byte {
	return []byte("# Labels of Kubernetes pods, for containerd's CRI (runtime/spec.CRISELinuxContexts).\n" +
		"process = \"" + contract.Context(PodType, contract.SELinuxLevel, false) + "\"\n" +
		"file = \"" + contract.Context(PodFile, contract.SELinuxLevel, true) + "\"\n" +
		"ro_file = \"" + contract.Context(PodFile, contract.SELinuxLevel, true) + "\"\n")
}
