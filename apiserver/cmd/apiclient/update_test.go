package main

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ballast-os/ballast/apiserver/api"
	"github.com/ballast-os/ballast/apiserver/apitypes"
	"github.com/ballast-os/ballast/apiserver/daemon"
	"github.com/ballast-os/ballast/apiserver/osinfo"
	"github.com/ballast-os/ballast/contract"
)

// scriptedUpdater goes through the states of an update as the agent would, and refuses what the
// state does not allow.
type scriptedUpdater struct {
	mu sync.Mutex
	st apitypes.UpdateStatus
}

var t0 = time.Date(2026, 5, 1, 8, 0, 0, 0, time.UTC)

func (u *scriptedUpdater) Status() apitypes.UpdateStatus {
	u.mu.Lock()
	defer u.mu.Unlock()
	return u.st
}

func (u *scriptedUpdater) step(action string, f func() error) (apitypes.UpdateStatus, error) {
	u.mu.Lock()
	defer u.mu.Unlock()
	err := f()
	u.st.LastAttempt = &apitypes.UpdateAttempt{Action: action, Time: t0, Version: "2.0.0"}
	if err != nil {
		u.st.LastAttempt.Error = err.Error()
	}
	return u.st, err
}

func (u *scriptedUpdater) Check(context.Context) (apitypes.UpdateStatus, error) {
	return u.step(apitypes.UpdateCheck, func() error {
		u.st.State, u.st.Available = apitypes.UpdateAvailable, []string{"2.0.0", "1.0.0"}
		u.st.Chosen = &apitypes.UpdateChosen{Version: "2.0.0", Notes: "Faster boots.\nFewer bugs.", WaveOpensAt: t0.Add(time.Hour)}
		return nil
	})
}
func (u *scriptedUpdater) Apply(context.Context) (apitypes.UpdateStatus, error) {
	return u.step(apitypes.UpdateApply, func() error {
		if u.st.Chosen == nil {
			return fmt.Errorf("%w: nothing chosen: check first", apitypes.ErrUpdateRefused)
		}
		u.st.State, u.st.Staged, u.st.BytesDownloaded = apitypes.UpdateStaged, &apitypes.UpdateSlot{Version: "2.0.0", Slot: contract.SlotB}, 41234567
		return nil
	})
}
func (u *scriptedUpdater) Activate(context.Context) (apitypes.UpdateStatus, error) {
	return u.step(apitypes.UpdateActivate, func() error {
		if u.st.Staged == nil {
			return fmt.Errorf("%w: nothing staged", apitypes.ErrUpdateRefused)
		}
		u.st.State, u.st.Activated = apitypes.UpdateReady, u.st.Staged
		return nil
	})
}
func (u *scriptedUpdater) Cancel(context.Context) (apitypes.UpdateStatus, error) {
	return u.step(apitypes.UpdateCancel, func() error {
		u.st.State, u.st.Staged, u.st.Activated = apitypes.UpdateAvailable, nil, nil
		return nil
	})
}

