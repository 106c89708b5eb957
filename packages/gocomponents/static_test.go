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
		name   string
		file   string
		goarch string
		want   string // substring of the error; static binaries are covered by the build test
	}{
		{"dynamic", "/bin/sh", "amd64", "dynamically linked"},
		{"other machine", "/bin/sh", "arm64", "sh is EM_X86_64 code, not arm64 (EM_AARCH64)"},
		{"unknown architecture", "/bin/sh", "mips", "GOARCH mips is not one of"},
		{"not ELF", notELF, "amd64", "script: reading ELF"},
		{"missing", filepath.Join(t.TempDir(), "nothing"), "amd64", "no such file"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tt.file == "/bin/sh" {
				_, err := os.Stat(tt.file)
				testutil.Need(t, err == nil, "a dynamically linked /bin/sh: %v", err)
			}
			err := checkStatic(tt.file, tt.goarch)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("checkStatic(%s, %s) = %v, want an error containing %q", tt.file, tt.goarch, err, tt.want)
			}
		})
	}
}
