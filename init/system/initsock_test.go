package system

import (
	"context"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/ballast-os/ballast/contract"

	"github.com/ballast-os/ballast/init/system/supervise"
)

func TestInitSocket(t *testing.T) {
	i, _, _ := testInit(t)
	sup, err := supervise.New(supervise.Options{Console: i.console, ProbeInterval: 5 * time.Millisecond},
		supervise.Service{
			ID:      "worker",
			Runner:  &supervise.Exec{Reaper: testReaper, Path: "/bin/sleep", Args: []string{"30"}, Console: i.console},
			Restart: supervise.RestartAlways,
		})
	if err != nil {
		t.Fatal(err)
	}
	if err := sup.Start(); err != nil {
		t.Fatal(err)
	}
	i.sup = sup
	t.Cleanup(func() { sup.Stop(context.Background()) })
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := sup.WaitReady(ctx, "worker"); err != nil {
		t.Fatal(err)
	}

	mkdirs(t, i, "/run/ballast")
	write(t, i, contract.InitSocket, "stale")
	i.serveInitSocket(ctx)
	if fi, err := os.Stat(i.path(contract.InitSocket)); err != nil || fi.Mode()&os.ModeSocket == 0 || fi.Mode().Perm() != 0o600 {
		t.Fatalf("socket: %v, %v", fi.Mode(), err)
	}
	c := contract.InitClient{Socket: i.path(contract.InitSocket)}

	pid := func() int {
		t.Helper()
		svcs, err := c.Services(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if len(svcs) != 1 || svcs[0].ID != "worker" || svcs[0].State != "ready" || svcs[0].Pid == 0 {
			t.Fatalf("services = %+v", svcs)
		}
		return svcs[0].Pid
	}
	before := pid()

	if err := c.Restart(ctx, "worker"); err != nil {
		t.Fatal(err)
	}
	sup.WaitReady(ctx, "worker")
	after := pid()
	if after == before {
		t.Errorf("pid %d unchanged by restart", after)
	}
	svcs, _ := c.Services(ctx)
	if svcs[0].Restarts != 1 || !strings.Contains(svcs[0].LastExit, "terminated") {
		t.Errorf("after restart: %+v", svcs[0])
	}

	err = c.Restart(ctx, "worker", "nope")
	if err == nil || !strings.Contains(err.Error(), `"nope"`) {
		t.Errorf("restart of an unknown service = %v", err)
	}
	if got := pid(); got != after {
		t.Errorf("unknown service in the list, yet worker restarted: pid %d → %d", after, got)
	}

	if err := c.Reboot(ctx); err != nil {
		t.Fatal(err)
	}
	select {
	case r := <-i.requests:
		if r.act != Reboot || r.cause != "init socket" {
			t.Errorf("requested %v (%s)", r.act, r.cause)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("reboot not handed to the main loop")
	}
}
