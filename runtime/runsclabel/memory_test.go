package runsclabel

import (
	"encoding/json"
	"os"
	"path/filepath"
	"testing"
)

func TestSandboxMemory(t *testing.T) {
	const pod = "/kubepods/burstable/pod1234"
	sandbox := func(extra string) string {
		return `{"annotations":{"io.kubernetes.cri.container-type":"sandbox"` + extra + `},"linux":{"cgroupsPath":"` + pod + `/abcd","resources":{"cpu":{"shares":2}}},"process":{"rlimits":[{"type":"RLIMIT_NOFILE","hard":9223372036854775807,"soft":1024}]}}`
	}
	for _, tt := range []struct {
		name     string
		spec     string
		podMax   string // the pod cgroup's memory.max, "" for no file
		want     int64
		wantErr  bool
		unchanged bool
	}{
		{"sandbox, pod cgroup limit", sandbox(""), "268435456\n", 268435456, false, false},
		{"sandbox, CRI's annotation first", sandbox(`,"io.kubernetes.cri.sandbox-memory":"134217728"`), "268435456\n", 134217728, false, false},
		{"annotation 0 means none: the cgroup's", sandbox(`,"io.kubernetes.cri.sandbox-memory":"0"`), "268435456\n", 268435456, false, false},
		{"no pod limit", sandbox(""), "max\n", 0, false, true},
		{"no pod cgroup", sandbox(""), "", 0, false, true},
		{"a container, not a sandbox", `{"annotations":{"io.kubernetes.cri.container-type":"container"},"linux":{"cgroupsPath":"` + pod + `/ef"}}`, "268435456\n", 0, false, true},
		{"a limit of its own", `{"annotations":{"io.kubernetes.cri.container-type":"sandbox"},"linux":{"cgroupsPath":"` + pod + `/ab","resources":{"memory":{"limit":1048576}}}}`, "268435456\n", 0, false, true},
		{"systemd driver path", `{"annotations":{"io.kubernetes.cri.container-type":"sandbox"},"linux":{"cgroupsPath":"kubepods-pod1.slice:cri-containerd:ab"}}`, "268435456\n", 0, false, true},
		{"bad annotation", sandbox(`,"io.kubernetes.cri.sandbox-memory":"lots"`), "268435456\n", 0, true, true},
		{"bad memory.max", sandbox(""), "garbage\n", 0, true, true},
		{"not JSON", `{"annotations":`, "", 0, true, true},
	} {
		t.Run(tt.name, func(t *testing.T) {
			root := t.TempDir()
			if tt.podMax != "" {
				dir := filepath.Join(root, pod)
				if err := os.MkdirAll(dir, 0o755); err != nil {
					t.Fatal(err)
				}
				if err := os.WriteFile(filepath.Join(dir, "memory.max"), []byte(tt.podMax), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			p := filepath.Join(t.TempDir(), "config.json")
			if err := os.WriteFile(p, []byte(tt.spec), 0o600); err != nil {
				t.Fatal(err)
			}
			got, err := SandboxMemory(p, root)
			if (err != nil) != tt.wantErr || got != tt.want {
				t.Fatalf("SandboxMemory = %d, %v; want %d, error %v", got, err, tt.want, tt.wantErr)
			}
			b, _ := os.ReadFile(p)
			if tt.unchanged {
				if string(b) != tt.spec {
					t.Errorf("spec changed:\n%s", b)
				}
				return
			}
			var doc struct {
				Linux struct {
					Resources struct {
						Memory struct{ Limit int64 }
						CPU    struct{ Shares int }
					}
				}
				Process struct {
					Rlimits []struct{ Hard uint64 }
				}
			}
			if err := json.Unmarshal(b, &doc); err != nil {
				t.Fatal(err)
			}
			if doc.Linux.Resources.Memory.Limit != tt.want || doc.Linux.Resources.CPU.Shares != 2 {
				t.Errorf("resources after: %+v", doc.Linux.Resources)
			}
			// A number near 2^63 is written back exactly.
			if len(doc.Process.Rlimits) != 1 || doc.Process.Rlimits[0].Hard != 9223372036854775807 {
				t.Errorf("rlimits after: %+v", doc.Process.Rlimits)
			}
		})
	}
}
