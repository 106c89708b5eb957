package image

import (
	"context"
	"encoding/json"
	"fmt"
	"net/netip"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/ballast-os/ballast/apiserver/apitypes"
	"github.com/ballast-os/ballast/apiserver/client"
	"github.com/ballast-os/ballast/apiserver/settings"
	"github.com/ballast-os/ballast/contract"
	"github.com/ballast-os/ballast/tests/nettest"
	"github.com/ballast-os/ballast/tests/qemu"
	"github.com/ballast-os/ballast/tests/testutil"
)

// The guest's NICs: eth0 on QEMU's user network (DHCP 10.0.2.15, router advertisements for
// fec0::/64), eth1 on a tap device whose DHCP server is this test's, eth2 on a tap device that
// user data configures statically, matched by its MAC.
const (
	dhcpMAC   = "52:54:00:76:00:01"
	staticMAC = "52:54:00:77:00:02"
)

const networkUserData = `[settings.network]
hosts = [["10.77.0.5", ["db.lab", "db"]]]

[settings.network.interfaces.lab]
mac = "` + staticMAC + `"
addresses = ["192.168.77.10/24"]
routes = [{ to = "10.77.0.0/16", via = "192.168.77.1" }]
mtu = 1400
`

// TestNetwork boots the image with three NICs and checks the network service through GET /network
// on the remote API: DHCPv4 on QEMU's network and SLAAC there; a lease from the test's own DHCP
// server (20 s, T1 10 s) and its renewal; a static configuration from user data (address, route,
// MTU); DNS and the host name from DHCP, then from settings committed through the API, which
// restarts the service without losing the lease; the loss and return of a link's carrier; and the
// lease's expiry when the server goes silent.
func TestNetwork(t *testing.T) {
	t.Parallel() // boots QEMU: see main_test.go
	testutil.Root(t, "a network namespace with tap devices for the guest's second and third NICs")
	if err := qemu.Available(); err != nil {
		t.Fatalf("QEMU is needed for image tests: %v", err)
	}
	peer := nettest.NewNetns(t)
	tapDHCP := peer.Tap(t, "tap-dhcp", "192.168.76.1/24")
	tapStatic := peer.Tap(t, "tap-static", "192.168.77.1/24")
	srv := &nettest.DHCPv4Server{
		ServerIP: netip.MustParseAddr("192.168.76.1"), First: netip.MustParseAddr("192.168.76.10"), Bits: 24,
		LeaseTime: 20 * time.Second, T1: 10 * time.Second,
		Routers: []netip.Addr{netip.MustParseAddr("192.168.76.1")}, DNS: []netip.Addr{netip.MustParseAddr("192.168.76.53")},
		Hostname: "dhcp-named", Domain: "lab.test",
	}
	srv.Start(t, peer, "tap-dhcp")

	begin := time.Now()
	port := freePort(t)
	vm, err := startVM(t, qemu.Config{
		Disk: copyDisk(t, 0), ExtraDisks: []string{makeCidata(t, networkUserData)},
		LogFile: filepath.Join(t.TempDir(), "console.log"), Timeout: 10 * time.Minute,
		HostFwd: []string{fmt.Sprintf("tcp:127.0.0.1:%d-:50443", port)},
		TapNICs: []qemu.TapNIC{{File: tapDHCP, ID: "dhcpnic", MAC: dhcpMAC}, {File: tapStatic, ID: "staticnic", MAC: staticMAC}},
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		vm.Kill()
		if t.Failed() {
			t.Logf("console:\n%s\nDHCP server got:\n%v", vm.Console(), srv.Received())
		}
	})
	expect(t, vm, readyRE.String())
	t.Logf("ready after %s", time.Since(begin).Round(time.Second))
	cfg, err := client.LoadPKI(filepath.Join(buildDir, "pki"))
	if err != nil {
		t.Fatal(err)
	}
	c := remoteClient(t, fmt.Sprintf("https://127.0.0.1:%d", port), cfg)

	var last apitypes.Network
	waitFor := func(what string, d time.Duration, ok func(st apitypes.Network) bool) apitypes.Network {
		t.Helper()
		deadline := time.Now().Add(d)
		for {
			ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
			st, err := c.Network(ctx)
			cancel()
			if err == nil {
				last = st
				if ok(st) {
					return st
				}
			}
			if time.Now().After(deadline) {
				b, _ := json.MarshalIndent(last, "", "  ")
				t.Fatalf("GET /network: no %s within %s (last error %v); last state:\n%s", what, d, err, b)
			}
			time.Sleep(500 * time.Millisecond)
		}
	}

	// Phase 1: what the boot brought up.
	st := waitFor("DHCP on eth0 and eth1, static eth2, SLAAC on eth0", 60*time.Second, func(st apitypes.Network) bool {
		e0, e1, e2 := ifaceOf(st, "eth0"), ifaceOf(st, "eth1"), ifaceOf(st, "eth2")
		return bound(e0) && hasAddr(e0, "10.0.2.15/24", contract.SourceDHCP4) && hasPrefix(e0, "fec0::/64", contract.SourceSLAAC) &&
			bound(e1) && hasAddr(e1, "192.168.76.10/24", contract.SourceDHCP4) &&
			hasAddr(e2, "192.168.77.10/24", contract.SourceStatic) && e2.MTU == 1400 &&
			st.Hostname.Name == "dhcp-named"
	})
	t.Logf("network up %s after the start", time.Since(begin).Round(time.Second))
	e0, e1, e2 := ifaceOf(st, "eth0"), ifaceOf(st, "eth1"), ifaceOf(st, "eth2")
	if e0.MAC != "52:54:00:12:34:56" || e0.Config != "default" || e1.Config != "default" || e2.Config != "settings.network.interfaces.lab" || e2.MAC != staticMAC {
		t.Errorf("interfaces: eth0 %s %s, eth1 %s, eth2 %s %s", e0.MAC, e0.Config, e1.Config, e2.MAC, e2.Config)
	}
	if e2.DHCP4 != nil {
		t.Errorf("eth2 runs DHCPv4 although its addresses are static: %+v", e2.DHCP4)
	}
	// QEMU's DHCP server leaves the router and DNS options out on a restricted network.
	if l := e0.DHCP4; l.Server != "10.0.2.2" || l.Expires == nil || l.Expires.Sub(*l.Acquired) != 24*time.Hour {
		t.Errorf("eth0's lease from QEMU: %+v", l)
	}
	for _, r := range []contract.RouteState{
		{To: "10.77.0.0/16", Via: "192.168.77.1", Interface: "eth2", Protocol: "static"},
		{To: "default", Via: "192.168.76.1", Interface: "eth1", Protocol: "dhcp"},
		{To: "default", Via: "fe80::2", Interface: "eth0", Protocol: "ra"},
	} {
		if !hasRoute(st, r) {
			t.Errorf("no route %+v: %+v", r, st.Routes)
		}
	}
	if !slices.Equal(st.DNS.Servers, []string{"192.168.76.53"}) || st.DNS.Source != "dhcp" ||
		!slices.Contains(st.DNS.Search, "lab.test") || st.Hostname.Source != "dhcp4 eth1" {
		t.Errorf("dns %+v, hostname %+v", st.DNS, st.Hostname)
	}

	// Phase 2: the lease is renewed at T1 with a unicast REQUEST; its expiry moves on.
	firstExpiry := *e1.DHCP4.Expires
	st = waitFor("renewal of eth1's lease", 30*time.Second, func(st apitypes.Network) bool {
		l := ifaceOf(st, "eth1").DHCP4
		return l != nil && l.Renewals >= 1 && l.Expires.After(firstExpiry) && l.State == contract.DHCPBound
	})
	if !slices.ContainsFunc(srv.Received(), func(r nettest.Received) bool {
		return r.Kind == "REQUEST(renewing)" && r.Unicast && r.CIAddr == netip.MustParseAddr("192.168.76.10")
	}) {
		t.Errorf("the server saw no unicast renewal: %v", srv.Received())
	}
	expect(t, vm, `ballast: network eth1 dhcp4 renewed 192\.168\.76\.10/24`)

	// Phase 3: settings committed through the API apply without a reboot; the service restarts
	// and resumes eth1's lease (INIT-REBOOT), without a new DISCOVER.
	changeAt := time.Now()
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	res, err := c.Apply(ctx, mustSettings(t, `{"dns":{"name-servers":["192.0.2.53"],"search-list":["corp.test"]},
		"network":{"hostname":"node-7","interfaces":{"lab":{"mtu":1280,"routes":[{"to":"10.78.0.0/16","via":"192.168.77.1","metric":5}]}}}}`))
	cancel()
	if err != nil {
		t.Fatalf("apply: %v", err)
	}
	if !slices.Contains(res.Restarted, "network") || !slices.Contains(res.Files, contract.NetworkConfigPath) {
		t.Errorf("apply restarted %v, rewrote %v; want the network service and %s", res.Restarted, res.Files, contract.NetworkConfigPath)
	}
	st = waitFor("the new settings", 30*time.Second, func(st apitypes.Network) bool {
		e1, e2 := ifaceOf(st, "eth1"), ifaceOf(st, "eth2")
		return slices.Equal(st.DNS.Servers, []string{"192.0.2.53"}) && st.DNS.Source == "settings" &&
			st.Hostname == contract.HostnameState{Name: "node-7", Source: "settings"} && e2.MTU == 1280 &&
			hasRoute(st, contract.RouteState{To: "10.78.0.0/16", Via: "192.168.77.1", Interface: "eth2", Protocol: "static"}) &&
			bound(e1) && e1.DHCP4.Acquired.After(changeAt)
	})
	if hasRoute(st, contract.RouteState{To: "10.77.0.0/16", Via: "192.168.77.1", Interface: "eth2", Protocol: "static"}) {
		t.Errorf("the replaced static route stayed: %+v", st.Routes)
	}
	for _, r := range srv.Received() {
		if r.At.After(changeAt) && r.Kind != "REQUEST(init-reboot)" && r.Kind != "REQUEST(renewing)" {
			t.Errorf("after the restart the DHCP server got %v: the lease was not resumed", r)
		}
	}
	if !hasAddr(ifaceOf(st, "eth1"), "192.168.76.10/24", contract.SourceDHCP4) {
		t.Errorf("eth1 lost its address: %+v", ifaceOf(st, "eth1"))
	}
	// The file itself, read on the guest's console, as resolvers see it. (No wait for the
	// prompt: the network's console lines follow it on its line.)
	if out := shell(t, vm, 1, "cat /etc/resolv.conf"); !strings.Contains(out, "nameserver 192.0.2.53 search corp.test") || strings.Contains(out, "10.0.2.3") {
		t.Errorf("/etc/resolv.conf on the guest: %q", out)
	}
	if out := shell(t, vm, 2, "hostname"); out != "node-7" {
		t.Errorf("hostname on the guest: %q", out)
	}
	if out := shell(t, vm, 3, "grep db.lab /etc/hosts"); strings.Join(strings.Fields(out), " ") != "10.77.0.5 db.lab db" {
		t.Errorf("/etc/hosts on the guest: %q", out)
	}
	if out := shell(t, vm, 4, "apiclient network | grep ^hostname"); out != "hostname: node-7 (settings)" {
		t.Errorf("apiclient network on the guest: %q", out)
	}

	// Phase 4: the link's cable is pulled (QMP set_link) and put back.
	if err := vm.SetLink("dhcpnic", false); err != nil {
		t.Fatal(err)
	}
	waitFor("eth1's carrier loss", 20*time.Second, func(st apitypes.Network) bool {
		e1 := ifaceOf(st, "eth1")
		return !e1.Carrier && e1.DHCP4 != nil && e1.DHCP4.State == contract.DHCPLinkDown && hasAddr(e1, "192.168.76.10/24", contract.SourceDHCP4)
	})
	upAt := time.Now()
	if err := vm.SetLink("dhcpnic", true); err != nil {
		t.Fatal(err)
	}
	waitFor("eth1's lease confirmed after the link's return", 20*time.Second, func(st apitypes.Network) bool {
		e1 := ifaceOf(st, "eth1")
		return e1.Carrier && bound(e1) && e1.DHCP4.Acquired.After(upAt)
	})
	if !slices.ContainsFunc(srv.Received(), func(r nettest.Received) bool { return r.At.After(upAt) && r.Kind == "REQUEST(init-reboot)" }) {
		t.Errorf("no INIT-REBOOT REQUEST after the link came back: %v", srv.Received())
	}
	expect(t, vm, `ballast: network eth1 link down`)
	expect(t, vm, `ballast: network eth1 link up`)

	// Phase 5: the server goes silent; renewing, rebinding, then the lease ends (20 s after its
	// last ACK) and its address and route go.
	srv.SetSilent(true)
	st = waitFor("eth1's lease to expire", 40*time.Second, func(st apitypes.Network) bool {
		e1 := ifaceOf(st, "eth1")
		return e1.DHCP4 != nil && e1.DHCP4.State == contract.DHCPInit && !hasAddr(e1, "192.168.76.10/24", contract.SourceDHCP4)
	})
	if hasRoute(st, contract.RouteState{To: "default", Via: "192.168.76.1", Interface: "eth1", Protocol: "dhcp"}) {
		t.Errorf("the expired lease's route stayed: %+v", st.Routes)
	}
	if !slices.ContainsFunc(srv.Received(), func(r nettest.Received) bool { return r.Kind == "REQUEST(rebinding)" }) {
		t.Errorf("no REBINDING request before the lease ended: %v", srv.Received())
	}
	expect(t, vm, `ballast: network eth1 dhcp4 lease of 192\.168\.76\.10/24 ended: address removed`)
	t.Logf("whole test %s", time.Since(begin).Round(time.Second))
}

