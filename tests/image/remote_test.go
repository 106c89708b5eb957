package image

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"os/exec"
	"path/filepath"
	"reflect"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/ballast-os/ballast/apiserver/apitypes"
	"github.com/ballast-os/ballast/apiserver/client"
	"github.com/ballast-os/ballast/builder/devpki"
	"github.com/ballast-os/ballast/contract"
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

func freePort(t testing.TB) int {
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
	return bootRemoteArch(t, contract.AMD64, disk, cidata)
}

// bootRemoteArch is bootRemote for an image of another architecture.
func bootRemoteArch(t *testing.T, arch contract.Arch, disk, cidata string) (*qemu.VM, string) {
	t.Helper()
	port := freePort(t)
	log := filepath.Join(t.TempDir(), "console.log")
	vm, err := startVM(t, qemu.Config{Arch: arch, Disk: disk, ExtraDisks: []string{cidata}, LogFile: log,
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
	t.Parallel() // boots QEMU: see main_test.go
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
	// Without settings.ntp the time service leaves the clock alone, and the kernel says so.
	tm, _ := waitTime(t, c, "the time service's state", func(tm apitypes.Time) bool { return tm.State != apitypes.TimeUnknown })
	if tm.State != contract.TimeUnconfigured || tm.Kernel.Synchronised {
		t.Errorf("GET /time without time servers: state %q, kernel %+v; want unconfigured, not synchronised", tm.State, tm.Kernel)
	}
	expect(t, vm, `service console-shell ready`) // not the prompt: a milestone may share its line
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
	// The server must refuse in the TLS handshake, with the alert that says why (RFC 8446 6.2), not
	// by closing the connection or answering over HTTP.
	for _, c := range []struct {
		name  string
		cfg   *tls.Config
		alert uint8
	}{
		{"no client certificate", noCert, alertCertificateRequired},
		{"certificate from another CA", foreign, alertUnknownCA},
	} {
		bad, err := client.NewRemote(endpoint, c.cfg)
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
		_, err = bad.OS(ctx)
		cancel()
		if a, ok := tlsAlert(err); !ok || a != c.alert {
			t.Errorf("%s: got %v, want the TLS alert %q (%d)", c.name, err, tls.AlertError(c.alert), c.alert)
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

// TLS alerts as crypto/tls sends them when it refuses a client certificate (RFC 8446 6.2).
const (
	alertUnknownCA           = 48
	alertCertificateRequired = 116
)

// tlsAlert returns the alert the server sent, as crypto/tls reports it to a client: a *net.OpError
// "remote error" around the alert (its type is unexported; it is a uint8 like tls.AlertError), or
// a tls.AlertError in the chain, as QUIC connections and later Go versions have it.
func tlsAlert(err error) (uint8, bool) {
	var ae tls.AlertError
	if errors.As(err, &ae) {
		return uint8(ae), true
	}
	var op *net.OpError
	if !errors.As(err, &op) || op.Op != "remote error" || op.Err == nil {
		return 0, false
	}
	if v := reflect.ValueOf(op.Err); v.Kind() == reflect.Uint8 && op.Err.Error() == tls.AlertError(v.Uint()).Error() {
		return uint8(v.Uint()), true
	}
	return 0, false
}

// brokenUserData is valid TOML with one key of the wrong type, among good ones and below a comment
// naming it, so a line found by searching for the key's name would be wrong.
const brokenUserData = `# hostname must be a string; the whole document is to be refused.
[settings]
motd = "fine"

[settings.network]
https-proxy = "1.2.3.4:8080"
hostname = 42

[settings.kernel.sysctl]
"vm.max_map_count" = "262144"
`

func TestBrokenUserDataStillBoots(t *testing.T) {
	t.Parallel() // boots QEMU: see main_test.go
	badLine := slices.Index(strings.Split(brokenUserData, "\n"), "hostname = 42") + 1
	const badKey = "settings.network.hostname"
	_, endpoint := bootRemote(t, copyDisk(t, 0), makeCidata(t, brokenUserData))
	cfg, err := client.LoadPKI(filepath.Join(buildDir, "pki"))
	if err != nil {
		t.Fatal(err)
	}
	c := remoteClient(t, endpoint, cfg)
	ud, err := c.UserData(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if ud.State != apitypes.UserDataInvalid || ud.Key != badKey || ud.Line != badLine || len(ud.Keys) != 0 {
		t.Errorf("GET /userdata: state %q, key %q, line %d, keys applied %v; want %q, %q, line %d, none",
			ud.State, ud.Key, ud.Line, ud.Keys, apitypes.UserDataInvalid, badKey, badLine)
	}
	if !strings.Contains(ud.Error, "expected string, got integer") {
		t.Errorf("GET /userdata: error %q does not say what is wrong with the value", ud.Error)
	}
	i := slices.IndexFunc(ud.Sources, func(s apitypes.UserDataSource) bool { return s.Name == "nocloud" })
	if i < 0 || ud.Sources[i].State != apitypes.UserDataInvalid || ud.Sources[i].Key != badKey || ud.Sources[i].Line != badLine {
		t.Errorf("GET /userdata: the nocloud source is not invalid at %s, line %d: %+v", badKey, badLine, ud.Sources)
	}
	// The apiserver's log tells the operator the same.
	logs, err := c.Logs(t.Context(), "apiserver", false)
	if err != nil {
		t.Fatal(err)
	}
	log, err := io.ReadAll(logs)
	logs.Close()
	if err != nil {
		t.Fatal(err)
	}
	wantLog := fmt.Sprintf(`ballast: userdata: \S+: line %d: key %s: `, badLine, regexp.QuoteMeta(badKey))
	if !regexp.MustCompile(wantLog).Match(log) {
		t.Errorf("the apiserver's log lacks a line matching %q:\n%s", wantLog, log)
	}

	s, err := c.Settings(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	// The document's valid keys must not have been applied either.
	if (s.Motd != nil && *s.Motd == "fine") || (s.Network != nil && s.Network.HTTPSProxy != nil && *s.Network.HTTPSProxy == "1.2.3.4:8080") ||
		(s.Kernel != nil && s.Kernel.Sysctl["vm.max_map_count"] == "262144") {
		b, _ := json.Marshal(s)
		t.Errorf("a broken document must apply nothing, yet the settings have some of it: %s", b)
	}
}
