package netconf

import (
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/ballast-os/ballast/contract"
	"github.com/ballast-os/ballast/init/system/netconf/link"
)

func TestMatch(t *testing.T) {
	mac := func(s string) net.HardwareAddr { m, _ := net.ParseMAC(s); return m }
	cfg := contract.NetworkConfig{Interfaces: []contract.NetworkInterface{
		{Key: "eth0", DHCP6: true},
		// A MAC entry is matched by its MAC only; its key is a label, even when it names a link.
		{Key: "eth1", MAC: "52:54:00:00:00:aa", Addresses: []string{"10.0.0.2/24"}},
		{Key: "lan", MAC: "52:54:00:00:00:bb"},
		{Key: "br-ext"},
	}}
	tests := []struct {
		name  string
		link  link.Link
		label string // "" for not managed
		key   string
	}{
		{"by name", link.Link{Name: "eth0", MAC: mac("52:54:00:00:00:01"), Ethernet: true}, "settings.network.interfaces.eth0", "eth0"},
		{"by MAC, any name", link.Link{Name: "enp0s3", MAC: mac("52:54:00:00:00:BB"), Ethernet: true}, "settings.network.interfaces.lan", "lan"},
		{"MAC beats name", link.Link{Name: "eth0", MAC: mac("52:54:00:00:00:aa"), Ethernet: true}, "settings.network.interfaces.eth1", "eth1"},
		{"MAC entry's key is not a name", link.Link{Name: "eth1", MAC: mac("52:54:00:00:00:02"), Ethernet: true}, "default", ""},
		{"Ethernet default", link.Link{Name: "eth7", MAC: mac("52:54:00:00:00:07"), Ethernet: true}, "default", ""},
		{"not Ethernet, not named", link.Link{Name: "veth1", MAC: mac("52:54:00:00:00:08")}, "", ""},
		{"not Ethernet, named", link.Link{Name: "br-ext", MAC: mac("52:54:00:00:00:09")}, "settings.network.interfaces.br-ext", "br-ext"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, label, ok := match(cfg, tt.link)
			if label != tt.label || ok != (tt.label != "") || got.Key != tt.key {
				t.Fatalf("match = %+v %q %v, want %q %q", got, label, ok, tt.key, tt.label)
			}
			if label == "default" && !reflect.DeepEqual(got, contract.DefaultInterface()) {
				t.Fatalf("default = %+v", got)
			}
		})
	}
}

func TestReadConfig(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "network.json")
	if c, b, err := readConfig(path); err != nil || b != nil || !reflect.DeepEqual(c, contract.NetworkConfig{}) {
		t.Fatalf("missing file: %+v %q %v", c, b, err)
	}
	tests := []struct{ body, err string }{
		{`{"interfaces":[{"key":"eth0","dhcp4":true,"dhcp6":false,"addresses":["10.0.0.2/24"],"routes":[{"to":"default","via":"10.0.0.1"}]}],"dns":{"name_servers":["10.0.0.53"]},"hostname":"h"}`, ""},
		{`{"interfaces":[{"key":"eth0","adresses":[]}]}`, `unknown field "adresses"`},
		{`{"interfaces":[{"key":"eth0","addresses":["10.0.0.2"]}]}`, `interfaces.eth0: address "10.0.0.2"`},
		{`{"interfaces":[{"key":"eth0","routes":[{"to":"x"}]}]}`, `interfaces.eth0: route to "x"`},
		{`{"interfaces":[{"key":"eth0","gateway":"g"}]}`, `interfaces.eth0: gateway "g"`},
		{`{"dns":{"name_servers":["dns.example"]}}`, `dns: name server "dns.example"`},
		{`{"interfaces":`, "unexpected EOF"},
	}
	for _, tt := range tests {
		os.WriteFile(path, []byte(tt.body), 0o644)
		_, b, err := readConfig(path)
		if tt.err == "" {
			if err != nil || string(b) != tt.body {
				t.Errorf("%s: %v", tt.body, err)
			}
			continue
		}
		if err == nil || !strings.Contains(err.Error(), tt.err) || !strings.Contains(err.Error(), path) {
			t.Errorf("%s: error %v, want %q naming the file", tt.body, err, tt.err)
		}
	}
}

func TestStaticRoutes(t *testing.T) {
	m := uint32(7)
	got := staticRoutes(contract.NetworkInterface{
		Gateway: "192.168.1.1",
		Routes: []contract.NetworkRoute{
			{To: "10.0.0.0/8", Via: "192.168.1.2", Metric: &m},
			{To: "default", Via: "fd00::1"},
			{To: "172.16.0.0/12"},
		},
	}, 3)
	want := []link.Route{
		{To: netip.MustParsePrefix("0.0.0.0/0"), Via: netip.MustParseAddr("192.168.1.1"), Index: 3, Protocol: link.ProtoStatic},
		{To: netip.MustParsePrefix("10.0.0.0/8"), Via: netip.MustParseAddr("192.168.1.2"), Index: 3, Metric: 7, Protocol: link.ProtoStatic},
		{To: netip.MustParsePrefix("::/0"), Via: netip.MustParseAddr("fd00::1"), Index: 3, Protocol: link.ProtoStatic},
		{To: netip.MustParsePrefix("172.16.0.0/12"), Index: 3, Protocol: link.ProtoStatic},
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("staticRoutes =\n%+v\nwant\n%+v", got, want)
	}
}
