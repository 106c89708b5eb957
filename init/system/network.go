package system

import "github.com/ballast-os/ballast/init/system/supervise"

// ServiceNetwork gives the host an address (init/system/cmd/netconf): DHCPv4 on its Ethernet links.
const ServiceNetwork = "network"

func (i *Init) network() (supervise.Service, error) {
	return supervise.Service{
		ID: ServiceNetwork,
		Runner: &supervise.Exec{
			Reaper:  i.reaper,
			Path:    "/usr/bin/netconf",
			Env:     []string{servicePath},
			LogFile: LogDir + "/" + ServiceNetwork + ".log",
			Console: i.console,
		},
		// One-shot: a lease that was configured stays; a failed attempt is tried again with backoff.
		Restart: supervise.RestartOnFailure,
	}, nil
}
