package render

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/ballast-os/ballast/apiserver/apitypes"
	"github.com/ballast-os/ballast/apiserver/initclient"
	"github.com/ballast-os/ballast/apiserver/initclient/initclienttest"
	"github.com/ballast-os/ballast/apiserver/settings"
	"github.com/ballast-os/ballast/contract"
	"github.com/ballast-os/ballast/init/harden/hardentest"
)

func decode(t *testing.T, body string) settings.Settings {
	t.Helper()
	s, err := settings.DecodeJSON(strings.NewReader(body))
	if err != nil {
		t.Fatalf("DecodeJSON(%s): %v", body, err)
	}
	return s
}

const absent = "<absent>"

// containerdConfig is the containerd configuration rendered with downloads concurrent downloads.
func containerdConfig(downloads int) string {
	return fmt.Sprintf(`# Rendered from settings.container-runtime.max-concurrent-downloads by the apiserver, for containerd.
version = 3
root = "/local/var/lib/containerd"
state = "/run/containerd"

[grpc]
  address = "/run/containerd/containerd.sock"

[plugins]
  [plugins.'io.containerd.transfer.v1.local']
    max_concurrent_downloads = %d
`, downloads)
}

func TestFiles(t *testing.T) {
	tests := []struct {
		name  string
		body  string
		files map[string]string // path under /etc → content, or absent
	}{
		{"nothing set", `{}`, map[string]string{"containerd/config.toml": containerdConfig(3), "motd": absent, "hostname": absent, "hosts": absent, "sysctl.d/ballast.conf": absent, "ballast/proxy.env": absent, "ballast/ntp.conf": absent, "ballast/network.json": absent}},
		{"runtime", `{"container-runtime":{"max-concurrent-downloads":8}}`, map[string]string{"containerd/config.toml": containerdConfig(8)}},
		{"motd gets a newline", `{"motd":"hello"}`, map[string]string{"motd": "hello\n", "hostname": absent}},
		{"multi-line motd kept", `{"motd":"a\nb\n"}`, map[string]string{"motd": "a\nb\n"}},
		{"empty motd", `{"motd":""}`, map[string]string{"motd": ""}},
		{"hostname", `{"network":{"hostname":"node-1"}}`, map[string]string{"hostname": "node-1\n", "hosts": absent}},
		{"hosts", `{"network":{"hosts":[["10.0.0.1",["db","db.internal"]],["fd00::1",["v6"]]]}}`,
			map[string]string{"hosts": "127.0.0.1\tlocalhost\n::1\tlocalhost\n10.0.0.1\tdb db.internal\nfd00::1\tv6\n"}},
		// resolv.conf is the network service's: settings.dns reaches it through network.json.
		{"dns", `{"dns":{"name-servers":["10.0.0.2","fd00::53"],"search-list":["a.example","b.example"]}}`,
			map[string]string{"resolv.conf": absent, "ballast/network.json": `{
  "dns": {
    "name_servers": [
      "10.0.0.2",
      "fd00::53"
    ],
    "search": [
      "a.example",
      "b.example"
    ]
  }
}
`}},
		{"network interfaces", `{"network":{"hostname":"h","interfaces":{"lan":{"mac":"52:54:00:AB:CD:EF","addresses":["192.168.1.10/24"],"gateway":"192.168.1.1","mtu":1400,"routes":[{"to":"10.0.0.0/8","via":"192.168.1.2","metric":7}]},"eth0":{"dhcp6":true}}}}`,
			map[string]string{"ballast/network.json": `{
  "interfaces": [
    {
      "key": "eth0",
      "dhcp4": true,
      "dhcp6": true
    },
    {
      "key": "lan",
      "mac": "52:54:00:ab:cd:ef",
      "dhcp4": false,
      "dhcp6": false,
      "addresses": [
        "192.168.1.10/24"
      ],
      "gateway": "192.168.1.1",
      "routes": [
        {
          "to": "10.0.0.0/8",
          "via": "192.168.1.2",
          "metric": 7
        }
      ],
      "mtu": 1400
    }
  ],
  "hostname": "h"
}
`}},
		{"sysctl", `{"kernel":{"sysctl":{"vm.swappiness":"10","net.ipv4.ip_forward":"1"}}}`,
			map[string]string{"sysctl.d/ballast.conf": "# Rendered from settings.kernel.sysctl by the apiserver, which also applies them at once.\nnet.ipv4.ip_forward = 1\nvm.swappiness = 10\n"}},
		{"proxy", `{"network":{"https-proxy":"proxy:3128","no-proxy":[".internal","localhost"]}}`,
			map[string]string{"ballast/proxy.env": "# Rendered from settings.network.https-proxy and no-proxy by the apiserver, for containerd.\nHTTPS_PROXY=proxy:3128\nhttps_proxy=proxy:3128\nNO_PROXY=localhost,127.0.0.1,::1,.internal\nno_proxy=localhost,127.0.0.1,::1,.internal\n"}},
		{"time servers", `{"ntp":{"time-servers":["10.0.0.1","pool.ntp.org"]}}`,
			map[string]string{"ballast/ntp.conf": "# Rendered from settings.ntp by the apiserver, for the time service.\nserver 10.0.0.1\nserver pool.ntp.org\n"}},
		// Set but empty: the file says there are none, and the time service stops following any.
		{"no time servers", `{"ntp":{"time-servers":[]}}`,
			map[string]string{"ballast/ntp.conf": "# Rendered from settings.ntp by the apiserver, for the time service.\n"}},
		{"no-proxy alone", `{"network":{"no-proxy":["10.0.0.0/8"]}}`,
			map[string]string{"ballast/proxy.env": "# Rendered from settings.network.https-proxy and no-proxy by the apiserver, for containerd.\nNO_PROXY=localhost,127.0.0.1,::1,10.0.0.0/8\nno_proxy=localhost,127.0.0.1,::1,10.0.0.0/8\n"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			etc := t.TempDir()
			r := &Renderer{EtcDir: etc}
			if _, err := r.Apply(context.Background(), decode(t, tt.body), nil); err != nil {
				t.Fatal(err)
			}
			for name, want := range tt.files {
				b, err := os.ReadFile(filepath.Join(etc, name))
				if want == absent {
					if !os.IsNotExist(err) {
						t.Errorf("%s exists (%q), want none", name, b)
					}
					continue
				}
				if err != nil || string(b) != want {
					t.Errorf("%s = %q, %v; want %q", name, b, err, want)
				}
				if st, err := os.Stat(filepath.Join(etc, name)); err != nil || st.Mode().Perm() != 0o644 {
					t.Errorf("%s mode %v, %v", name, st.Mode(), err)
				}
			}
			entries, _ := os.ReadDir(etc)
			for _, e := range entries {
				if strings.HasPrefix(e.Name(), ".tmp-") {
					t.Errorf("temp file %s left in etc", e.Name())
				}
			}
		})
	}
}

