package image

import (
	"context"
	"encoding/base64"
	"fmt"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	nodev1 "k8s.io/api/node/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/kubernetes"

	"github.com/ballast-os/ballast/apiserver/client"
	"github.com/ballast-os/ballast/builder/pipeline"
	"github.com/ballast-os/ballast/contract"
	"github.com/ballast-os/ballast/tests/escape"
	"github.com/ballast-os/ballast/tests/k8scluster"
	"github.com/ballast-os/ballast/tests/ociimage"
	"github.com/ballast-os/ballast/tests/qemu"
	"github.com/ballast-os/ballast/tests/registry"
	"github.com/ballast-os/ballast/tests/testutil"
)

// The Kubernetes node's world under QEMU user networking: the guest reaches the apiserver and the
// registry at k8sHostAddr through guestfwds, and the control plane (k8scluster, in a network
// namespace of its own) reaches the kubelet at the guest's address, which k8scluster.ReachNode
// forwards to a hostfwd of the kubelet's port.
const (
	k8sHostAddr  = "10.0.2.100"
	k8sGuestAddr = "10.0.2.15" // QEMU user networking's first DHCP address
	kubeletPort  = 10250
	k8sRegistry  = k8sHostAddr + ":5000"
	k8sNamespace = "default"
	gvisorClass  = "gvisor"
	// A loaded TCG guest can miss the kubelet's 2-minute runtime deadline creating a sandbox; the
	// kubelet then makes it again, which takes minutes more.
	k8sPodTimeout = 10 * time.Minute
)

// The pod policy's refusals (runtime/nripolicy's ErrPrivileged and ErrHostPID), as the kubelet
// passes them on in container statuses and events.
var (
	refusedPrivileged = regexp.MustCompile(`privileged containers are not allowed on this node`)
	refusedHostPID    = regexp.MustCompile(`host's PID namespace \(hostPID\) are not allowed`)
)

// k8sNode is a booted k8s variant joined to a control plane of the test's.
type k8sNode struct {
	cluster  *k8scluster.Cluster
	cs       kubernetes.Interface
	vm       *qemu.VM
	manifest *pipeline.Manifest
	dir      string
	started  time.Time // QEMU's start
	name     string    // the Node's name, once registered
	registry *registry.Registry
	api      *client.Client // the host's remote API
}

// startK8sNode starts a control plane and a registry, and boots the k8s variant with user data
// that joins it (TLS bootstrapping with the cluster's bootstrap token, gVisor on, the registry's
// CA trusted and its credentials given). It does not wait for the node.
func startK8sNode(t testing.TB) *k8sNode {
	t.Helper()
	return startK8sNodeArch(t, contract.DefaultArch)
}

