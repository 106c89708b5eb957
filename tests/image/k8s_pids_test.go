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

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"

	"github.com/ballast-os/ballast/tests/escape"
)

// k8sPodPidsLimit is the node's pod-pids-limit in the test's user data: the escape probe's fork
// test meets it before its pod's memory limit, and soon (gVisor under TCG starts a process a
// second).
const k8sPodPidsLimit = 128

// escapeGVisorPids runs the escape probe's pids-exhaust alone in a gVisor pod. gVisor's own
// cgroups show the sandbox no pids limit: the kubelet's limit is on the pod's cgroup on the
// host, which holds the sentry and its stub processes. At that limit the sentry either fails
// the fork (ENOMEM, which the probe reports as BLOCKED) or holds it, which the probe, seeing
// no limit, cannot tell from a hang. The test reads the host's side: the pod's cgroup in the
// kubelet's cAdvisor metrics.
const escapeGVisorPids = "pids-gvisor"

// podThreads is what the kubelet's cAdvisor reported for a pod's cgroup on the host over a
// watch: its pids.max and the most tasks it held.
type podThreads struct {
	mu      sync.Mutex
	max     int // pids.max, 0 while unseen ("max" reads as 0 too)
	peak    int // the most tasks (pids.current) seen
	samples int
	last    error
	stop    context.CancelFunc
}

func (p *podThreads) snapshot() (limit, peak, samples int, last error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.max, p.peak, p.samples, p.last
}

// watchPodThreads reads the node's /metrics/cadvisor (through the apiserver's node proxy) every
// 5 s until ctx ends, for the cgroup of the pod with that UID.
func (n *k8sNode) watchPodThreads(ctx context.Context, uid types.UID) *podThreads {
	ctx, stop := context.WithCancel(ctx)
	p := &podThreads{stop: stop}
	go func() {
		tick := time.NewTicker(5 * time.Second)
		defer tick.Stop()
		for {
			raw, err := n.cs.CoreV1().RESTClient().Get().AbsPath("/api/v1/nodes", n.name, "proxy", "metrics", "cadvisor").DoRaw(ctx)
			if ctx.Err() != nil {
				return
			}
			limit, cur, found, perr := podCgroupThreads(raw, uid)
			p.mu.Lock()
			switch {
			case err != nil:
				p.last = err
			case perr != nil:
				p.last = perr
			case found:
				p.samples++
				p.max = limit
				p.peak = max(p.peak, cur)
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

var metricLine = regexp.MustCompile(`^(container_threads(?:_max)?)\{([^}]*)\}\s+(\S+)`)

// podCgroupThreads finds, in cAdvisor's Prometheus text, container_threads and
// container_threads_max of the pod-level cgroup of the pod with that UID: the cgroupfs driver's
// .../pod<uid>, which cAdvisor labels only by its id.
func podCgroupThreads(text []byte, uid types.UID) (limit, current int, found bool, err error) {
	suffix := `/pod` + string(uid) + `"`
	var seenMax, seenCur bool
	sc := bufio.NewScanner(bytes.NewReader(text))
	sc.Buffer(make([]byte, 0, 64<<10), 1<<20)
	for sc.Scan() {
		m := metricLine.FindStringSubmatch(sc.Text())
		if m == nil || !podIDLabel(m[2], suffix) {
			continue
		}
		v, perr := strconv.ParseFloat(m[3], 64)
		if perr != nil {
			return 0, 0, false, fmt.Errorf("cadvisor metrics: %s of pod %s: value %q: %w", m[1], uid, m[3], perr)
		}
		if m[1] == "container_threads_max" {
			limit, seenMax = int(v), true
		} else {
			current, seenCur = int(v), true
		}
	}
	if err := sc.Err(); err != nil {
		return 0, 0, false, fmt.Errorf("cadvisor metrics: %w", err)
	}
	return limit, current, seenMax && seenCur, nil
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

// fullSlack is how far below pids.max the pod's cgroup may be read and still count as full: a
// held fork means a clone failed at the limit, but cAdvisor reads the cgroup every 10 to 15 s,
// while the sentry's and its stubs' threads come and go.
const fullSlack = 8

// checkGVisorPids judges the gVisor pod's pids-exhaust: the sandbox's cgroup on the host must
// carry the pod pids limit, and the probe's forks must end there, refused in the sandbox or held
// by the sentry while the host's cgroup is full.
func (n *k8sNode) checkGVisorPids(t testing.TB, threads *podThreads) {
	t.Helper()
	// Its fork test under TCG takes minutes of its own.
	n.waitPod(t, escapeGVisorPids, "completed", k8sPodTimeout+4*time.Minute, podCompleted)
	threads.stop()
	log := n.logs(t, escapeGVisorPids)
	limit, peak, samples, last := threads.snapshot()
	host := fmt.Sprintf("the pod's cgroup on the host: pids.max %d, at most %d tasks over %d reads of the kubelet's cAdvisor metrics", limit, peak, samples)
	if samples == 0 {
		t.Errorf("gVisor pod %s: its cgroup never appeared in the kubelet's cAdvisor metrics (last error: %v)", escapeGVisorPids, last)
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

// startGVisorPids creates the fork test's pod and starts reading its cgroup on the host.
func (n *k8sNode) startGVisorPids(t testing.TB, ref string) *podThreads {
	t.Helper()
	n.createPod(t, retried(gvisorProbePod(escapeGVisorPids, ref, escape.VectorPidsExhaust)))
	threads := n.watchPodThreads(t.Context(), n.podUID(t, escapeGVisorPids))
	t.Cleanup(threads.stop)
	return threads
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
