package nripolicy

import (
	"archive/tar"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	containerd "github.com/containerd/containerd/v2/client"
	"github.com/containerd/containerd/v2/pkg/namespaces"
	"github.com/opencontainers/runtime-spec/specs-go"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	cri "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/ballast-os/ballast/contract"
	"github.com/ballast-os/ballast/packages/debian"
	"github.com/ballast-os/ballast/packages/gocomponents"
	"github.com/ballast-os/ballast/runtime/spec"
	"github.com/ballast-os/ballast/tests/testutil"
)

// criEnv runs TestCRI: it needs containerd with CRI and runc from the pinned components, which a
// cold cache compiles for minutes, so `make test` runs it after the image build has filled the
// cache.
const criEnv = "BALLAST_CRI_TEST"

// TestCRI drives the pinned containerd with CRI, configured as the k8s variant's (the base spec,
// NRI with the policy a required plugin), through the kubelet's API: an ordinary pod runs with
// Ballast's hardening in its spec, and a privileged container and a host-PID pod are refused with
// the policy's reasons in CRI's errors, which is what the kubelet puts in the pod's events.
func TestCRI(t *testing.T) {
	if os.Getenv(criEnv) == "" {
		t.Skipf("set %s=1 to build containerd with CRI and run pods through it", criEnv)
	}
	testutil.Root(t, "containerd runs containers")
	bin := criBinaries(t)
	dir, err := os.MkdirTemp("", "cri")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	const image = "localhost/ballast/pause-test:1"

	// The files the builder puts into the k8s root and the apiserver renders.
	baseSpec := filepath.Join(dir, "cri-base.json")
	if err := spec.WriteCRIBaseSpec(baseSpec); err != nil {
		t.Fatal(err)
	}
	noFile := fitNoFile(t, baseSpec)
	settings := filepath.Join(dir, "pod-policy.json")
	if err := os.WriteFile(settings, []byte(`{"allow-privileged-pods": false}`), 0o644); err != nil {
		t.Fatal(err)
	}
	sock := filepath.Join(dir, "containerd.sock")
	nriSock := filepath.Join(dir, "nri.sock")
	config := fmt.Sprintf(`version = 3
root = %[1]q
state = %[2]q
[grpc]
  address = %[3]q
[plugins."io.containerd.internal.v1.opt"]
  path = %[4]q
[plugins."io.containerd.nri.v1.nri"]
  disable = false
  socket_path = %[5]q
  plugin_path = %[6]q
  plugin_config_path = %[6]q
  [plugins."io.containerd.nri.v1.nri".default_validator]
    enable = true
    required_plugins = [%[7]q]
[plugins."io.containerd.grpc.v1.cri"]
  stream_server_address = "127.0.0.1"
  stream_server_port = "0"
[plugins."io.containerd.cri.v1.images"]
  snapshotter = "native"
  [plugins."io.containerd.cri.v1.images".pinned_images]
    sandbox = %[8]q
[plugins."io.containerd.cri.v1.runtime"]
  selinux_category_range = %[9]d
  restrict_oom_score_adj = %[12]v
  [plugins."io.containerd.cri.v1.runtime".cni]
    bin_dirs = [%[6]q]
    conf_dir = %[6]q
  [plugins."io.containerd.cri.v1.runtime".containerd]
    default_runtime_name = "runc"
    [plugins."io.containerd.cri.v1.runtime".containerd.runtimes.runc]
      runtime_type = "io.containerd.runc.v2"
      base_runtime_spec = %[10]q
      [plugins."io.containerd.cri.v1.runtime".containerd.runtimes.runc.options]
        BinaryName = %[11]q
`, filepath.Join(dir, "root"), filepath.Join(dir, "state"), sock, filepath.Join(dir, "opt"), nriSock,
		filepath.Join(dir, "empty"), contract.PodPolicyPlugin, image, contract.CRISELinuxCategoryRange,
		baseSpec, filepath.Join(bin, "runc"), !canLowerOOMScore())
	cfg := filepath.Join(dir, "config.toml")
	os.MkdirAll(filepath.Join(dir, "empty"), 0o755)
	if err := os.WriteFile(cfg, []byte(config), 0o644); err != nil {
		t.Fatal(err)
	}
	var log testutil.Buffer
	cmd := exec.Command(filepath.Join(bin, "containerd"), "--config", cfg)
	cmd.Env = append(os.Environ(), "PATH="+bin+":/usr/sbin:/usr/bin:/sbin:/bin")
	cmd.Stdout, cmd.Stderr = &log, &log
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cmd.Process.Signal(syscall.SIGTERM)
		done := make(chan error, 1)
		go func() { done <- cmd.Wait() }()
		select {
		case <-done:
		case <-time.After(20 * time.Second):
			cmd.Process.Kill()
			<-done
		}
		if t.Failed() {
			t.Logf("containerd:\n%s", log.String())
		}
	})
	ctx, cancel := context.WithTimeout(t.Context(), 3*time.Minute)
	defer cancel()
	client := waitContainerd(ctx, t, sock)
	defer client.Close()
	importImage(ctx, t, client, image, filepath.Join(dir, "image.tar"))

	// Cleanups run last registered first: the pods go (through conn, with the policy still
	// connected) before conn closes, and containerd stops last, so no shim or pause outlives it.
	pctx, stop := context.WithCancel(context.Background())
	policyDone := make(chan error, 1)
	go func() {
		policyDone <- Run(pctx, &Plugin{ConfigPath: settings, Log: slog.New(slog.DiscardHandler)}, nriSock,
			contract.PodPolicyPlugin, contract.PodPolicyPluginIndex)
	}()
	t.Cleanup(func() { stop(); <-policyDone })

	conn, err := grpc.NewClient("unix://"+sock, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	rt := cri.NewRuntimeServiceClient(conn)

	podConfig := func(name string, privileged bool, pid cri.NamespaceMode) *cri.PodSandboxConfig {
		return &cri.PodSandboxConfig{
			Metadata:     &cri.PodSandboxMetadata{Name: name, Namespace: "default", Uid: name + "-uid"},
			LogDirectory: filepath.Join(dir, "logs", name),
			Linux: &cri.LinuxPodSandboxConfig{SecurityContext: &cri.LinuxSandboxSecurityContext{
				Privileged: privileged,
				// The host's network: no CNI here (allowed by the policy, as for CNI daemonsets).
				NamespaceOptions: &cri.NamespaceOption{Network: cri.NamespaceMode_NODE, Pid: pid, Ipc: cri.NamespaceMode_POD},
			}},
		}
	}
	runPod := func(c *cri.PodSandboxConfig) (string, error) {
		r, err := rt.RunPodSandbox(ctx, &cri.RunPodSandboxRequest{Config: c})
		if err != nil {
			return "", err
		}
		t.Cleanup(func() {
			c, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			if _, err := rt.StopPodSandbox(c, &cri.StopPodSandboxRequest{PodSandboxId: r.PodSandboxId}); err != nil {
				t.Errorf("stop pod %s: %v", r.PodSandboxId, err)
			}
			if _, err := rt.RemovePodSandbox(c, &cri.RemovePodSandboxRequest{PodSandboxId: r.PodSandboxId}); err != nil {
				t.Errorf("remove pod %s: %v", r.PodSandboxId, err)
			}
		})
		return r.PodSandboxId, nil
	}
	create := func(pod string, pc *cri.PodSandboxConfig, privileged bool) (string, error) {
		r, err := rt.CreateContainer(ctx, &cri.CreateContainerRequest{PodSandboxId: pod, SandboxConfig: pc,
			Config: &cri.ContainerConfig{
				Metadata: &cri.ContainerMetadata{Name: "app"},
				Image:    &cri.ImageSpec{Image: image},
				Command:  []string{"/pause"},
				LogPath:  "app.log",
				Linux: &cri.LinuxContainerConfig{SecurityContext: &cri.LinuxContainerSecurityContext{
					Privileged:       privileged,
					Seccomp:          &cri.SecurityProfile{ProfileType: cri.SecurityProfile_RuntimeDefault},
					NamespaceOptions: pc.Linux.SecurityContext.NamespaceOptions,
				}},
			}})
		if err != nil {
			return "", err
		}
		return r.ContainerId, nil
	}

	// An ordinary pod: created with the base spec's capabilities and limits and the policy's
	// seccomp profile, and runc starts it.
	pc := podConfig("web", false, cri.NamespaceMode_POD)
	pod, err := runPod(pc)
	if err != nil {
		t.Fatalf("ordinary pod: %v", err)
	}
	var id string
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(100 * time.Millisecond) {
		// The policy connects to NRI in the background; until it has, NRI's validator refuses.
		if id, err = create(pod, pc, false); err == nil || time.Now().After(deadline) {
			break
		}
	}
	if err != nil {
		t.Fatalf("ordinary container: %v", err)
	}
	if _, err := rt.StartContainer(ctx, &cri.StartContainerRequest{ContainerId: id}); err != nil {
		t.Fatalf("start: %v", err)
	}
	st, err := rt.ContainerStatus(ctx, &cri.ContainerStatusRequest{ContainerId: id, Verbose: true})
	if err != nil {
		t.Fatal(err)
	}
	if st.Status.State != cri.ContainerState_CONTAINER_RUNNING {
		t.Errorf("container state %v", st.Status.State)
	}
	var info struct{ RuntimeSpec specs.Spec }
	if err := json.Unmarshal([]byte(st.Info["info"]), &info); err != nil {
		t.Fatalf("container info: %v", err)
	}
	s := info.RuntimeSpec
	if caps := s.Process.Capabilities.Bounding; slices.Contains(caps, "CAP_NET_RAW") || !slices.Contains(caps, "CAP_CHOWN") {
		t.Errorf("capabilities %v: want the base spec's", caps)
	}
	if !slices.ContainsFunc(s.Process.Rlimits, func(r specs.POSIXRlimit) bool {
		return r.Type == "RLIMIT_NOFILE" && r.Hard == noFile
	}) {
		t.Errorf("rlimits %+v: want the base spec's", s.Process.Rlimits)
	}
	if s.Linux.Seccomp == nil || slices.ContainsFunc(s.Linux.Seccomp.Syscalls, func(r specs.LinuxSyscall) bool {
		return r.Action == specs.ActAllow && slices.Contains(r.Names, "ptrace")
	}) {
		t.Error("the container's seccomp profile allows ptrace")
	}
	rt.StopContainer(ctx, &cri.StopContainerRequest{ContainerId: id, Timeout: 5})

	// A privileged container, in a privileged pod, which CRI requires for one.
	ppc := podConfig("admin", true, cri.NamespaceMode_POD)
	ppod, err := runPod(ppc)
	if err != nil {
		t.Fatalf("privileged pod: %v", err)
	}
	if _, err := create(ppod, ppc, true); err == nil || !strings.Contains(err.Error(), ErrPrivileged.Error()) {
		t.Errorf("privileged container: %v, want %q", err, ErrPrivileged)
	}
	if _, err := runPod(podConfig("tools", false, cri.NamespaceMode_NODE)); err == nil || !strings.Contains(err.Error(), ErrHostPID.Error()) {
		t.Errorf("host PID pod: %v, want %q", err, ErrHostPID)
	}
}