// startK8sNodeArch is startK8sNode for the node of arch. The arm64 node boots on QEMU's virt
// machine without Secure Boot or a TPM, which the harness has for x86-64 only: the signed image
// boots unchecked and its /local stays plain (variants/k8s.toml's without-tpm).
func startK8sNodeArch(t testing.TB, arch contract.Arch) *k8sNode {
	t.Helper()
	if err := qemu.Available(); err != nil {
		t.Fatalf("QEMU is needed for image tests: %v", err)
	}
	dir, bins := k8sBuilt(t, arch)
	m := loadManifestAt(t, dir)
	n := &k8sNode{dir: dir, manifest: m}
	n.cluster = k8scluster.Start(t, k8scluster.Options{Binaries: bins, Hosts: []string{k8sHostAddr}})
	n.cs = n.cluster.Client()
	n.registry = registry.Start(t, registry.Options{Hostnames: []string{k8sHostAddr}})

	ctx := t.Context()
	rc := &nodev1.RuntimeClass{ObjectMeta: metav1.ObjectMeta{Name: gvisorClass}, Handler: contract.RuntimeHandlerGVisor}
	if _, err := n.cs.NodeV1().RuntimeClasses().Create(ctx, rc, metav1.CreateOptions{}); err != nil {
		t.Fatalf("RuntimeClass %s: %v", gvisorClass, err)
	}

	ud := fmt.Sprintf(`[settings.kubernetes]
api-server = "https://%s:%d"
cluster-certificate = %q
bootstrap-token = %q
cluster-dns-ip = "10.96.0.10"
pod-pids-limit = %d
# QEMU's network is dual-stack (fec0::/64 by SLAAC): name the address the control plane reaches.
node-ip = "%s"
%s
[settings.kubernetes.runtime-classes]
gvisor = true

[settings.container-registry.credentials.%q]
username = %q
password = %q

[settings.pki.k8s-test-registry]
data = %q
trusted = true
`, k8sHostAddr, k8scluster.APIServerPort, base64.StdEncoding.EncodeToString(n.cluster.CACert), n.cluster.BootstrapToken, k8sPodPidsLimit,
		k8sGuestAddr, k8sSettingsUserData, k8sRegistry, n.registry.Username, n.registry.Password, base64.StdEncoding.EncodeToString(n.registry.CACertPEM))

	// The remote API, for the reboot that shows the kubelet's graceful node shutdown.
	pki := newProdPKI(t)
	ud = pki.userData(t, ud)
	apiPort := freePort(t)

	tcpcat := goProgram(t, "./tests/qemu/cmd/tcpcat")
	kubelet := freePort(t)
	n.cluster.ReachNode(t, k8sGuestAddr, kubeletPort, fmt.Sprintf("127.0.0.1:%d", kubelet))
	cfg := qemu.Config{
		Arch:       arch,
		Disk:       copyVariantDisk(t, dir, 4<<30),
		ExtraDisks: []string{makeSeed(t, ud, nil)},
		MemoryMB:   2048,
		LogFile:    filepath.Join(t.TempDir(), "console.log"),
		// Boot, the pods' waits (the escape probes' run one after another) and the reboot.
		Timeout: 45 * time.Minute,
		HostFwd: []string{fmt.Sprintf("tcp:127.0.0.1:%d-:%d", kubelet, kubeletPort),
			fmt.Sprintf("tcp:127.0.0.1:%d-:%d", apiPort, contract.DevAPIPort)},
		GuestFwd: []string{
			fmt.Sprintf("tcp:%s:%d-cmd:%s %s", k8sHostAddr, k8scluster.APIServerPort, tcpcat, n.cluster.HostAddr),
			fmt.Sprintf("tcp:%s-cmd:%s %s", k8sRegistry, tcpcat, n.registry.Addr),
		},
	}
	switch {
	case m.Signing != nil && arch == contract.DefaultArch:
		// A signed build boots as a production host does: Secure Boot and a TPM.
		testutil.Tool(t, "swtpm", "swtpm")
		testutil.Need(t, fileExists(qemu.SecureBootOVMFCode), "%s (Debian package ovmf)", qemu.SecureBootOVMFCode)
		cfg.SecureBoot, cfg.TPMState = true, filepath.Join(t.TempDir(), "tpm")
		cfg.OVMFVars = copyFile(t, qemu.DefaultOVMFVarsTemplate)
		// The first boot enrolls the owner's keys (the machine starts in setup mode) and resets.
		cfg.AllowReboot = true
	case m.Signing != nil:
		// AAVMF starts in setup mode too: systemd-boot enrolls the keys and resets.
		cfg.AllowReboot = true
	}
	n.started = time.Now()
	vm, err := startVM(t, cfg)
	if err != nil {
		t.Fatal(err)
	}
	n.vm = vm
	if n.api, err = client.NewRemote(fmt.Sprintf("https://127.0.0.1:%d", apiPort), pki.tls); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		vm.Kill()
		if t.Failed() {
			t.Logf("k8s: console log:\n%s", vm.Console())
		}
	})
	return n
}

