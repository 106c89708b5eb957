package system

import (
	"context"
	"fmt"

	"github.com/ballast-os/ballast/contract"
	"github.com/ballast-os/ballast/init/entropy"
)

// initRandom runs the Random step and opens the gate the ready line waits at, whatever happened: a
// host that could not seed its pool is reported, not kept from booting.
func (i *Init) initRandom(ctx context.Context) {
	defer close(i.randomReady)
	what, err := i.random(ctx)
	if err != nil {
		i.console.Errorf("random: %v", err)
		return
	}
	i.console.Milestone("random", "%s", what)
}

// randomPool seeds the kernel's pool from the seed this host kept on /local (credited only when it
// is this host's own, unused seed), makes the kernel gather entropy until the pool is initialised,
// and leaves a fresh seed for the next boot.
func randomPool(ctx context.Context) (string, error) {
	host := entropy.SMBIOSHost()
	seeded, err := entropy.Load(contract.RandomSeed, host)
	if err != nil {
		return "", err
	}
	waited, err := entropy.Gather(ctx)
	if err != nil {
		return "", err
	}
	if err := entropy.Refresh(contract.RandomSeed, host); err != nil {
		return "", err
	}
	return fmt.Sprintf("pool ready after %.2fs (seed %s; new seed saved)", waited.Seconds(), seeded), nil
}
