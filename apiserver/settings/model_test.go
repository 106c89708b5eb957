package settings

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"errors"
	"math/big"
	"reflect"
	"regexp"
	"strings"
	"testing"
	"time"
)

// testPEM returns a self-signed certificate and its key, PEM-encoded.
func testPEM(t *testing.T) (cert, key string) {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "test"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour)}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &k.PublicKey, k)
	if err != nil {
		t.Fatal(err)
	}
	kder, err := x509.MarshalPKCS8PrivateKey(k)
	if err != nil {
		t.Fatal(err)
	}
	return string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})),
		string(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: kder}))
}

func js(v any) string {
	b, _ := json.Marshal(v)
	return string(b)
}

// TestValidation runs every key's rules through DecodeJSON: each case is a PATCH body and either
// succeeds or fails at the named key with a message containing wantErr.
func TestValidation(t *testing.T) {
	cert, key := testPEM(t)
	bundle := base64.StdEncoding.EncodeToString([]byte(cert))
	tests := []struct {
		name    string
		body    string
		wantKey string // "" for success
		wantErr string
	}{
		// network
		{"hosts", `{"network":{"hosts":[["10.0.0.1",["db","db.internal"]],["fd00::1",["v6"]]]}}`, "", ""},
		{"hosts bad address", `{"network":{"hosts":[["10.0.0.300",["db"]]]}}`, "settings.network.hosts", `item 1: "10.0.0.300" is not an IP address`},
		{"hosts no names", `{"network":{"hosts":[["10.0.0.1",[]]]}}`, "settings.network.hosts", "want 1-16 names"},
		{"hosts bad name", `{"network":{"hosts":[["10.0.0.1",["a_b"]]]}}`, "settings.network.hosts", "only letters"},
		{"hosts not a pair", `{"network":{"hosts":[["10.0.0.1"]]}}`, "settings.network.hosts", "expected a pair"},
		{"hosts name not string", `{"network":{"hosts":[["10.0.0.1",[1]]]}}`, "settings.network.hosts", "list of strings"},
		{"hosts too many", `{"network":{"hosts":[` + strings.Repeat(`["10.0.0.1",["a"]],`, 256) + `["10.0.0.1",["a"]]]}}`, "settings.network.hosts", "257 items are more than the 256 allowed"},
		{"proxy host:port", `{"network":{"https-proxy":"proxy.internal:3128"}}`, "", ""},
		{"proxy url", `{"network":{"https-proxy":"https://10.0.0.1:8443/"}}`, "", ""},
		{"proxy path", `{"network":{"https-proxy":"http://p:1/x"}}`, "settings.network.https-proxy", "no path"},
		{"proxy scheme", `{"network":{"https-proxy":"ftp://p:1"}}`, "settings.network.https-proxy", "not http or https"},
		{"proxy port", `{"network":{"https-proxy":"p:99999"}}`, "settings.network.https-proxy", "1-65535"},
		{"proxy newline", `{"network":{"https-proxy":"p:1\nX=y"}}`, "settings.network.https-proxy", "control characters"},
		{"no-proxy", `{"network":{"no-proxy":["localhost",".example.com","10.0.0.0/8","*","[::1]"]}}`, "", ""},
		{"no-proxy comma", `{"network":{"no-proxy":["a,b"]}}`, "settings.network.no-proxy", "item 1"},
		{"no-proxy empty list", `{"network":{"no-proxy":[]}}`, "", ""},
		{"interface", `{"network":{"interfaces":{"eth0":{"dhcp4":false,"addresses":["192.168.1.10/24"],"gateway":"192.168.1.1","mtu":9000,"routes":[{"to":"10.0.0.0/8","via":"192.168.1.2","metric":100}]}}}}`, "", ""},
		{"vlan interface", `{"network":{"interfaces":{"eth0.100":{"dhcp6":true}}}}`, "", ""},
		{"interface name too long", `{"network":{"interfaces":{"abcdefghijklmnop":{"dhcp4":true}}}}`, `settings.network.interfaces.abcdefghijklmnop`, "not an interface name"},
		{"interface address no prefix", `{"network":{"interfaces":{"eth0":{"addresses":["192.168.1.10"]}}}}`, "settings.network.interfaces.eth0.addresses", "not an address/prefix length"},
		{"mtu low", `{"network":{"interfaces":{"eth0":{"mtu":67}}}}`, "settings.network.interfaces.eth0.mtu", "67 is not in the range 68 to 65535"},
		{"mtu float", `{"network":{"interfaces":{"eth0":{"mtu":1500.5}}}}`, "settings.network.interfaces.eth0.mtu", "expected integer, got number"},
		{"route without to", `{"network":{"interfaces":{"eth0":{"routes":[{"via":"10.0.0.1"}]}}}}`, "settings.network.interfaces.eth0.routes", "item 1: to is required"},
		{"route host bits", `{"network":{"interfaces":{"eth0":{"routes":[{"to":"10.0.0.1/8"}]}}}}`, "settings.network.interfaces.eth0.routes", "host bits"},
		{"route family", `{"network":{"interfaces":{"eth0":{"routes":[{"to":"10.0.0.0/8","via":"fd00::1"}]}}}}`, "settings.network.interfaces.eth0.routes", "not of the family"},
		{"interface by mac", `{"network":{"interfaces":{"lan":{"mac":"52:54:00:AB:cd:01","addresses":["192.168.1.10/24"]}}}}`, "", ""},
		{"mac short", `{"network":{"interfaces":{"lan":{"mac":"52:54:00:ab:cd"}}}}`, "settings.network.interfaces.lan.mac", "not a MAC address"},
		{"mac dashes", `{"network":{"interfaces":{"lan":{"mac":"52-54-00-ab-cd-01"}}}}`, "settings.network.interfaces.lan.mac", "not a MAC address"},
		{"route unknown key", `{"network":{"interfaces":{"eth0":{"routes":[{"to":"default","gw":"x"}]}}}}`, "settings.network.interfaces.eth0.routes", "item 1 gw: unknown key"},
		// dns, ntp
		{"dns", `{"dns":{"name-servers":["1.1.1.1","2606:4700::1111"],"search-list":["example.com"]}}`, "", ""},
		{"dns too many servers", `{"dns":{"name-servers":["1.1.1.1","1.1.1.2","1.1.1.3","1.1.1.4"]}}`, "settings.dns.name-servers", "4 items are more than the 3 allowed"},
		{"dns server name", `{"dns":{"name-servers":["dns.example"]}}`, "settings.dns.name-servers", "not an IP address"},
		{"dns zone", `{"dns":{"name-servers":["fe80::1%eth0"]}}`, "settings.dns.name-servers", "zones are not supported"},
		{"ntp", `{"ntp":{"time-servers":["pool.ntp.org","10.0.0.1"]}}`, "", ""},
		{"ntp bad", `{"ntp":{"time-servers":["pool ntp"]}}`, "settings.ntp.time-servers", "neither"},
		{"ntp not list", `{"ntp":{"time-servers":"pool.ntp.org"}}`, "settings.ntp.time-servers", "expected a list, got string"},
		// kernel
		{"sysctl", `{"kernel":{"sysctl":{"net.ipv4.ip_forward":"1","net/ipv4/conf/eth0.100/rp_filter":"2","net.ipv4.ip_local_port_range":"32768 60999"}}}`, "", ""},
		{"sysctl bad key", `{"kernel":{"sysctl":{"../etc/passwd":"1"}}}`, `settings.kernel.sysctl."../etc/passwd"`, "not a sysctl name"},
		{"sysctl single word", `{"kernel":{"sysctl":{"kernel":"1"}}}`, "settings.kernel.sysctl.kernel", "not a sysctl name"},
		{"sysctl value newline", `{"kernel":{"sysctl":{"vm.swappiness":"1\nvm.x=2"}}}`, `settings.kernel.sysctl."vm.swappiness"`, "one line"},
		{"sysctl value number", `{"kernel":{"sysctl":{"vm.swappiness":1}}}`, `settings.kernel.sysctl."vm.swappiness"`, "expected string, got integer"},
		{"lockdown", `{"kernel":{"lockdown":"integrity"}}`, "", ""},
		{"lockdown bad", `{"kernel":{"lockdown":"strict"}}`, "settings.kernel.lockdown", `"strict" is not one of none, integrity, confidentiality`},
		{"modules", `{"kernel":{"modules":{"sctp":{"allowed":false},"br_netfilter":{"autoload":true}}}}`, "", ""},
		{"module name", `{"kernel":{"modules":{"a/b":{"allowed":false}}}}`, "settings.kernel.modules.a/b", "not a module name"},
		{"module allowed string", `{"kernel":{"modules":{"sctp":{"allowed":"no"}}}}`, "settings.kernel.modules.sctp.allowed", "expected boolean, got string"},
		// containers
		{"host container", `{"host-containers":{"admin":{"source":"registry.example.com:5000/ballast/admin:v1.0","enabled":true,"superpowered":true,"user-data":"aGVsbG8="}}}`, "", ""},
		{"host container digest", `{"host-containers":{"c":{"source":"example.com/x@sha256:` + strings.Repeat("ab", 32) + `"}}}`, "", ""},
		{"host container bad image", `{"host-containers":{"admin":{"source":"Registry/UPPER:tag"}}}`, "settings.host-containers.admin.source", "not an image reference"},
		{"host container bad tag", `{"host-containers":{"admin":{"source":"a/b:t@g"}}}`, "settings.host-containers.admin.source", "not an image reference"},
		{"host container user-data", `{"host-containers":{"admin":{"user-data":"not base64!"}}}`, "settings.host-containers.admin.user-data", "not base64"},
		{"host container name", `{"host-containers":{"-x":{"enabled":false}}}`, "settings.host-containers.-x", "not a name"},
		{"host container user-data too long", `{"host-containers":{"a":{"user-data":"` + strings.Repeat("AAAA", 4097) + `"}}}`, "settings.host-containers.a.user-data", "16388 bytes is more than the 16384 allowed"},
		{"bootstrap", `{"bootstrap-containers":{"setup":{"source":"setup:1","mode":"once","essential":true}}}`, "", ""},
		{"archive source", `{"host-containers":{"c":{"source":"oci-archive:/run/cidata/admin.tar","api-access":true,"host-network":true,"user-namespace":true}}}`, "", ""},
		{"archive relative", `{"host-containers":{"c":{"source":"oci-archive:admin.tar"}}}`, "settings.host-containers.c.source", "absolute clean path"},
		{"archive dotdot", `{"host-containers":{"c":{"source":"oci-archive:/run/cidata/../../etc/x"}}}`, "settings.host-containers.c.source", "absolute clean path"},
		{"registry", `{"container-registry":{"mirrors":{"docker.io":["https://m.example","http://10.0.0.1:5000"],"*":["https://all.example"]},"credentials":{"[fd00::1]:5000":{"username":"u","password":"p"}}}}`, "", ""},
		{"registry host", `{"container-registry":{"credentials":{"not a host":{"username":"u"}}}}`, `settings.container-registry.credentials."not a host"`, "not a registry host"},
		{"registry port", `{"container-registry":{"mirrors":{"r.example:99999":["https://m.example"]}}}`, `settings.container-registry.mirrors."r.example:99999"`, "not 1-65535"},
		{"mirror scheme", `{"container-registry":{"mirrors":{"docker.io":["ftp://m.example"]}}}`, `settings.container-registry.mirrors."docker.io"`, "want http(s)"},
		{"mirror with user", `{"container-registry":{"mirrors":{"docker.io":["https://u:p@m.example"]}}}`, `settings.container-registry.mirrors."docker.io"`, "no user"},
		{"oci limits", `{"oci-defaults":{"memory-limit":1073741824,"pids-limit":100,"cpu-weight":10,"user-namespace":true}}`, "", ""},
		{"oci memory tiny", `{"oci-defaults":{"memory-limit":4096}}`, "settings.oci-defaults.memory-limit", "not in the range"},
		{"bootstrap mode", `{"bootstrap-containers":{"setup":{"mode":"sometimes"}}}`, "settings.bootstrap-containers.setup.mode", "not one of off, once, always"},
		// container runtime, oci defaults
		{"runtime", `{"container-runtime":{"max-container-log-line-size":-1,"max-concurrent-downloads":3,"enable-unprivileged-ports":true,"enable-unprivileged-icmp":false}}`, "", ""},
		{"runtime downloads zero", `{"container-runtime":{"max-concurrent-downloads":0}}`, "settings.container-runtime.max-concurrent-downloads", "0 is not in the range 1 to 1024"},
		{"runtime log line zero", `{"container-runtime":{"max-container-log-line-size":0}}`, "settings.container-runtime.max-container-log-line-size", "0 is not a size"},
		{"runtime unknown", `{"container-runtime":{"snapshotter":"overlayfs"}}`, "settings.container-runtime.snapshotter", "unknown key"},
		{"capabilities", `{"oci-defaults":{"capabilities":{"net-bind-service":true,"sys-admin":false}}}`, "", ""},
		{"capability unknown", `{"oci-defaults":{"capabilities":{"cap_chown":true}}}`, "settings.oci-defaults.capabilities.cap_chown", "not one of"},
		{"rlimits", `{"oci-defaults":{"resource-limits":{"max-open-files":{"hard-limit":4096,"soft-limit":1024},"max-processes":{"hard-limit":"unlimited"}}}}`, "", ""},
		{"rlimit name", `{"oci-defaults":{"resource-limits":{"nofile":{"hard-limit":1}}}}`, "settings.oci-defaults.resource-limits.nofile", "not one of"},
		{"rlimit value", `{"oci-defaults":{"resource-limits":{"max-open-files":{"hard-limit":"lots"}}}}`, "settings.oci-defaults.resource-limits.max-open-files.hard-limit", `"unlimited", got "lots"`},
		{"rlimit negative", `{"oci-defaults":{"resource-limits":{"max-open-files":{"hard-limit":-2}}}}`, "settings.oci-defaults.resource-limits.max-open-files.hard-limit", "-2 is not a limit"},
		// pki, api
		{"pki", `{"pki":{"corp":{"data":"` + bundle + `","trusted":true}}}`, "", ""},
		{"pki raw pem", `{"pki":{"corp":{"data":` + js(cert) + `}}}`, "settings.pki.corp.data", "not base64"},
		{"pki not a cert", `{"pki":{"corp":{"data":"aGVsbG8="}}}`, "settings.pki.corp.data", "not PEM"},
		{"remote", `{"api":{"remote":{"enabled":true,"listen":":8443","client-ca":` + js(cert) + `,"server-cert":` + js(cert) + `,"server-key":` + js(key) + `}}}`, "", ""},
		{"listen no port", `{"api":{"remote":{"listen":"10.0.0.1"}}}`, "settings.api.remote.listen", "not host:port"},
		{"listen bad port", `{"api":{"remote":{"listen":"[::1]:65536"}}}`, "settings.api.remote.listen", "0-65535"},
		{"client-ca garbage", `{"api":{"remote":{"client-ca":"hello"}}}`, "settings.api.remote.client-ca", "not PEM"},
		{"client-ca key", `{"api":{"remote":{"client-ca":` + js(key) + `}}}`, "settings.api.remote.client-ca", `"PRIVATE KEY", want CERTIFICATE`},
		{"server-key cert", `{"api":{"remote":{"server-key":` + js(cert) + `}}}`, "settings.api.remote.server-key", "want a private key"},
		// updates
		{"updates", `{"updates":{"metadata-base-url":"https://updates.example.com/2026/qemu/x86_64/","targets-base-url":"http://10.0.2.2:8080/targets","version-lock":"latest","ignore-waves":true,"seed":2047}}`, "", ""},
		{"updates version lock", `{"updates":{"version-lock":"1.2.0~rc1"}}`, "", ""},
		{"updates seed zero", `{"updates":{"seed":0}}`, "", ""},
		{"updates lock plus", `{"updates":{"version-lock":"1.0+3"}}`, "settings.updates.version-lock", `neither "latest" nor a version`},
		{"updates lock empty", `{"updates":{"version-lock":""}}`, "settings.updates.version-lock", `neither "latest" nor a version`},
		{"updates lock Latest", `{"updates":{"version-lock":"-latest"}}`, "settings.updates.version-lock", "want letters, digits"},
		{"updates seed high", `{"updates":{"seed":2048}}`, "settings.updates.seed", "2048 is not in the range 0 to 2047"},
		{"updates seed negative", `{"updates":{"seed":-1}}`, "settings.updates.seed", "-1 is not in the range 0 to 2047"},
		{"updates seed string", `{"updates":{"seed":"5"}}`, "settings.updates.seed", "expected integer, got string"},
		{"updates waves string", `{"updates":{"ignore-waves":"yes"}}`, "settings.updates.ignore-waves", "expected boolean, got string"},
		{"updates url scheme", `{"updates":{"metadata-base-url":"ftp://u.example/m"}}`, "settings.updates.metadata-base-url", "want http(s)://host"},
		{"updates url no host", `{"updates":{"targets-base-url":"https:///targets"}}`, "settings.updates.targets-base-url", "want http(s)://host"},
		{"updates url relative", `{"updates":{"targets-base-url":"u.example/targets"}}`, "settings.updates.targets-base-url", "want http(s)://host"},
		{"updates url query", `{"updates":{"metadata-base-url":"https://u.example/m?x=1"}}`, "settings.updates.metadata-base-url", "no user, query or fragment"},
		{"updates url user", `{"updates":{"metadata-base-url":"https://a:b@u.example/m"}}`, "settings.updates.metadata-base-url", "no user, query or fragment"},
		{"updates url space", `{"updates":{"metadata-base-url":"https://u.example/a b"}}`, "settings.updates.metadata-base-url", "spaces or control characters"},
		{"updates url long", `{"updates":{"metadata-base-url":"https://u.example/` + strings.Repeat("a", 2031) + `"}}`, "settings.updates.metadata-base-url", "2049 bytes is more than the 2048 allowed"},
		{"updates unknown", `{"updates":{"channel":"beta"}}`, "settings.updates.channel", "unknown key"},
		// every string
		{"nul", `{"motd":"a\u0000b"}`, "settings.motd", "NUL"},
		{"invalid utf-8 is replaced", "{\"kernel\":{\"modules\":{\"\xff\":{}}}}", "settings.kernel.modules.\ufffd", "not a module name"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, err := DecodeJSON(strings.NewReader(tt.body))
			if tt.wantErr == "" {
				if err != nil {
					t.Fatalf("DecodeJSON: %v", err)
				}
				// What is accepted survives the trip through its JSON form, as the datastore makes it.
				b, err := json.Marshal(s)
				if err != nil {
					t.Fatal(err)
				}
				again, err := DecodeJSON(strings.NewReader(string(b)))
				if err != nil || !reflect.DeepEqual(again, s) {
					t.Fatalf("round trip of %s: %+v, %v", b, again, err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("DecodeJSON error = %v, want %q", err, tt.wantErr)
			}
			var ke *KeyError
			if tt.wantKey != "" && (!errors.As(err, &ke) || ke.Key() != tt.wantKey) {
				t.Fatalf("error %v: key %v, want %q", err, ke, tt.wantKey)
			}
		})
	}
}

func TestValidateLive(t *testing.T) {
	cert, key := testPEM(t)
	otherCert, _ := testPEM(t)
	tests := []struct {
		name    string
		body    string
		wantKey string
		wantErr string
	}{
		{"remote complete", `{"api":{"remote":{"enabled":true,"listen":":8443","client-ca":` + js(cert) + `,"server-cert":` + js(cert) + `,"server-key":` + js(key) + `}}}`, "", ""},
		{"remote disabled needs nothing", `{"api":{"remote":{"enabled":false}}}`, "", ""},
		{"remote without listen", `{"api":{"remote":{"enabled":true}}}`, "settings.api.remote.listen", "required"},
		{"remote key mismatch", `{"api":{"remote":{"enabled":true,"listen":":1","client-ca":` + js(cert) + `,"server-cert":` + js(otherCert) + `,"server-key":` + js(key) + `}}}`, "settings.api.remote.server-key", "does not match"},
		{"enabled container without source", `{"host-containers":{"admin":{"enabled":true}}}`, "settings.host-containers.admin.source", "required"},
		{"disabled container without source", `{"host-containers":{"admin":{"enabled":false}}}`, "", ""},
		{"bootstrap without source", `{"bootstrap-containers":{"b":{"essential":true}}}`, "settings.bootstrap-containers.b.source", "required unless mode is off"},
		{"bootstrap off", `{"bootstrap-containers":{"b":{"mode":"off"}}}`, "", ""},
		{"gateway without address", `{"network":{"interfaces":{"eth0":{"gateway":"10.0.0.1"}}}}`, "settings.network.interfaces.eth0.gateway", "needs a static address"},
		{"gateway other family", `{"network":{"interfaces":{"eth0":{"gateway":"10.0.0.1","addresses":["fd00::2/64"]}}}}`, "settings.network.interfaces.eth0.gateway", "needs a static address"},
		{"same mac twice", `{"network":{"interfaces":{"a":{"mac":"52:54:00:ab:cd:01"},"b":{"mac":"52:54:00:AB:CD:01"}}}}`, "settings.network.interfaces.b.mac", "already the mac of entry a"},
		{"macs differ", `{"network":{"interfaces":{"a":{"mac":"52:54:00:ab:cd:01"},"b":{"mac":"52:54:00:ab:cd:02"}}}}`, "", ""},
		{"soft above hard", `{"oci-defaults":{"resource-limits":{"max-open-files":{"hard-limit":10,"soft-limit":11}}}}`, "settings.oci-defaults.resource-limits.max-open-files.soft-limit", "more than the hard limit"},
		{"soft unlimited under hard", `{"oci-defaults":{"resource-limits":{"max-open-files":{"hard-limit":10,"soft-limit":"unlimited"}}}}`, "settings.oci-defaults.resource-limits.max-open-files.soft-limit", "more than the hard limit"},
		{"hard unlimited", `{"oci-defaults":{"resource-limits":{"max-open-files":{"hard-limit":-1,"soft-limit":11}}}}`, "", ""},
		{"trusted without data", `{"pki":{"corp":{"trusted":true}}}`, "settings.pki.corp.data", "required"},
		{"container named as a service", `{"host-containers":{"apiserver":{"source":"a/b:1"}}}`, "settings.host-containers.apiserver", "names a system service or log"},
		{"container named kernel", `{"bootstrap-containers":{"kernel":{"mode":"off"}}}`, "settings.bootstrap-containers.kernel", "names a system service or log"},
		{"one name, two kinds", `{"host-containers":{"x":{"source":"a/b:1"}},"bootstrap-containers":{"x":{"mode":"off"}}}`, "settings.bootstrap-containers.x", "a host container has this name"},
		{"forbidden default capability", `{"oci-defaults":{"capabilities":{"sys-admin":true}}}`, "settings.oci-defaults.capabilities.sys-admin", "only superpowered"},
		{"forbidden capability dropped", `{"oci-defaults":{"capabilities":{"net-raw":false,"sys-nice":true}}}`, "", ""},
		{"credentials for every registry", `{"container-registry":{"credentials":{"*":{"username":"u","password":"p"}}}}`, "settings.container-registry.credentials.*", "not *"},
		{"username without password", `{"container-registry":{"credentials":{"r.example:5000":{"username":"u"}}}}`, `settings.container-registry.credentials."r.example:5000"`, "go together"},
		{"credentials", `{"container-registry":{"credentials":{"r.example:5000":{"username":"u","password":"p"}},"mirrors":{"*":["https://m.example"]}}}`, "", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, err := DecodeJSON(strings.NewReader(tt.body))
			if err != nil {
				t.Fatalf("DecodeJSON: %v (a patch is only checked key by key)", err)
			}
			err = s.ValidateLive()
			if tt.wantErr == "" {
				if err != nil {
					t.Fatalf("ValidateLive: %v", err)
				}
				return
			}
			var ke *KeyError
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) || !errors.As(err, &ke) || ke.Key() != tt.wantKey {
				t.Fatalf("ValidateLive = %v, want key %s and %q", err, tt.wantKey, tt.wantErr)
			}
		})
	}
}

