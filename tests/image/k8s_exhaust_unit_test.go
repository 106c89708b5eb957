package image

import (
	"testing"

	"k8s.io/apimachinery/pkg/types"
)

func TestPodCgroupMetrics(t *testing.T) {
	const uid = types.UID("6f1c9a52-2d7e-4f7a-9a43-0c1d2e3f4a5b")
	const pod = "/kubepods/pod" + string(uid)
	// The shape of the kubelet's /metrics/cadvisor: the pod-level cgroup carries only its id; its
	// containers' cgroups lie below it and carry the pod's name.
	const metrics = `# HELP container_threads Number of threads running inside the container
# TYPE container_threads gauge
container_threads{container="",id="/",image="",name="",namespace="",pod=""} 301 1764770000000
container_threads{container="",id="` + pod + `",image="",name="",namespace="",pod=""} 128 1764770000000
container_threads{container="",id="` + pod + `/3f2a",image="",name="3f2a",namespace="default",pod="pids-gvisor"} 121 1764770000000
container_threads{container="",id="/kubepods/pod00000000-2d7e-4f7a-9a43-0c1d2e3f4a5b",image="",name="",namespace="",pod=""} 7 1764770000000
# HELP container_threads_max Maximum number of threads allowed inside the container, infinity if value is zero
# TYPE container_threads_max gauge
container_threads_max{container="",id="/",image="",name="",namespace="",pod=""} 0 1764770000000
container_threads_max{container="",id="` + pod + `",image="",name="",namespace="",pod=""} 128 1764770000000
container_threads_max{container="",id="/kubepods/pod00000000-2d7e-4f7a-9a43-0c1d2e3f4a5b",image="",name="",namespace="",pod=""} 128 1764770000000
# TYPE container_memory_usage_bytes gauge
container_memory_usage_bytes{container="",id="` + pod + `",image="",name="",namespace="",pod=""} 2.68173312e+08 1764770000000
container_memory_usage_bytes{container="",id="` + pod + `/3f2a",image="",name="3f2a",namespace="default",pod="pids-gvisor"} 2.5e+08 1764770000000
# TYPE container_spec_memory_limit_bytes gauge
container_spec_memory_limit_bytes{container="",id="` + pod + `",image="",name="",namespace="",pod=""} 2.68435456e+08
`
	for _, tc := range []struct {
		name            string
		text            string
		want            podCgroupSample
		found, wantErrs bool
	}{
		{"the pod's own cgroup, not its containers' or another pod's", metrics, podCgroupSample{threads: 128, threadsMax: 128, memUsage: 268173312, memLimit: 256 << 20}, true, false},
		{"no such pod", "container_threads{id=\"/\"} 3\n", podCgroupSample{}, false, false},
		{"only the current count", "container_threads{id=\"" + pod + "\"} 3\n", podCgroupSample{threads: 3}, false, false},
		{"a value that is no number", "container_threads{id=\"" + pod + "\"} many\n", podCgroupSample{}, false, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, found, err := podCgroupMetrics([]byte(tc.text), uid)
			if (err != nil) != tc.wantErrs {
				t.Fatalf("err %v, want error %v", err, tc.wantErrs)
			}
			if err != nil {
				return
			}
			if got != tc.want || found != tc.found {
				t.Errorf("got %+v, found %v; want %+v, %v", got, found, tc.want, tc.found)
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

func TestHeldAlloc(t *testing.T) {
	for _, tc := range []struct {
		detail string
		held   bool
	}{
		{"allocator stalled: no step in 2m0s at 192 MiB (memory limit 256 MiB): no verdict", true},
		{"allocator still running after 8m0s at 240 MiB (memory limit 256 MiB)", true},
		{"allocator ended (exit status 2) after 32 MiB of 512 MiB (memory limit 256 MiB)", false},
		{"allocator: pipe: EMFILE", false},
	} {
		if got := heldAlloc.MatchString(tc.detail); got != tc.held {
			t.Errorf("%q: held %v, want %v", tc.detail, got, tc.held)
		}
	}
}
