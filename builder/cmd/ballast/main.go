// Command ballast builds Ballast images: `ballast build --variant qemu`.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"strings"

	"github.com/ballast-os/ballast/builder/pipeline"
	"github.com/ballast-os/ballast/builder/progress"
	"github.com/ballast-os/ballast/builder/variant"
	"github.com/ballast-os/ballast/contract"
)

func usage() {
	fmt.Fprintf(os.Stderr, `usage: ballast build [--variant NAME | --variant-file PATH] [--arch A|all] [--version V] [--format raw,qcow2,...]
                    [--out DIR] [--mirror URL] [--repo DIR] [--force] [--work-cache DIR] [--netboot-url URL]
       ballast lock [--repo DIR]
       ballast keys init DIR [--name NAME]
       ballast iso --build DIR --user-data FILE --out FILE

build builds variants/NAME.toml (default qemu), or the variant file at PATH (kept anywhere: its
name = "..." names the variant), into DIR: disk.raw, manifest.json, sbom.spdx.json and the update
payload, update/payload.json with its files. DIR defaults to build/NAME, or build/NAME-V with
--version, which stands in for the VERSION file. --arch builds for one of the variant's
architectures (its arch list; default the first) or "all" of them; an architecture other than amd64
goes to build/NAME-ARCH. The Debian mirror defaults to
$BALLAST_DEBIAN_MIRROR or %s;
downloads are cached in $BALLAST_CACHE (default ~/.cache/ballast). --work-cache DIR keeps what the
build derives (built Go components, unpacked packages) in DIR instead; an empty DIR makes every
derived step run again while verified downloads stay shared (make repro does that).

lock refreshes packages/debian.lock from Debian's signed archive index (keys in packages/keys) for
every variant and each architecture it lists: its kernel, the UKI stub and its Debian packages with
all their dependencies.

keys init makes an owner's Secure Boot keys (PK, KEK, db) and PCR signing key in DIR, for a
variant's [secure-boot] keys; see DIR/README.txt for which keys belong offline.

iso writes a copy of a build's installer ISO (a variant with the iso format) that carries user
data for every host it installs, e.g. a site's settings; DIR is the build's output directory.
`, "http://deb.debian.org/debian")
}

// commands are the subcommands by name.
var commands = map[string]func(args []string){
	"build": buildMain,
	"lock":  lockMain,
	"repo":  repoMain,
	"keys":  keysMain,
	"iso":   isoMain,
}

func main() {
	if len(os.Args) < 2 || commands[os.Args[1]] == nil {
		usage()
		os.Exit(2)
	}
	commands[os.Args[1]](os.Args[2:])
}

func buildMain(args []string) {
	fs := flag.NewFlagSet("build", flag.ExitOnError)
	fs.Usage = usage
	v := fs.String("variant", "qemu", "variant name")
	variantFile := fs.String("variant-file", "", "a variant file kept anywhere, instead of --variant")
	version := fs.String("version", "", "the image's version (default: the VERSION file)")
	arch := fs.String("arch", "", `architecture: amd64, arm64, or "all" of the variant's (default: the variant's first)`)
	out := fs.String("out", "", "output directory")
	mirror := fs.String("mirror", os.Getenv("BALLAST_DEBIAN_MIRROR"), "Debian mirror URL")
	repo := fs.String("repo", ".", "repository root")
	force := fs.Bool("force", false, "rebuild even if the outputs are up to date")
	workCache := fs.String("work-cache", "", "cache of derived artifacts (default: the download cache)")
	formats := fs.String("format", "", "comma-separated formats (raw, qcow2, vmdk, vhd, gce, ova, ami, iso, netboot); default: the variant's")
	netbootURL := fs.String("netboot-url", "", "the URL netboot/ will be served from, baked into the netboot UKI's command line")
	fs.Parse(args)
	if fs.NArg() > 0 {
		fmt.Fprintf(os.Stderr, "ballast build: unexpected argument %q\n", fs.Arg(0))
		os.Exit(2)
	}
	// --variant's default gives way to a variant file; both given must agree (the pipeline checks).
	if *variantFile != "" && !flagSet(fs, "variant") {
		*v = ""
	}

	root, err := filepath.Abs(*repo)
	if err != nil {
		fmt.Fprintln(os.Stderr, "ballast:", err)
		os.Exit(1)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	archs, err := buildArchs(root, *v, *variantFile, *arch)
	if err != nil {
		fmt.Fprintln(os.Stderr, "ballast build:", err)
		os.Exit(2)
	}
	if len(archs) > 1 && *out != "" {
		fmt.Fprintln(os.Stderr, "ballast build: --out names one directory: give --arch too, or leave --out out")
		os.Exit(2)
	}
	for _, a := range archs {
		_, err = pipeline.Build(ctx, pipeline.Options{
			Repo: root, Variant: *v, VariantFile: *variantFile, Arch: a, Version: *version, Out: *out, Mirror: *mirror,
			Force: *force, Formats: splitList(*formats), WorkCache: *workCache, Progress: progress.ForStderr(),
			NetbootURL: strings.TrimRight(*netbootURL, "/"),
		})
		if err != nil {
			fmt.Fprintf(os.Stderr, "ballast: build failed (%s): %v\n", a, err)
			os.Exit(1)
		}
	}
}

// buildArchs is what --arch asks for: one architecture, every one the variant lists ("all"), or
// ("") the pipeline's default, its first. A name the variant does not list is the pipeline's to
// refuse, with the variant file named.
func buildArchs(repo, name, file, flag string) ([]contract.Arch, error) {
	switch flag {
	case "":
		return []contract.Arch{""}, nil
	case "all":
		path := file
		if path == "" {
			path = filepath.Join(repo, "variants", name+".toml")
		}
		v, err := variant.LoadFile(path)
		if err != nil {
			return nil, err
		}
		return v.ArchList(), nil
	}
	a, err := contract.ParseArch(flag)
	if err != nil {
		return nil, fmt.Errorf("--arch: %w", err)
	}
	return []contract.Arch{a}, nil
}

func flagSet(fs *flag.FlagSet, name string) bool {
	set := false
	fs.Visit(func(f *flag.Flag) { set = set || f.Name == name })
	return set
}

func lockMain(args []string) {
	fs := flag.NewFlagSet("lock", flag.ExitOnError)
	fs.Usage = usage
	repo := fs.String("repo", ".", "repository root")
	fs.Parse(args)
	root, err := filepath.Abs(*repo)
	if err == nil {
		ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
		defer stop()
		err = pipeline.Lock(ctx, root, func(format string, a ...any) { fmt.Fprintf(os.Stderr, "ballast: "+format+"\n", a...) })
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "ballast: lock failed:", err)
		os.Exit(1)
	}
}

func splitList(s string) []string {
	var out []string
	for _, f := range strings.Split(s, ",") {
		if f = strings.TrimSpace(f); f != "" {
			out = append(out, f)
		}
	}
	return out
}
