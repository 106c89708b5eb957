package image

import (
	"context"
	"fmt"
	"slices"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"

	"github.com/ballast-os/ballast/apiserver/client"
)

// The node's settings.kubernetes in startK8sNodeArch's user data that the kubelet registers
// with, and which checkNodeSettings finds on the Node. The memory held back (both reservations and
// the threshold) adds up to the kubelet's default threshold alone, 100Mi, so the node test's pods
// fit as they did without these settings.
const (
	k8sMaxPods          = 40
	k8sLabelKey         = "example.com/pool"
	k8sLabelValue       = "ballast-test"
	k8sTaintKey         = "example.com/dedicated"
	k8sTaintValue       = "tests"
	k8sTaintEffect      = corev1.TaintEffectPreferNoSchedule // the test's pods still land on it
	k8sProviderID       = "ballast:///tests/k8s-node"
	k8sKubeReserved     = "16Mi"
	k8sSysReserved      = "16Mi"
	k8sEvictionHard     = "68Mi"
	k8sCPUReservedMilli = 50 // millicores, in each of kube-reserved and system-reserved
)

// k8sSettingsUserData is the part of the user data that checkNodeSettings checks.
var k8sSettingsUserData = fmt.Sprintf(`max-pods = %d
provider-id = %q

[settings.kubernetes.node-labels]
%q = %q

[settings.kubernetes.node-taints]
%q = ["%s:%s"]

[settings.kubernetes.kube-reserved]
cpu = "%dm"
memory = %q

[settings.kubernetes.system-reserved]
cpu = "%dm"
memory = %q

[settings.kubernetes.eviction-hard]
"memory.available" = %q
`, k8sMaxPods, k8sProviderID, k8sLabelKey, k8sLabelValue, k8sTaintKey, k8sTaintValue, k8sTaintEffect,
	k8sCPUReservedMilli, k8sKubeReserved, k8sCPUReservedMilli, k8sSysReserved, k8sEvictionHard)

// checkNodeSettings checks that the Node carries what the user data's settings.kubernetes asked
// for: its label, its taint, its provider ID, max-pods as its pod capacity, and allocatable
// memory and CPU less the reservations and the hard eviction threshold.
func checkNodeSettings(t testing.TB, node *corev1.Node) {
	t.Helper()
	if got := node.Labels[k8sLabelKey]; got != k8sLabelValue {
		t.Errorf("node label %s = %q, want %q (node-labels)", k8sLabelKey, got, k8sLabelValue)
	}
	if !slices.ContainsFunc(node.Spec.Taints, func(tn corev1.Taint) bool {
		return tn.Key == k8sTaintKey && tn.Value == k8sTaintValue && tn.Effect == k8sTaintEffect
	}) {
		t.Errorf("node taints %v, want %s=%s:%s among them (node-taints)", node.Spec.Taints, k8sTaintKey, k8sTaintValue, k8sTaintEffect)
	}
	if node.Spec.ProviderID != k8sProviderID {
		t.Errorf("node providerID %q, want %q (provider-id)", node.Spec.ProviderID, k8sProviderID)
	}
	checkMaxPods(t, node, k8sMaxPods)

	capMem, allocMem := node.Status.Capacity.Memory().Value(), node.Status.Allocatable.Memory().Value()
	var held int64
	for _, q := range []string{k8sKubeReserved, k8sSysReserved, k8sEvictionHard} {
		r := resource.MustParse(q)
		held += r.Value()
	}
	if capMem-allocMem != held {
		t.Errorf("node memory: capacity %d, allocatable %d: %d held back, want %d (kube-reserved %s + system-reserved %s + eviction-hard %s)",
			capMem, allocMem, capMem-allocMem, held, k8sKubeReserved, k8sSysReserved, k8sEvictionHard)
	}
	capCPU, allocCPU := node.Status.Capacity.Cpu().MilliValue(), node.Status.Allocatable.Cpu().MilliValue()
	if capCPU-allocCPU != 2*k8sCPUReservedMilli {
		t.Errorf("node CPU: capacity %dm, allocatable %dm, want %dm held back (kube-reserved and system-reserved)", capCPU, allocCPU, 2*k8sCPUReservedMilli)
	}
}

func checkMaxPods(t testing.TB, node *corev1.Node, want int64) {
	t.Helper()
	if c, a := node.Status.Capacity.Pods().Value(), node.Status.Allocatable.Pods().Value(); c != want || a != want {
		t.Errorf("node pods: capacity %d, allocatable %d, want %d (max-pods)", c, a, want)
	}
}

// changeMaxPods sets settings.kubernetes.max-pods through the node's API and checks that the
// apply restarted the kubelet, which then reports the new capacity, and that the node is Ready
// again.
func (n *k8sNode) changeMaxPods(t testing.TB, maxPods int64) {
	t.Helper()
	ctx := t.Context()
	patch, err := client.PatchFromPairs([]string{fmt.Sprintf("settings.kubernetes.max-pods=%d", maxPods)})
	if err != nil {
		t.Fatal(err)
	}
	if err := n.api.Patch(ctx, patch); err != nil {
		t.Fatalf("max-pods=%d: %v", maxPods, err)
	}
	start := time.Now()
	res, err := n.api.CommitAndApplyTx(ctx, "")
	if err != nil {
		t.Fatalf("max-pods=%d: commit and apply: %v", maxPods, err)
	}
	if !slices.Contains(res.Restarted, "kubelet") {
		t.Errorf("max-pods=%d: restarted %v, want the kubelet (files %v)", maxPods, res.Restarted, res.Files)
	}
	var node *corev1.Node
	var last string
	err = wait.PollUntilContextTimeout(ctx, time.Second, 5*time.Minute, true, func(ctx context.Context) (bool, error) {
		got, err := n.cs.CoreV1().Nodes().Get(ctx, n.name, metav1.GetOptions{})
		if err != nil {
			last = err.Error()
			return false, nil
		}
		node = got
		last = fmt.Sprintf("pods capacity %s, Ready %s", got.Status.Capacity.Pods(), nodeReady(got))
		return got.Status.Capacity.Pods().Value() == maxPods && nodeReady(got) == corev1.ConditionTrue, nil
	})
	if err != nil {
		t.Fatalf("max-pods=%d: the node did not report it, Ready, within 5m: %s", maxPods, last)
	}
	checkMaxPods(t, node, maxPods)
	t.Logf("max-pods=%d: the kubelet restarted and the node reported it, Ready, %s after the apply", maxPods, time.Since(start).Round(time.Second))
}

// readyCondition is the node's Ready condition, nil if it has none yet.
func readyCondition(node *corev1.Node) *corev1.NodeCondition {
	for i, c := range node.Status.Conditions {
		if c.Type == corev1.NodeReady {
			return &node.Status.Conditions[i]
		}
	}
	return nil
}

func nodeReady(node *corev1.Node) corev1.ConditionStatus {
	if c := readyCondition(node); c != nil {
		return c.Status
	}
	return corev1.ConditionUnknown
}