// gateSawReady checks that the node's own readiness check (the system init's, which feeds the
// health gate of a trial boot, through node-ready with the kubelet's credentials) saw the Node
// Ready too.
func (n *k8sNode) gateSawReady(t testing.TB, node string) {
	t.Helper()
	re := regexp.MustCompile(`ballast: boot kubelet: node ` + regexp.QuoteMeta(node) + ` is Ready`)
	if _, err := n.vm.Expect(re, 2*time.Minute); err != nil {
		t.Errorf("the init's readiness check did not see node %s Ready: %v", node, err)
	}
}

// waitReady waits for the node to register and report Ready, and returns it.
func (n *k8sNode) waitReady(t testing.TB, timeout time.Duration) *corev1.Node {
	t.Helper()
	var node *corev1.Node
	var last string
	err := wait.PollUntilContextTimeout(t.Context(), time.Second, timeout, true, func(ctx context.Context) (bool, error) {
		list, err := n.cs.CoreV1().Nodes().List(ctx, metav1.ListOptions{})
		if err != nil {
			last = err.Error()
			return false, nil
		}
		if len(list.Items) == 0 {
			last = "no node registered"
			return false, nil
		}
		node = &list.Items[0]
		c := readyCondition(node)
		if c == nil {
			last = fmt.Sprintf("node %s has no Ready condition", node.Name)
			return false, nil
		}
		last = fmt.Sprintf("node %s Ready=%s: %s %s", node.Name, c.Status, c.Reason, c.Message)
		return c.Status == corev1.ConditionTrue, nil
	})
	if err != nil {
		t.Fatalf("k8s node not Ready after %s: %s", timeout, last)
	}
	n.name = node.Name
	return node
}

// pod is a one-container pod on the node; image is a ref in the test's registry.
func k8sPod(name, image, runtimeClass string, args ...string) *corev1.Pod {
	p := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: k8sNamespace},
		Spec: corev1.PodSpec{
			RestartPolicy: corev1.RestartPolicyNever,
			Containers: []corev1.Container{{
				Name: "c", Image: image, Args: args,
				Resources: corev1.ResourceRequirements{Limits: corev1.ResourceList{
					corev1.ResourceMemory: resource.MustParse("256Mi"),
				}},
			}},
			// Nothing of the cluster's API is needed in the pods.
			AutomountServiceAccountToken: new(bool),
		},
	}
	if runtimeClass != "" {
		p.Spec.RuntimeClassName = &runtimeClass
	}
	return p
}

// retried is p restarted on failure: under a loaded TCG guest a container's start can outlast
// the kubelet's runtime request timeout (RunContainerError "context deadline exceeded"), which a
// pod that never restarts does not get over. The pods that must run to completion use it.
func retried(p *corev1.Pod) *corev1.Pod {
	p.Spec.RestartPolicy = corev1.RestartPolicyOnFailure
	return p
}

func (n *k8sNode) createPod(t testing.TB, p *corev1.Pod) {
	t.Helper()
	if _, err := n.cs.CoreV1().Pods(p.Namespace).Create(t.Context(), p, metav1.CreateOptions{}); err != nil {
		t.Fatalf("create pod %s: %v", p.Name, err)
	}
}

// waitPod polls pod name until ok says it is done, and returns it; what describes the wait.
func (n *k8sNode) waitPod(t testing.TB, name, what string, timeout time.Duration, ok func(*corev1.Pod) bool) *corev1.Pod {
	t.Helper()
	var p *corev1.Pod
	err := wait.PollUntilContextTimeout(t.Context(), 500*time.Millisecond, timeout, true, func(ctx context.Context) (bool, error) {
		got, err := n.cs.CoreV1().Pods(k8sNamespace).Get(ctx, name, metav1.GetOptions{})
		if err != nil {
			return false, nil
		}
		p = got
		return ok(p), nil
	})
	if err != nil {
		t.Fatalf("pod %s: not %s after %s: %s", name, what, timeout, n.describe(t, name, p))
	}
	return p
}

