package gocomponents

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
)

// keySchema is bumped whenever the build recipe changes in a way the inputs below do not show
// (e.g. a new check on the outputs), so old cache entries are not reused.
const keySchema = 1

// keyInputs is everything that decides a component's binaries. Install paths and the test-only
// and dev-only flags are left out on purpose: they do not change a binary's bytes. String
// variables are in the steps' -ldflags.
type keyInputs struct {
	Schema    int
	Name      string
	Module    string
	Version   string
	Sum       string
	PkgConfig []string `json:",omitempty"`
	// Wrapper is the hash of the wrapper module's go.mod and go.sum; empty (and left out, so
	// the keys of other components stay what they were) when the module is built as itself.
	Wrapper   string `json:",omitempty"`
	Toolchain toolchain
	Steps     []step
}

// cacheKey is the hex sha256 of the component's build inputs.
func cacheKey(c Component, goarch string, tc toolchain) string {
	in := keyInputs{
		Schema:    keySchema,
		Name:      c.Name,
		Module:    c.Module,
		Version:   c.Version,
		Sum:       c.Sum,
		PkgConfig: c.PkgConfig,
		Wrapper:   c.wrapper.hash(),
		Toolchain: tc,
		Steps:     plan(c, goarch, tc.Target),
	}
	// Marshalling plain structs, slices and string maps cannot fail, and map keys are sorted, so
	// the encoding is stable.
	b, _ := json.Marshal(in)
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:])
}
