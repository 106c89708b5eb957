package main

import (
	"bytes"
	"testing"
	"time"

	"github.com/ballast-os/ballast/apiserver/apitypes"
	"github.com/ballast-os/ballast/contract"
)

func TestPrintNetwork(t *testing.T) {
	now := time.Date(2025, 1, 2, 3, 4, 5, 0, time.UTC)
	at := func(d time.Duration) *time.Time { x := now.Add(d); return &x }
	st := apitypes.Network{
		Interfaces: []contract.InterfaceState{
			{Name: "eth0", MAC: "52:54:00:12:34:56", MTU: 1500, Up: true, Carrier: true, Config: "default",
				Addresses: []contract.AddressState{{Address: "10.0.2.15/24", Source: "dhcp4", ValidUntil: at(time.Hour)}, {Address: "fe80::1/64", Source: "link-local"}},
				DHCP4:     &contract.LeaseState{State: "bound", Server: "10.0.2.2", RenewAt: at(30 * time.Minute), Expires: at(time.Hour), Renewals: 2}},
			{Name: "eth1", MAC: "52:54:00:00:00:01", MTU: 1400, Up: true, Config: "settings.network.interfaces.lan", Error: "add route: EINVAL",
				DHCP4: &contract.LeaseState{State: "link-down", Expires: at(-time.Minute)}},
		},
		Routes:   []contract.RouteState{{To: "default", Via: "10.0.2.2", Interface: "eth0", Metric: 1026, Protocol: "dhcp"}},
		DNS:      contract.DNSState{Servers: []string{"10.0.2.3"}, Source: "dhcp", Sources: []string{"dhcp4 eth0"}},
		Hostname: contract.HostnameState{Name: "ballast", Source: "default"},
	}
	var b bytes.Buffer
	if err := printNetwork(&b, st, now); err != nil {
		t.Fatal(err)
	}
	want := `eth0 52:54:00:12:34:56 up mtu 1500 (default)
  10.0.2.15/24 dhcp4 valid in 1h0m0s
  fe80::1/64 link-local forever
  dhcp4 bound, server 10.0.2.2, renew in 30m0s, expires in 1h0m0s, renewed 2 times
eth1 52:54:00:00:00:01 no-carrier mtu 1400 (settings.network.interfaces.lan)
  dhcp4 link-down, expires 1m0s ago
  error: add route: EINVAL
routes:
  default via 10.0.2.2 dev eth0 metric 1026 proto dhcp
dns: 10.0.2.3 search - (dhcp: dhcp4 eth0)
hostname: ballast (default)
`
	if b.String() != want {
		t.Errorf("printNetwork:\n%s\nwant:\n%s", b.String(), want)
	}
}
