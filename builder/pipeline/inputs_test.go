package pipeline

import (
	"os/exec"
	"slices"
	"strings"
	"testing"

	"github.com/ballast-os/ballast/contract"
)

// Every package a program of the table is built from lies in inputDirs: a change to one that did
// not would leave the next build "up to date" with the old binary in it.
func TestInputDirsCoverPrograms(t *testing.T) {
	const module = "github.com/ballast-os/ballast/"
	var mains []string
	for _, p := range contract.Programs() {
		if p.Main != "" {
			mains = append(mains, p.Main)
		}
	}
	cmd := exec.Command("go", append([]string{"list", "-deps", "-f", "{{.ImportPath}}"}, mains...)...)
	cmd.Dir = "../.."
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("go list: %v", err)
	}
	for _, pkg := range strings.Fields(string(out)) {
		rel, ok := strings.CutPrefix(pkg, module)
		if !ok {
			continue
		}
		top, _, _ := strings.Cut(rel, "/")
		if !slices.Contains(inputDirs, top) {
			t.Errorf("%s is built into the image, but %s/ is not among the build's inputs %v", pkg, top, inputDirs)
		}
	}
}
