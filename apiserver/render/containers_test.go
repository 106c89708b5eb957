package render

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/ballast-os/ballast/apiserver/initclient/initclienttest"
	"github.com/ballast-os/ballast/contract"
)

const testCA = "LS0tLS1CRUdJTiBDRVJUSUZJQ0FURS0tLS0tCk1JSUJiVENDQVJPZ0F3SUJBZ0lVT1RDaVhPaFZLUmhaWDdYczI2TTBqSGFUcVRRd0NnWUlLb1pJemowRUF3SXcKRERFS01BZ0dBMVVFQXd3QmREQWVGdzB5TmpFeU1ESXdOakV5TkRaYUZ3MHpOakV4TWprd05qRXlORFphTUF3eApDakFJQmdOVkJBTU1BWFF3V1RBVEJnY3Foa2pPUFFJQkJnZ3Foa2pPUFFNQkJ3TkNBQVRZRnVxdnJoVDJDM3hxCjFQYnlFOU5FOWhVSlVMYkd6YlhIcEdJM1BGNUhvTzQ1c2NsWFUwNkUwS1FrNGpIWnlYSWhBKy84VTNQcUhpL1kKdEQ2Q1pFa3dvMU13VVRBZEJnTlZIUTRFRmdRVWxtaG9jZGZrdTFqck1idnVYVjVWYmc4aS9IY3dId1lEVlIwagpCQmd3Rm9BVWxtaG9jZGZrdTFqck1idnVYVjVWYmc4aS9IY3dEd1lEVlIwVEFRSC9CQVV3QXdFQi96QUtCZ2dxCmhrak9QUVFEQWdOSUFEQkZBaUVBc1BoM2xWS3JtQTVmbldwaFp2bytYMmZqUWdyYllEKzNWRktpL3N0cTI1UUMKSUJlYWxyajNYZ1FwdWtBTG1JSk1TNFZ1RXh5OHZhU3hFMGR2ais5eVdKNEoKLS0tLS1FTkQgQ0VSVElGSUNBVEUtLS0tLQo="

func TestContainersConfig(t *testing.T) {
	s := decode(t, `{
		"host-containers": {
			"admin": {"source": "registry.example.com/admin:1", "enabled": true, "superpowered": true},
			"control": {"source": "oci-archive:/run/cidata/control.tar", "enabled": true, "api-access": true, "user-data": "aGk="},
			"off": {"source": "x/y:1"}
		},
		"bootstrap-containers": {"setup": {"source": "x/setup:1", "mode": "once", "essential": true}, "idle": {"mode": "off"}},
		"oci-defaults": {"capabilities": {"net-bind-service": false, "sys-nice": true},
			"resource-limits": {"max-open-files": {"hard-limit": 1000}, "max-processes": {"soft-limit": 10, "hard-limit": "unlimited"}},
			"user-namespace": true, "memory-limit": 1073741824, "pids-limit": 99, "cpu-weight": 50},
		"container-registry": {"mirrors": {"docker.io": ["https://mirror.example.com"]},
			"credentials": {"registry.example.com": {"username": "u", "password": "p"}}},
		"pki": {"corp": {"data": "`+testCA+`", "trusted": true}, "other": {"data": "`+testCA+`", "trusted": false}},
		"network": {"https-proxy": "proxy:3128", "no-proxy": [".internal"]}
	}`)
	c, err := ContainersConfig(s)
	if err != nil {
		t.Fatal(err)
	}
	wantHost := []contract.HostContainer{
		{Name: "admin", Source: "registry.example.com/admin:1", Enabled: true, Superpowered: true},
		{Name: "control", Source: "oci-archive:/run/cidata/control.tar", Enabled: true, APIAccess: true, UserData: "aGk="},
		{Name: "off", Source: "x/y:1"},
	}
	if !reflect.DeepEqual(c.Host, wantHost) {
		t.Errorf("host containers = %+v\nwant %+v", c.Host, wantHost)
	}
	wantBoot := []contract.BootstrapContainer{{Name: "idle", Mode: "off"}, {Name: "setup", Source: "x/setup:1", Mode: "once", Essential: true}}
	if !reflect.DeepEqual(c.Bootstrap, wantBoot) {
		t.Errorf("bootstrap containers = %+v\nwant %+v", c.Bootstrap, wantBoot)
	}
	wantDefs := contract.ContainerDefaults{
		Capabilities: map[string]bool{"CAP_NET_BIND_SERVICE": false, "CAP_SYS_NICE": true},
		Rlimits:      []contract.Rlimit{{Type: "RLIMIT_NOFILE", Hard: 1000, Soft: 1000}, {Type: "RLIMIT_NPROC", Hard: ^uint64(0), Soft: 10}},
		UserNS:       true, Memory: 1 << 30, Pids: 99, CPUWeight: 50,
	}
	if !reflect.DeepEqual(c.Defaults, wantDefs) {
		t.Errorf("defaults = %+v\nwant %+v", c.Defaults, wantDefs)
	}
	if c.Registry.Mirrors["docker.io"][0] != "https://mirror.example.com" || c.Registry.Credentials["registry.example.com"] != (contract.RegistryCredential{Username: "u", Password: "p"}) {
		t.Errorf("registry = %+v", c.Registry)
	}
	// Only the trusted bundle is a registry CA.
	if len(c.Registry.CAs) != 1 || !strings.HasPrefix(c.Registry.CAs[0], "-----BEGIN CERTIFICATE-----") {
		t.Errorf("registry CAs = %q", c.Registry.CAs)
	}
	if c.Proxy != "http://proxy:3128" || !reflect.DeepEqual(c.NoProxy, []string{"localhost", "127.0.0.1", "::1", ".internal"}) {
		t.Errorf("proxy = %q %q", c.Proxy, c.NoProxy)
	}
}

// The file holds passwords and user data: root only. It is rendered without any container
// setting, for the manager to start from, and a change does not restart the manager.
func TestContainersFile(t *testing.T) {
	ctx := context.Background()
	h := &testInit{known: []string{"apiserver", "host-containers"}}
	r := &Renderer{EtcDir: t.TempDir(), Init: initclienttest.Start(t, h, "")}
	if _, err := r.Apply(ctx, decode(t, `{}`), nil); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(r.EtcDir, strings.TrimPrefix(contract.ContainersConfigPath, "/etc/"))
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o600 {
		t.Errorf("%s mode %v, want 0600", path, fi.Mode().Perm())
	}
	s := decode(t, `{"container-registry": {"credentials": {"r.example": {"username": "u", "password": "secret"}}}}`)
	res, err := r.Apply(ctx, s, []string{"settings.container-registry.credentials.r.example.password"})
	if err != nil || res.Restarted != nil || !reflect.DeepEqual(res.Files, []string{contract.ContainersConfigPath}) {
		t.Fatalf("Apply = %+v, %v", res, err)
	}
	b, _ := os.ReadFile(path)
	var c contract.ContainersConfig
	if err := json.Unmarshal(b, &c); err != nil || c.Registry.Credentials["r.example"].Password != "secret" {
		t.Errorf("file = %s, %v", b, err)
	}
}