func TestActions(t *testing.T) {
	etc, proc := t.TempDir(), filepath.Join(hardentest.Root(t), "proc")
	for _, f := range []string{"sys/net/ipv4/ip_forward", "sys/net/ipv4/conf/eth0.100/rp_filter"} {
		os.MkdirAll(filepath.Dir(filepath.Join(proc, f)), 0o755)
		os.WriteFile(filepath.Join(proc, f), []byte("0\n"), 0o644)
	}
	var names []string
	r := &Renderer{EtcDir: etc, ProcDir: proc, SetHostname: func(n string) error { names = append(names, n); return nil }}
	s := decode(t, `{"network":{"hostname":"h1"},"kernel":{"sysctl":{"net.ipv4.ip_forward":"1","net/ipv4/conf/eth0.100/rp_filter":"2","net.nope.x":"3"}}}`)
	res, err := r.Apply(context.Background(), s, nil)
	if err == nil || !strings.Contains(err.Error(), "sysctl: sysctl net.nope.x: the kernel has no such sysctl") {
		t.Fatalf("Apply = %v, want the missing sysctl reported", err)
	}
	// The overrides, and the hardened defaults around them.
	for f, want := range map[string]string{"sys/net/ipv4/ip_forward": "1", "sys/net/ipv4/conf/eth0.100/rp_filter": "2",
		"sys/kernel/kptr_restrict": "1", "sys/fs/protected_regular": "2", "sys/kernel/modprobe": contract.ModprobePath} {
		if b, _ := os.ReadFile(filepath.Join(proc, f)); string(b) != want {
			t.Errorf("%s = %q, want %q", f, b, want)
		}
	}
	if !reflect.DeepEqual(names, []string{"h1"}) || !reflect.DeepEqual(res.Actions, []string{ActionSethostname, ActionKernelPolicy, ActionSysctl}) {
		t.Fatalf("sethostname %q, actions %q", names, res.Actions)
	}
	// A change elsewhere runs neither action again.
	names = nil
	res, err = r.Apply(context.Background(), s, []string{"settings.motd"})
	if err != nil || names != nil || res.Actions != nil {
		t.Fatalf("Apply of an unrelated change: %+v, %v, sethostname %q", res, err, names)
	}
	errR := &Renderer{EtcDir: etc, SetHostname: func(string) error { return errors.New("EPERM") }}
	_, err = errR.Apply(context.Background(), decode(t, `{"motd":"m","network":{"hostname":"h"}}`), nil)
	if err == nil || !strings.Contains(err.Error(), `sethostname "h": EPERM`) {
		t.Fatalf("Apply with a failing sethostname = %v", err)
	}
	if b, _ := os.ReadFile(filepath.Join(etc, "motd")); string(b) != "m\n" {
		t.Fatalf("motd not written past the failure: %q", b)
	}
}

