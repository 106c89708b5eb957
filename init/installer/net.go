package installer

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"time"

	"golang.org/x/sys/unix"

	"github.com/ballast-os/ballast/init/console"
	"github.com/ballast-os/ballast/init/system/netconf/dhcp4"
	"github.com/ballast-os/ballast/init/system/netconf/link"
)

// DHCP returns a Config.Network that brings up every Ethernet interface, waits up to wait for
// the first (by index) with carrier, and leases it an IPv4 address with the system's DHCPv4
// client, which keeps the lease for as long as ctx lives. The lease's DNS servers go to
// resolvConf for Go's resolver.
func DHCP(con *console.Writer, resolvConf string, wait time.Duration) func(ctx context.Context) error {
	return func(ctx context.Context) error {
		l, err := carrierLink(ctx, wait)
		if err != nil {
			return err
		}
		bound := make(chan *dhcp4.Lease, 1)
		c := dhcp4.New(dhcp4.Config{
			HWAddr: l.MAC,
			Conn:   &dhcp4.RawConn{Interface: &net.Interface{Index: l.Index, Name: l.Name, HardwareAddr: l.MAC}},
			Bind: func(old, lease *dhcp4.Lease) error {
				if err := bind(l, lease, resolvConf); err != nil {
					return err
				}
				select {
				case bound <- lease:
				default:
				}
				return nil
			},
			Unbind: func(lease *dhcp4.Lease) error { return link.RemoveAddress(l, lease.Address) },
		})
		go c.Run(ctx) // renews for as long as the install runs
		select {
		case lease := <-bound:
			var gw []string
			for _, r := range lease.Gateways() {
				gw = append(gw, r.Via.String())
			}
			con.Milestone("install", "network %s %s via %s", l.Name, lease.Address, strings.Join(gw, ","))
			return nil
		case <-time.After(wait):
			st := c.Status()
			return fmt.Errorf("%s: no DHCPv4 lease after %s (state %s, %v)", l.Name, wait, st.State, st.Err)
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// carrierLink brings the Ethernet interfaces up and returns the first with carrier.
func carrierLink(ctx context.Context, wait time.Duration) (link.Link, error) {
	deadline := time.Now().Add(wait)
	for {
		ls, err := link.List()
		if err != nil {
			return link.Link{}, err
		}
		var names []string
		for _, l := range ls {
			if !l.Ethernet {
				continue
			}
			names = append(names, l.Name)
			if l.Carrier {
				return l, nil
			}
			if !l.Up {
				if err := link.SetUp(l); err != nil {
					return link.Link{}, err
				}
			}
		}
		if !time.Now().Before(deadline) {
			if len(names) == 0 {
				return link.Link{}, errors.New("no Ethernet interface (is its driver in the initramfs?)")
			}
			return link.Link{}, fmt.Errorf("no carrier on %s after %s", strings.Join(names, ", "), wait)
		}
		select {
		case <-ctx.Done():
			return link.Link{}, ctx.Err()
		case <-time.After(250 * time.Millisecond):
		}
	}
}

func bind(l link.Link, lease *dhcp4.Lease, resolvConf string) error {
	if err := link.ReplaceAddress(l, link.Address{Prefix: lease.Address, Valid: lease.Duration}); err != nil {
		return err
	}
	for _, r := range lease.Gateways() {
		if err := link.EnsureRoute(link.Route{To: r.To, Via: r.Via, Index: l.Index, Protocol: unix.RTPROT_DHCP}); err != nil {
			return err
		}
	}
	var b strings.Builder
	for _, d := range lease.DNS {
		fmt.Fprintf(&b, "nameserver %s\n", d)
	}
	if len(lease.Search) > 0 {
		fmt.Fprintf(&b, "search %s\n", strings.Join(lease.Search, " "))
	}
	if err := os.MkdirAll(filepath.Dir(resolvConf), 0o755); err != nil {
		return err
	}
	return os.WriteFile(resolvConf, []byte(b.String()), 0o644)
}
