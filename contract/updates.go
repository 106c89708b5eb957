package contract

import (
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"time"
)

// The EFI system partition. systemd-boot is the removable-media loader (Arch.ESPLoaderPath); each
// slot's UKI is a Boot Loader Specification Type #2 entry in ESPEntries, named by Entry.FileName.
// Paths are relative to the ESP's root, with forward slashes.
const (
	ESPLoaderConf = "loader/loader.conf"
	ESPEntries    = "EFI/Linux"   // Type #2 entries: one UKI per slot
	ESPStaged     = "EFI/ballast" // UKIs written by apply, not yet entries (activate moves them)
	// ESPMount is where the system init mounts the ESP (vfat, sync, labelled esp_t) for the
	// updater and the boot blessing; efivarfs is at EFIVarsMount.
	ESPMount     = "/run/ballast/esp"
	EFIVarsMount = "/sys/firmware/efi/efivars"
	// LoaderGUID is the vendor GUID of the Boot Loader Interface's EFI variables
	// (LoaderBootCountPath, LoaderDevicePartUUID, LoaderEntrySelected ...).
	LoaderGUID = "4a67b082-0a4c-41cf-b6c7-440b29bb8c4f"
)

// DefaultTries is how many boots a newly activated entry gets before the loader gives up on it.
const DefaultTries = 3

// Places of the updater and the boot health gate on the data partition.
const (
	UpdatesDir = "/local/var/lib/ballast/updates" // the updater's state.json, TUF metadata cache, partial downloads
	// BootHistoryPath is BootHistory: what the system init decided about recent boots (blessed,
	// unhealthy and why). The updater reads it to report a rollback.
	BootHistoryPath = "/local/var/lib/ballast/boot-history.json"
	// TUFRootPath is the update repository's trusted root.json in the image.
	TUFRootPath = "/usr/lib/ballast/updates/root.json"
)

// Entry is a Type #2 boot entry's file name in ESPEntries:
//
//	ballast-<generation>-<slot>-<version>[+<left>[-<done>]].efi
//
// The UKIs' .osrel carries no ID or IMAGE_ID, so systemd-boot has no sort key for them and orders
// entries by file name alone, newest version-sort first, exhausted entries (+0) last. The
// generation grows with every activation, so the entry activated last boots first whatever its
// version (a downgrade is an activation like any other), and an exhausted one falls back to the
// entry with the next highest generation.
type Entry struct {
	Generation uint64
	Slot       Slot
	Version    string
	Counting   bool // the name carries a boot counter: the entry is on trial
	TriesLeft  int
	TriesDone  int
}

var (
	versionPattern = regexp.MustCompile(`^[0-9A-Za-z][0-9A-Za-z.~_-]{0,63}$`)
	entryPattern   = regexp.MustCompile(`^ballast-([0-9]{1,19})-([ab])-([0-9A-Za-z][0-9A-Za-z.~_-]{0,63}?)(?:\+([0-9]{1,4})(?:-([0-9]{1,4}))?)?\.efi$`)
)

// ValidateVersion accepts an image version usable in entry names and repository paths: letters,
// digits, '.', '~', '_' and '-', starting with a letter or digit, at most 64 bytes. No '+': it
// starts the boot counter.
func ValidateVersion(v string) error {
	if !versionPattern.MatchString(v) {
		return fmt.Errorf("version %q: want letters, digits, '.', '~', '_' or '-' (at most 64, no '+')", v)
	}
	return nil
}

// FileName is the entry's file name in ESPEntries.
func (e Entry) FileName() string {
	name := fmt.Sprintf("ballast-%d-%s-%s", e.Generation, e.Slot, e.Version)
	if e.Counting {
		name += "+" + strconv.Itoa(e.TriesLeft)
		if e.TriesDone > 0 {
			name += "-" + strconv.Itoa(e.TriesDone)
		}
	}
	return name + ".efi"
}

// Blessed is the entry without its boot counter: a good boot, never counted again.
func (e Entry) Blessed() Entry {
	e.Counting, e.TriesLeft, e.TriesDone = false, 0, 0
	return e
}

// Exhausted reports whether the loader has given up on the entry (sorted last, never chosen
// while another entry is left).
func (e Entry) Exhausted() bool { return e.Counting && e.TriesLeft == 0 }

// GiveUp is the entry with no tries left: what the system init renames a trial entry to when
// its userspace never became healthy, so the next boot is the previous slot's.
func (e Entry) GiveUp() Entry {
	if !e.Counting {
		return e
	}
	e.TriesDone += e.TriesLeft
	e.TriesLeft = 0
	return e
}

