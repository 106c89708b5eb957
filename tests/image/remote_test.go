package image

import (
	"context"
	"crypto/tls"
	"fmt"
	"net"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ballast-os/ballast/apiserver/client"
	"github.com/ballast-os/ballast/builder/devpki"
	"github.com/ballast-os/ballast/tests/qemu"
)

// The user data examples from Bottlerocket's documentation, as one document.
const bottlerocketDocs = `[settings]
motd = "my own value!"

[settings.kernel.sysctl]
"vm.max_map_count" = "262144"

[settings.network]
https-proxy = "1.2.3.4:8080"
no-proxy = ["localhost", "127.0.0.1"]
`

func freePort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// bootRemote boots a copy of the image with the remote API port forwarded to the host.
func bootRemote(t *testing.T, disk, cidata string) (*qemu.VM, string) {
	t.Helper()
	port := freePort(t)
	log := filepath.Join(t.TempDir(), "console.log")
	vm, err := qemu.Start(t.Context(), qemu.Config{Disk: disk, ExtraDisks: []string{cidata}, LogFile: log,
		HostFwd: []string{fmt.Sprintf("tcp:127.0.0.1:%d-:50443", port)}, Timeout: 5 * time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		vm.Kill()
		if t.Failed() {
			t.Logf("console log: %s", vm.Console())
		}
	})
	expect(t, vm, readyRE.String())
	return vm, fmt.Sprintf("https://127.0.0.1:%d", port)
}

// remoteClient waits for the remote API (DHCP, then the listener) and returns a client for it.
func remoteClient(t *testing.T, endpoint string, cfg *tls.Config) *client.Client {
	t.Helper()
	c, err := client.NewRemote(endpoint, cfg)
	if err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(60 * time.Second)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
		_, err := c.OS(ctx)
		cancel()
		if err == nil {
			return c
		}
		if time.Now().After(deadline) {
			t.Fatalf("remote API at %s: %v", endpoint, err)
		}
		time.Sleep(time.Second)
	}
}

func TestRemoteAPIUserDataAndRefusals(t *testing.T) {
	disk := copyDisk(t, 0)
	cidata := makeCidata(t, bottlerocketDocs)
	vm, endpoint := bootRemote(t, disk, cidata)
	cfg, err := client.LoadPKI(filepath.Join(buildDir, "pki"))
	if err != nil {
		t.Fatal(err)
	}
	c := remoteClient(t, endpoint, cfg)
	got, err := c.Get(t.Context(), "settings")
	if err != nil {
		t.Fatal(err)
	}
	text := fmt.Sprint(got)
	for _, want := range []string{"my own value!", "vm.max_map_count:262144", "https-proxy:1.2.3.4:8080", "no-proxy:[localhost 127.0.0.1]"} {
		if !strings.Contains(text, want) {
			t.Errorf("settings over the remote API lack %q: %s", want, text)
		}
	}
	// GET /services comes from the system init over its control socket.
	svcs, err := c.Services(t.Context())
	if err != nil {
		t.Fatalf("GET /services: %v", err)
	}
	if s := fmt.Sprintf("%+v", svcs); !strings.Contains(s, "apiserver") || !strings.Contains(s, "console-shell") {
		t.Errorf("GET /services: %s", s)
	}
	expect(t, vm, `# $`)
	if out := shell(t, vm, 1, "cat /proc/sys/vm/max_map_count"); out != "262144" {
		t.Errorf("vm.max_map_count in the guest: %q", out)
	}

	// Without a client certificate, or with one from another CA: refused.
	other := t.TempDir()
	if err := devpki.GenerateDev(other, []string{"127.0.0.1"}); err != nil {
		t.Fatal(err)
	}
	otherCfg, err := client.LoadPKI(other)
	if err != nil {
		t.Fatal(err)
	}
	noCert := cfg.Clone()
	noCert.Certificates = nil
	foreign := otherCfg.Clone()
	foreign.RootCAs = cfg.RootCAs // trust the server, present the foreign client certificate
	for name, tc := range map[string]*tls.Config{"no client certificate": noCert, "certificate from another CA": foreign} {
		bad, err := client.NewRemote(endpoint, tc)
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
		_, err = bad.OS(ctx)
		cancel()
		if err == nil {
			t.Errorf("%s: accepted", name)
		}
	}

	// `apiclient set` from the host over mutual TLS; the value survives a reboot.
	apiclient := filepath.Join(t.TempDir(), "apiclient")
	if out, err := exec.Command("go", "build", "-o", apiclient, "../../apiserver/cmd/apiclient").CombinedOutput(); err != nil {
		t.Fatalf("build apiclient: %v\n%s", err, out)
	}
	pkiDir := filepath.Join(buildDir, "pki")
	if out, err := exec.Command(apiclient, "--endpoint", endpoint, "--pki", pkiDir, "set", "motd=set-from-the-host").CombinedOutput(); err != nil {
		t.Fatalf("apiclient set: %v\n%s", err, out)
	}
	powerdown(t, vm)
	vm, endpoint = bootRemote(t, disk, cidata)
	expect(t, vm, `^set-from-the-host$`)
	remoteClient(t, endpoint, cfg) // waits for DHCP and the listener
	out, err := exec.Command(apiclient, "--endpoint", endpoint, "--pki", pkiDir, "get", "settings.motd").CombinedOutput()
	if err != nil || !strings.Contains(string(out), "set-from-the-host") {
		t.Fatalf("apiclient get after reboot: %v\n%s", err, out)
	}
}

func TestBrokenUserDataStillBoots(t *testing.T) {
	_, endpoint := bootRemote(t, copyDisk(t, 0), makeCidata(t, "[settings]\nmotd = \"fine\"\n[settings.network]\nhostname = 42\n"))
	cfg, err := client.LoadPKI(filepath.Join(buildDir, "pki"))
	if err != nil {
		t.Fatal(err)
	}
	c := remoteClient(t, endpoint, cfg)
	ud, err := c.UserData(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(fmt.Sprintf("%+v", ud), "settings.network.hostname") {
		t.Errorf("GET /userdata does not name the bad key: %+v", ud)
	}
	s, err := c.Get(t.Context(), "settings.motd")
	if err == nil && strings.Contains(fmt.Sprint(s), "fine") {
		t.Errorf("a broken document must apply nothing, yet motd is set: %v", s)
	}
}