func TestMapLimitAfterMerge(t *testing.T) {
	var base, patch Settings
	base.HostContainers, patch.HostContainers = map[ContainerName]*HostContainer{}, map[ContainerName]*HostContainer{}
	for i := range 16 {
		base.HostContainers[ContainerName("a"+string(rune('a'+i)))] = &HostContainer{Enabled: ptr(false)}
	}
	patch.HostContainers["extra"] = &HostContainer{Enabled: ptr(false)}
	if err := base.Validate(); err != nil {
		t.Fatal(err)
	}
	err := Merge(base, patch).Validate()
	var ke *KeyError
	if !errors.As(err, &ke) || ke.Key() != "settings.host-containers" || !strings.Contains(err.Error(), "17 entries are more than the 16 allowed") {
		t.Fatalf("Validate of a merged map over its bound = %v", err)
	}
}

func TestMergeMapsAndLists(t *testing.T) {
	base := mustDecode(t, `{"kernel":{"sysctl":{"a.b":"1","a.c":"2"}},"host-containers":{"admin":{"enabled":true,"source":"admin:1"}},"dns":{"name-servers":["1.1.1.1","8.8.8.8"]}}`)
	patch := mustDecode(t, `{"kernel":{"sysctl":{"a.c":"3","a.d":"4"}},"host-containers":{"admin":{"enabled":false},"control":{"enabled":false}},"dns":{"name-servers":["9.9.9.9"]}}`)
	want := mustDecode(t, `{"kernel":{"sysctl":{"a.b":"1","a.c":"3","a.d":"4"}},"host-containers":{"admin":{"enabled":false,"source":"admin:1"},"control":{"enabled":false}},"dns":{"name-servers":["9.9.9.9"]}}`)
	got := Merge(base, patch)
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("Merge = %s, want %s", js(got), js(want))
	}
	// No sharing: changing the result leaves the arguments alone.
	got.Kernel.Sysctl["a.b"] = "changed"
	*got.HostContainers["admin"].Enabled = true
	got.DNS.NameServers[0] = "0.0.0.0"
	if base.Kernel.Sysctl["a.b"] != "1" || *patch.HostContainers["admin"].Enabled || patch.DNS.NameServers[0] != "9.9.9.9" {
		t.Fatal("Merge result shares memory with its arguments")
	}
	// An empty list is a value that replaces; an empty table is nothing.
	cleared := Merge(base, mustDecode(t, `{"dns":{"name-servers":[]},"kernel":{"sysctl":{}}}`))
	if cleared.DNS == nil || cleared.DNS.NameServers == nil || len(cleared.DNS.NameServers) != 0 || len(cleared.Kernel.Sysctl) != 2 {
		t.Fatalf("clearing merge = %s", js(cleared))
	}
	if b := js(cleared.DNS); b != `{"name-servers":[]}` {
		t.Fatalf("an emptied list must stay in the JSON form: %s", b)
	}
}