// ParseEntry reads an entry file name (the base name, in any case: FAT and systemd-boot do not
// keep it). Names that are not Ballast entries are an error.
func ParseEntry(name string) (Entry, error) {
	m := entryPattern.FindStringSubmatch(strings.ToLower(name))
	if m == nil {
		return Entry{}, fmt.Errorf("boot entry %q: not ballast-<generation>-<slot>-<version>[+<left>[-<done>]].efi", name)
	}
	gen, err := strconv.ParseUint(m[1], 10, 64)
	if err != nil {
		return Entry{}, fmt.Errorf("boot entry %q: generation: %w", name, err)
	}
	e := Entry{Generation: gen, Slot: Slot(m[2]), Version: m[3]}
	if m[4] != "" {
		e.Counting = true
		e.TriesLeft, _ = strconv.Atoi(m[4])
		if m[5] != "" {
			e.TriesDone, _ = strconv.Atoi(m[5])
		}
	}
	return e, nil
}

// Other is the slot that is not s.
func (s Slot) Other() Slot {
	if s == SlotA {
		return SlotB
	}
	return SlotA
}

// UpdatePolicy is what a variant says about updates and boot health; the builder writes it into
// image.json (Image.Updates).
type UpdatePolicy struct {
	// MetadataBaseURL and TargetsBaseURL are the defaults of settings.updates.*.
	MetadataBaseURL string `json:"metadata_base_url,omitempty"`
	TargetsBaseURL  string `json:"targets_base_url,omitempty"`
	// Tries is the boot count an activated entry starts with.
	Tries int `json:"tries"`
	// HealthTimeout bounds how long a boot may take to become healthy; past it the system init
	// gives the entry up (a trial boot) and reboots.
	HealthTimeout Duration `json:"health_timeout"`
	// BlessAfter is how long the host must stay healthy before a trial boot is blessed.
	BlessAfter Duration `json:"bless_after"`
	// HasRoot says the image carries a trusted root.json at TUFRootPath.
	HasRoot bool `json:"has_root"`
}

// DefaultUpdatePolicy is what a variant without an [updates] table gets.
func DefaultUpdatePolicy() UpdatePolicy {
	return UpdatePolicy{Tries: DefaultTries, HealthTimeout: Duration(5 * time.Minute), BlessAfter: Duration(60 * time.Second)}
}

// Duration is a time.Duration written as text ("90s") in JSON.
type Duration time.Duration

// MarshalText writes the duration as time.Duration.String does.
func (d Duration) MarshalText() ([]byte, error) { return []byte(time.Duration(d).String()), nil }

// UnmarshalText reads what time.ParseDuration reads.
func (d *Duration) UnmarshalText(b []byte) error {
	v, err := time.ParseDuration(string(b))
	if err != nil {
		return err
	}
	*d = Duration(v)
	return nil
}

// BootRecord is one boot as the system init judged it.
type BootRecord struct {
	Time    time.Time `json:"time"`
	Entry   string    `json:"entry,omitempty"` // the ESP entry file booted (LoaderBootCountPath / LoaderEntrySelected)
	Slot    Slot      `json:"slot"`
	Version string    `json:"version"`
	Trial   bool      `json:"trial"` // the entry was on trial (had a boot counter)
	// Result is "blessed", "healthy" (not a trial: nothing to bless) or "unhealthy".
	Result string `json:"result"`
	Reason string `json:"reason,omitempty"` // why a boot was unhealthy
}

// BootHistory is the file at BootHistoryPath: the latest boots, oldest first, at most
// MaxBootRecords.
type BootHistory struct {
	Boots []BootRecord `json:"boots"`
}

// MaxBootRecords bounds BootHistory.
const MaxBootRecords = 32

// Payload is an image version's update payload, payload.json beside its files: what the updater
// writes into the inactive slot. Every file is zstd-compressed and named by the sha256 of its
// compressed bytes (PayloadFile.Name), so a file that did not change between versions is the same
// target and never downloaded twice.
type Payload struct {
	Variant  string `json:"variant"`
	Version  string `json:"version"`
	Arch     string `json:"arch"`
	RootHash string `json:"roothash"`
	// VerityBlocks and Salt describe the tree, as on the UKI's command line.
	VerityBlocks    uint64               `json:"verity_blocks"`
	Salt            string               `json:"salt"`
	DatastoreFormat int                  `json:"datastore_format"`
	Root            PayloadFile          `json:"root"`   // the root file system, written to root-<slot>
	Verity          PayloadFile          `json:"verity"` // the verity hash tree, written to verity-<slot>
	UKI             map[Slot]PayloadFile `json:"uki"`    // the UKI for each slot (its command line names the slot)
}

// PayloadFile is one compressed payload file.
type PayloadFile struct {
	Name      string `json:"name"`       // <sha256 of the compressed bytes>.<kind>.zst
	Size      int64  `json:"size"`       // compressed bytes
	SHA256    string `json:"sha256"`     // of the compressed bytes
	RawSize   int64  `json:"raw_size"`   // bytes once decompressed
	RawSHA256 string `json:"raw_sha256"` // of the decompressed bytes
}

// PayloadFileName is the content-addressed name of a compressed payload file of this kind
// ("root", "verity", "uki-a", "uki-b").
func PayloadFileName(sha256hex, kind string) string { return sha256hex + "." + kind + ".zst" }
