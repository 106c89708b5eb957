package settings

import (
	"encoding/base64"
	"encoding/json"
	"errors"
	"reflect"
	"regexp"
	"strings"
	"testing"
	"time"
)

// TestKubernetesValidation runs each settings.kubernetes key's rules through DecodeJSON (and the
// rules between keys through ValidateLive): a good value survives the trip through its JSON form,
// a bad one fails at its key.
func TestKubernetesValidation(t *testing.T) {
	cert, _ := testPEM(t)
	bundle := base64.StdEncoding.EncodeToString([]byte(cert))
	k := func(body string) string { return `{"kubernetes":` + body + `}` }
	const pre = "settings.kubernetes."
	tests := []struct {
		name    string
		body    string
		wantKey string // "" for success
		wantErr string
	}{
		{"api-server", k(`{"api-server":"https://10.0.2.100:6443"}`), "", ""},
		{"api-server with path", k(`{"api-server":"https://lb.example/k8s"}`), "", ""},
		{"api-server http", k(`{"api-server":"http://10.0.2.100:6443"}`), pre + "api-server", "want https://host"},
		{"api-server no host", k(`{"api-server":"https:///x"}`), pre + "api-server", "want https://host"},
		{"api-server user", k(`{"api-server":"https://a:b@h.example"}`), pre + "api-server", "no user, query or fragment"},
		{"api-server port", k(`{"api-server":"https://h.example:70000"}`), pre + "api-server", "not 1-65535"},
		{"api-server space", k(`{"api-server":"https://h.example/a b"}`), pre + "api-server", "spaces"},
		{"cluster-name", k(`{"cluster-name":"prod-1.eu"}`), "", ""},
		{"cluster-name bad", k(`{"cluster-name":"-x"}`), pre + "cluster-name", "not a cluster name"},
		{"cluster-name long", k(`{"cluster-name":"` + strings.Repeat("a", 101) + `"}`), pre + "cluster-name", "not a cluster name"},
		{"cluster-certificate", k(`{"cluster-certificate":"` + bundle + `"}`), "", ""},
		{"cluster-certificate raw PEM", k(`{"cluster-certificate":` + js(cert) + `}`), pre + "cluster-certificate", "not base64"},
		{"cluster-certificate not a cert", k(`{"cluster-certificate":"` + base64.StdEncoding.EncodeToString([]byte("hello")) + `"}`), pre + "cluster-certificate", "not PEM"},
		{"bootstrap-token", k(`{"bootstrap-token":"abcdef.0123456789abcdef"}`), "", ""},
		{"bootstrap-token upper", k(`{"bootstrap-token":"ABCDEF.0123456789abcdef"}`), pre + "bootstrap-token", "not a bootstrap token"},
		{"bootstrap-token short", k(`{"bootstrap-token":"abcdef.0123"}`), pre + "bootstrap-token", "not a bootstrap token"},
		{"cluster-dns-ip single", k(`{"cluster-dns-ip":"10.96.0.10"}`), "", ""},
		{"cluster-dns-ip list", k(`{"cluster-dns-ip":["10.96.0.10","fd00::a"]}`), "", ""},
		{"cluster-dns-ip bad", k(`{"cluster-dns-ip":"10.96.0.300"}`), pre + "cluster-dns-ip", "not an IP address"},
		{"cluster-dns-ip bad item", k(`{"cluster-dns-ip":["10.96.0.10","x"]}`), pre + "cluster-dns-ip", `item 2: "x" is not an IP address`},
		{"cluster-dns-ip too many", k(`{"cluster-dns-ip":["10.0.0.1","10.0.0.2","10.0.0.3","10.0.0.4"]}`), pre + "cluster-dns-ip", "more than the 3 allowed"},
		{"cluster-dns-ip number", k(`{"cluster-dns-ip":5}`), pre + "cluster-dns-ip", "expected an address or a list"},
		{"cluster-domain", k(`{"cluster-domain":"k8s.internal"}`), "", ""},
		{"cluster-domain bad", k(`{"cluster-domain":"a..b"}`), pre + "cluster-domain", "empty"},
		{"node-labels", k(`{"node-labels":{"example.com/role":"edge","tier":"","node.kubernetes.io/pool":"a","kubernetes.io/arch":"amd64"}}`), "", ""},
		{"node-labels bad key", k(`{"node-labels":{"Example.com/role":"x"}}`), pre + `node-labels."Example.com/role"`, "upper case"},
		{"node-labels bad name", k(`{"node-labels":{"role-":"x"}}`), pre + "node-labels.role-", "is not 1-63"},
		{"node-labels bad value", k(`{"node-labels":{"role":"a b"}}`), pre + "node-labels.role", "not a label value"},
		{"node-labels long value", k(`{"node-labels":{"role":"` + strings.Repeat("a", 64) + `"}}`), pre + "node-labels.role", "not a label value"},
		{"node-labels reserved", k(`{"node-labels":{"node-role.kubernetes.io/master":""}}`), pre + `node-labels."node-role.kubernetes.io/master"`, "where a kubelet may set only"},
		{"node-labels k8s.io", k(`{"node-labels":{"k8s.io/x":"y"}}`), pre + `node-labels."k8s.io/x"`, "where a kubelet may set only"},
		{"node-taints", k(`{"node-taints":{"dedicated":["gpu:NoSchedule","gpu:NoExecute"],"example.com/spot":[":PreferNoSchedule"]}}`), "", ""},
		{"node-taints bad effect", k(`{"node-taints":{"dedicated":["gpu:NoRun"]}}`), pre + "node-taints.dedicated", `effect "NoRun" is not one of`},
		{"node-taints no effect", k(`{"node-taints":{"dedicated":["gpu"]}}`), pre + "node-taints.dedicated", "not value:Effect"},
		{"node-taints bad value", k(`{"node-taints":{"dedicated":["g p:NoSchedule"]}}`), pre + "node-taints.dedicated", "value:"},
		{"node-taints empty", k(`{"node-taints":{"dedicated":[]}}`), pre + "node-taints.dedicated", "at least one"},
		{"node-taints bad key", k(`{"node-taints":{"a/b/c":["x:NoSchedule"]}}`), pre + "node-taints.a/b/c", "is not 1-63"},
		{"max-pods", k(`{"max-pods":250}`), "", ""},
		{"max-pods zero", k(`{"max-pods":0}`), pre + "max-pods", "not in the range 1 to 10000"},
		{"max-pods string", k(`{"max-pods":"250"}`), pre + "max-pods", "expected integer"},
		{"pod-pids-limit", k(`{"pod-pids-limit":1024}`), "", ""},
		{"pod-pids-limit too low", k(`{"pod-pids-limit":8}`), pre + "pod-pids-limit", "not in the range 16 to 4194304"},
		{"eviction-hard", k(`{"eviction-hard":{"memory.available":"100Mi","nodefs.available":"10%","nodefs.inodesFree":"5.5%","pid.available":"1000"}}`), "", ""},
		{"eviction-hard bad signal", k(`{"eviction-hard":{"memory.free":"100Mi"}}`), pre + `eviction-hard."memory.free"`, "is not one of"},
		{"eviction-hard percent high", k(`{"eviction-hard":{"memory.available":"101%"}}`), pre + `eviction-hard."memory.available"`, "not a percentage"},
		{"eviction-hard percent zero", k(`{"eviction-hard":{"memory.available":"0%"}}`), pre + `eviction-hard."memory.available"`, "not a percentage"},
		{"eviction-hard bad quantity", k(`{"eviction-hard":{"memory.available":"100MB"}}`), pre + `eviction-hard."memory.available"`, "neither a percentage nor a quantity"},
		{"eviction-hard negative", k(`{"eviction-hard":{"memory.available":"-1Gi"}}`), pre + `eviction-hard."memory.available"`, "neither a percentage nor a quantity"},
		{"kube-reserved", k(`{"kube-reserved":{"cpu":"100m","memory":"256Mi","ephemeral-storage":"1Gi"}}`), "", ""},
		{"system-reserved decimal", k(`{"system-reserved":{"cpu":"0.5","memory":"1e9"}}`), "", ""},
		{"kube-reserved bad cpu", k(`{"kube-reserved":{"cpu":"100 m"}}`), pre + "kube-reserved.cpu", "not a quantity"},
		{"kube-reserved bad memory", k(`{"kube-reserved":{"memory":"1GB"}}`), pre + "kube-reserved.memory", "not a quantity"},
		{"kube-reserved unknown", k(`{"kube-reserved":{"gpu":"1"}}`), pre + "kube-reserved.gpu", "unknown key"},
		{"provider-id", k(`{"provider-id":"aws:///us-east-1a/i-0123456789abcdef0"}`), "", ""},
		{"provider-id bad", k(`{"provider-id":"i-0123"}`), pre + "provider-id", "not a provider ID"},
		{"cloud-provider", k(`{"cloud-provider":"external"}`), "", ""},
		{"cloud-provider aws", k(`{"cloud-provider":"aws"}`), pre + "cloud-provider", "not one of external"},
		{"hostname-override", k(`{"hostname-override":"ip-10-0-0-1.ec2.internal"}`), "", ""},
		{"hostname-override upper", k(`{"hostname-override":"Node1"}`), pre + "hostname-override", "upper case"},
		{"node-ip", k(`{"node-ip":"10.0.2.15"}`), "", ""},
		{"node-ip bad", k(`{"node-ip":"10.0.2"}`), pre + "node-ip", "not an IP address"},
		{"shutdown grace", k(`{"shutdown-grace-period":"1m30s","shutdown-grace-period-for-critical-pods":"0s"}`), "", ""},
		{"shutdown grace bad", k(`{"shutdown-grace-period":"30"}`), pre + "shutdown-grace-period", "not a duration"},
		{"shutdown grace negative", k(`{"shutdown-grace-period":"-5s"}`), pre + "shutdown-grace-period", "between 0s and 1m30s"},
		{"shutdown grace long", k(`{"shutdown-grace-period":"91s"}`), pre + "shutdown-grace-period", "between 0s and 1m30s"},
		{"shutdown grace fraction", k(`{"shutdown-grace-period":"1.5s"}`), pre + "shutdown-grace-period", "whole number of seconds"},
		{"gvisor", k(`{"runtime-classes":{"gvisor":true}}`), "", ""},
		{"gvisor string", k(`{"runtime-classes":{"gvisor":"yes"}}`), pre + "runtime-classes.gvisor", "expected boolean"},
		{"runtime class unknown", k(`{"runtime-classes":{"kata":true}}`), pre + "runtime-classes.kata", "unknown key"},
		{"default-cni", k(`{"default-cni":{"enabled":false,"subnet":"10.244.1.0/24"}}`), "", ""},
		{"default-cni host bits", k(`{"default-cni":{"subnet":"10.244.1.1/24"}}`), pre + "default-cni.subnet", "host bits"},
		{"unknown key", k(`{"apiserver":"https://x"}`), pre + "apiserver", "unknown key"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, err := DecodeJSON(strings.NewReader(tt.body))
			if err == nil {
				err = s.ValidateLive()
			}
			if tt.wantErr == "" {
				if err != nil {
					t.Fatalf("DecodeJSON: %v", err)
				}
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
			var ke *KeyError
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) || !errors.As(err, &ke) || ke.Key() != tt.wantKey {
				t.Fatalf("error = %v, want key %s and %q", err, tt.wantKey, tt.wantErr)
			}
		})
	}
}

