package image

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"

	"github.com/ballast-os/ballast/tests/escape"
)

// k8sPodPidsLimit is the node's pod-pids-limit in the test's user data: the escape probe's fork
// test meets it before its pod's memory limit, and soon: gVisor on a loaded TCG guest takes
// seconds to start each of its sleepers.
const k8sPodPidsLimit = 128

// escapeGVisorPids runs the escape probe's pids-exhaust alone in a gVisor pod. gVisor's own
// cgroups show the sandbox no pids limit: the kubelet's limit is on the pod's cgroup on the
// host, which holds the sentry and its stub processes. At that limit the sentry either fails
// the fork (ENOMEM, which the probe reports as BLOCKED) or holds it, which the probe, seeing
// no limit, cannot tell from a hang. The test reads the host's side: the pod's cgroup in the
// kubelet's cAdvisor metrics.
const escapeGVisorPids = "pids-gvisor"

// podCgroup is what the kubelet's cAdvisor reported for a pod's cgroup on the host over a watch:
// its limits and the most it was seen to hold.
type podCgroup struct {
	mu       sync.Mutex
	pidsMax  int   // pids.max, 0 while unseen ("max" reads as 0 too)
	pidsPeak int   // the most tasks (pids.current) seen
	memMax   int64 // memory.max, 0 while unseen
	memPeak  int64 // the most memory in use (memory.current) seen
	samples  int
	last     error
	stop     context.CancelFunc
}

// podCgroupSample is one reading of a pod's cgroup.
type podCgroupSample struct {
	threads, threadsMax int
	memUsage, memLimit  int64
}

func (p *podCgroup) snapshot() (podCgroup, int) {
	p.mu.Lock()
	defer p.mu.Unlock()
	return podCgroup{pidsMax: p.pidsMax, pidsPeak: p.pidsPeak, memMax: p.memMax, memPeak: p.memPeak, last: p.last}, p.samples
}

// watchPodCgroup reads the node's /metrics/cadvisor (through the apiserver's node proxy) every
// 5 s until ctx ends, for the cgroup of the pod with that UID.
func (n *k8sNode) watchPodCgroup(ctx context.Context, uid types.UID) *podCgroup {
	ctx, stop := context.WithCancel(ctx)
	p := &podCgroup{stop: stop}
	go func() {
		tick := time.NewTicker(5 * time.Second)
		defer tick.Stop()
		for {
			raw, err := n.cs.CoreV1().RESTClient().Get().AbsPath("/api/v1/nodes", n.name, "proxy", "metrics", "cadvisor").DoRaw(ctx)
			if ctx.Err() != nil {
				return
			}
			s, found, perr := podCgroupMetrics(raw, uid)
			p.mu.Lock()
			switch {
			case err != nil:
				p.last = err
			case perr != nil:
				p.last = perr
			case found:
				p.samples++
				p.pidsMax, p.memMax = s.threadsMax, s.memLimit
				p.pidsPeak = max(p.pidsPeak, s.threads)
				p.memPeak = max(p.memPeak, s.memUsage)
			}
			p.mu.Unlock()
			select {
			case <-ctx.Done():
				return
			case <-tick.C:
			}
		}
	}()
	return p
}

var metricLine = regexp.MustCompile(`^(container_threads|container_threads_max|container_memory_usage_bytes|container_spec_memory_limit_bytes)\{([^}]*)\}\s+(\S+)`)

// podCgroupMetrics finds, in cAdvisor's Prometheus text, the tasks, memory and their limits of
// the pod-level cgroup of the pod with that UID: the cgroupfs driver's .../pod<uid>, which
// cAdvisor labels only by its id. found is whether all four were there.
func podCgroupMetrics(text []byte, uid types.UID) (s podCgroupSample, found bool, err error) {
	suffix := `/pod` + string(uid) + `"`
	seen := map[string]bool{}
	sc := bufio.NewScanner(bytes.NewReader(text))
	sc.Buffer(make([]byte, 0, 64<<10), 1<<20)
	for sc.Scan() {
		m := metricLine.FindStringSubmatch(sc.Text())
		if m == nil || !podIDLabel(m[2], suffix) {
			continue
		}
		v, perr := strconv.ParseFloat(m[3], 64)
		if perr != nil {
			return podCgroupSample{}, false, fmt.Errorf("cadvisor metrics: %s of pod %s: value %q: %w", m[1], uid, m[3], perr)
		}
		seen[m[1]] = true
		switch m[1] {
		case "container_threads":
			s.threads = int(v)
		case "container_threads_max":
			s.threadsMax = int(v)
		case "container_memory_usage_bytes":
			s.memUsage = int64(v)
		case "container_spec_memory_limit_bytes":
			s.memLimit = int64(v)
		}
	}
	if err := sc.Err(); err != nil {
		return podCgroupSample{}, false, fmt.Errorf("cadvisor metrics: %w", err)
	}
	return s, len(seen) == 4, nil
}

