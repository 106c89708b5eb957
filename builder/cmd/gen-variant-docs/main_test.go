package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ballast-os/ballast/builder/variant"
)

// TestGeneratedFilesUpToDate fails when the model or the variants changed but docs/variants.md
// was not regenerated.
func TestGeneratedFilesUpToDate(t *testing.T) {
	stale, err := run("../../..", false)
	if err != nil {
		t.Fatal(err)
	}
	if stale {
		t.Fatalf("%s is stale; regenerate with: %s", docsPath, variant.GeneratedBy)
	}
}

// The reference has every key with its doc comment and every variant; a key without a doc
// comment is an error, and so is a variant file that does not load.
func TestGenerate(t *testing.T) {
	md, err := generate("../../..")
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		"| `kernel.hardware-modules` | list of strings | none |",
		"| `console.serial` | string |",
		"| `userdata.sources` | list of strings |",
		"`\"ami\"` needs `\"vmdk\"`",
		"| `metal` |", "| `aws` |", "| `vmware` |",
		"## [console]\n\nConsole is the [console] table",
	} {
		if !strings.Contains(string(md), want) {
			t.Errorf("reference lacks %q", want)
		}
	}

	// A copy of the tree whose model lost a doc comment, and one with a broken variant.
	copyTree := func(t *testing.T) string {
		root := t.TempDir()
		for _, dir := range []string{modelDir, variantsDir} {
			files, _ := filepath.Glob(filepath.Join("../../..", dir, "*"))
			os.MkdirAll(filepath.Join(root, dir), 0o755)
			for _, f := range files {
				b, err := os.ReadFile(f)
				if err != nil {
					t.Fatal(err)
				}
				os.WriteFile(filepath.Join(root, dir, filepath.Base(f)), b, 0o644)
			}
		}
		return root
	}
	root := copyTree(t)
	model := filepath.Join(root, modelDir, "variant.go")
	b, _ := os.ReadFile(model)
	os.WriteFile(model, []byte(strings.Replace(string(b), "\t// VGA adds the screen (console=tty0).\n", "", 1)), 0o644)
	if _, err := generate(root); err == nil || !strings.Contains(err.Error(), "Console.VGA (key console.vga) has no doc comment") {
		t.Errorf("undocumented key: %v", err)
	}
	root = copyTree(t)
	os.WriteFile(filepath.Join(root, variantsDir, "broken.toml"), []byte("name = \"broken\"\n"), 0o644)
	if _, err := generate(root); err == nil || !strings.Contains(err.Error(), "broken.toml") {
		t.Errorf("broken variant: %v", err)
	}
}