// describe is a pod's phase, container states and events, for failure messages.
func (n *k8sNode) describe(t testing.TB, name string, p *corev1.Pod) string {
	var b strings.Builder
	if p != nil {
		fmt.Fprintf(&b, "phase %s", p.Status.Phase)
		for _, cs := range p.Status.ContainerStatuses {
			fmt.Fprintf(&b, "; container %s: %+v", cs.Name, cs.State)
		}
	}
	for _, e := range n.events(t, name) {
		fmt.Fprintf(&b, "\n  event %s %s: %s", e.Type, e.Reason, e.Message)
	}
	return b.String()
}

func (n *k8sNode) events(t testing.TB, pod string) []corev1.Event {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	list, err := n.cs.CoreV1().Events(k8sNamespace).List(ctx, metav1.ListOptions{FieldSelector: "involvedObject.name=" + pod})
	if err != nil {
		t.Logf("events of %s: %v", pod, err)
		return nil
	}
	return list.Items
}

// logs reads a pod's log through the apiserver, which fetches it from the kubelet.
func (n *k8sNode) logs(t testing.TB, name string) string {
	t.Helper()
	b, err := n.cs.CoreV1().Pods(k8sNamespace).GetLogs(name, &corev1.PodLogOptions{}).DoRaw(t.Context())
	if err != nil {
		t.Fatalf("logs of pod %s: %v", name, err)
	}
	return string(b)
}

// podCompleted: the pod succeeded, or its container ended with status 0 and the kubelet has not
// yet turned that into the pod's phase (it does at its next sync of the pod, after stopping the
// sandbox, which a loaded TCG guest can take minutes to come to).
func podCompleted(p *corev1.Pod) bool {
	if p.Status.Phase == corev1.PodSucceeded {
		return true
	}
	for _, cs := range p.Status.ContainerStatuses {
		if done := cs.State.Terminated; done != nil && done.ExitCode == 0 && done.Reason == "Completed" {
			return true
		}
	}
	return false
}
func podRunning(p *corev1.Pod) bool { return p.Status.Phase == corev1.PodRunning }

// helloRef pushes the hello program as an image to the node's registry and returns its ref.
func (n *k8sNode) pushImage(t testing.TB, img ociimage.Image, repo string) string {
	t.Helper()
	ref := k8sRegistry + "/ballast/" + repo + ":1"
	if _, err := n.registry.PushArchive(t.Context(), imageArchive(t, img, false), ref); err != nil {
		t.Fatalf("push %s: %v", ref, err)
	}
	return ref
}