func TestKeysAndDiff(t *testing.T) {
	a := mustDecode(t, `{"motd":"m","kernel":{"sysctl":{"net.ipv4.ip_forward":"1"}},"oci-defaults":{"capabilities":{"chown":false}},"network":{"no-proxy":[]}}`)
	wantKeys := []string{`settings.kernel.sysctl."net.ipv4.ip_forward"`, "settings.motd", "settings.network.no-proxy", "settings.oci-defaults.capabilities.chown"}
	if got := a.Keys(); !reflect.DeepEqual(got, wantKeys) {
		t.Fatalf("Keys = %q, want %q", got, wantKeys)
	}
	b := mustDecode(t, `{"motd":"m","kernel":{"sysctl":{"net.ipv4.ip_forward":"0"}},"oci-defaults":{"capabilities":{"chown":false}},"ntp":{"time-servers":["a.example"]}}`)
	wantDiff := []string{`settings.kernel.sysctl."net.ipv4.ip_forward"`, "settings.network.no-proxy", "settings.ntp.time-servers"}
	if got := Diff(a, b); !reflect.DeepEqual(got, wantDiff) {
		t.Fatalf("Diff = %q, want %q", got, wantDiff)
	}
	if got := Diff(a, a.Clone()); got != nil {
		t.Fatalf("Diff of equal settings = %q", got)
	}
}

