package image

import (
	"testing"

	"k8s.io/apimachinery/pkg/types"
)

func TestPodCgroupThreads(t *testing.T) {
	const uid = types.UID("6f1c9a52-2d7e-4f7a-9a43-0c1d2e3f4a5b")
	// The shape of the kubelet's /metrics/cadvisor: the pod-level cgroup carries only its id; its
	// containers' cgroups lie below it and carry the pod's name.
	const metrics = `# HELP container_threads Number of threads running inside the container
# TYPE container_threads gauge
container_threads{container="",id="/",image="",name="",namespace="",pod=""} 301 1764770000000
container_threads{container="",id="/kubepods/burstable/pod6f1c9a52-2d7e-4f7a-9a43-0c1d2e3f4a5b",image="",name="",namespace="",pod=""} 128 1764770000000
container_threads{container="",id="/kubepods/burstable/pod6f1c9a52-2d7e-4f7a-9a43-0c1d2e3f4a5b/3f2a",image="",name="3f2a",namespace="default",pod="pids-gvisor"} 121 1764770000000
container_threads{container="",id="/kubepods/burstable/pod00000000-2d7e-4f7a-9a43-0c1d2e3f4a5b",image="",name="",namespace="",pod=""} 7 1764770000000
# HELP container_threads_max Maximum number of threads allowed inside the container, infinity if value is zero
# TYPE container_threads_max gauge
container_threads_max{container="",id="/",image="",name="",namespace="",pod=""} 0 1764770000000
container_threads_max{container="",id="/kubepods/burstable/pod6f1c9a52-2d7e-4f7a-9a43-0c1d2e3f4a5b",image="",name="",namespace="",pod=""} 128 1764770000000
container_threads_max{container="",id="/kubepods/burstable/pod00000000-2d7e-4f7a-9a43-0c1d2e3f4a5b",image="",name="",namespace="",pod=""} 128 1764770000000
`
	for _, tc := range []struct {
		name            string
		text            string
		limit, cur      int
		found, wantErrs bool
	}{
		{"the pod's own cgroup, not its containers' or another pod's", metrics, 128, 128, true, false},
		{"no such pod", "container_threads{id=\"/\"} 3\n", 0, 0, false, false},
		{"only the current count", "container_threads{id=\"/kubepods/burstable/pod" + string(uid) + "\"} 3\n", 0, 3, false, false},
		{"a value that is no number", "container_threads{id=\"/kubepods/burstable/pod" + string(uid) + "\"} many\n", 0, 0, false, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			limit, cur, found, err := podCgroupThreads([]byte(tc.text), uid)
			if (err != nil) != tc.wantErrs {
				t.Fatalf("err %v, want error %v", err, tc.wantErrs)
			}
			if err != nil {
				return
			}
			if limit != tc.limit || cur != tc.cur || found != tc.found {
				t.Errorf("got pids.max %d, tasks %d, found %v; want %d, %d, %v", limit, cur, found, tc.limit, tc.cur, tc.found)
			}
		})
	}
}

func TestProbeLine(t *testing.T) {
	log := "starting\nballast-probe: mount BLOCKED mount(2): EPERM\n" +
		"ballast-probe: pids-exhaust ERROR fork stalled: no new task in 2m0s at 91 tasks (no pids limit, 26 sleepers): no verdict\n" +
		"ballast-probe: done 2 vectors\n"
	for _, tc := range []struct {
		vector, status, detail string
		ok                     bool
	}{
		{"pids-exhaust", "ERROR", "fork stalled: no new task in 2m0s at 91 tasks (no pids limit, 26 sleepers): no verdict", true},
		{"mount", "BLOCKED", "mount(2): EPERM", true},
		{"mknod", "", "", false},
	} {
		status, detail, ok := probeLine(log, tc.vector)
		if status != tc.status || detail != tc.detail || ok != tc.ok {
			t.Errorf("%s: got %q %q %v, want %q %q %v", tc.vector, status, detail, ok, tc.status, tc.detail, tc.ok)
		}
		if tc.status == "ERROR" && !stalledFork.MatchString(detail) {
			t.Errorf("%s: %q is not taken for a stalled fork", tc.vector, detail)
		}
	}
}