// A token in an error would end up in logs and API answers.
func TestBootstrapTokenErrorHidesValue(t *testing.T) {
	const tok = "abcdef.0123456789ABCDEF"
	_, err := DecodeJSON(strings.NewReader(`{"kubernetes":{"bootstrap-token":"` + tok + `"}}`))
	if err == nil || strings.Contains(err.Error(), "0123456789") {
		t.Fatalf("error = %v: want a refusal that does not repeat the token", err)
	}
	red := Redact(mustDecode(t, `{"kubernetes":{"bootstrap-token":"abcdef.0123456789abcdef"}}`))
	if got := string(*red.Kubernetes.BootstrapToken); got != Redacted {
		t.Errorf("redacted token = %q", got)
	}
}

func TestShutdownGracePeriods(t *testing.T) {
	tests := []struct {
		body            string
		grace, critical time.Duration
		wantKey         string
	}{
		{`{}`, 30 * time.Second, 10 * time.Second, ""},
		{`{"kubernetes":{"shutdown-grace-period":"80s"}}`, 80 * time.Second, 10 * time.Second, ""},
		{`{"kubernetes":{"shutdown-grace-period":"5s"}}`, 5 * time.Second, 5 * time.Second, ""},
		{`{"kubernetes":{"shutdown-grace-period":"0s"}}`, 0, 0, ""},
		{`{"kubernetes":{"shutdown-grace-period":"1m","shutdown-grace-period-for-critical-pods":"20s"}}`, time.Minute, 20 * time.Second, ""},
		{`{"kubernetes":{"shutdown-grace-period-for-critical-pods":"40s"}}`, 0, 0, "settings.kubernetes.shutdown-grace-period-for-critical-pods"},
		{`{"kubernetes":{"shutdown-grace-period":"5s","shutdown-grace-period-for-critical-pods":"6s"}}`, 0, 0, "settings.kubernetes.shutdown-grace-period-for-critical-pods"},
	}
	for _, tt := range tests {
		s := mustDecode(t, tt.body)
		err := s.ValidateLive()
		if tt.wantKey != "" {
			var ke *KeyError
			if !errors.As(err, &ke) || ke.Key() != tt.wantKey {
				t.Errorf("%s: ValidateLive = %v, want an error at %s", tt.body, err, tt.wantKey)
			}
			continue
		}
		if err != nil {
			t.Errorf("%s: ValidateLive: %v", tt.body, err)
		}
		g, c := s.Kubernetes.ShutdownGracePeriods()
		if g != tt.grace || c != tt.critical {
			t.Errorf("%s: periods %s, %s; want %s, %s", tt.body, g, c, tt.grace, tt.critical)
		}
	}
}

// The schema's patterns accept what the model accepts.
func TestKubernetesPatterns(t *testing.T) {
	for _, tc := range []struct {
		pattern string
		check   func(string) error
		values  []string
	}{
		{Taint("").describe().schema["pattern"].(string), func(s string) error { return Taint(s).check() },
			[]string{"a:NoSchedule", ":NoExecute", "a.b-c_d:PreferNoSchedule", "a", "a:", "a b:NoSchedule", "a:noschedule"}},
		{quantityRe.String(), func(s string) error { return Quantity(s).check() },
			[]string{"1", "100m", "1.5", ".5", "256Mi", "1e3", "1E-3", "2G", "-1", "1MB", "m", ""}},
		{GraceDuration("").describe().schema["pattern"].(string), func(s string) error { return GraceDuration(s).check() },
			[]string{"30s", "1m30s", "1h", "0s", "30", "1.5s", "-1s"}},
	} {
		re := regexp.MustCompile(tc.pattern)
		for _, v := range tc.values {
			// The pattern may be looser than the model (ranges), never stricter.
			if tc.check(v) == nil && !re.MatchString(v) {
				t.Errorf("%q: the model accepts it, pattern %s does not", v, tc.pattern)
			}
		}
	}
}
