// Package initramfs is the initramfs init's work: from the kernel command line to a verified, read-only
// root with /local, /etc and /var prepared, then switch_root to the system init.
package initramfs

import (
	"encoding/hex"
	"fmt"
	"regexp"
	"strconv"
	"strings"
)

// Params is what the initramfs takes from the kernel command line (docs/contracts.md). The command
// line is part of the UKI, so these values are as trusted as the UKI itself.
type Params struct {
	RootHash   string
	Salt       string
	Blocks     uint64
	Slot       string
	RootUUID   string
	VerityUUID string
	DataUUID   string
}

var (
	uuidRE = regexp.MustCompile(`^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$`)
	hexRE  = regexp.MustCompile(`^([0-9a-f]{2})+$`)
)

// ParseCmdline reads Params from /proc/cmdline text; errors name the missing or malformed word.
func ParseCmdline(cmdline string) (Params, error) {
	kv := map[string]string{}
	for _, w := range strings.Fields(cmdline) {
		k, v, _ := strings.Cut(w, "=")
		kv[k] = v
	}
	var p Params
	get := func(key string, re *regexp.Regexp, dst *string) error {
		v, ok := kv[key]
		if !ok {
			return fmt.Errorf("kernel command line: %s= missing", key)
		}
		v = strings.ToLower(v)
		if re != nil && !re.MatchString(v) {
			return fmt.Errorf("kernel command line: %s=%q is malformed", key, v)
		}
		*dst = v
		return nil
	}
	for _, f := range []struct {
		key string
		re  *regexp.Regexp
		dst *string
	}{
		{"roothash", hexRE, &p.RootHash},
		{"ballast.verity.salt", hexRE, &p.Salt},
		{"ballast.slot", regexp.MustCompile(`^[ab]$`), &p.Slot},
		{"ballast.root", uuidRE, &p.RootUUID},
		{"ballast.verity", uuidRE, &p.VerityUUID},
		{"ballast.data", uuidRE, &p.DataUUID},
	} {
		if err := get(f.key, f.re, f.dst); err != nil {
			return Params{}, err
		}
	}
	if b, _ := hex.DecodeString(p.RootHash); len(b) != 32 {
		return Params{}, fmt.Errorf("kernel command line: roothash=%s is not a sha256 (64 hex digits)", p.RootHash)
	}
	n, err := strconv.ParseUint(kv["ballast.verity.blocks"], 10, 64)
	if err != nil || n == 0 {
		return Params{}, fmt.Errorf("kernel command line: ballast.verity.blocks=%q is not a positive number", kv["ballast.verity.blocks"])
	}
	p.Blocks = n
	return p, nil
}