func TestParseKey(t *testing.T) {
	tests := []struct {
		key     string
		want    []string
		wantErr string
	}{
		{"motd", []string{"settings", "motd"}, ""},
		{"settings.motd", []string{"settings", "motd"}, ""},
		{"settings", []string{"settings"}, ""},
		{"network", []string{"settings", "network"}, ""},
		{"kernel.sysctl.net.ipv4.ip_forward", []string{"settings", "kernel", "sysctl", "net.ipv4.ip_forward"}, ""},
		{`settings.kernel.sysctl."net.ipv4.ip_forward"`, []string{"settings", "kernel", "sysctl", "net.ipv4.ip_forward"}, ""},
		{`network.interfaces."eth0.100".mtu`, []string{"settings", "network", "interfaces", "eth0.100", "mtu"}, ""},
		{"host-containers.admin.enabled", []string{"settings", "host-containers", "admin", "enabled"}, ""},
		{"oci-defaults.resource-limits.max-open-files.soft-limit", []string{"settings", "oci-defaults", "resource-limits", "max-open-files", "soft-limit"}, ""},
		{"motto", nil, "settings.motto: unknown key"},
		{"network.hostname.x", nil, "settings.network.hostname is a value"},
		{"a..b", nil, "empty segment"},
		{"motd.", nil, "ends with a dot"},
		{`kernel.sysctl."x`, nil, "unterminated quote"},
		{`kernel."sysctl"x`, nil, "want a dot"},
	}
	for _, tt := range tests {
		got, err := ParseKey(tt.key)
		if tt.wantErr != "" {
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("ParseKey(%q) = %q, %v; want error %q", tt.key, got, err, tt.wantErr)
			}
			continue
		}
		if err != nil || !reflect.DeepEqual(got, tt.want) {
			t.Errorf("ParseKey(%q) = %q, %v; want %q", tt.key, got, err, tt.want)
		}
		// FormatKey reads back to the same path.
		if again, err := ParseKey(FormatKey(got)); err != nil || !reflect.DeepEqual(again, got) {
			t.Errorf("ParseKey(FormatKey(%q)) = %q, %v", got, again, err)
		}
	}
}