// TestKubernetesNode boots the k8s variant against a control plane of the test's and checks,
// through the Kubernetes API only: the node joins (TLS bootstrapping) and is Ready with
// Ballast's os-image and kernel, and with what its settings.kubernetes asked for (labels, taints,
// provider ID, max-pods, reservations); a runc pod from the test's registry runs and its log comes back
// through the apiserver and the kubelet; a gVisor pod (RuntimeClass gvisor, handler runsc)
// sees gVisor's kernel, not the node's, and the escape probe in one reports every vector blocked;
// a privileged pod and a hostPID pod are refused by the node's pod policy with its reasons; a
// change of max-pods through the node's API restarts the kubelet, which reports it; a reboot
// through the API lets the kubelet's graceful node shutdown stop a running pod first.
func TestKubernetesNode(tt *testing.T) {
	tt.Parallel() // boots QEMU: see main_test.go
	t := echoFailures(tt)
	hello := goProgram(t, "./tests/image/hello")
	probe := goProgram(t, "./tests/escape/cmd/probe")
	n := startK8sNode(t)
	helloRef := n.pushImage(t, helloImage(t, hello), "hello")
	probeRef := n.pushImage(t, probeImage(t, probe), "probe")
	node := n.waitReady(t, 8*time.Minute)
	t.Logf("node %s Ready %s after QEMU started", node.Name, time.Since(n.started).Round(time.Second))
	n.gateSawReady(t, node.Name)
	checkNodeSettings(t, node)
	info := node.Status.NodeInfo
	if want := fmt.Sprintf("Ballast %s (%s)", n.manifest.Version, n.manifest.Variant); info.OSImage != want {
		t.Errorf("node osImage %q, want %q (PRETTY_NAME)", info.OSImage, want)
	}
	if info.KernelVersion != n.manifest.Kernel {
		t.Errorf("node kernelVersion %q, want %q", info.KernelVersion, n.manifest.Kernel)
	}
	if !strings.HasPrefix(info.ContainerRuntimeVersion, "containerd://") {
		t.Errorf("node containerRuntimeVersion %q, want containerd://", info.ContainerRuntimeVersion)
	}

	// Everything at once: the pulls and the sandboxes' starts overlap under TCG.
	n.createPod(t, retried(k8sPod("hello-runc", helloRef, "", "exit", "0")))
	n.createPod(t, retried(k8sPod("kernel-runc", helloRef, "", "kernel")))
	n.createPod(t, retried(k8sPod("kernel-gvisor", helloRef, gvisorClass, "kernel")))
	for _, p := range gvisorEscapePods(probeRef) {
		n.createPod(t, p)
	}
	priv := k8sPod("privileged", helloRef, "")
	priv.Spec.Containers[0].SecurityContext = &corev1.SecurityContext{Privileged: ptrTo(true)}
	n.createPod(t, priv)
	hostPID := k8sPod("host-pid", helloRef, "")
	hostPID.Spec.HostPID = true
	n.createPod(t, hostPID)

	n.waitPod(t, "hello-runc", "completed", k8sPodTimeout, podCompleted)
	if l := n.logs(t, "hello-runc"); !strings.Contains(l, "hello: host=hello-runc ") {
		t.Errorf("hello-runc's log does not greet from its pod:\n%s", l)
	}

	runcKernel, gv := n.checkKernels(t)
	t.Logf("gVisor pod's kernel: %v; runc pod's: %v", gv, runcKernel)

	n.checkGVisorEscape(t, probeRef)

	p := n.waitPod(t, "privileged", "refused", time.Minute, func(p *corev1.Pod) bool {
		for _, cs := range p.Status.ContainerStatuses {
			if w := cs.State.Waiting; w != nil && refusedPrivileged.MatchString(w.Message) {
				return true
			}
		}
		return false
	})
	if p.Status.Phase == corev1.PodRunning || p.Status.Phase == corev1.PodSucceeded {
		t.Errorf("privileged pod ran: %s", n.describe(t, "privileged", p))
	}
	n.waitPod(t, "host-pid", "refused", time.Minute, func(p *corev1.Pod) bool {
		for _, e := range n.events(t, "host-pid") {
			if e.Reason == "FailedCreatePodSandBox" && refusedHostPID.MatchString(e.Message) {
				return p.Status.Phase == corev1.PodPending
			}
		}
		return false
	})

	// A settings change through the node's API restarts the kubelet, which rejoins with it; the
	// shutdown below then relies on the restarted kubelet's delay lock.
	n.changeMaxPods(t, k8sMaxPods+5)
	n.gracefulShutdown(t, helloRef)
}

