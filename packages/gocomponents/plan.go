package gocomponents

import (
	"fmt"
	"maps"
	"slices"
	"strings"
)

// step is one `go build` of one binary. Everything in it is part of the cache key, so it holds only
// what decides the output's bytes: never the host paths of caches or temporary directories.
type step struct {
	Binary string
	Args   []string // go build arguments, without -o
	Env    []string // fixed build environment, sorted
}

// plan turns a component into its go build steps for goarch, with the C toolchain of triplet
// (crossTriplet; "" for the host's own) when it uses cgo. One step per binary keeps each binary's flags
// exact (the containerd shim has its own tags); the shared GOCACHE makes later steps reuse the
// packages the first one compiled.
func plan(c Component, goarch, triplet string) []step {
	env := []string{
		"CGO_ENABLED=0",
		"GOOS=linux",
		"GOARCH=" + goarch,
		// Micro-architecture levels change the code the compiler emits; pin the baseline.
		"GOAMD64=v1",
		"GOARM64=v8.0",
		"GOEXPERIMENT=",
		// The module's own go.sum checks every dependency; readonly makes a missing sum an error
		// instead of a silent lookup.
		"GOFLAGS=-mod=readonly -modcacherw",
		"GOWORK=off",
		// Never switch to a toolchain downloaded at build time: the key names the local one.
		"GOTOOLCHAIN=local",
	}
	ldflags := []string{"-s", "-w", "-buildid="}
	for _, v := range c.VersionVars {
		ldflags = append(ldflags, "-X", v+"="+c.Version)
	}
	// Sorted, so the map's order cannot change the key.
	for _, v := range slices.Sorted(maps.Keys(c.StringVars)) {
		ldflags = append(ldflags, "-X", v+"="+c.StringVars[v])
	}
	args := []string{"build", "-trimpath", "-buildvcs=false"}
	if c.CGO {
		env[0] = "CGO_ENABLED=1"
		env = append(env, "CC="+cCompilerFor(triplet), "CGO_CFLAGS=", "CGO_CPPFLAGS=", "CGO_LDFLAGS=")
		env = append(env, pkgConfigEnv(triplet)...)
		// The image has no C library to load, so cgo binaries are linked static; static-pie keeps
		// address-space randomisation for programs like runc that run as root on untrusted input.
		args = append(args, "-buildmode=pie")
		ldflags = append(ldflags, "-linkmode=external", "-extldflags=-static-pie")
	}
	slices.Sort(env)
	var steps []step
	for _, b := range c.Binaries {
		a := slices.Clone(args)
		if tags := buildTags(c.Tags, b.Tags); len(tags) > 0 {
			a = append(a, "-tags="+strings.Join(tags, ","))
		}
		a = append(a, "-ldflags="+strings.Join(ldflags, " "), b.Package)
		steps = append(steps, step{Binary: b.Name, Args: a, Env: env})
	}
	return steps
}

// buildTags merges component and binary tags; order and repeats mean nothing to go build, so they
// are normalised and cannot change the cache key.
func buildTags(sets ...[]string) []string {
	var all []string
	for _, s := range sets {
		all = append(all, s...)
	}
	slices.Sort(all)
	return slices.Compact(all)
}

// String shows a step as a command line, for logs and errors.
func (s step) String() string {
	return fmt.Sprintf("%s go %s", strings.Join(s.Env, " "), strings.Join(s.Args, " "))
}