// fitNoFile returns the base spec's RLIMIT_NOFILE, first lowered to this process's hard limit
// when runc could not set it here (some CI sandboxes refuse raising it even to root): CRI keeping
// the base spec's value is what is tested.
func fitNoFile(t *testing.T, path string) uint64 {
	t.Helper()
	var lim syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
		t.Fatal(err)
	}
	if lim.Max >= spec.DefaultNoFile {
		return spec.DefaultNoFile
	}
	raised := syscall.Rlimit{Cur: lim.Cur, Max: spec.DefaultNoFile}
	if syscall.Setrlimit(syscall.RLIMIT_NOFILE, &raised) == nil {
		syscall.Setrlimit(syscall.RLIMIT_NOFILE, &lim)
		return spec.DefaultNoFile
	}
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var s specs.Spec
	if err := json.Unmarshal(b, &s); err != nil {
		t.Fatal(err)
	}
	for i := range s.Process.Rlimits {
		if s.Process.Rlimits[i].Type == "RLIMIT_NOFILE" {
			s.Process.Rlimits[i].Hard, s.Process.Rlimits[i].Soft = lim.Max, lim.Max
		}
	}
	if b, err = json.Marshal(&s); err == nil {
		err = os.WriteFile(path, b, 0o644)
	}
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("RLIMIT_NOFILE %d cannot be set here: the base spec has this process's %d", spec.DefaultNoFile, lim.Max)
	return lim.Max
}

