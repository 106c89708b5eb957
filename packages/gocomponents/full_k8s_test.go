package gocomponents

import (
	"context"
	"debug/buildinfo"
	"os"
	"os/exec"
	"runtime"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/ballast-os/ballast/contract"
	"github.com/ballast-os/ballast/tests/testutil"
)

// TestBuildKubernetesComponents builds the Kubernetes node's components for this machine through
// BuildBinaries, as the Kubernetes tests get them, and runs each binary. Cold, it compiles
// Kubernetes' four programs, etcd, gVisor and containerd with CRI (about 15 minutes on 2 cores), so
// it is opt-in:
//
//	BALLAST_BUILD_COMPONENTS=1 go test -run TestBuildKubernetesComponents -v -timeout 90m ./packages/gocomponents
func TestBuildKubernetesComponents(t *testing.T) {
	if os.Getenv("BALLAST_BUILD_COMPONENTS") != "1" {
		t.Skip("opt-in: set BALLAST_BUILD_COMPONENTS=1 to build kubernetes, etcd, gvisor and containerd-cri")
	}
	o := Options{Log: t.Logf}
	buildAndRunK8s(t, o, nil)
	// A second call is a cache hit: the tests' control plane costs one build per cache.
	start := time.Now()
	if _, err := BuildBinaries(context.Background(), "../..", "kubernetes", o); err != nil {
		t.Fatal(err)
	}
	if d := time.Since(start); d > time.Minute {
		t.Errorf("second BuildBinaries(kubernetes) took %s: not a cache hit", d)
	}
}

// TestBuildKubernetesComponentsARM64 cross-builds the arm64 node's components (the kubelet,
// gVisor, containerd with CRI: not the test-only control plane, which runs on this machine only)
// and runs them under qemu-user. Opt-in; make test runs it after the arm64 k8s image's build,
// whose cache entries it finds.
//
//	BALLAST_BUILD_COMPONENTS=1 go test -run TestBuildKubernetesComponentsARM64 -v -timeout 90m ./packages/gocomponents
func TestBuildKubernetesComponentsARM64(t *testing.T) {
	if os.Getenv("BALLAST_BUILD_COMPONENTS") != "1" {
		t.Skip("opt-in: set BALLAST_BUILD_COMPONENTS=1 to cross-build kubernetes, etcd, gvisor and containerd-cri for arm64")
	}
	qemu := testutil.Tool(t, "qemu-aarch64-static", "qemu-user-static")
	arm64 := contract.ARM64.Info()
	buildAndRunK8s(t, Options{GOARCH: arm64.GOARCH, Log: t.Logf}, []string{qemu})
}

// k8sBinaryCheck runs one of the node's binaries and looks for want in its output.
type k8sBinaryCheck struct {
	component string
	bin       string
	args      []string
	want      string // in the output
	testOnly  bool   // built for this machine only
}

// buildAndRunK8s builds the Kubernetes node's components with o and runs each binary, through
// runner (qemu-user) when it is not empty.
func buildAndRunK8s(t *testing.T, o Options, runner []string) {
	t.Helper()
	tests := []k8sBinaryCheck{
		{"kubernetes", "kubelet", []string{"--version"}, "Kubernetes v1.31.4\n", false},
		{"kubernetes", "kube-apiserver", []string{"--version"}, "Kubernetes v1.31.4\n", true},
		{"kubernetes", "kube-controller-manager", []string{"--version"}, "Kubernetes v1.31.4\n", true},
		{"kubernetes", "kube-scheduler", []string{"--version"}, "Kubernetes v1.31.4\n", true},
		{"etcd", "etcd", []string{"--version"}, "etcd Version: 3.5.21\n", true},
		{"gvisor", "runsc", []string{"--version"}, "runsc version v0.0.0-20260905035102-160fafc42237\n", false},
		{"gvisor", "containerd-shim-runsc-v1", []string{"-v"}, "containerd-shim-runsc-v1", false},
		{"containerd-cri", "containerd", []string{"--version"}, " v2.4.2 ", false},
		// Only the CRI build has the CRI plugins whose defaults this prints.
		{"containerd-cri", "containerd", []string{"config", "default"}, "io.containerd.cri.v1.runtime", false},
	}
	cross := o.GOARCH != "" && o.GOARCH != runtime.GOARCH
	if cross {
		tests = slices.DeleteFunc(tests, func(tt k8sBinaryCheck) bool { return tt.testOnly })
	}
	ctx := context.Background()
	bins := map[string]map[string]string{}
	for _, tt := range tests {
		if bins[tt.component] != nil {
			continue
		}
		start := time.Now()
		b, err := BuildBinaries(ctx, "../..", tt.component, o)
		if err != nil {
			t.Fatal(err)
		}
		t.Logf("%s for %s: %s", tt.component, o.GOARCH, time.Since(start).Round(time.Second))
		for name, p := range b {
			st, err := os.Stat(p)
			if err != nil {
				t.Fatal(err)
			}
			t.Logf("  %-26s %10d bytes  %s", name, st.Size(), p)
		}
		bins[tt.component] = b
	}
	// The SBOM reads a binary's module from its build info: a wrapper's binaries must name the
	// pinned module, version and sum, not the wrapper.
	info, err := buildinfo.ReadFile(bins["kubernetes"]["kubelet"])
	if err != nil {
		t.Fatal(err)
	}
	if m := info.Main; m.Path != "k8s.io/kubernetes" || m.Version != "v1.31.4" || m.Sum != "h1:VQDX52gTQnq8C/jCo48AQuDsWbWMh9XXxhQRDYjgakw=" {
		t.Errorf("kubelet's main module %+v, want the pinned k8s.io/kubernetes", m)
	}
	for _, tt := range tests {
		p, ok := bins[tt.component][tt.bin]
		if !ok {
			t.Errorf("%s: no binary %s in %v", tt.component, tt.bin, bins[tt.component])
			continue
		}
		argv := append(append(append([]string(nil), runner...), p), tt.args...)
		out, err := exec.CommandContext(ctx, argv[0], argv[1:]...).CombinedOutput()
		if err != nil {
			t.Errorf("%s %v: %v\n%s", tt.bin, tt.args, err, out)
			continue
		}
		if !strings.Contains(string(out), tt.want) {
			t.Errorf("%s %v: output lacks %q:\n%s", tt.bin, tt.args, tt.want, out)
		}
	}
}