// gracefulShutdown reboots the node through its API with a pod running: the system init tells the
// kubelet (logind's PrepareForShutdown) and waits for its delay lock, then for the API server to
// have every pod of the node ended, so the kubelet's report of why reaches it before the node
// goes down.
func (n *k8sNode) gracefulShutdown(t testing.TB, ref string) {
	t.Helper()
	n.createPod(t, k8sPod("sleeper", ref, ""))
	n.waitPod(t, "sleeper", "Running", k8sPodTimeout, podRunning)
	if err := n.api.Reboot(t.Context()); err != nil {
		t.Fatalf("reboot through the API: %v", err)
	}
	if _, err := n.vm.Expect(regexp.MustCompile(`ballast: shutdown delay locks released after`), 3*time.Minute); err != nil {
		t.Fatalf("the shutdown did not wait for the kubelet's delay lock to be released: %v", err)
	}
	// The kubelet reports a pod's end after its cleanup; the shutdown waits for the API server to
	// have it before it stops the kubelet.
	if _, err := n.vm.Expect(regexp.MustCompile(`ballast: shutdown node \S+: every pod ended \(after`), time.Minute); err != nil {
		t.Fatalf("the shutdown did not see the node's pods ended in the API server: %v", err)
	}
	p := n.waitPod(t, "sleeper", "stopped by the node's shutdown", time.Minute, func(p *corev1.Pod) bool {
		return p.Status.Phase == corev1.PodFailed && strings.Contains(p.Status.Message, "node shutdown")
	})
	t.Logf("after the reboot request: pod sleeper %s, %s: %s", p.Status.Phase, p.Status.Reason, p.Status.Message)
}

func ptrTo[T any](v T) *T { return &v }

// checkKernels waits for the pods kernel-runc and kernel-gvisor (hello's "kernel" mode) and
// checks their reports: the node's kernel in the runc pod, gVisor's in the other
// (checkGVisorKernel). It returns both reports.
func (n *k8sNode) checkKernels(t testing.TB) (runc, gvisor map[string]string) {
	t.Helper()
	n.waitPod(t, "kernel-runc", "completed", k8sPodTimeout, podCompleted)
	runc = kernelReport(t, n.logs(t, "kernel-runc"))
	if runc["release"] != n.manifest.Kernel {
		t.Errorf("runc pod: kernel release %q, want the node's %q", runc["release"], n.manifest.Kernel)
	}
	n.waitPod(t, "kernel-gvisor", "completed", k8sPodTimeout, podCompleted)
	gvisor = kernelReport(t, n.logs(t, "kernel-gvisor"))
	checkGVisorKernel(t, gvisor, n.manifest.Kernel)
	return runc, gvisor
}

// checkGVisorKernel checks a gVisor pod's kernel report (hello's "kernel" mode): gVisor's own
// release, not the node's, and the kernel log (syslog(2)) refused by the pod's seccomp profile,
// which the sentry applies (runsc's oci-seccomp: without it gVisor answers with its own log).
func checkGVisorKernel(t testing.TB, gv map[string]string, nodeKernel string) {
	t.Helper()
	if gv["release"] == nodeKernel || strings.Contains(gv["version"], nodeKernel) || !strings.Contains(gv["release"]+gv["version"], "gvisor") {
		t.Errorf("gVisor pod's kernel %v, want gVisor's, not the node's %s", gv, nodeKernel)
	}
	if !strings.Contains(gv["log"], "operation not permitted") {
		t.Errorf("gVisor pod read the kernel log (%q): the pod's seccomp profile is not applied in the sandbox", gv["log"])
	}
}

// probeImage is the escape probe (tests/escape) with its setuid-root copy.
func probeImage(t testing.TB, probe string) ociimage.Image {
	t.Helper()
	bin, err := ociimage.Program(probe, "/probe")
	if err != nil {
		t.Fatal(err)
	}
	suid := bin
	suid.Path, suid.Mode = "/probe-suid", 0o4755
	return ociimage.Image{Ref: "ballast.test/probe:1", Files: []ociimage.File{bin, suid}, Entrypoint: []string{"/probe"}}
}

