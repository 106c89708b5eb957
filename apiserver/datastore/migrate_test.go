package datastore

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ballast-os/ballast/apiserver/settings"
)

// format3 stands in for a newer build's layout change: format 3 renames the state file's
// "pending" to "transactions" and records who wrote it in "meta", which format 2 cannot hold,
// so its Down keeps it in "preserved" and its Up restores it.
func format3() []Migration {
	return []Migration{{
		From: 2,
		Name: "pending-to-transactions",
		Up: func(st map[string]any) error {
			if p, ok := st["pending"]; ok {
				st["transactions"] = p
				delete(st, "pending")
			}
			meta := map[string]any{"writer": "format-3 build"}
			if kept, ok := st["preserved"].(map[string]any); ok {
				if m, ok := kept["meta"]; ok {
					meta = m.(map[string]any)
					delete(kept, "meta")
					if len(kept) == 0 {
						delete(st, "preserved")
					}
				}
			}
			st["meta"] = meta
			st["format"] = json.Number("3")
			return nil
		},
		Down: func(st map[string]any) error {
			if p, ok := st["transactions"]; ok {
				st["pending"] = p
				delete(st, "transactions")
			}
			if m, ok := st["meta"]; ok {
				kept, _ := st["preserved"].(map[string]any)
				if kept == nil {
					kept = map[string]any{}
				}
				kept["meta"] = m
				st["preserved"] = kept
				delete(st, "meta")
			}
			st["format"] = json.Number("2")
			return nil
		},
	}}
}

// openNewer opens dir as a newer build at format 3 would. Its decoder reads format 2's layout,
// so it reads and writes format 3 through the migration (Store.toLayout); what the test proves
// is what matters for a rollback: the files each build writes and reads.
func openNewer(t *testing.T, dir string) *Store {
	t.Helper()
	s, _ := open(t, dir, WithFormat(3, format3()))
	return s
}

func readJSON(t *testing.T, path string) map[string]any {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	return m
}

func TestMigrationRoundTrip(t *testing.T) {
	dir := t.TempDir()
	motd := func(v string) settings.Settings { return settings.Settings{Motd: ptr(v)} }

	// The older build (format 2) writes a setting.
	old, _ := open(t, dir)
	if err := old.Stage(DefaultTx, motd("set on v1")); err != nil {
		t.Fatal(err)
	}
	if _, _, err := old.Commit(DefaultTx); err != nil {
		t.Fatal(err)
	}
	old.Close()

	// The newer build migrates up, changes the setting and stages another.
	newer := openNewer(t, dir)
	if got := string(newer.LiveJSON()); got != `{"motd":"set on v1"}` {
		t.Fatalf("after Up: live = %s", got)
	}
	if err := newer.Stage(DefaultTx, motd("set on v2")); err != nil {
		t.Fatal(err)
	}
	if _, _, err := newer.Commit(DefaultTx); err != nil {
		t.Fatal(err)
	}
	if err := newer.Stage("later", settings.Settings{Network: &settings.Network{Hostname: ptr(settings.Hostname("h2"))}}); err != nil {
		t.Fatal(err)
	}
	newer.Close()
	st := readJSON(t, filepath.Join(dir, stateFile))
	if st["format"] != float64(3) || st["transactions"] == nil || st["pending"] != nil || st["meta"] == nil {
		t.Fatalf("format 3 state.json = %v", st)
	}
	compat := readJSON(t, filepath.Join(dir, compatFile(2)))
	if compat["format"] != float64(2) || compat["pending"] == nil {
		t.Fatalf("state.2.json = %v", compat)
	}

	// Rollback: the older build reads its compat copy, with the newer build's changes.
	old, _ = open(t, dir)
	if got := string(old.LiveJSON()); got != `{"motd":"set on v2"}` {
		t.Fatalf("after rollback: live = %s", got)
	}
	if got := old.Transactions(); len(got) != 1 || got[0] != "later" {
		t.Fatalf("after rollback: transactions = %q", got)
	}
	st = readJSON(t, filepath.Join(dir, stateFile))
	if st["format"] != float64(2) {
		t.Fatalf("the older build did not take state.json back: %v", st)
	}
	if _, err := os.Stat(filepath.Join(dir, compatFile(2))); !os.IsNotExist(err) {
		t.Fatalf("stale compat copy left: %v", err)
	}
	if err := old.Stage(DefaultTx, motd("set after rollback")); err != nil {
		t.Fatal(err)
	}
	if _, _, err := old.Commit(DefaultTx); err != nil {
		t.Fatal(err)
	}
	old.Close()

	// The newer build again: the change made after the rollback and its own meta are there.
	newer = openNewer(t, dir)
	if got := string(newer.LiveJSON()); got != `{"motd":"set after rollback"}` {
		t.Fatalf("after the second Up: live = %s", got)
	}
	newer.Close()
	st = readJSON(t, filepath.Join(dir, stateFile))
	if meta, _ := st["meta"].(map[string]any); meta["writer"] != "format-3 build" || st["preserved"] != nil {
		t.Fatalf("meta did not survive the round trip: %v", st)
	}
}

func TestPreservesNewerSettings(t *testing.T) {
	dir := t.TempDir()
	// As a newer build with a setting this one lacks, and a type this one reads differently.
	state := `{"format":2,"live":{"motd":"hi","motto":"from v2","network":{"hostname":"h","future":{"x":1}}},` +
		`"pending":{"default":{"motd":1}}}`
	if err := os.WriteFile(filepath.Join(dir, stateFile), []byte(state), 0o600); err != nil {
		t.Fatal(err)
	}
	s, _ := open(t, dir)
	if got := string(s.LiveJSON()); got != `{"motd":"hi","network":{"hostname":"h"}}` {
		t.Fatalf("live = %s", got)
	}
	if err := s.Stage("other", settings.Settings{Motd: ptr("staged")}); err != nil {
		t.Fatal(err)
	}
	if err := s.Discard(DefaultTx); err != nil {
		t.Fatal(err)
	}
	s.Close()
	st := readJSON(t, filepath.Join(dir, stateFile))
	got, _ := json.Marshal(st["preserved"])
	if want := `{"live":{"motto":"from v2","network":{"future":{"x":1}}}}`; string(got) != want {
		t.Fatalf("preserved = %s, want %s (the discarded transaction's part dropped)", got, want)
	}
	// A build that knows the key again gets it back; here the model still lacks it, so it stays.
	s, _ = open(t, dir)
	if !strings.Contains(fmt.Sprint(s.snap.Load().preserved), "from v2") {
		t.Fatal("preserved lost on reopen")
	}
}
