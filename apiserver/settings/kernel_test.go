package settings

import (
	"reflect"
	"strings"
	"testing"

	"github.com/ballast-os/ballast/contract"
)

func TestKernelPolicy(t *testing.T) {
	for _, tt := range []struct {
		name, body string
		want       contract.KernelPolicy
	}{
		{"nothing", `{}`, contract.KernelPolicy{}},
		{"all", `{"kernel":{"lockdown":"confidentiality","sysctl":{"kernel.kptr_restrict":"2"},"modules":{
			"nls_iso8859-1":{"allowed":false},"tun":{"autoload":true},"both":{"allowed":false,"autoload":true},"x":{"allowed":true}}}}`,
			contract.KernelPolicy{Lockdown: "confidentiality", Sysctl: map[string]string{"kernel.kptr_restrict": "2"},
				Blocked: []string{"both", "nls_iso8859_1"}, Autoload: []string{"tun"}}},
		// Two spellings of one module are one module.
		{"spellings", `{"kernel":{"modules":{"a-b":{"allowed":false},"a_b":{"allowed":false}}}}`,
			contract.KernelPolicy{Blocked: []string{"a_b"}}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			if got := mustDecode(t, tt.body).KernelPolicy(); !reflect.DeepEqual(got, tt.want) {
				t.Errorf("KernelPolicy = %+v, want %+v", got, tt.want)
			}
		})
	}
}

// kernel.modprobe would send the kernel's module requests past the module policy.
func TestModprobeIsNotASetting(t *testing.T) {
	for _, key := range []string{"kernel.modprobe", "kernel/modprobe"} {
		_, err := DecodeJSON(strings.NewReader(`{"kernel":{"sysctl":{"` + key + `":"/tmp/x"}}}`))
		if err == nil || !strings.Contains(err.Error(), "names Ballast's module loader") {
			t.Errorf("%s: %v, want it refused", key, err)
		}
	}
}
