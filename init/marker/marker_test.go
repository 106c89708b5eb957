package marker

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"
)

func TestWait(t *testing.T) {
	tests := []struct {
		name    string
		before  bool          // set before Wait starts
		after   time.Duration // set this long after Wait starts; 0: never
		timeout time.Duration
		want    error
	}{
		{name: "already set", before: true, timeout: time.Second},
		{name: "set while waiting", after: 50 * time.Millisecond, timeout: 10 * time.Second},
		{name: "never set", timeout: 100 * time.Millisecond, want: context.DeadlineExceeded},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			path := filepath.Join(dir, "done")
			if tc.before {
				if err := Set(path, []byte("x")); err != nil {
					t.Fatal(err)
				}
			}
			if tc.after > 0 {
				timer := time.AfterFunc(tc.after, func() {
					// An unrelated file first: it must not end the wait.
					os.WriteFile(filepath.Join(dir, "other"), nil, 0o644)
					if err := Set(path, []byte("x")); err != nil {
						t.Error(err)
					}
				})
				defer timer.Stop()
			}
			ctx, cancel := context.WithTimeout(context.Background(), tc.timeout)
			defer cancel()
			start := time.Now()
			err := Wait(ctx, path)
			if !errors.Is(err, tc.want) {
				t.Fatalf("Wait = %v, want %v", err, tc.want)
			}
			if tc.after > 0 && time.Since(start) < tc.after {
				t.Errorf("Wait returned after %v, before the marker was set (%v)", time.Since(start), tc.after)
			}
			if tc.want == nil {
				if _, err := os.Stat(path); err != nil {
					t.Errorf("Wait returned but %v", err)
				}
			}
		})
	}
}

func TestWaitMissingDir(t *testing.T) {
	err := Wait(context.Background(), filepath.Join(t.TempDir(), "nope", "done"))
	if err == nil {
		t.Fatal("Wait on a missing directory returned nil")
	}
}

func TestSetLeavesNoTemporary(t *testing.T) {
	dir := t.TempDir()
	if err := Set(filepath.Join(dir, "done"), []byte("ok\n")); err != nil {
		t.Fatal(err)
	}
	ents, _ := os.ReadDir(dir)
	if len(ents) != 1 || ents[0].Name() != "done" {
		t.Errorf("directory holds %v, want only done", ents)
	}
}
