// Command gen-settings-docs writes the files generated from the settings model: the reference
// docs/settings.md and the JSON Schema apiserver/schema/settings.schema.json. Run it from the
// module root, or through go generate ./apiserver/settings; its test fails when they are stale.
package main

import (
	"bytes"
	"flag"
	"fmt"
	"os"
	"path/filepath"

	"github.com/ballast-os/ballast/apiserver/render"
	"github.com/ballast-os/ballast/apiserver/settings"
)

// Where the generated files live, relative to the module root.
const (
	docsPath   = "docs/settings.md"
	schemaPath = "apiserver/schema/settings.schema.json"
)

func main() {
	root := flag.String("root", ".", "module root")
	check := flag.Bool("check", false, "only report whether the files are up to date (exit 1 if not)")
	flag.Parse()
	stale, err := run(*root, !*check)
	if err != nil {
		fmt.Fprintf(os.Stderr, "gen-settings-docs: %v\n", err)
		os.Exit(1)
	}
	if *check && len(stale) > 0 {
		fmt.Fprintf(os.Stderr, "gen-settings-docs: stale: %v; run %s\n", stale, settings.GeneratedBy)
		os.Exit(1)
	}
}

// generated returns each generated file's content by its path under the module root.
func generated() (map[string][]byte, error) {
	md, err := settings.Markdown(render.AppliedBy)
	if err != nil {
		return nil, err
	}
	schema, err := settings.JSONSchema()
	if err != nil {
		return nil, err
	}
	return map[string][]byte{docsPath: md, schemaPath: schema}, nil
}

// run compares the generated files with those under root and, when write is set, rewrites the
// ones that differ. It returns the paths that differed.
func run(root string, write bool) ([]string, error) {
	files, err := generated()
	if err != nil {
		return nil, err
	}
	var stale []string
	for _, rel := range []string{docsPath, schemaPath} {
		path := filepath.Join(root, rel)
		old, err := os.ReadFile(path)
		if err == nil && bytes.Equal(old, files[rel]) {
			continue
		}
		stale = append(stale, rel)
		if !write {
			continue
		}
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			return nil, err
		}
		if err := os.WriteFile(path, files[rel], 0o644); err != nil {
			return nil, err
		}
	}
	return stale, nil
}