// canLowerOOMScore reports whether this process may lower its oom_score_adj, which CRI does for
// pod sandboxes unless restrict_oom_score_adj keeps them at containerd's own (some CI sandboxes
// refuse it even to root).
func canLowerOOMScore() bool {
	b, err := os.ReadFile("/proc/self/oom_score_adj")
	if err != nil {
		return false
	}
	cur := strings.TrimSpace(string(b))
	if os.WriteFile("/proc/self/oom_score_adj", []byte("-1"), 0) != nil {
		return false
	}
	os.WriteFile("/proc/self/oom_score_adj", []byte(cur), 0)
	return true
}

// criBinaries builds (or finds in the component cache) containerd with CRI, its runc shim and
// runc, into one directory for containerd's PATH.
func criBinaries(t *testing.T) string {
	t.Helper()
	pins, err := gocomponents.Load(filepath.Join(testutil.RepoRoot(t), "packages", "go-components.toml"))
	if err != nil {
		t.Fatal(err)
	}
	ctrd, err := pins.Find("containerd-cri")
	if err != nil {
		// Before the k8s variant's pin: the same component with the CRI plugin left in.
		if ctrd, err = pins.Find("containerd"); err != nil {
			t.Fatal(err)
		}
		ctrd.Name = "containerd-cri"
		ctrd.Tags = slices.DeleteFunc(slices.Clone(ctrd.Tags), func(s string) bool { return s == "no_cri" })
	}
	runc, err := pins.Find("runc")
	if err != nil {
		t.Fatal(err)
	}
	bin := t.TempDir()
	o := gocomponents.Options{CacheDir: debian.CacheDir(), Log: t.Logf}
	for _, c := range []gocomponents.Component{ctrd, runc} {
		b, err := gocomponents.Build(t.Context(), c, o)
		if err != nil {
			t.Fatal(err)
		}
		for _, x := range b.Binaries {
			if err := os.Symlink(x.HostPath, filepath.Join(bin, x.Name)); err != nil {
				t.Fatal(err)
			}
		}
	}
	return bin
}