// The escape probe's gVisor pods. escape-gvisor checks every vector but the two exhaustions
// (pods of their own, started after it) while escape-gvisor-peer, the same probe, stays up as the
// other container whose files it looks for. No fd broker is reachable from a pod (the broker vectors
// are the host-container suite's, TestEscapeSuite): a pod's network namespace, and in gVisor
// the sentry's own socket table, has none of the host's abstract sockets, so those vectors report
// no broker.
//
// memory-exhaust runs alone in oom-gvisor (checkGVisorOOM). gVisor's processes live in its
// sentry, whose memory the pod's limit bounds as a whole: the host's OOM killer ends the sandbox,
// not the allocating process (the kubelet gives the sandbox, the sentry and its stub processes
// alike, an OOM score of -998), so that probe's report dies with it. The container's end is the
// verdict (OOMKilled), or the host's side, and the node must still be Ready and the peer running.
const (
	escapeGVisor    = "escape-gvisor"
	escapeGVisorOOM = "oom-gvisor"
)

func gvisorEscapePods(ref string) []*corev1.Pod {
	exhaust := escape.VectorMemoryExhaust + "," + escape.VectorPidsExhaust
	peers := escapeGVisor + "," + escapeGVisor + "-peer"
	return []*corev1.Pod{
		retried(k8sPod(escapeGVisor, ref, gvisorClass, "--skip", exhaust, "--peer-wait", "20s", "--peer", peers)),
		k8sPod(escapeGVisor+"-peer", ref, gvisorClass, "--skip", exhaust, "--peer-wait", "20s", "--peer", peers, "--sleep"),
	}
}

// gvisorProbePod is a gVisor pod whose escape probe checks one vector. The two exhaustion pods
// run one after the other once the escape probe's report is in: gVisor sandboxes started at once
// on a loaded TCG guest miss the kubelet's 2-minute deadline, and their re-creation can outlast
// the wait; and each exhaustion slows the other's sandbox to where its test runs out of time.
func gvisorProbePod(name, ref, vector string) *corev1.Pod {
	var others []string
	for _, v := range escape.Vectors() {
		if v != vector {
			others = append(others, v)
		}
	}
	return k8sPod(name, ref, gvisorClass, "--skip", strings.Join(others, ","))
}

// checkGVisorEscape reads the gVisor probe's report (every vector blocked), then runs the two
// exhaustions (checkGVisorPids, checkGVisorOOM), after which the node and the peer must be
// unharmed.
func (n *k8sNode) checkGVisorEscape(t testing.TB, ref string) {
	t.Helper()
	// Its waits for peers and exhaustions under TCG take minutes of their own.
	n.waitPod(t, escapeGVisor, "completed", k8sPodTimeout+4*time.Minute, podCompleted)
	log := n.logs(t, escapeGVisor)
	report, err := escape.ParseReport(log)
	if err != nil {
		t.Fatalf("gVisor pod's escape probe: %v\n%s", err, log)
	}
	for _, v := range escape.Vectors() {
		r, ok := report[v]
		switch {
		case v == escape.VectorMemoryExhaust, v == escape.VectorPidsExhaust:
		case !ok:
			t.Errorf("gVisor pod: vector %s not reported", v)
		case r.Allowed:
			t.Errorf("gVisor pod: %s ALLOWED: %s", v, r.Detail)
		default:
			t.Logf("gVisor pod: %s blocked: %s", v, r.Detail)
		}
	}

	n.checkGVisorPids(t, ref)
	n.checkGVisorOOM(t, ref)
	n.waitReady(t, time.Minute)
	n.waitPod(t, escapeGVisor+"-peer", "still running", time.Minute, podRunning)
}

// kernelReport parses hello's "kernel" lines: release, version and log.
func kernelReport(t testing.TB, log string) map[string]string {
	t.Helper()
	r := map[string]string{}
	for _, line := range strings.Split(log, "\n") {
		if rest, ok := strings.CutPrefix(line, "kernel: "); ok {
			k, v, _ := strings.Cut(rest, "=")
			r[k] = v
		}
	}
	if len(r) != 3 {
		t.Fatalf("kernel report: want release, version and log lines:\n%s", log)
	}
	return r
}
