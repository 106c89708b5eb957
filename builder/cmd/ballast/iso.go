package main

import (
	"flag"
	"fmt"
	"os"

	"github.com/ballast-os/ballast/builder/pipeline"
)

// isoMain writes a copy of a build's installer ISO that carries user data.
func isoMain(args []string) {
	fs := flag.NewFlagSet("iso", flag.ExitOnError)
	fs.Usage = usage
	build := fs.String("build", "", "the build's output directory (a variant with the iso format)")
	userData := fs.String("user-data", "", "user data (TOML) for every host the ISO installs")
	out := fs.String("out", "", "the ISO to write")
	fs.Parse(args)
	if fs.NArg() > 0 || *build == "" || *userData == "" || *out == "" {
		fmt.Fprintln(os.Stderr, "ballast iso: --build, --user-data and --out are required")
		os.Exit(2)
	}
	data, err := os.ReadFile(*userData)
	if err != nil {
		fmt.Fprintln(os.Stderr, "ballast iso:", err)
		os.Exit(1)
	}
	if err := pipeline.InstallerISO(*build, data, *userData, *out); err != nil {
		fmt.Fprintln(os.Stderr, "ballast iso:", err)
		os.Exit(1)
	}
	fmt.Printf("ballast: wrote %s\n", *out)
}
