package netconf

import (
	"net/netip"
	"path/filepath"
	"reflect"
	"testing"

	"github.com/ballast-os/ballast/contract"
)

func addrs(s ...string) []netip.Addr {
	var out []netip.Addr
	for _, a := range s {
		out = append(out, netip.MustParseAddr(a))
	}
	return out
}

func TestResolver(t *testing.T) {
	eth0 := leaseNames{Source: "dhcp4 eth0", Servers: addrs("10.0.2.3"), Domain: "qemu.example"}
	eth1 := leaseNames{Source: "dhcp4 eth1", Servers: addrs("192.168.76.53", "10.0.2.3", "192.168.76.54", "192.168.76.55"), Search: []string{"a.example.", "b.example"}}
	v6 := leaseNames{Source: "dhcp6 eth1", Servers: addrs("fd00::53")}
	tests := []struct {
		name   string
		set    contract.NetworkDNS
		leases []leaseNames
		file   string
		state  contract.DNSState
	}{{
		name:  "nothing",
		file:  "# Written by the network service from nothing (no settings.dns, no DHCP lease with name servers); settings.dns overrides DHCP.\n",
		state: contract.DNSState{Servers: []string{}, Search: []string{}, Source: "none"},
	}, {
		name:   "DHCP, interface order, three servers at most, no duplicates",
		leases: []leaseNames{eth0, eth1, v6},
		file: "# Written by the network service from DHCP (dhcp4 eth0, dhcp4 eth1); settings.dns overrides DHCP.\n" +
			"nameserver 10.0.2.3\nnameserver 192.168.76.53\nnameserver 192.168.76.54\nsearch qemu.example a.example b.example\n",
		state: contract.DNSState{Servers: []string{"10.0.2.3", "192.168.76.53", "192.168.76.54"}, Search: []string{"qemu.example", "a.example", "b.example"},
			Source: "dhcp", Sources: []string{"dhcp4 eth0", "dhcp4 eth1"}},
	}, {
		name:   "settings win",
		set:    contract.NetworkDNS{NameServers: []string{"192.0.2.53"}, Search: []string{"corp.example"}},
		leases: []leaseNames{eth0},
		file:   "# Written by the network service from settings; settings.dns overrides DHCP.\nnameserver 192.0.2.53\nsearch corp.example\n",
		state:  contract.DNSState{Servers: []string{"192.0.2.53"}, Search: []string{"corp.example"}, Source: "settings"},
	}, {
		name:   "settings for servers, DHCP for search",
		set:    contract.NetworkDNS{NameServers: []string{"192.0.2.53"}},
		leases: []leaseNames{eth0},
		file:   "# Written by the network service from name servers: settings, search: DHCP (dhcp4 eth0); settings.dns overrides DHCP.\nnameserver 192.0.2.53\nsearch qemu.example\n",
		state:  contract.DNSState{Servers: []string{"192.0.2.53"}, Search: []string{"qemu.example"}, Source: "settings+dhcp", Sources: []string{"dhcp4 eth0"}},
	}}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			file, st := resolver(tt.set, tt.leases)
			if file != tt.file {
				t.Errorf("file:\n%s\nwant:\n%s", file, tt.file)
			}
			if !reflect.DeepEqual(st, tt.state) {
				t.Errorf("state %+v, want %+v", st, tt.state)
			}
		})
	}
}

// TestHostnamePrecedence: settings, then DHCP (interface order), then metadata, then the default.
func TestHostnamePrecedence(t *testing.T) {
	dhcp := []leaseNames{{Source: "dhcp4 eth0"}, {Source: "dhcp4 eth1", Hostname: "from-dhcp"}, {Source: "dhcp6 eth1", Hostname: "later"}}
	bad := []leaseNames{{Source: "dhcp4 eth0", Hostname: "not valid!"}, {Source: "dhcp4 eth1", Hostname: "-x"}}
	tests := []struct {
		name     string
		settings string
		leases   []leaseNames
		metadata string
		want     contract.HostnameState
	}{
		{"settings first", "node-1", dhcp, "meta", contract.HostnameState{Name: "node-1", Source: "settings"}},
		{"then DHCP", "", dhcp, "meta", contract.HostnameState{Name: "from-dhcp", Source: "dhcp4 eth1"}},
		{"invalid DHCP names skipped", "", bad, "meta", contract.HostnameState{Name: "meta", Source: "metadata"}},
		{"then metadata", "", nil, "ip-10-0-0-1.ec2.internal", contract.HostnameState{Name: "ip-10-0-0-1.ec2.internal", Source: "metadata"}},
		{"then the default", "", nil, "", contract.HostnameState{Name: "ballast", Source: "default"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := hostname(tt.settings, tt.leases, tt.metadata, "ballast"); got != tt.want {
				t.Fatalf("hostname = %+v, want %+v", got, tt.want)
			}
		})
	}
}

// TestApplyHostname: a name from settings always goes in; any other replaces only the default or
// a name the service set itself.
func TestApplyHostname(t *testing.T) {
	kernel := "ballast"
	var set []string
	m := New(Options{DefaultHostname: "ballast", Console: testConsole(t),
		GetHostname: func() (string, error) { return kernel, nil },
		SetHostname: func(n string) error { kernel = n; set = append(set, n); return nil }})
	m.applyHostname(contract.HostnameState{Name: "from-dhcp", Source: "dhcp4 eth0"})
	m.applyHostname(contract.HostnameState{Name: "other-dhcp", Source: "dhcp4 eth1"})
	kernel = "set-by-the-apiserver"
	m.applyHostname(contract.HostnameState{Name: "from-dhcp", Source: "dhcp4 eth0"})
	m.applyHostname(contract.HostnameState{Name: "node-7", Source: "settings"})
	m.applyHostname(contract.HostnameState{Name: "node-7", Source: "settings"})
	if want := []string{"from-dhcp", "other-dhcp", "node-7"}; !reflect.DeepEqual(set, want) {
		t.Fatalf("sethostname calls %q, want %q", set, want)
	}
}

// TestTakeOverHostname: a restarted service may change the name its predecessor set (here back
// to the default when the lease that named the host is gone), not a name someone else set.
func TestTakeOverHostname(t *testing.T) {
	dir := t.TempDir()
	kernel := "from-dhcp"
	m := New(Options{StateDir: dir, DefaultHostname: "ballast", Console: testConsole(t),
		GetHostname: func() (string, error) { return kernel, nil },
		SetHostname: func(n string) error { kernel = n; return nil }})
	if err := writeFile(filepath.Join(dir, "state.json"), []byte(`{"hostname":{"name":"from-dhcp","source":"dhcp4 eth1"}}`)); err != nil {
		t.Fatal(err)
	}
	m.takeOver()
	m.applyHostname(contract.HostnameState{Name: "ballast", Source: contract.SourceDefault})
	if kernel != "ballast" {
		t.Fatalf("host name %q after the take-over, want the default back", kernel)
	}
	kernel = "by-hand"
	m.applyHostname(contract.HostnameState{Name: "other", Source: "dhcp4 eth0"})
	if kernel != "by-hand" {
		t.Fatalf("a name set by someone else was replaced by %q", kernel)
	}
}
