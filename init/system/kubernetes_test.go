package system

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/godbus/dbus/v5"

	"github.com/ballast-os/ballast/contract"
	"github.com/ballast-os/ballast/init/k8snode"
	"github.com/ballast-os/ballast/tests/testutil"
)

// kubeletProgram is the kubelet's service as the gate sees it; the table's entry is another
// helper's, and the gate must not depend on its other fields.
func kubeletProgram(id string) (contract.Program, error) {
	if id == "kubelet" {
		return contract.Program{Name: "kubelet", Path: contract.KubeletPath,
			Service: &contract.Service{ID: "kubelet", Restart: contract.RestartAlways, Health: contract.HealthKubernetesNode}}, nil
	}
	return contract.FindService(id)
}

// nodeGate is gateInit for a Kubernetes node whose kubelet's node check is check (nil: the real
// one, against the kubeconfig under the Init's root); it counts the checks.
func nodeGate(t *testing.T, timeout, bless time.Duration, check func(context.Context) (string, error)) (*Init, *testutil.Buffer, *atomic.Int32) {
	t.Helper()
	i, _, out := gateInit(t, trialEntry, true, []string{prevEntry}, timeout, bless)
	i.image.Services = []string{"apiserver", "kubelet"}
	i.findService = kubeletProgram
	i.nodePoll = 50 * time.Millisecond
	var n atomic.Int32
	inner := i.nodeCheck
	if check != nil {
		inner = check
	} else {
		installNodeReady(t, i)
	}
	i.nodeCheck = func(ctx context.Context) (string, error) {
		n.Add(1)
		return inner(ctx)
	}
	return i, out, &n
}

// installNodeReady builds the real node-ready program into the Init's root, where the default
// nodeCheck runs it.
func installNodeReady(t *testing.T, i *Init) {
	t.Helper()
	dst := i.path(contract.NodeReadyPath)
	if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command("go", "build", "-o", dst, "./init/k8snode/cmd/node-ready")
	cmd.Dir = testutil.RepoRoot(t)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("building node-ready: %v\n%s", err, out)
	}
}

func TestNodeGate(t *testing.T) {
	tests := []struct {
		name   string
		check  func(context.Context) (string, error)
		result string
		reason string // the recorded reason's end
	}{
		{"never registers", nil, "unhealthy",
			"not healthy 400ms after the init started: kubelet: no client certificate yet (/var/lib/kubelet/kubeconfig: not there)"},
		{"not Ready", func(context.Context) (string, error) {
			return "node-a", &k8snode.NotReadyError{Node: "node-a", Status: "False", Reason: "KubeletNotReady", Message: "container runtime network not ready"}
		}, "unhealthy", "not healthy 400ms after the init started: kubelet: node node-a not Ready: KubeletNotReady: container runtime network not ready"},
		{"not registered", func(context.Context) (string, error) {
			return "node-a", errors.New("node node-a not registered")
		}, "unhealthy", "kubelet: node node-a not registered"},
		{"Ready", func(context.Context) (string, error) { return "node-a", nil }, "blessed", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			i, out, checks := nodeGate(t, 400*time.Millisecond, 200*time.Millisecond, tt.check)
			took := judge(t, i, true)
			h := history(t, i)
			if len(h) != 1 || h[0].Result != tt.result || !strings.HasSuffix(h[0].Reason, tt.reason) {
				t.Fatalf("history %+v\nconsole:\n%s", h, out)
			}
			_, rebooting := rebootRequested(i)
			if rebooting != (tt.result == "unhealthy") {
				t.Errorf("reboot requested: %v", rebooting)
			}
			if tt.result == "blessed" && !strings.Contains(out.String(), "ballast: boot kubelet: node node-a is Ready\n") {
				t.Errorf("console:\n%s", out)
			}
			// One look per nodePoll, not one per health poll (every 5ms here).
			if max := int32(took/i.nodePoll) + 3; checks.Load() > max || checks.Load() == 0 {
				t.Errorf("%d node checks in %v", checks.Load(), took)
			}
		})
	}
}

// An image without a node to wait for never asks an API server.
func TestNodeGateOnlyForTheImagesServices(t *testing.T) {
	i, _, _ := gateInit(t, trialEntry, true, []string{prevEntry}, 5*time.Second, 100*time.Millisecond)
	i.findService = kubeletProgram // the kubelet is known, but the image does not run it
	i.nodeCheck = func(context.Context) (string, error) {
		t.Error("node checked")
		return "", errors.New("no")
	}
	judge(t, i, true)
	if h := history(t, i); len(h) != 1 || h[0].Result != "blessed" {
		t.Errorf("history %+v", h)
	}
}

