package gocomponents

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ballast-os/ballast/tests/testutil"
)

func TestCheckStatic(t *testing.T) {
	notELF := filepath.Join(t.TempDir(), "script")
	if err := os.WriteFile(notELF, []byte("#!/bin/sh\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		file string
		want string // substring of the error; static binaries are covered by the build test
	}{
		{"dynamic", "/bin/sh", "dynamically linked"},
		{"not ELF", notELF, "script: reading ELF"},
		{"missing", filepath.Join(t.TempDir(), "nothing"), "no such file"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tt.name == "dynamic" {
				_, err := os.Stat(tt.file)
				testutil.Need(t, err == nil, "a dynamically linked /bin/sh: %v", err)
			}
			err := checkStatic(tt.file)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("checkStatic(%s) = %v, want an error containing %q", tt.file, err, tt.want)
			}
		})
	}
}