// podIDLabel: labels has an id label ending in suffix (`/pod<uid>"`).
func podIDLabel(labels, suffix string) bool {
	for _, l := range strings.Split(labels, ",") {
		if strings.HasPrefix(l, `id="`) {
			return strings.HasSuffix(l, suffix)
		}
	}
	return false
}

// probeLine is the status (BLOCKED, ALLOWED, ERROR) and detail of one vector in a probe's log.
func probeLine(log, vector string) (status, detail string, ok bool) {
	for _, line := range strings.Split(log, "\n") {
		at := strings.Index(line, escape.LinePrefix+vector+" ")
		if at < 0 {
			continue
		}
		f := strings.Fields(line[at+len(escape.LinePrefix):])
		if len(f) < 2 {
			return "", "", false
		}
		return f[1], strings.Join(f[2:], " "), true
	}
	return "", "", false
}

// stalledFork is the probe's fork test ending without a verdict because the forker stopped
// getting tasks: a fork held (fork stalled) or a sleeper that never ran (did not start).
var stalledFork = regexp.MustCompile(`^fork stalled: |a sleeper did not start within`)

// heldAlloc is the probe's memory test ending without a verdict because the allocator stopped
// getting memory, or got it too slowly to end in time: held at a limit the probe does not see.
var heldAlloc = regexp.MustCompile(`^allocator (stalled: |still running after )`)

// fullSlack is how far below pids.max the pod's cgroup may be read and still count as full: a
// held fork means a clone failed at the limit, but cAdvisor reads the cgroup every 10 to 15 s,
// while the sentry's and its stubs' threads come and go. memFullSlack is the same for memory:
// one step of the probe's allocator.
const (
	fullSlack    = 8
	memFullSlack = 16 << 20
)

// exhaustPodTimeout is how long an exhaustion pod may take from its creation to its end: a gVisor
// sandbox's start on a loaded TCG guest, then the probe's test (up to 8 minutes).
const exhaustPodTimeout = k8sPodTimeout + 4*time.Minute

// startExhaustPod creates a gVisor pod whose escape probe checks one exhaustion vector and starts
// reading its cgroup on the host.
func (n *k8sNode) startExhaustPod(t testing.TB, pod *corev1.Pod) *podCgroup {
	t.Helper()
	n.createPod(t, pod)
	cg := n.watchPodCgroup(t.Context(), n.podUID(t, pod.Name))
	t.Cleanup(cg.stop)
	return cg
}

// checkGVisorPids runs and judges the gVisor pod's pids-exhaust: the sandbox's cgroup on the
// host must carry the pod pids limit, and the probe's forks must end there, refused in the
// sandbox or held by the sentry while the host's cgroup is full.
func (n *k8sNode) checkGVisorPids(t testing.TB, ref string) {
	t.Helper()
	cg := n.startExhaustPod(t, retried(gvisorProbePod(escapeGVisorPids, ref, escape.VectorPidsExhaust)))
	p := n.waitPod(t, escapeGVisorPids, "completed", exhaustPodTimeout, podCompleted)
	cg.stop()
	log := n.logs(t, escapeGVisorPids)
	seen, samples := cg.snapshot()
	limit, peak := seen.pidsMax, seen.pidsPeak
	host := fmt.Sprintf("the pod's cgroup on the host: pids.max %d, at most %d tasks over %d reads of the kubelet's cAdvisor metrics; %s", limit, peak, samples, podTimes(p))
	if samples == 0 {
		t.Errorf("gVisor pod %s: its cgroup never appeared in the kubelet's cAdvisor metrics (last error: %v)", escapeGVisorPids, seen.last)
		return
	}
	if limit != k8sPodPidsLimit {
		t.Errorf("gVisor pod %s: %s, want pids.max %d (pod-pids-limit)", escapeGVisorPids, host, k8sPodPidsLimit)
	}
	status, detail, ok := probeLine(log, escape.VectorPidsExhaust)
	switch {
	case !ok:
		t.Errorf("gVisor pod %s: no %s line in its report:\n%s", escapeGVisorPids, escape.VectorPidsExhaust, log)
	case status == "BLOCKED":
		t.Logf("gVisor pod: %s blocked: %s; %s", escape.VectorPidsExhaust, detail, host)
	case status == "ERROR" && stalledFork.MatchString(detail) && limit > 0 && peak >= limit-fullSlack:
		t.Logf("gVisor pod: %s blocked: the sentry held the fork with the sandbox's cgroup full (%s); %s", escape.VectorPidsExhaust, detail, host)
	default:
		t.Errorf("gVisor pod: %s %s: %s; %s", escape.VectorPidsExhaust, status, detail, host)
	}
}