func ifaceOf(st apitypes.Network, name string) contract.InterfaceState {
	for _, i := range st.Interfaces {
		if i.Name == name {
			return i
		}
	}
	return contract.InterfaceState{}
}

func bound(i contract.InterfaceState) bool {
	return i.DHCP4 != nil && i.DHCP4.State == contract.DHCPBound && i.DHCP4.Acquired != nil
}

func hasAddr(i contract.InterfaceState, addr, source string) bool {
	return slices.ContainsFunc(i.Addresses, func(a contract.AddressState) bool { return a.Address == addr && a.Source == source })
}

// hasPrefix reports whether the interface has an address of source within the network p.
func hasPrefix(i contract.InterfaceState, p, source string) bool {
	net := netip.MustParsePrefix(p)
	return slices.ContainsFunc(i.Addresses, func(a contract.AddressState) bool {
		ap, err := netip.ParsePrefix(a.Address)
		return err == nil && net.Contains(ap.Addr()) && a.Source == source
	})
}

func hasRoute(st apitypes.Network, r contract.RouteState) bool {
	return slices.ContainsFunc(st.Routes, func(x contract.RouteState) bool {
		return x.To == r.To && x.Via == r.Via && x.Interface == r.Interface && x.Protocol == r.Protocol
	})
}

func mustSettings(t *testing.T, body string) settings.Settings {
	t.Helper()
	s, err := settings.DecodeJSON(strings.NewReader(body))
	if err != nil {
		t.Fatalf("settings %s: %v", body, err)
	}
	return s
}
