package daemon

import (
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"

	"github.com/ballast-os/ballast/apiserver/api"
	"github.com/ballast-os/ballast/apiserver/datastore"
	"github.com/ballast-os/ballast/apiserver/settings"
	"github.com/ballast-os/ballast/apiserver/updateconfig"
	"github.com/ballast-os/ballast/contract"
)

// UpdaterEnv is what the daemon gives Options.NewUpdater to build the update agent with.
type UpdaterEnv struct {
	// Config is the agent's configuration from the live settings of the moment and the image's
	// update policy. The agent calls it at each action, so a settings change (a repository URL,
	// the proxy, the version lock) holds from the next action on, with nothing to restart.
	Config func() (updateconfig.Config, error)
	// Policy is the image's update policy (tries, health timeout, trusted root).
	Policy contract.UpdatePolicy
	Log    *slog.Logger
}

// newUpdater builds the update agent with o.NewUpdater; a failure is reported and leaves the
// update endpoints answering 503, like an image without an agent.
func newUpdater(o Options, store *datastore.Store) api.Updater {
	if o.NewUpdater == nil {
		return nil
	}
	policy := o.UpdatePolicy
	u, err := o.NewUpdater(UpdaterEnv{
		Config: func() (updateconfig.Config, error) { return updateconfig.FromSettings(store.Live(), policy) },
		Policy: policy,
		Log:    o.Log.With("component", "updates"),
	})
	if err != nil {
		fmt.Fprintf(o.Console, "ballast: updates: %v\n", err)
		o.Log.Error("update agent", "err", err)
		return nil
	}
	return u
}

// ensureUpdateSeed gives the host its place in the update waves when it has none: at the first
// start, before anything has asked for an update (user data may set one instead, and it came
// first), and at the first start of an image that knows waves on a datastore from one that did
// not. The seed is then a setting like any other, kept across updates and rollbacks.
func ensureUpdateSeed(store *datastore.Store, random func() int64, console io.Writer) error {
	live := store.Live()
	if live.Updates != nil && live.Updates.Seed != nil {
		return nil
	}
	seed := random()
	if seed < 0 || seed > settings.MaxUpdateSeed {
		return fmt.Errorf("update seed %d is not 0 to %d", seed, settings.MaxUpdateSeed)
	}
	if err := commit(store, settings.Settings{Updates: &settings.Updates{Seed: &seed}}); err != nil {
		return fmt.Errorf("settings.updates.seed: %w", err)
	}
	fmt.Fprintf(console, "ballast: updates: wave seed %d\n", seed)
	return nil
}

// randomSeed draws a seed uniformly from 0 to settings.MaxUpdateSeed.
func randomSeed() int64 { return rand.Int64N(settings.MaxUpdateSeed + 1) }