// testInit stands in for the system init behind the real protocol.
type testInit struct {
	mu        sync.Mutex
	known     []string
	restarted [][]string
}

func (i *testInit) Services(context.Context) ([]apitypes.Service, error) {
	var out []apitypes.Service
	for _, id := range i.known {
		out = append(out, apitypes.Service{ID: id, State: "ready"})
	}
	return out, nil
}

func (i *testInit) Restart(_ context.Context, ids ...string) error {
	i.mu.Lock()
	defer i.mu.Unlock()
	for _, id := range ids {
		if !slices.Contains(i.known, id) {
			return fmt.Errorf("unknown service %q", id)
		}
	}
	i.restarted = append(i.restarted, ids)
	return nil
}

func (i *testInit) Reboot(context.Context) error { return nil }

func TestRestarts(t *testing.T) {
	ctx := context.Background()
	h := &testInit{known: []string{"apiserver", "containerd"}}
	r := &Renderer{EtcDir: t.TempDir(), Init: initclienttest.Start(t, h, "")}
	s := decode(t, `{"network":{"https-proxy":"p:1"}}`)

	// At start files are written but nothing restarts: services start after the apiserver.
	// containerd's configuration and the container manager's are written whether their settings
	// are set or not.
	if res, err := r.Apply(ctx, s, nil); err != nil || res.Restarted != nil || !reflect.DeepEqual(res.Files, []string{"/etc/ballast/proxy.env", "/etc/containerd/config.toml", contract.ContainersConfigPath}) {
		t.Fatalf("start Apply = %+v, %v", res, err)
	}
	s2 := decode(t, `{"network":{"https-proxy":"p:2"},"motd":"m"}`)
	res, err := r.Apply(ctx, s2, []string{"settings.motd", "settings.network.https-proxy"})
	// The container manager reads its file again by itself: it is not restarted.
	if err != nil || !reflect.DeepEqual(res.Restarted, []string{"containerd"}) || !reflect.DeepEqual(res.Files, []string{"/etc/motd", "/etc/ballast/proxy.env", contract.ContainersConfigPath}) {
		t.Fatalf("Apply of a proxy change = %+v, %v", res, err)
	}
	// The same content again: the file is not rewritten and nothing restarts.
	if res, err := r.Apply(ctx, s2, []string{"settings.network.https-proxy"}); err != nil || res.Restarted != nil || res.Files != nil {
		t.Fatalf("Apply without a content change = %+v, %v", res, err)
	}
	if !reflect.DeepEqual(h.restarted, [][]string{{"containerd"}}) {
		t.Fatalf("restarted %q", h.restarted)
	}

	// An init that does not run containerd restarts nothing, and neither does a missing init.
	for _, init := range []initclient.Init{initclienttest.Start(t, &testInit{known: []string{"apiserver"}}, ""), initclient.New(filepath.Join(t.TempDir(), "none"), "", "")} {
		r := &Renderer{EtcDir: t.TempDir(), Init: init}
		if res, err := r.Apply(ctx, s2, []string{"settings.network.https-proxy"}); err != nil || res.Restarted != nil {
			t.Fatalf("Apply = %+v, %v", res, err)
		}
	}
}

