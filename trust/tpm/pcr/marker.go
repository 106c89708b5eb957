package pcr

import "crypto/sha256"

// Marker is a fixed event string extended into a PCR to close a door: once PCR 11 carries it, no
// signed PCR 11 policy matches any more, so whatever runs afterwards cannot unseal the disk key.
type Marker string

// LeaveInitrd is the event Ballast extends PCR 11 with after unlocking the disk, before starting
// userspace.
const LeaveInitrd Marker = "ballast: leave-initrd"

// Digest is what is extended: the sha256 of the event string, without a terminating NUL (the
// convention systemd-pcrphase uses for its own boot phase words, so tools that know those
// compute ours the same way).
func (m Marker) Digest() Value { return sha256.Sum256([]byte(m)) }

// After returns the value a PCR holding v has once the marker is extended into it.
func (m Marker) After(v Value) Value { return Extend(v, m.Digest()) }
