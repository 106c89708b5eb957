package daemon

import (
	"context"
	"errors"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/ballast-os/ballast/apiserver/api"
	"github.com/ballast-os/ballast/apiserver/apitypes"
	"github.com/ballast-os/ballast/apiserver/client"
	"github.com/ballast-os/ballast/apiserver/datastore"
	"github.com/ballast-os/ballast/apiserver/userdata"
	"github.com/ballast-os/ballast/contract"
	"github.com/ballast-os/ballast/tests/testutil"
)

func seedOf(t *testing.T, c *client.Client) int64 {
	t.Helper()
	s, err := c.Settings(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if s.Updates == nil || s.Updates.Seed == nil {
		t.Fatalf("no settings.updates.seed in %+v", s)
	}
	return *s.Updates.Seed
}

// The first start draws the host's wave seed and keeps it; user data may give one instead.
func TestUpdateSeed(t *testing.T) {
	h := newHost(t)
	srv := h.start(t)
	c := client.New(h.socket)
	defer c.Close()
	seed := seedOf(t, c)
	if seed < 0 || seed > 2047 {
		t.Fatalf("seed %d is not 0 to 2047", seed)
	}
	if m := regexp.MustCompile(`ballast: updates: wave seed (\d+)\n`).FindStringSubmatch(srv.console.String()); m == nil || m[1] != strconv.FormatInt(seed, 10) {
		t.Fatalf("console does not name seed %d:\n%s", seed, srv.console)
	}
	if err := srv.stop(); err != nil {
		t.Fatal(err)
	}
	srv = h.start(t)
	if again := seedOf(t, c); again != seed {
		t.Fatalf("seed %d after a restart, was %d", again, seed)
	}
	if strings.Contains(srv.console.String(), "wave seed") {
		t.Fatalf("a second seed was drawn:\n%s", srv.console)
	}
	srv.stop()

	h = newHost(t)
	ud := filepath.Join(h.dir, "user-data")
	writeFile(t, ud, "[settings.updates]\nseed = 5\n")
	h.userData = []userdata.NamedSource{{Name: "file", Source: userdata.File(ud)}}
	srv = h.start(t)
	c2 := client.New(h.socket)
	defer c2.Close()
	if got := seedOf(t, c2); got != 5 {
		t.Fatalf("seed %d, want the user data's 5", got)
	}
	if strings.Contains(srv.console.String(), "wave seed") {
		t.Fatalf("a seed was drawn over the user data's:\n%s", srv.console)
	}
}

func TestEnsureUpdateSeedRefusesOutOfRange(t *testing.T) {
	store, _, err := datastore.New(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	var console testutil.Buffer
	if err := ensureUpdateSeed(store, func() int64 { return 2048 }, &console); err == nil || !strings.Contains(err.Error(), "2048 is not 0 to 2047") {
		t.Fatalf("ensureUpdateSeed(2048) = %v", err)
	}
	if live := store.Live(); live.Updates != nil {
		t.Fatalf("a bad seed was stored: %+v", live.Updates)
	}
	for i := range 200 {
		if s := randomSeed(); s < 0 || s > 2047 {
			t.Fatalf("draw %d: seed %d", i, s)
		}
	}
}

// configUpdater reports, as its status, the configuration its environment gives at each check.
type configUpdater struct{ env UpdaterEnv }

func (u *configUpdater) Status() apitypes.UpdateStatus {
	return apitypes.UpdateStatus{State: apitypes.UpdateIdle, Available: []string{}}
}
func (u *configUpdater) Check(context.Context) (apitypes.UpdateStatus, error) {
	cfg, err := u.env.Config()
	if err != nil {
		return apitypes.UpdateStatus{}, err
	}
	st := u.Status()
	st.Available = []string{cfg.MetadataBaseURL, cfg.TargetsBaseURL, cfg.VersionLock, strconv.Itoa(cfg.Seed)}
	return st, nil
}
func (u *configUpdater) Apply(context.Context) (apitypes.UpdateStatus, error) {
	return apitypes.UpdateStatus{}, errors.New("not in this test")
}
func (u *configUpdater) Activate(context.Context) (apitypes.UpdateStatus, error) {
	return apitypes.UpdateStatus{}, errors.New("not in this test")
}
func (u *configUpdater) Cancel(context.Context) (apitypes.UpdateStatus, error) {
	return apitypes.UpdateStatus{}, errors.New("not in this test")
}

// The agent built by Options.NewUpdater serves the update endpoints and sees settings changes
// at its next action, over the image's defaults; without one they answer 503.
func TestUpdaterWiring(t *testing.T) {
	ctx := context.Background()
	h := newHost(t)
	srv := h.start(t)
	c := client.New(h.socket)
	defer c.Close()
	var apiErr *client.Error
	if _, err := c.UpdateStatus(ctx); !errors.As(err, &apiErr) || apiErr.Status != 503 || apiErr.Message != "updates: not configured in this image" {
		t.Fatalf("status without an agent: %v", err)
	}
	srv.stop()

	h.newUpdater = func(UpdaterEnv) (api.Updater, error) { return nil, errors.New("no root.json") }
	srv = h.start(t)
	if _, err := c.UpdateAction(ctx, apitypes.UpdateCheck); !errors.As(err, &apiErr) || apiErr.Status != 503 {
		t.Fatalf("check with an agent that failed to start: %v", err)
	}
	if !strings.Contains(srv.console.String(), "ballast: updates: no root.json\n") {
		t.Fatalf("console:\n%s", srv.console)
	}
	srv.stop()

	h.updatePolicy = contract.UpdatePolicy{MetadataBaseURL: "https://updates.example/m", TargetsBaseURL: "https://updates.example/t", HasRoot: true}
	h.newUpdater = func(env UpdaterEnv) (api.Updater, error) {
		if env.Policy != h.updatePolicy {
			t.Errorf("env.Policy = %+v", env.Policy)
		}
		return &configUpdater{env: env}, nil
	}
	h.start(t)
	seed := strconv.FormatInt(seedOf(t, c), 10)
	st, err := c.UpdateAction(ctx, apitypes.UpdateCheck)
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{"https://updates.example/m", "https://updates.example/t", "latest", seed}; strings.Join(st.Available, " ") != strings.Join(want, " ") {
		t.Fatalf("config at the first check %q, want %q", st.Available, want)
	}
	if _, err := c.Set(ctx, []string{"updates.version-lock=1.2.0", "updates.targets-base-url=http://10.0.2.100:8080/t"}); err != nil {
		t.Fatal(err)
	}
	if st, err = c.UpdateAction(ctx, apitypes.UpdateCheck); err != nil {
		t.Fatal(err)
	}
	if want := []string{"https://updates.example/m", "http://10.0.2.100:8080/t", "1.2.0", seed}; strings.Join(st.Available, " ") != strings.Join(want, " ") {
		t.Fatalf("config after the change %q, want %q", st.Available, want)
	}
	if _, err := c.UpdateAction(ctx, "frob"); !errors.As(err, &apiErr) || apiErr.Status != 404 {
		t.Fatalf("unknown action: %v", err)
	}
}
