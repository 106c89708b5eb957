package image

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/ballast-os/ballast/contract"
)

// TestKubernetesNodeARM64 boots the arm64 k8s variant (the kubelet, containerd with CRI and
// gVisor cross-built for arm64) on QEMU's virt machine against the same control plane as
// TestKubernetesNode, and checks through the Kubernetes API: the node joins and is Ready as an
// arm64 node with Ballast's os-image and the image's kernel; a runc pod of an arm64 image runs
// on the node's kernel and a gVisor pod on gVisor's.
func TestKubernetesNodeARM64(tt *testing.T) {
	tt.Parallel() // boots QEMU: see main_test.go
	t := echoFailures(tt)
	arch := contract.ARM64
	hello := helloImage(t, goProgramFor(t, "./tests/image/hello", arch.Info().GOARCH))
	hello.Arch = arch.Info().GOARCH
	n := startK8sNodeArch(t, arch)
	ref := n.pushImage(t, hello, "hello")
	node := n.waitReady(t, 10*time.Minute)
	t.Logf("arm64 node %s Ready %s after QEMU started", node.Name, time.Since(n.started).Round(time.Second))
	n.gateSawReady(t, node.Name)
	checkNodeSettings(t, node)
	info := node.Status.NodeInfo
	if info.Architecture != arch.Info().GOARCH || info.OperatingSystem != "linux" {
		t.Errorf("node architecture %s/%s, want linux/%s", info.OperatingSystem, info.Architecture, arch.Info().GOARCH)
	}
	if want := fmt.Sprintf("Ballast %s (%s)", n.manifest.Version, n.manifest.Variant); info.OSImage != want {
		t.Errorf("node osImage %q, want %q", info.OSImage, want)
	}
	if info.KernelVersion != n.manifest.Kernel || !strings.HasSuffix(info.KernelVersion, "-arm64") {
		t.Errorf("node kernelVersion %q, want the image's arm64 kernel %q", info.KernelVersion, n.manifest.Kernel)
	}

	n.createPod(t, retried(k8sPod("kernel-runc", ref, "", "kernel")))
	n.createPod(t, retried(k8sPod("kernel-gvisor", ref, gvisorClass, "kernel")))
	runc, gv := n.checkKernels(t)
	t.Logf("arm64: runc pod's kernel %s; gVisor pod's %s (%s)", runc["release"], gv["release"], gv["log"])
}
