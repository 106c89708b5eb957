package format

import (
	"fmt"
	"os"
	"path/filepath"
)

// writeAtomically runs write on a temporary file beside path and renames it
// to path once write succeeds, so a failed or interrupted conversion never
// leaves a file that looks complete.
func writeAtomically(path string, write func(out outFile, name string) error) (err error) {
	dir, name := filepath.Split(path)
	if dir == "" {
		dir = "."
	}
	tmp, err := os.CreateTemp(dir, "."+name+".*.tmp")
	if err != nil {
		return fmt.Errorf("create output: %w", err)
	}
	defer func() {
		if err != nil {
			tmp.Close()
			os.Remove(tmp.Name())
		}
	}()
	// CreateTemp makes the file private; an image is an ordinary artifact.
	if err := tmp.Chmod(0o644); err != nil {
		return fmt.Errorf("create output: %w", err)
	}
	if err := write(tmp, name); err != nil {
		return err
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("write output %s: %w", tmp.Name(), err)
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return fmt.Errorf("write output: %w", err)
	}
	return nil
}
