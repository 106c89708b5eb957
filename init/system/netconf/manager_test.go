package netconf

import (
	"context"
	"encoding/json"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/vishvananda/netlink"

	"github.com/ballast-os/ballast/contract"
	"github.com/ballast-os/ballast/init/console"
	"github.com/ballast-os/ballast/init/system/netconf/link"
	"github.com/ballast-os/ballast/tests/nettest"
	"github.com/ballast-os/ballast/tests/testutil"
)

func testConsole(t *testing.T) *console.Writer {
	return &console.Writer{Out: &testutil.Buffer{}, Uptime: func() float64 { return 0 }}
}

// fakeHost is the kernel's host name, which the test must not change: the UTS namespace is the
// host's.
type fakeHost struct {
	mu   sync.Mutex
	name string
}

func (h *fakeHost) get() (string, error) { h.mu.Lock(); defer h.mu.Unlock(); return h.name, nil }
func (h *fakeHost) set(n string) error   { h.mu.Lock(); defer h.mu.Unlock(); h.name = n; return nil }

// TestManager runs the service in a network namespace of its own against a DHCP server in
// another: a lease and its renewal on one veth, static addresses, a route and the MTU on another
// matched by MAC, resolv.conf and the host name from DHCP, then from settings after a change of
// the configuration file, a restart that resumes the lease with a REQUEST, and the loss and
// return of the link's carrier.
func TestManager(t *testing.T) {
	if !nettest.InNewNetns(t) {
		return
	}
	peer := nettest.NewNetns(t)
	c0 := peer.Veth(t, "c0", "s0", "192.168.50.1/24")
	c1 := peer.Veth(t, "c1", "s1", "192.168.60.1/24")
	srv := &nettest.DHCPv4Server{ServerIP: netip.MustParseAddr("192.168.50.1"), First: netip.MustParseAddr("192.168.50.10"), Bits: 24,
		LeaseTime: 6 * time.Second, T1: 2 * time.Second, Routers: addrs("192.168.50.1"), DNS: addrs("192.168.50.53"),
		Hostname: "from-dhcp", Domain: "lab.example"}
	srv.Start(t, peer, "s0")

	dir := t.TempDir()
	cfgPath := filepath.Join(dir, "etc/ballast/network.json")
	writeConfig := func(c string) {
		t.Helper()
		if err := writeFile(cfgPath, []byte(c)); err != nil {
			t.Fatal(err)
		}
	}
	mac1 := c1.Attrs().HardwareAddr.String()
	writeConfig(`{"interfaces":[{"key":"c0","dhcp4":true,"dhcp6":true},
		{"key":"lan","mac":"` + strings.ToUpper(mac1) + `","dhcp4":false,"dhcp6":false,"addresses":["192.168.60.10/24"],
		 "routes":[{"to":"10.60.0.0/16","via":"192.168.60.1"}],"mtu":1400}]}`)
	host := &fakeHost{name: "ballast"}
	out := &testutil.Buffer{}
	opts := Options{
		ConfigPath: cfgPath, StateDir: filepath.Join(dir, "run"), ResolvConf: filepath.Join(dir, "etc/resolv.conf"),
		HostnameFile: filepath.Join(dir, "etc/hostname"), MetadataHostname: filepath.Join(dir, "run/metadata-hostname"),
		ProcSys: "/proc/sys", DefaultHostname: "ballast", SetHostname: host.set, GetHostname: host.get,
		// Changes are announced with Reload (SIGHUP), which the test then knows it relies on; the
		// image test sees the polling pick up the file the apiserver renders at boot.
		ConfigPoll: time.Hour, Console: &console.Writer{Out: out, Uptime: func() float64 { return 0 }},
	}
	var m *Manager
	start := func() func() {
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan error, 1)
		m = New(opts)
		go func() { done <- m.Run(ctx) }()
		return func() {
			cancel()
			if err := <-done; err != nil {
				t.Errorf("Run: %v", err)
			}
		}
	}
	stop := start()
	defer func() { stop() }()
	// The DHCPv6 server answers from its link-local address, which s0 has once the service has
	// brought c0 up (a veth has carrier with both ends up) and duplicate address detection is done;
	// the client's first Solicits meanwhile go unanswered, as on a slow network.
	peer.WaitLinkLocal(t, "s0")
	srv6 := &nettest.DHCPv6Server{Addr: netip.MustParseAddr("fd00:50::10"), Preferred: time.Minute, Valid: 2 * time.Minute,
		DNS: addrs("fd00:50::53"), ServerHW: net.HardwareAddr{2, 0, 0, 0, 0, 1}}
	srv6.Start(t, peer, "s0")

	state := func() contract.NetworkState { return readState(filepath.Join(opts.StateDir, "state.json")) }
	iface := func(st contract.NetworkState, name string) contract.InterfaceState {
		for _, i := range st.Interfaces {
			if i.Name == name {
				return i
			}
		}
		return contract.InterfaceState{}
	}
	hasAddr := func(i contract.InterfaceState, a, source string) bool {
		return slices.ContainsFunc(i.Addresses, func(x contract.AddressState) bool { return x.Address == a && x.Source == source })
	}
	hasRoute := func(st contract.NetworkState, r contract.RouteState) bool {
		return slices.ContainsFunc(st.Routes, func(x contract.RouteState) bool {
			return x.To == r.To && x.Via == r.Via && x.Interface == r.Interface && x.Protocol == r.Protocol
		})
	}
	waitFor := func(what string, d time.Duration, ok func(contract.NetworkState) bool) contract.NetworkState {
		t.Helper()
		deadline := time.Now().Add(d)
		for {
			st := state()
			if ok(st) {
				return st
			}
			if time.Now().After(deadline) {
				b, _ := json.MarshalIndent(st, "", "  ")
				t.Fatalf("no %s within %s; state:\n%s\nconsole:\n%s\nserver got: %v", what, d, b, out, srv.Received())
			}
			time.Sleep(100 * time.Millisecond)
		}
	}
	resolv := func() string { b, _ := os.ReadFile(opts.ResolvConf); return string(b) }

	// DHCP on c0; static addresses, route and MTU on c1, matched by its MAC.
	st := waitFor("lease and static configuration", 15*time.Second, func(st contract.NetworkState) bool {
		i0, i1 := iface(st, "c0"), iface(st, "c1")
		return i0.DHCP4 != nil && i0.DHCP4.State == contract.DHCPBound && hasAddr(i0, "192.168.50.10/24", "dhcp4") &&
			i0.DHCP6 != nil && i0.DHCP6.State == contract.DHCPBound && hasAddr(i0, "fd00:50::10/128", "dhcp6") &&
			hasAddr(i1, "192.168.60.10/24", "static") && i1.MTU == 1400 && st.Hostname.Name == "from-dhcp"
	})
	i1 := iface(st, "c1")
	if i1.Config != "settings.network.interfaces.lan" || iface(st, "c0").Config != "settings.network.interfaces.c0" {
		t.Errorf("configs: c0 %q, c1 %q", iface(st, "c0").Config, i1.Config)
	}
	for _, r := range []contract.RouteState{
		{To: "10.60.0.0/16", Via: "192.168.60.1", Interface: "c1", Protocol: "static"},
		{To: "default", Via: "192.168.50.1", Interface: "c0", Protocol: "dhcp"},
	} {
		if !hasRoute(st, r) {
			t.Errorf("no route %+v in %+v", r, st.Routes)
		}
	}
	if st.Hostname.Source != "dhcp4 c0" || !strings.Contains(resolv(), "nameserver 192.168.50.53\nnameserver fd00:50::53\nsearch lab.example\n") ||
		st.DNS.Source != "dhcp" || !slices.Equal(st.DNS.Sources, []string{"dhcp4 c0", "dhcp6 c0"}) {
		t.Errorf("hostname %+v, dns %+v, resolv.conf:\n%s", st.Hostname, st.DNS, resolv())
	}
	if h, _ := host.get(); h != "from-dhcp" {
		t.Errorf("kernel host name %q", h)
	}
	if b, _ := os.ReadFile(opts.HostnameFile); string(b) != "from-dhcp\n" {
		t.Errorf("/etc/hostname %q", b)
	}
	first := iface(st, "c0").DHCP4

	// Renewed at T1 (2 s): the same address, a later expiry.
	st = waitFor("renewal", 6*time.Second, func(st contract.NetworkState) bool {
		l := iface(st, "c0").DHCP4
		return l != nil && l.Renewals >= 1 && l.Expires.After(*first.Expires)
	})
	if !slices.ContainsFunc(srv.Received(), func(r nettest.Received) bool { return r.Kind == "REQUEST(renewing)" && r.Unicast }) {
		t.Errorf("the server saw no unicast renewal: %v", srv.Received())
	}

	// A new configuration: DNS and the host name from settings, another MTU and route on c1.
	writeConfig(`{"interfaces":[{"key":"c0","dhcp4":true,"dhcp6":true},
		{"key":"lan","mac":"` + mac1 + `","dhcp4":false,"dhcp6":false,"addresses":["192.168.60.10/24"],
		 "routes":[{"to":"10.61.0.0/16","via":"192.168.60.1","metric":5}],"mtu":1280}],
		"dns":{"name_servers":["192.0.2.53"],"search":["corp.example"]},"hostname":"node-7"}`)
	m.Reload()
	st = waitFor("new configuration", 5*time.Second, func(st contract.NetworkState) bool {
		return iface(st, "c1").MTU == 1280 && st.DNS.Source == "settings" && st.Hostname.Name == "node-7" &&
			hasRoute(st, contract.RouteState{To: "10.61.0.0/16", Via: "192.168.60.1", Interface: "c1", Protocol: "static"})
	})
	if hasRoute(st, contract.RouteState{To: "10.60.0.0/16", Via: "192.168.60.1", Interface: "c1", Protocol: "static"}) {
		t.Errorf("the old static route stayed: %+v", st.Routes)
	}
	if r := resolv(); !strings.Contains(r, "nameserver 192.0.2.53\nsearch corp.example\n") || strings.Contains(r, "192.168.50.53") {
		t.Errorf("resolv.conf after settings.dns:\n%s", r)
	}
	// A broken file is reported and changes nothing; the next restart reads the good one again.
	good, err := os.ReadFile(cfgPath)
	if err != nil {
		t.Fatal(err)
	}
	writeConfig(`{"interfaces":[{"key":"c0","mtu":"big"}]}`)
	m.Reload()
	for deadline := time.Now().Add(5 * time.Second); !strings.Contains(out.String(), "keeping the configuration in effect"); time.Sleep(50 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("no console error for a broken configuration:\n%s", out)
		}
	}
	if !strings.Contains(out.String(), "ballast: error: network: "+cfgPath+": json: cannot unmarshal string") {
		t.Errorf("the error does not name the file and the problem:\n%s", out)
	}
	if st := state(); iface(st, "c1").MTU != 1280 || !bound(iface(st, "c0")) {
		t.Errorf("a broken configuration changed the network: %+v", st)
	}
	writeConfig(string(good))

	// A restart keeps the address and resumes the lease with an INIT-REBOOT REQUEST.
	stop()
	restartAt := time.Now()
	if !hasLinkAddr(t, c0, "192.168.50.10/24") {
		t.Fatalf("c0 lost its address when the service stopped")
	}
	stop = start()
	waitFor("resumed lease", 10*time.Second, func(st contract.NetworkState) bool {
		l := iface(st, "c0").DHCP4
		return l != nil && l.State == contract.DHCPBound && l.Acquired.After(restartAt)
	})
	for _, r := range srv.Received() {
		if r.At.After(restartAt) && r.Kind != "REQUEST(init-reboot)" && r.Kind != "REQUEST(renewing)" {
			t.Errorf("after the restart the server got %v; want the lease resumed, not a new one", r)
		}
	}
	if !slices.ContainsFunc(srv.Received(), func(r nettest.Received) bool {
		return r.At.After(restartAt) && r.Kind == "REQUEST(init-reboot)" && r.Requested == netip.MustParseAddr("192.168.50.10")
	}) {
		t.Errorf("no INIT-REBOOT REQUEST for the lease after the restart: %v", srv.Received())
	}

	// The peer's end goes down: no carrier, the lease kept; back up: confirmed again.
	s0, err := peer.NL.LinkByName("s0")
	if err != nil {
		t.Fatal(err)
	}
	if err := peer.NL.LinkSetDown(s0); err != nil {
		t.Fatal(err)
	}
	waitFor("carrier loss", 5*time.Second, func(st contract.NetworkState) bool {
		i := iface(st, "c0")
		return !i.Carrier && i.DHCP4 != nil && i.DHCP4.State == contract.DHCPLinkDown && hasAddr(i, "192.168.50.10/24", "dhcp4")
	})
	downAt := time.Now()
	if err := peer.NL.LinkSetUp(s0); err != nil {
		t.Fatal(err)
	}
	waitFor("carrier's return", 10*time.Second, func(st contract.NetworkState) bool {
		i := iface(st, "c0")
		return i.Carrier && i.DHCP4 != nil && i.DHCP4.State == contract.DHCPBound && i.DHCP4.Acquired.After(downAt)
	})
	if !slices.ContainsFunc(srv.Received(), func(r nettest.Received) bool { return r.At.After(downAt) && r.Kind == "REQUEST(init-reboot)" }) {
		t.Errorf("no INIT-REBOOT after the link came back: %v", srv.Received())
	}
	for _, want := range []string{"ballast: network c0 dhcp4 192.168.50.10/24 from 192.168.50.1", "ballast: network c0 dhcp4 renewed 192.168.50.10/24",
		"ballast: network c0 link down", "ballast: network c0 link up", "ballast: network hostname node-7 (settings)",
		"ballast: network c1 configured (settings.network.interfaces.lan)"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("console lacks %q:\n%s", want, out)
		}
	}
}

func bound(i contract.InterfaceState) bool {
	return i.DHCP4 != nil && i.DHCP4.State == contract.DHCPBound
}

func hasLinkAddr(t *testing.T, l netlink.Link, want string) bool {
	as, err := link.Addresses(link.FromNetlink(l))
	if err != nil {
		t.Fatal(err)
	}
	return slices.ContainsFunc(as, func(a link.AddrInfo) bool { return a.Prefix.String() == want })
}