func waitContainerd(ctx context.Context, t *testing.T, sock string) *containerd.Client {
	t.Helper()
	for {
		if _, err := os.Stat(sock); err == nil {
			c, err := containerd.New(sock, containerd.WithDefaultNamespace(contract.CRINamespace))
			if err == nil {
				if _, err = c.Version(ctx); err == nil {
					return c
				}
				c.Close()
			}
		}
		select {
		case <-ctx.Done():
			t.Fatalf("containerd did not answer on %s", sock)
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// importImage imports an image of one layer, testdata/pause built static as /pause, under ref,
// unpacked for CRI's snapshotter.
func importImage(ctx context.Context, t *testing.T, client *containerd.Client, ref, archive string) {
	t.Helper()
	pause := filepath.Join(t.TempDir(), "pause")
	build := exec.Command("go", "build", "-trimpath", "-o", pause, "./testdata/pause")
	build.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build pause: %v\n%s", err, out)
	}
	prog, err := os.ReadFile(pause)
	if err != nil {
		t.Fatal(err)
	}
	var layer bytes.Buffer
	tw := tar.NewWriter(&layer)
	tw.WriteHeader(&tar.Header{Name: "pause", Mode: 0o755, Size: int64(len(prog)), Typeflag: tar.TypeReg})
	tw.Write(prog)
	tw.Close()
	blobs := map[string][]byte{}
	desc := func(mediaType string, b []byte) map[string]any {
		d := fmt.Sprintf("sha256:%x", sha256.Sum256(b))
		blobs[d] = b
		return map[string]any{"mediaType": mediaType, "digest": d, "size": len(b)}
	}
	marshal := func(v any) []byte { b, _ := json.Marshal(v); return b }
	l := desc("application/vnd.oci.image.layer.v1.tar", layer.Bytes())
	conf := desc("application/vnd.oci.image.config.v1+json", marshal(map[string]any{
		"architecture": "amd64", "os": "linux",
		"config": map[string]any{"Entrypoint": []string{"/pause"}},
		"rootfs": map[string]any{"type": "layers", "diff_ids": []string{l["digest"].(string)}},
	}))
	manifest := desc("application/vnd.oci.image.manifest.v1+json", marshal(map[string]any{
		"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json", "config": conf, "layers": []any{l},
	}))
	manifest["annotations"] = map[string]string{"org.opencontainers.image.ref.name": "1"}
	var out bytes.Buffer
	aw := tar.NewWriter(&out)
	add := func(name string, b []byte) {
		aw.WriteHeader(&tar.Header{Name: name, Mode: 0o644, Size: int64(len(b)), Typeflag: tar.TypeReg})
		aw.Write(b)
	}
	add("oci-layout", []byte(`{"imageLayoutVersion":"1.0.0"}`))
	add("index.json", marshal(map[string]any{"schemaVersion": 2, "manifests": []any{manifest}}))
	for d, b := range blobs {
		add("blobs/sha256/"+strings.TrimPrefix(d, "sha256:"), b)
	}
	aw.Close()
	if err := os.WriteFile(archive, out.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	f, err := os.Open(archive)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	ctx = namespaces.WithNamespace(ctx, contract.CRINamespace)
	imgs, err := client.Import(ctx, f, containerd.WithImageRefTranslator(func(string) string { return ref }))
	if err != nil || len(imgs) != 1 {
		t.Fatalf("import: %v (%d images)", err, len(imgs))
	}
	if err := containerd.NewImage(client, imgs[0]).Unpack(ctx, "native"); err != nil {
		t.Fatalf("unpack: %v", err)
	}
}
