package settings

import (
	"fmt"
	"strings"
)

// Size limits. They bound what the datastore and /etc hold, whatever the source of a value.
const (
	MaxMotdBytes      = 4096
	MaxHostnameBytes  = 253
	MaxHostLabelBytes = 63
)

// Validate checks the values of the keys set in s. Decoding calls it, so Settings from this package
// are always valid; the datastore calls it again on the merged result so that rules spanning several
// keys have one place to live.
func (s Settings) Validate() error {
	if s.Motd != nil {
		if err := checkMotd(*s.Motd); err != nil {
			return keyErr([]string{Prefix, "motd"}, err)
		}
	}
	if s.Network != nil && s.Network.Hostname != nil {
		if err := CheckHostname(*s.Network.Hostname); err != nil {
			return keyErr([]string{Prefix, "network", "hostname"}, err)
		}
	}
	return nil
}

func checkMotd(m string) error {
	if len(m) > MaxMotdBytes {
		return fmt.Errorf("%d bytes is more than the %d allowed", len(m), MaxMotdBytes)
	}
	if strings.ContainsRune(m, 0) {
		return fmt.Errorf("contains a NUL byte")
	}
	return nil
}

// CheckHostname reports whether h is a host name per RFC 1123: dot-separated labels of letters,
// digits and hyphens, each 1-63 bytes and not starting or ending with a hyphen, 253 bytes at most.
// A trailing dot is refused: sethostname(2) and /etc/hostname want the name without it.
func CheckHostname(h string) error {
	if h == "" {
		return fmt.Errorf("must not be empty")
	}
	if len(h) > MaxHostnameBytes {
		return fmt.Errorf("%d bytes is more than the %d allowed", len(h), MaxHostnameBytes)
	}
	for i, label := range strings.Split(h, ".") {
		if label == "" {
			return fmt.Errorf("%q: label %d is empty", h, i+1)
		}
		if len(label) > MaxHostLabelBytes {
			return fmt.Errorf("%q: label %q is %d bytes, more than the %d allowed", h, label, len(label), MaxHostLabelBytes)
		}
		if label[0] == '-' || label[len(label)-1] == '-' {
			return fmt.Errorf("%q: label %q starts or ends with a hyphen", h, label)
		}
		for _, r := range label {
			if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-') {
				return fmt.Errorf("%q: label %q has %q; only letters, digits and hyphens are allowed", h, label, r)
			}
		}
	}
	return nil
}