func TestValueFromStringAndSetInTree(t *testing.T) {
	tree := map[string]any{}
	for _, kv := range [][2]string{
		{"motd", "hi"},
		{"host-containers.admin.enabled", "true"},
		{"container-runtime.max-concurrent-downloads", "4"},
		{"kernel.sysctl.net.ipv4.ip_forward", "1"},
		{"dns.name-servers", `["10.0.0.2"]`},
		{"oci-defaults.resource-limits.max-open-files.hard-limit", "unlimited"},
		{"oci-defaults.resource-limits.max-open-files.soft-limit", "1024"},
	} {
		path, err := ParseKey(kv[0])
		if err != nil {
			t.Fatal(err)
		}
		v, err := ValueFromString(path, kv[1])
		if err != nil {
			t.Fatalf("ValueFromString(%s, %s): %v", kv[0], kv[1], err)
		}
		if err := SetInTree(tree, path, v); err != nil {
			t.Fatal(err)
		}
	}
	s, err := FromTree(tree)
	if err != nil {
		t.Fatalf("FromTree(%v): %v", tree, err)
	}
	want := mustDecode(t, `{"motd":"hi","host-containers":{"admin":{"enabled":true}},"container-runtime":{"max-concurrent-downloads":4},"kernel":{"sysctl":{"net.ipv4.ip_forward":"1"}},"dns":{"name-servers":["10.0.0.2"]},"oci-defaults":{"resource-limits":{"max-open-files":{"hard-limit":-1,"soft-limit":1024}}}}`)
	if !reflect.DeepEqual(s, want) {
		t.Fatalf("built %s, want %s", js(s), js(want))
	}
	for _, bad := range [][2]string{{"host-containers.admin.enabled", "yes please"}, {"network.interfaces.eth0.mtu", "big"}, {"dns.name-servers", "10.0.0.2"}} {
		path, _ := ParseKey(bad[0])
		if _, err := ValueFromString(path, bad[1]); err == nil {
			t.Errorf("ValueFromString(%s, %q) succeeded", bad[0], bad[1])
		}
	}
	path, _ := ParseKey("motd")
	if err := SetInTree(tree, path, "again"); err == nil || !strings.Contains(err.Error(), "set twice") {
		t.Fatalf("SetInTree twice: %v", err)
	}
	path, _ = ParseKey("motd")
	if err := SetInTree(map[string]any{"motd": "x"}, append(path, "x"), "y"); err == nil {
		t.Fatal("SetInTree under a value succeeded")
	}
}

