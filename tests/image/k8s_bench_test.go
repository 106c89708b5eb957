package image

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/klauspost/compress/zstd"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// k8sIdleMemoryGoal is issue 15's goal for the node's idle memory with the kubelet running.
const k8sIdleMemoryGoal = 160 << 20

// BenchmarkK8sNode boots the k8s variant once against the test's control plane (-benchtime 1x)
// and reports: QEMU start to the node Ready (TCG); the node's memory in use while idle, as the
// kubelet's summary API reports it (the root cgroup's working set, what eviction goes by);
// pod start p50, creation to Running, with runc and with gVisor (10 each, one after another,
// after a first pod of each has pulled the image and warmed the runtime); and the image's size
// with zstd beside the qemu variant's.
func BenchmarkK8sNode(b *testing.B) {
	hello := goProgram(b, "./tests/image/hello")
	for b.Loop() {
		n := startK8sNode(b)
		ref := n.pushImage(b, helloImage(b, hello), "hello")
		node := n.waitReady(b, 10*time.Minute)
		ready := time.Since(n.started)
		b.ReportMetric(ready.Seconds(), "s_boot_to_ready")
		b.Logf("node %s Ready %s after QEMU started", node.Name, ready.Round(time.Second))

		// Idle: the kubelet's first sync loops and image garbage collection's start are over.
		time.Sleep(30 * time.Second)
		mem := n.idleMemory(b)
		b.ReportMetric(float64(mem)/(1<<20), "MiB_idle_used")
		b.Logf("idle memory in use %.0f MiB: %.2f× the %d MiB goal", float64(mem)/(1<<20), float64(mem)/k8sIdleMemoryGoal, k8sIdleMemoryGoal>>20)

		const starts = 10
		runc := n.podStarts(b, ref, "", starts)
		gvisor := n.podStarts(b, ref, gvisorClass, starts)
		b.ReportMetric(runc.Seconds(), "s_pod_start_runc_p50")
		b.ReportMetric(gvisor.Seconds(), "s_pod_start_gvisor_p50")
		b.Logf("pod start p50: runc %s, gVisor %s (%.2f× runc)", runc.Round(time.Millisecond), gvisor.Round(time.Millisecond), gvisor.Seconds()/runc.Seconds())
	}
	k8s := zstdSize(b, filepath.Join(variantBuildDirB(b, "k8s"), "disk.raw"))
	qemuSize := zstdSize(b, filepath.Join(variantBuildDirB(b, "qemu"), "disk.raw"))
	b.ReportMetric(float64(k8s)/(1<<20), "k8s_zstd_MiB")
	b.Logf("k8s image with zstd %.1f MiB: %.2f× the qemu variant's %.1f MiB", float64(k8s)/(1<<20), float64(k8s)/float64(qemuSize), float64(qemuSize)/(1<<20))
}

// zstdSize is a file's size compressed with zstd at its default level, as BenchmarkVariantSizes
// measures the other variants.
func zstdSize(b *testing.B, path string) int64 {
	b.Helper()
	f, err := os.Open(path)
	if err != nil {
		b.Fatal(err)
	}
	defer f.Close()
	var n countWriter
	enc, err := zstd.NewWriter(&n, zstd.WithEncoderLevel(zstd.SpeedDefault))
	if err != nil {
		b.Fatal(err)
	}
	if _, err := io.Copy(enc, f); err != nil {
		b.Fatalf("zstd %s: %v", path, err)
	}
	if err := enc.Close(); err != nil {
		b.Fatal(err)
	}
	return int64(n)
}

// idleMemory is the median of three reads, 5 s apart, of the node's memory working set from the
// kubelet's summary API (through the apiserver's node proxy).
func (n *k8sNode) idleMemory(b *testing.B) uint64 {
	b.Helper()
	var reads []uint64
	for i := range 3 {
		if i > 0 {
			time.Sleep(5 * time.Second)
		}
		raw, err := n.cs.CoreV1().RESTClient().Get().AbsPath("/api/v1/nodes", n.name, "proxy", "stats", "summary").DoRaw(b.Context())
		if err != nil {
			b.Fatalf("kubelet summary of %s: %v", n.name, err)
		}
		// The part of the kubelet's stats/v1alpha1 Summary read here.
		var s struct {
			Node struct {
				Memory struct {
					WorkingSetBytes *uint64 `json:"workingSetBytes"`
				} `json:"memory"`
			} `json:"node"`
		}
		if err := json.Unmarshal(raw, &s); err != nil {
			b.Fatalf("kubelet summary: %v", err)
		}
		if s.Node.Memory.WorkingSetBytes == nil || *s.Node.Memory.WorkingSetBytes == 0 {
			b.Fatalf("kubelet summary has no node memory working set: %.300s", raw)
		}
		reads = append(reads, *s.Node.Memory.WorkingSetBytes)
	}
	slices.Sort(reads)
	return reads[1]
}

// podStarts starts a warm-up pod and then count pods one after another with the runtime class
// (runc when empty), each timed from its creation until the API shows it Running, and returns
// the median.
func (n *k8sNode) podStarts(b *testing.B, ref, class string, count int) time.Duration {
	b.Helper()
	label := class
	if label == "" {
		label = "runc"
	}
	var times []time.Duration
	for i := range count + 1 {
		name := fmt.Sprintf("start-%s-%d", label, i)
		// A watch from before the creation sees the change to Running as it happens, which
		// polling would round up.
		ctx, cancel := context.WithTimeout(b.Context(), k8sPodTimeout)
		w, err := n.cs.CoreV1().Pods(k8sNamespace).Watch(ctx, metav1.ListOptions{FieldSelector: "metadata.name=" + name})
		if err != nil {
			cancel()
			b.Fatalf("watch pod %s: %v", name, err)
		}
		start := time.Now()
		n.createPod(b, k8sPod(name, ref, class))
		running := false
		for ev := range w.ResultChan() {
			if p, ok := ev.Object.(*corev1.Pod); ok && podRunning(p) {
				running = true
				break
			}
		}
		w.Stop()
		cancel()
		if !running {
			// The watch ended first (the apiserver closes watches when it likes): poll the rest.
			b.Logf("pod %s: the watch ended after %s; polling", name, time.Since(start).Round(time.Millisecond))
			n.waitPod(b, name, "Running", max(k8sPodTimeout-time.Since(start), time.Second), podRunning)
		}
		took := time.Since(start)
		if i > 0 {
			times = append(times, took)
		}
		zero := int64(0)
		if err := n.cs.CoreV1().Pods(k8sNamespace).Delete(b.Context(), name, metav1.DeleteOptions{GracePeriodSeconds: &zero}); err != nil {
			b.Fatalf("delete pod %s: %v", name, err)
		}
	}
	slices.Sort(times)
	b.Logf("%s pod starts: %v", label, times)
	return times[len(times)/2]
}
