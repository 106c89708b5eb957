package gocomponents

import (
	"debug/elf"
	"fmt"
)

// checkStatic fails unless the ELF file is code for goarch that needs no dynamic loader and no
// shared library: Ballast's root has no C library, so a dynamic binary (or one for another
// machine) would only fail at run time on the target.
func checkStatic(name, goarch string) error {
	a, err := archOf(goarch)
	if err != nil {
		return err
	}
	f, err := elf.Open(name)
	if err != nil {
		return fmt.Errorf("%s: reading ELF: %w", name, err)
	}
	defer f.Close()
	if want := elf.Machine(a.Info().ELFMachine); f.Machine != want {
		return fmt.Errorf("%s is %s code, not %s (%s)", name, f.Machine, goarch, want)
	}
	for _, p := range f.Progs {
		if p.Type == elf.PT_INTERP {
			return fmt.Errorf("%s is dynamically linked (it asks for a program interpreter)", name)
		}
	}
	libs, err := f.ImportedLibraries()
	if err != nil {
		return fmt.Errorf("%s: %w", name, err)
	}
	if len(libs) > 0 {
		return fmt.Errorf("%s is dynamically linked against %v", name, libs)
	}
	return nil
}