func TestSelect(t *testing.T) {
	s := mustDecode(t, `{"motd":"m","network":{"hostname":"h","no-proxy":["a"]},"kernel":{"sysctl":{"a.b":"1","a.c":"2"}}}`)
	tree, err := s.Tree()
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		keys []string
		want string
	}{
		{[]string{"settings"}, `{"kernel":{"sysctl":{"a.b":"1","a.c":"2"}},"motd":"m","network":{"hostname":"h","no-proxy":["a"]}}`},
		{[]string{"motd"}, `{"motd":"m"}`},
		{[]string{"network.hostname", "motd"}, `{"motd":"m","network":{"hostname":"h"}}`},
		{[]string{"network.hostname", "network"}, `{"network":{"hostname":"h","no-proxy":["a"]}}`},
		{[]string{"kernel.sysctl.a.c"}, `{"kernel":{"sysctl":{"a.c":"2"}}}`},
		{[]string{"dns", "ntp.time-servers"}, `{}`},
	}
	for _, tt := range tests {
		var paths [][]string
		for _, k := range tt.keys {
			p, err := ParseKey(k)
			if err != nil {
				t.Fatal(err)
			}
			paths = append(paths, p)
		}
		if got := js(Select(tree, paths)); got != tt.want {
			t.Errorf("Select(%q) = %s, want %s", tt.keys, got, tt.want)
		}
	}
	if again, _ := s.Tree(); !reflect.DeepEqual(again, tree) {
		t.Fatal("Select changed its tree")
	}
}