func TestPrepareKubernetes(t *testing.T) {
	i, k, _ := testInit(t)
	machine(t, i, "testdata/mountinfo")
	write(t, i, "/sys/fs/cgroup/cgroup.controllers", "cpuset cpu io memory pids rdma misc\n")
	write(t, i, "/sys/fs/cgroup/cgroup.subtree_control", "")
	mkdirs(t, i, "/var", "/etc")
	// Not a Kubernetes node: nothing happens.
	if err := i.prepareKubernetes(); err != nil || len(k.log()) != 0 {
		t.Fatalf("without the kubelet: %v, kernel calls %q", err, k.log())
	}
	write(t, i, contract.KubeletPath, "")
	if err := i.prepareKubernetes(); err != nil {
		t.Fatal(err)
	}
	want := []string{
		"mount /var/lib/kubelet /var/lib/kubelet  0x5000 ", // MS_BIND|MS_REC
		"mount  /var/lib/kubelet  0x104000 ",               // MS_SHARED|MS_REC
	}
	if got := k.log(); !slices.Equal(got, want) {
		t.Errorf("kernel calls %q, want %q", got, want)
	}
	if b, _ := os.ReadFile(i.path("/sys/fs/cgroup/cgroup.subtree_control")); string(b) != "+cpu +memory +pids +io +cpuset" {
		t.Errorf("subtree_control %q", b)
	}
	if target, err := os.Readlink(i.path("/var/run")); err != nil || target != "../run" {
		t.Errorf("/var/run: %q, %v", target, err)
	}
	for _, d := range []string{contract.NetnsDir, contract.KubeletRoot, contract.CNIExtraPluginDirOnData} {
		if fi, err := os.Stat(i.path(d)); err != nil || !fi.IsDir() {
			t.Errorf("%s: %v", d, err)
		}
	}
	machineID := func() string {
		b, err := os.ReadFile(i.path(contract.MachineIDPath))
		if err != nil || !validMachineID(strings.TrimSpace(string(b))) {
			t.Fatalf("%s: %q, %v", contract.MachineIDPath, b, err)
		}
		return string(b)
	}
	id := machineID()
	// Again, with the kubelet's directory a mount already: only the propagation is set.
	write(t, i, "/proc/self/mountinfo", "27 20 254:4 /var /var rw - ext4 /dev/vda4 rw\n30 27 254:4 /var/lib/kubelet /var/lib/kubelet rw - ext4 /dev/vda4 rw\n")
	n := len(k.log())
	if err := i.prepareKubernetes(); err != nil {
		t.Fatal(err)
	}
	if got := k.log()[n:]; !slices.Equal(got, want[1:]) {
		t.Errorf("second time: kernel calls %q", got)
	}
	if again := machineID(); again != id {
		t.Errorf("machine id %q at the next boot, was %q", again, id)
	}
	// A damaged saved ID is drawn again rather than reported to the cluster.
	write(t, i, contract.MachineIDState, "not-hex\n")
	if err := i.prepareKubernetes(); err != nil {
		t.Fatal(err)
	}
	if again := machineID(); again == id {
		t.Errorf("machine id kept from a damaged state file")
	}
	// A /var/run that is something else is reported, not replaced.
	os.Remove(i.path("/var/run"))
	mkdirs(t, i, "/var/run")
	if err := i.prepareKubernetes(); err == nil || !strings.Contains(err.Error(), "/var/run is not a link to /run") {
		t.Errorf("a /var/run directory: %v", err)
	}
	// A kernel without the memory controller cannot run pods; the write fails and says so.
	write(t, i, "/sys/fs/cgroup/cgroup.controllers", "rdma\n")
	if err := i.prepareKubernetes(); err == nil || !strings.Contains(err.Error(), "none of cpu,memory") {
		t.Errorf("no controllers: %v", err)
	}
}

// kubeletOnBus takes a delay lock and asks for PrepareForShutdown as the kubelet does
// (init/logind's tests follow the kubelet's calls one by one).
func kubeletOnBus(t *testing.T, sock string) (uint32, chan *dbus.Signal) {
	t.Helper()
	conn, err := dbus.Connect("unix:path=" + sock)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	var fd uint32
	err = conn.Object("org.freedesktop.login1", "/org/freedesktop/login1").
		Call("org.freedesktop.login1.Manager.Inhibit", 0, "shutdown", "kubelet", "Kubelet needs time to handle node shutdown", "delay").Store(&fd)
	if err != nil {
		t.Fatal(err)
	}
	if err := conn.AddMatchSignal(dbus.WithMatchInterface("org.freedesktop.login1.Manager"), dbus.WithMatchMember("PrepareForShutdown"),
		dbus.WithMatchObjectPath("/org/freedesktop/login1")); err != nil {
		t.Fatal(err)
	}
	ch := make(chan *dbus.Signal, 1)
	conn.Signal(ch)
	return fd, ch
}

