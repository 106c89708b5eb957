// Command netconf brings the network up at boot (a one-shot service of the system init).
package main

import (
	"context"
	"fmt"
	"os"
	"time"

	"github.com/ballast-os/ballast/init/system/netconf"
)

func main() {
	leases, err := netconf.Up(context.Background(), 15*time.Second)
	for _, l := range leases {
		fmt.Printf("ballast: network %s address %s router %s\n", l.Interface, l.Address, l.Router)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "ballast:", err)
		os.Exit(1)
	}
}