// TestModelTags walks the model the way the docs do, so a bad tag fails here rather than in
// the generator.
func TestModelTags(t *testing.T) {
	if _, err := Markdown(nil); err != nil {
		t.Fatal(err)
	}
	if _, err := JSONSchema(); err != nil {
		t.Fatal(err)
	}
}

func mustDecode(t *testing.T, body string) Settings {
	t.Helper()
	s, err := DecodeJSON(strings.NewReader(body))
	if err != nil {
		t.Fatalf("DecodeJSON(%s): %v", body, err)
	}
	return s
}

// The schema's pattern for settings.updates.version-lock accepts what the model accepts.
func TestVersionLockPattern(t *testing.T) {
	re := regexp.MustCompile(versionLockPattern)
	for _, v := range []string{"latest", "1.2.3", "2.0.0~rc1", "v1_2-3", "a", strings.Repeat("9", 64), strings.Repeat("9", 65),
		"", "-1", "1+2", "1/2", "1 2", ".1", "Latest", "latest "} {
		want := VersionLock(v).check() == nil
		if got := re.MatchString(v); got != want {
			t.Errorf("%q: pattern says %v, the model %v", v, got, want)
		}
	}
	f, _ := reflect.TypeFor[Updates]().FieldByName("Seed")
	if lim, err := limitsOf(f); err != nil || lim.max == nil || *lim.max != MaxUpdateSeed || lim.min == nil || *lim.min != 0 {
		t.Errorf("settings.updates.seed limits %+v, %v: want 0 to %d", lim, err, MaxUpdateSeed)
	}
}