// TestUpdateCommands takes a host through check, apply, activate and cancel with apiclient
// against a real server whose agent is scripted.
func TestUpdateCommands(t *testing.T) {
	dir := t.TempDir()
	sock := filepath.Join(dir, "s")
	rel := filepath.Join(dir, "os-release")
	os.WriteFile(rel, []byte("VERSION_ID=1.0.0\nVARIANT_ID=dev\n"), 0o644)
	os.WriteFile(filepath.Join(dir, "cmdline"), []byte("ballast.slot=a\n"), 0o644)
	os.Mkdir(filepath.Join(dir, "etc"), 0o755)
	u := &scriptedUpdater{st: apitypes.UpdateStatus{State: apitypes.UpdateIdle, Available: []string{},
		Running:  apitypes.UpdateRunning{Version: "1.0.0", Slot: contract.SlotA, Entry: "ballast-1-a-1.0.0.efi"},
		Rollback: &apitypes.UpdateRollback{Version: "0.9.0", Slot: contract.SlotB, Time: t0.Add(-time.Hour), Reason: "not healthy within 5m0s"}}}
	ctx, cancel := context.WithCancel(context.Background())
	listening, done := make(chan struct{}), make(chan error, 1)
	go func() {
		done <- daemon.Run(ctx, daemon.Options{
			Socket: sock, Datastore: filepath.Join(dir, "ds"), EtcDir: filepath.Join(dir, "etc"),
			OS:         osinfo.Sources{OSRelease: rel, Cmdline: filepath.Join(dir, "cmdline")},
			AllowUID:   func(uid uint32) bool { return uid == uint32(os.Getuid()) },
			OnListen:   func() { close(listening) },
			NewUpdater: func(daemon.UpdaterEnv) (api.Updater, error) { return u, nil },
		})
	}()
	select {
	case <-listening:
	case err := <-done:
		t.Fatalf("server: %v", err)
	case <-time.After(10 * time.Second):
		t.Fatal("server did not start")
	}
	defer func() { cancel(); <-done }()

	tests := []struct {
		args    []string
		wantOut string // exact for the readable form, a substring for --json
		wantErr string
	}{
		{args: []string{"update", "status"}, wantOut: "state:      idle\nrunning:    1.0.0 (slot a, ballast-1-a-1.0.0.efi)\navailable:  -\n" +
			"rollback:   0.9.0 (slot b) at 2026-05-01T07:00:00Z: not healthy within 5m0s\n"},
		{args: []string{"update", "activate"}, wantErr: "updates: refused: nothing staged"},
		{args: []string{"update", "check"}, wantOut: "state:      available\nrunning:    1.0.0 (slot a, ballast-1-a-1.0.0.efi)\navailable:  2.0.0 1.0.0\n" +
			"chosen:     2.0.0 (wave opens 2026-05-01T09:00:00Z)\nnotes:      Faster boots.\n            Fewer bugs.\n" +
			"last:       check 2.0.0 at 2026-05-01T08:00:00Z: ok\nrollback:   0.9.0 (slot b) at 2026-05-01T07:00:00Z: not healthy within 5m0s\n"},
		{args: []string{"update", "apply", "--json"}, wantOut: `"staged": {
    "version": "2.0.0",
    "slot": "b"
  }`},
		{args: []string{"update", "activate"}, wantOut: "state:      ready\nrunning:    1.0.0 (slot a, ballast-1-a-1.0.0.efi)\navailable:  2.0.0 1.0.0\n" +
			"chosen:     2.0.0 (wave opens 2026-05-01T09:00:00Z)\nnotes:      Faster boots.\n            Fewer bugs.\n" +
			"staged:     2.0.0 (slot b)\nactivated:  2.0.0 (slot b): the next boot, on trial\n" +
			"last:       activate 2.0.0 at 2026-05-01T08:00:00Z: ok\nrollback:   0.9.0 (slot b) at 2026-05-01T07:00:00Z: not healthy within 5m0s\n" +
			"downloaded: 41234567 bytes\n"},
		{args: []string{"update", "status", "--json"}, wantOut: `"state": "ready"`},
		{args: []string{"update", "cancel"}, wantOut: "state:      available\n"},
		{args: []string{"get", "updates.state"}, wantOut: "{\n  \"updates\": {\n    \"state\": \"available\"\n  }\n}\n"},
	}
	for _, tt := range tests {
		t.Run(strings.Join(tt.args, " "), func(t *testing.T) {
			var out bytes.Buffer
			err := run(context.Background(), append([]string{"--socket", sock}, tt.args...), nil, &out)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v, want %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			got := out.String()
			if strings.Contains(strings.Join(tt.args, " "), "json") || tt.args[0] == "get" || tt.args[1] == "cancel" {
				if !strings.Contains(got, tt.wantOut) {
					t.Fatalf("output %q, want it to contain %q", got, tt.wantOut)
				}
				return
			}
			if got != tt.wantOut {
				t.Fatalf("output\n%s\nwant\n%s", got, tt.wantOut)
			}
		})
	}
}
