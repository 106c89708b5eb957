package image

import (
	"context"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ballast-os/ballast/builder/pipeline"
	"github.com/ballast-os/ballast/contract"
	"github.com/ballast-os/ballast/tests/k8scluster"
	"github.com/ballast-os/ballast/trust/sbkeys"
)

// The Kubernetes node's test needs the most compiling of all (the kubelet, gVisor, containerd
// with CRI, and a control plane: a quarter of an hour on 2 cores when the caches are cold), and
// the other tests leave a core idle for much of their time. So TestMain starts that build before
// any test runs, when the run includes the node's test, and the test waits for it.

// k8sBuild is the Kubernetes node's build: the k8s variant and the control-plane binaries.
type k8sBuild struct {
	done chan struct{}
	dir  string
	bins k8scluster.Binaries
	err  error
	took time.Duration
	mu   sync.Mutex
	log  []string // its lines, for the test's log
}

func (b *k8sBuild) logf(format string, args ...any) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.log = append(b.log, fmt.Sprintf(format, args...))
}

// k8sPrebuild is the build TestMain started, nil when the run does not include the node's tests;
// k8sPrebuildARM64 the arm64 node's, which starts once the first is done (the control plane is
// the first one's: it runs here).
var k8sPrebuild, k8sPrebuildARM64 *k8sBuild

// startK8sBuild builds the k8s variant for arch into dir (unless it holds a build) in the
// background, and the control plane; for another architecture than this machine's, it waits for
// after (the build for this machine) and takes its control plane.
func startK8sBuild(ctx context.Context, repo, dir string, arch contract.Arch, after *k8sBuild) *k8sBuild {
	b := &k8sBuild{done: make(chan struct{}), dir: dir}
	go func() {
		defer close(b.done)
		if after != nil {
			<-after.done
		}
		start := time.Now()
		defer func() { b.took = time.Since(start) }()
		if _, err := os.Stat(filepath.Join(dir, "manifest.json")); err != nil {
			keys := filepath.Join(repo, "build", "keys")
			if _, err := os.Stat(filepath.Join(keys, "db.crt")); os.IsNotExist(err) {
				if err := sbkeys.Init(keys, "Ballast development", time.Now()); err != nil {
					b.err = fmt.Errorf("signing keys: %w", err)
					return
				}
			}
			if _, err := pipeline.Build(ctx, pipeline.Options{Repo: repo, Variant: "k8s", Arch: arch, Out: dir,
				Log: func(f string, a ...any) { b.logf("ballast: "+f, a...) }}); err != nil {
				b.err = fmt.Errorf("build k8s %s: %w", arch, err)
				return
			}
		}
		if after != nil {
			if b.bins, b.err = after.bins, after.err; b.err != nil {
				b.err = fmt.Errorf("the control plane: %w", b.err)
			}
			return
		}
		b.bins, b.err = k8scluster.BuildPinned(ctx, repo, b.logf)
	}()
	return b
}

// k8sDir is where the k8s variant for arch is built: build/k8s or build/k8s-<arch>, beside
// buildDir.
func k8sDir(arch contract.Arch) string {
	return filepath.Join(filepath.Dir(buildDir), pipeline.OutName("k8s", arch))
}

// k8sBuilt waits for the node's build for arch (TestMain's, or one made now) and returns the
// variant's build directory and the control plane.
func k8sBuilt(t testing.TB, arch contract.Arch) (string, k8scluster.Binaries) {
	t.Helper()
	b := k8sPrebuild
	if arch != contract.DefaultArch {
		b = k8sPrebuildARM64
	}
	if b == nil {
		var host *k8sBuild
		if arch != contract.DefaultArch {
			host = startK8sBuild(t.Context(), repoRoot(), k8sDir(contract.DefaultArch), contract.DefaultArch, nil)
		}
		b = startK8sBuild(t.Context(), repoRoot(), k8sDir(arch), arch, host)
	}
	waited := time.Now()
	<-b.done
	b.mu.Lock()
	for _, l := range b.log {
		t.Log(l)
	}
	b.log = nil
	b.mu.Unlock()
	if b.err != nil {
		t.Fatal(b.err)
	}
	t.Logf("k8s %s: the node's build took %s, of which this test waited %s", arch, b.took.Round(time.Second), time.Since(waited).Round(time.Second))
	return b.dir, b.bins
}

// runsK8s says whether the test run's -test.run and -test.bench select the node's test or
// benchmark (flags parsed), so TestMain starts their build only when they will run.
func runsK8s() bool {
	sel := func(name, test string) bool {
		f := flag.Lookup(name)
		if f == nil || f.Value.String() == "" {
			return name == "test.run"
		}
		top, _, _ := strings.Cut(f.Value.String(), "/")
		re, err := regexp.Compile(top)
		return err == nil && re.MatchString(test)
	}
	if f := flag.Lookup("test.skip"); f != nil && f.Value.String() != "" {
		if re, err := regexp.Compile(f.Value.String()); err == nil && re.MatchString("TestKubernetesNode") {
			return sel("test.bench", "BenchmarkK8sNode")
		}
	}
	return sel("test.run", "TestKubernetesNode") || sel("test.bench", "BenchmarkK8sNode")
}

// runsK8sARM64 says whether the run selects the arm64 node's test.
func runsK8sARM64() bool {
	if f := flag.Lookup("test.skip"); f != nil && f.Value.String() != "" {
		if re, err := regexp.Compile(f.Value.String()); err == nil && re.MatchString("TestKubernetesNodeARM64") {
			return false
		}
	}
	f := flag.Lookup("test.run")
	if f == nil || f.Value.String() == "" {
		return true
	}
	top, _, _ := strings.Cut(f.Value.String(), "/")
	re, err := regexp.Compile(top)
	return err == nil && re.MatchString("TestKubernetesNodeARM64")
}

// repoRoot is the repository, two levels above this package.
func repoRoot() string {
	r, _ := filepath.Abs("../..")
	return r
}
