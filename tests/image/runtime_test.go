package image

import (
	"context"
	"fmt"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/ballast-os/ballast/apiserver/client"
	"github.com/ballast-os/ballast/contract"
)

const runtimeUserData = `[settings.network]
https-proxy = "192.0.2.80:3128"
no-proxy = [".internal"]
`

// waitService polls GET /services until the service is ready with a pid other than notPid, and
// returns its status.
func waitService(t *testing.T, c *client.Client, id string, notPid int) contract.ServiceStatus {
	t.Helper()
	deadline := time.Now().Add(90 * time.Second)
	var last string
	for time.Now().Before(deadline) {
		ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
		svcs, err := c.Services(ctx)
		cancel()
		last = fmt.Sprintf("%+v %v", svcs, err)
		if i := slices.IndexFunc(svcs, func(s contract.ServiceStatus) bool { return s.ID == id }); err == nil && i >= 0 {
			if s := svcs[i]; s.State == "ready" && s.Pid != notPid {
				return s
			}
		}
		time.Sleep(500 * time.Millisecond)
	}
	t.Fatalf("service %s not ready (pid other than %d) within 90s: %s", id, notPid, last)
	return contract.ServiceStatus{}
}

// TestContainerRuntime boots with proxy settings in user data: containerd runs supervised, answers
// on its socket, keeps its state on /local, has the proxy in its environment, and a change of
// its settings through the API rewrites its configuration and restarts it.
func TestContainerRuntime(t *testing.T) {
	t.Parallel() // boots QEMU: see main_test.go
	disk := copyDisk(t, 0)
	vm, endpoint := bootRemote(t, disk, makeCidata(t, runtimeUserData))
	cfg, err := client.LoadPKI(filepath.Join(buildDir, "pki"))
	if err != nil {
		t.Fatal(err)
	}
	c := remoteClient(t, endpoint, cfg)
	first := waitService(t, c, "containerd", 0)

	// No wait for the prompt: the service lines that follow the ready line share its line.
	// The daemon answers on its socket: ctr prints the server's version only then.
	if out := shell(t, vm, 1, "ctr --address "+contract.ContainerdSocket+" version | grep -A1 ^Server:"); !strings.Contains(out, "Version:") {
		t.Errorf("ctr version: no server answered: %q", out)
	}
	if out := shell(t, vm, 2, "ls "+contract.ContainerdRoot); !strings.Contains(out, "io.containerd.") {
		t.Errorf("containerd state on /local: %q", out)
	}
	env := fmt.Sprintf("tr '\\000' '\\n' < /proc/%d/environ | grep -i _proxy= | sort", first.Pid)
	if out := shell(t, vm, 3, env); out != "HTTPS_PROXY=192.0.2.80:3128 NO_PROXY=localhost,127.0.0.1,::1,.internal https_proxy=192.0.2.80:3128 no_proxy=localhost,127.0.0.1,::1,.internal" {
		t.Errorf("containerd's proxy environment: %q", out)
	}

	// A runtime setting committed through the API: the file changes and containerd restarts.
	res, err := c.Apply(t.Context(), mustSettings(t, `{"container-runtime":{"max-concurrent-downloads":7}}`))
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Contains(res.Restarted, "containerd") || !slices.Contains(res.Files, contract.ContainerdConfig) {
		t.Errorf("apply rewrote %v and restarted %v; want %s and containerd", res.Files, res.Restarted, contract.ContainerdConfig)
	}
	second := waitService(t, c, "containerd", first.Pid)
	if out := shell(t, vm, 4, "grep max_concurrent_downloads "+contract.ContainerdConfig); out != "max_concurrent_downloads = 7" {
		t.Errorf("containerd configuration after the change: %q", out)
	}
	if out := shell(t, vm, 5, fmt.Sprintf("cat /proc/%d/cmdline | tr '\\000' ' '", second.Pid)); out != "containerd --config "+contract.ContainerdConfig {
		t.Errorf("restarted containerd runs %q", out)
	}
}