// checkGVisorOOM runs and judges the gVisor pod's memory-exhaust. Its allocations must end at
// the pod's memory limit: refused or killed in the sandbox (the probe reports it blocked), the
// sandbox ended by the host's OOM killer (OOMKilled: the probe's report dies with it), or held
// while the pod's cgroup on the host is full (the allocator stalls: the host reclaims the
// sandbox's own pages over and over rather than kill it, which under TCG can last minutes).
func (n *k8sNode) checkGVisorOOM(t testing.TB, ref string) {
	t.Helper()
	cg := n.startExhaustPod(t, gvisorProbePod(escapeGVisorOOM, ref, escape.VectorMemoryExhaust))
	p := n.waitPod(t, escapeGVisorOOM, "ended", exhaustPodTimeout, func(p *corev1.Pod) bool {
		for _, cs := range p.Status.ContainerStatuses {
			if cs.State.Terminated != nil {
				return true
			}
		}
		return false
	})
	cg.stop()
	end := p.Status.ContainerStatuses[0].State.Terminated
	log := n.logs(t, escapeGVisorOOM)
	seen, samples := cg.snapshot()
	host := fmt.Sprintf("the pod's cgroup on the host: memory.max %d MiB, at most %d MiB in use over %d reads of the kubelet's cAdvisor metrics; %s", seen.memMax>>20, seen.memPeak>>20, samples, podTimes(p))
	status, detail, ok := probeLine(log, escape.VectorMemoryExhaust)
	switch {
	case ok && status == "ALLOWED":
		t.Errorf("gVisor pod: %s ALLOWED: %s; %s", escape.VectorMemoryExhaust, detail, host)
	case ok && status == "BLOCKED":
		t.Logf("gVisor pod: %s blocked in the sandbox: %s; %s", escape.VectorMemoryExhaust, detail, host)
	case !ok && end.Reason == "OOMKilled":
		t.Logf("gVisor pod: %s blocked: the pod's memory limit ended its sandbox (%s, exit %d); %s", escape.VectorMemoryExhaust, end.Reason, end.ExitCode, host)
	case ok && status == "ERROR" && heldAlloc.MatchString(detail) && seen.memMax > 0 && seen.memPeak >= seen.memMax-memFullSlack:
		t.Logf("gVisor pod: %s blocked: the allocator was held with the sandbox's cgroup full (%s); %s", escape.VectorMemoryExhaust, detail, host)
	case ok:
		t.Errorf("gVisor pod: %s %s: %s; %s", escape.VectorMemoryExhaust, status, detail, host)
	default:
		t.Errorf("gVisor pod %s: ended %s (exit %d) without a %s line, want the sandbox OOM-killed at the pod's limit; %s: %s\nits log:\n%s", escapeGVisorOOM, end.Reason, end.ExitCode, escape.VectorMemoryExhaust, host, n.describe(t, escapeGVisorOOM, p), log)
	}
}

// podTimes says how long a pod's container took to start and how long it ran.
func podTimes(p *corev1.Pod) string {
	for _, cs := range p.Status.ContainerStatuses {
		if end := cs.State.Terminated; end != nil {
			return fmt.Sprintf("started %v after the pod's creation, ran %v", end.StartedAt.Sub(p.CreationTimestamp.Time), end.FinishedAt.Sub(end.StartedAt.Time))
		}
	}
	return "not ended"
}

// podUID is the UID of a pod just created.
func (n *k8sNode) podUID(t testing.TB, name string) types.UID {
	t.Helper()
	p, err := n.cs.CoreV1().Pods(k8sNamespace).Get(t.Context(), name, metav1.GetOptions{})
	if err != nil {
		t.Fatalf("pod %s: %v", name, err)
	}
	return p.UID
}