func TestShutdownWaitsForTheKubelet(t *testing.T) {
	const never = -1
	for _, tc := range []struct {
		name    string
		release bool
		endsAt  int // the pods check that finds every pod ended, or never
	}{
		// Short names: they make the bus socket's path, whose length has a limit.
		{"pods end", true, 3},
		{"pods never end", true, never},
		{"held", false, never},
	} {
		release := tc.release
		t.Run(tc.name, func(t *testing.T) {
			i, k, out := testInit(t)
			write(t, i, contract.KubeletPath, "")
			i.inhibitDelayMax = 500 * time.Millisecond
			i.podSettleMax, i.podSettlePoll = 150*time.Millisecond, 10*time.Millisecond
			var podChecks atomic.Int32
			i.podsCheck = func(context.Context) (string, error) {
				if n := int(podChecks.Add(1)); n != tc.endsAt {
					return "", errors.New("node n: 1 pods not ended: default/sleeper (Running)")
				}
				return "node n: every pod ended", nil
			}
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			i.startLogind(ctx)
			if i.logind == nil {
				t.Fatalf("no bus:\n%s", out)
			}
			fd, signals := kubeletOnBus(t, i.path(contract.DBusSystemSocket))
			done := make(chan struct{})
			start := time.Now()
			go func() {
				i.Shutdown(Reboot, "API")
				close(done)
			}()
			select {
			case s := <-signals:
				if s.Name != "org.freedesktop.login1.Manager.PrepareForShutdown" || len(s.Body) != 1 || s.Body[0] != true {
					t.Errorf("signal %+v", s)
				}
			case <-time.After(10 * time.Second):
				t.Fatal("no PrepareForShutdown")
			}
			if release {
				time.Sleep(100 * time.Millisecond)
				if got := k.log(); len(got) != 0 {
					t.Errorf("the shutdown went on while the kubelet held its lock: %q", got)
				}
				syscall.Close(int(fd))
			}
			select {
			case <-done:
			case <-time.After(10 * time.Second):
				t.Fatal("the shutdown did not go on")
			}
			took := time.Since(start)
			if release && took >= i.inhibitDelayMax || !release && took < i.inhibitDelayMax {
				t.Errorf("shutdown took %v (maximum wait %v)", took, i.inhibitDelayMax)
			}
			if got := k.log(); len(got) == 0 || got[len(got)-1] != "reboot 0x1234567" {
				t.Errorf("kernel calls %q", got)
			}
			lines := out.String()
			want := []string{"ballast: error: shutdown: kubelet (pid " + strconv.Itoa(os.Getpid()) + ") still hold delay locks after"}
			switch {
			case release && tc.endsAt == never:
				want = []string{"ballast: shutdown delay locks released after ",
					"ballast: error: shutdown: node n: 1 pods not ended: default/sleeper (Running), 150ms after the delay locks; going on"}
			case release:
				want = []string{"ballast: shutdown delay locks released after ", "ballast: shutdown node n: every pod ended (after "}
				if n := podChecks.Load(); n != 3 {
					t.Errorf("the pods were asked for %d times, want until they had ended (3)", n)
				}
			case podChecks.Load() != 0:
				// The kubelet did not finish: nothing it stopped has ended to wait for.
				t.Errorf("the pods were asked for with the kubelet's lock still held")
			}
			for _, w := range append([]string{"ballast: shutdown waiting up to 500ms for the delay locks of kubelet (pid "}, want...) {
				if !strings.Contains(lines, w) {
					t.Errorf("console lacks %q:\n%s", w, lines)
				}
			}
			if !release {
				syscall.Close(int(fd))
			}
		})
	}
}

// The health gate's own reboot must not cut the kubelet's graceful shutdown short: the longest
// shutdown (the delay lock, the services' stop, the kill) fits in its grace.
func TestShutdownFitsRebootGrace(t *testing.T) {
	i, _, _ := testInit(t)
	if longest := i.inhibitDelayMax + i.podSettleMax + servicesStopTimeout + i.killWait[0] + i.killWait[1]; longest >= i.rebootGrace {
		t.Errorf("a shutdown may take %v, the gate reboots after %v", longest, i.rebootGrace)
	}
}

// Only a Kubernetes node serves the bus.
func TestLogindOnlyOnKubernetesNodes(t *testing.T) {
	i, _, _ := testInit(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	i.startLogind(ctx)
	if _, err := os.Stat(i.path(contract.DBusSystemSocket)); i.logind != nil || !os.IsNotExist(err) {
		t.Errorf("a bus without the kubelet: %v", err)
	}
}
