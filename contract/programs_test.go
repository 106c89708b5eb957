package contract

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// The table is the one place programs are declared; its entries must be usable as they stand.
func TestProgramsTable(t *testing.T) {
	names, ids, paths := map[string]bool{}, map[string]bool{}, map[string]bool{}
	for _, p := range Programs() {
		switch {
		case names[p.Name]:
			t.Errorf("program %s declared twice", p.Name)
		case paths[p.Path]:
			t.Errorf("program %s: path %s used twice", p.Name, p.Path)
		case !strings.HasPrefix(p.Path, "/"):
			t.Errorf("program %s: path %q is not absolute", p.Name, p.Path)
		case btoi(p.Main != "")+btoi(p.Package != "")+btoi(p.Component != "") != 1:
			t.Errorf("program %s: give exactly one of Main (built), Package (from Debian) and Component (pinned Go component)", p.Name)
		case p.Service != nil && (p.Service.Ready == ReadyWhenListening) != (p.Service.Socket != ""):
			t.Errorf("program %s: a Socket is what ReadyWhenListening waits for, and only that", p.Name)
		case p.Main != "" && !p.Initramfs && p.Label == "":
			t.Errorf("program %s: a built program in the root needs a Label", p.Name)
		case p.Initramfs && p.Service != nil:
			t.Errorf("program %s: the system init cannot run a program of the initramfs", p.Name)
		}
		names[p.Name], paths[p.Path] = true, true
		if p.Main != "" {
			// Main is relative to the repository root, one level up from here.
			if _, err := os.Stat(filepath.Join("..", p.Main, "main.go")); err != nil {
				t.Errorf("program %s: main package %s: %v", p.Name, p.Main, err)
			}
		}
		if s := p.Service; s != nil {
			if ids[s.ID] {
				t.Errorf("service %s declared twice", s.ID)
			}
			// A dependency comes earlier in the table, so start order and dependencies agree.
			for _, d := range s.Depends {
				if !ids[d] {
					t.Errorf("service %s depends on %s, which is not a service declared before it", s.ID, d)
				}
			}
			ids[s.ID] = true
			if _, err := FindService(s.ID); err != nil {
				t.Error(err)
			}
		}
	}
	if _, err := FindProgram("nope"); err == nil {
		t.Error("FindProgram of an unknown name succeeded")
	}
	got := strings.Join(ServicesOf([]string{"apiserver", "console-shell", "netconf", "apiclient"}), ",")
	if got != "network,apiserver,console-shell" {
		t.Errorf("ServicesOf = %s, want table order network,apiserver,console-shell", got)
	}
}

func btoi(b bool) int {
	if b {
		return 1
	}
	return 0
}
