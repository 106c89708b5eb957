package hostctr

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"

	containerd "github.com/containerd/containerd/v2/client"

	"github.com/ballast-os/ballast/contract"
	"github.com/ballast-os/ballast/init/marker"
)

// bootstrap runs the bootstrap containers due this boot, one after another in name order, each to
// completion. A container in mode once that succeeded is recorded in DoneFile with its
// configuration, and does not run again until that changes. The error names an essential
// container that failed; a failure of another one is reported and the boot goes on.
func (m *Manager) bootstrap(ctx context.Context, cfg contract.ContainersConfig) error {
	for _, b := range m.bootstrapDue(cfg) {
		bc, d := b.bc, b.d
		st := contract.ServiceStatus{ID: bc.Name, Kind: contract.KindBootstrapContainer, State: "running"}
		m.setStatus(st)
		m.console("bootstrap container %s: starting", bc.Name)
		code, err := m.runOnce(ctx, d, func(t containerd.Task, label string) {
			st.Pid, st.Label = int(t.Pid()), label
			m.setStatus(st)
		})
		st.Pid, st.Label = 0, ""
		switch {
		case err != nil:
			st.State, st.Error = "failed", err.Error()
		case code != 0:
			st.State, st.LastExit = "failed", exitText(code)
			err = errors.New(st.LastExit)
		default:
			st.State, st.LastExit = "finished", exitText(code)
		}
		m.setStatus(st)
		if ctx.Err() != nil {
			return ctx.Err()
		}
		if err == nil {
			m.console("bootstrap container %s: finished", bc.Name)
			if bc.Mode == "once" {
				done := m.loadDone()
				done[bc.Name] = d.hash
				m.saveDone(done)
			}
			continue
		}
		if bc.Essential {
			m.console("bootstrap container %s (essential) failed: %v", bc.Name, err)
			return fmt.Errorf("essential bootstrap container %s failed: %w", bc.Name, err)
		}
		m.console("bootstrap container %s failed: %v; the boot goes on (not essential)", bc.Name, err)
	}
	return nil
}

type dueBootstrap struct {
	bc contract.BootstrapContainer
	d  desired
}

// bootstrapDue lists the bootstrap containers to run this boot, in name order: those in mode
// always, and those in mode once whose configuration has not completed before.
func (m *Manager) bootstrapDue(cfg contract.ContainersConfig) []dueBootstrap {
	done := m.loadDone()
	bcs := append([]contract.BootstrapContainer(nil), cfg.Bootstrap...)
	sort.Slice(bcs, func(i, j int) bool { return bcs[i].Name < bcs[j].Name })
	var due []dueBootstrap
	for i, bc := range bcs {
		if bc.Mode != "once" && bc.Mode != "always" {
			continue
		}
		d := m.desiredBootstrap(bc, len(cfg.Host)+i, cfg.Defaults)
		if bc.Mode == "once" && done[bc.Name] == d.hash {
			continue
		}
		due = append(due, dueBootstrap{bc, d})
	}
	return due
}

func (m *Manager) loadDone() map[string]string {
	done := map[string]string{}
	if m.DoneFile == "" {
		return done
	}
	b, err := os.ReadFile(m.DoneFile)
	if err == nil {
		if err := json.Unmarshal(b, &done); err != nil {
			m.printf("containers: %s: %v; running every bootstrap container in mode once", m.DoneFile, err)
			done = map[string]string{}
		}
	}
	return done
}

func (m *Manager) saveDone(done map[string]string) {
	if m.DoneFile == "" {
		return
	}
	b, _ := json.Marshal(done)
	err := os.MkdirAll(filepath.Dir(m.DoneFile), 0o700)
	if err == nil {
		err = marker.Set(m.DoneFile, b)
	}
	if err != nil {
		m.printf("containers: %v", err)
	}
}
