package main

import (
	"testing"

	"github.com/ballast-os/ballast/apiserver/settings"
)

// TestGeneratedFilesUpToDate fails when the model changed but the checked-in docs and schema
// were not regenerated.
func TestGeneratedFilesUpToDate(t *testing.T) {
	stale, err := run("../../..", false)
	if err != nil {
		t.Fatal(err)
	}
	if len(stale) > 0 {
		t.Fatalf("generated files are stale: %v; regenerate with: %s", stale, settings.GeneratedBy)
	}
}