func TestMapping(t *testing.T) {
	r := &Renderer{Actions: []Action{{Name: ActionRemoteAPI, Keys: ActionKeys()[ActionRemoteAPI]}}}
	m := r.Mapping()
	if len(m.Files) != len(r.files()) || m.Actions[len(m.Actions)-1].Name != ActionRemoteAPI {
		t.Fatalf("Mapping = %+v", m)
	}
	// An image with a kubelet and one without share every file but their own, and between them
	// have them all.
	k := &Renderer{Node: Node{Kubelet: true}}
	km := k.Mapping()
	common := 0
	for _, f := range Files() {
		if f.Only == nil {
			common++
		}
	}
	if len(m.Files)+len(km.Files)-common != len(Files()) {
		t.Errorf("%d files without a kubelet and %d with one, of %d", len(m.Files), len(km.Files), len(Files()))
	}
	if slices.ContainsFunc(m.Files, func(f apitypes.ConfigFile) bool { return f.Path == contract.KubeletConfigPath }) ||
		!slices.ContainsFunc(km.Files, func(f apitypes.ConfigFile) bool { return f.Path == contract.KubeletConfigPath }) {
		t.Errorf("the kubelet's configuration is mapped without a kubelet, or not with one")
	}
	if slices.ContainsFunc(m.Actions, func(a apitypes.ConfigAction) bool { return a.Name == ActionKubeletSysctl }) ||
		!slices.ContainsFunc(km.Actions, func(a apitypes.ConfigAction) bool { return a.Name == ActionKubeletSysctl }) {
		t.Errorf("the kubelet's sysctls are mapped without a kubelet, or not with one")
	}
	for _, f := range Files() {
		if !strings.HasPrefix(f.Path, "/etc/") {
			t.Errorf("%s is not under /etc", f.Path)
		}
		for _, k := range f.Keys {
			if _, err := settings.ParseKey(k); err != nil {
				t.Errorf("%s: key %s: %v", f.Path, k, err)
			}
		}
	}
	for name, keys := range ActionKeys() {
		for _, k := range keys {
			if _, err := settings.ParseKey(k); err != nil {
				t.Errorf("action %s: key %s: %v", name, k, err)
			}
		}
	}
	if got := AppliedBy("settings.network.hostname"); !reflect.DeepEqual(got, []string{"/etc/hostname", "/etc/ballast/network.json", ActionSethostname}) {
		t.Fatalf("AppliedBy(hostname) = %q", got)
	}
	if got := AppliedBy("settings.network.interfaces.<interface>.mac"); !reflect.DeepEqual(got, []string{"/etc/ballast/network.json"}) {
		t.Fatalf("AppliedBy(interfaces) = %q", got)
	}
	if got := AppliedBy("settings.kernel.sysctl.<key>"); !reflect.DeepEqual(got, []string{"/etc/sysctl.d/ballast.conf", ActionKernelPolicy, ActionKubeletSysctl, ActionSysctl}) {
		t.Fatalf("AppliedBy(sysctl) = %q", got)
	}
	if got := AppliedBy("settings.ntp.time-servers"); !reflect.DeepEqual(got, []string{contract.TimeConfig}) {
		t.Fatalf("AppliedBy(ntp) = %q", got)
	}
	if got := AppliedBy("settings.updates.seed"); !reflect.DeepEqual(got, []string{ReaderUpdateAgent}) {
		t.Fatalf("AppliedBy(updates) = %q", got)
	}
	if got := AppliedBy("settings.network.https-proxy"); !reflect.DeepEqual(got, []string{contract.ProxyEnv, contract.ContainersConfigPath, ReaderUpdateAgent}) {
		t.Fatalf("AppliedBy(https-proxy) = %q", got)
	}
}

// The time service reads what the template writes with contract.ParseTimeConfig; a change of
// servers restarts it.
func TestTimeConfig(t *testing.T) {
	ctx := context.Background()
	h := &testInit{known: []string{"apiserver", "time"}}
	etc := t.TempDir()
	r := &Renderer{EtcDir: etc, Init: initclienttest.Start(t, h, "")}
	servers := []string{"ntp.example", "10.0.0.1", "fd00::123"}
	s := decode(t, `{"ntp":{"time-servers":["ntp.example","10.0.0.1","fd00::123"]}}`)
	res, err := r.Apply(ctx, s, []string{"settings.ntp.time-servers"})
	if err != nil || !reflect.DeepEqual(res.Restarted, []string{"time"}) || !reflect.DeepEqual(res.Files, []string{contract.TimeConfig}) {
		t.Fatalf("Apply = %+v, %v", res, err)
	}
	b, err := os.ReadFile(filepath.Join(etc, strings.TrimPrefix(contract.TimeConfig, "/etc/")))
	if err != nil {
		t.Fatal(err)
	}
	c, err := contract.ParseTimeConfig(b)
	if err != nil || !slices.Equal(c.Servers, servers) {
		t.Errorf("ParseTimeConfig(%q) = %q, %v; want %q", b, c.Servers, err, servers)
	}
}

// Removing a runtime setting puts containerd's default back, and restarts it.
func TestContainerdConfigFollowsRemoval(t *testing.T) {
	ctx := context.Background()
	h := &testInit{known: []string{"apiserver", "containerd"}}
	etc := t.TempDir()
	r := &Renderer{EtcDir: etc, Init: initclienttest.Start(t, h, "")}
	key := []string{"settings.container-runtime.max-concurrent-downloads"}
	for _, step := range []struct {
		body string
		want int
	}{
		{`{"container-runtime":{"max-concurrent-downloads":8}}`, 8},
		{`{}`, DefaultMaxConcurrentDownloads},
	} {
		res, err := r.Apply(ctx, decode(t, step.body), key)
		if err != nil || !reflect.DeepEqual(res.Restarted, []string{"containerd"}) {
			t.Fatalf("Apply %s = %+v, %v; want containerd restarted", step.body, res, err)
		}
		if got, _ := os.ReadFile(filepath.Join(etc, "containerd/config.toml")); string(got) != containerdConfig(step.want) {
			t.Errorf("after %s:\n%s", step.body, got)
		}
	}
}
