package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/ballast-os/ballast/apiserver/apitypes"
	"github.com/ballast-os/ballast/apiserver/client"
	"github.com/ballast-os/ballast/contract"
)

func network(ctx context.Context, c *client.Client, args []string, out io.Writer) error {
	fs := flag.NewFlagSet("network", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	asJSON := fs.Bool("json", false, "print GET /network as it is")
	if err := fs.Parse(args); err != nil {
		return fmt.Errorf("%w: network: %v", errUsage, err)
	}
	if fs.NArg() != 0 {
		return fmt.Errorf("%w: network takes no arguments", errUsage)
	}
	st, err := c.Network(ctx)
	if err != nil {
		return err
	}
	if *asJSON {
		return printJSON(out, st)
	}
	return printNetwork(out, st, time.Now())
}

// printNetwork writes the state for a person: one block per interface, then routes, DNS and the
// host name. Times are shown relative to now, which is what someone watching a lease wants.
func printNetwork(w io.Writer, st apitypes.Network, now time.Time) error {
	for _, i := range st.Interfaces {
		link := "down"
		if i.Up {
			link = "up"
		}
		if i.Up && !i.Carrier {
			link = "no-carrier"
		}
		fmt.Fprintf(w, "%s %s %s mtu %d (%s)\n", i.Name, i.MAC, link, i.MTU, i.Config)
		for _, a := range i.Addresses {
			valid := "forever"
			if a.ValidUntil != nil {
				valid = "valid " + until(*a.ValidUntil, now)
			}
			fmt.Fprintf(w, "  %s %s %s\n", a.Address, a.Source, valid)
		}
		for _, l := range []struct {
			name  string
			lease *contract.LeaseState
		}{{"dhcp4", i.DHCP4}, {"dhcp6", i.DHCP6}} {
			if l.lease == nil {
				continue
			}
			parts := []string{l.name + " " + l.lease.State}
			if l.lease.Server != "" {
				parts = append(parts, "server "+l.lease.Server)
			}
			if l.lease.RenewAt != nil {
				parts = append(parts, "renew "+until(*l.lease.RenewAt, now))
			}
			if l.lease.Expires != nil {
				parts = append(parts, "expires "+until(*l.lease.Expires, now))
			}
			if l.lease.Renewals > 0 {
				parts = append(parts, fmt.Sprintf("renewed %d times", l.lease.Renewals))
			}
			if l.lease.Error != "" {
				parts = append(parts, "error: "+l.lease.Error)
			}
			fmt.Fprintf(w, "  %s\n", strings.Join(parts, ", "))
		}
		if i.Error != "" {
			fmt.Fprintf(w, "  error: %s\n", i.Error)
		}
	}
	fmt.Fprintln(w, "routes:")
	for _, r := range st.Routes {
		line := "  " + r.To
		if r.Via != "" {
			line += " via " + r.Via
		}
		if r.Interface != "" {
			line += " dev " + r.Interface
		}
		fmt.Fprintf(w, "%s metric %d proto %s\n", line, r.Metric, r.Protocol)
	}
	dns := st.DNS.Source
	if len(st.DNS.Sources) > 0 {
		dns += ": " + strings.Join(st.DNS.Sources, ", ")
	}
	fmt.Fprintf(w, "dns: %s search %s (%s)\n", orNone(st.DNS.Servers), orNone(st.DNS.Search), dns)
	_, err := fmt.Fprintf(w, "hostname: %s (%s)\n", st.Hostname.Name, st.Hostname.Source)
	return err
}

func until(t, now time.Time) string {
	d := t.Sub(now).Round(time.Second)
	if d < 0 {
		return (-d).String() + " ago"
	}
	return "in " + d.String()
}

func orNone(l []string) string {
	if len(l) == 0 {
		return "-"
	}
	return strings.Join(l, " ")
}
