package variant

import (
	"fmt"
	"reflect"
	"strings"

	"github.com/ballast-os/ballast/contract"
)

// GeneratedBy is the command that writes docs/variants.md, named in its header and in the error
// of the test that finds it stale.
const GeneratedBy = "go generate ./builder/variant (go run ./builder/cmd/gen-variant-docs)"

// Key describes one key of a variant file for the reference (docs/variants.md).
type Key struct {
	Table   string // "" at the top level, else the table's name ("kernel")
	Key     string // the dotted key ("kernel.hardware-modules")
	Type    string // "string", "boolean", "integer", "size", "duration", "list of strings"
	Default string // what leaving the key out means
	Allowed string // the values the key takes
	// Struct and Field are the Go type and field of the key, whose doc comment describes it.
	Struct, Field string
}

// Table describes a table of a variant file: its name and the Go type holding it, whose doc
// comment describes it.
type Table struct {
	Name, Struct string
}

// rule is a key's default and allowed values in words.
type rule struct{ def, allowed string }

func quoted(list []string) string {
	return "`\"" + strings.Join(list, "\"`, `\"") + "\"`"
}

// rules returns every key's default and allowed values, from the lists the validation uses.
func rules() map[string]rule {
	mods := "kernel module names (`dm-verity` and `dm_verity` are one module); each must be in the kernel package or built into it"
	size := "a whole number of MiB, written with KiB, MiB or GiB (`\"64MiB\"`, `\"1GiB\"`), at least %s"
	up := contract.DefaultUpdatePolicy()
	var archs []string
	for _, a := range contract.Archs() {
		archs = append(archs, string(a))
	}
	r := map[string]rule{
		"arch":                      {fmt.Sprintf("`[\"%s\"]`", contract.DefaultArch), quoted(archs) + ", each once; `ballast build` builds the first, `--arch A` another, `--arch all` each"},
		"name":                      {"required", "lower-case letters, digits and dashes, at most 32, starting with a letter or digit; the file's name"},
		"description":               {"`\"\"`", "any text"},
		"dev":                       {"`false`", "`true`, `false`"},
		"kernel.package":            {"required", "a `linux-image-*` package of packages/debian.lock; `" + ArchPlaceholder + "` stands for the architecture (`\"linux-image-6.1.0-50-cloud-" + ArchPlaceholder + "\"`), required when arch lists more than one"},
		"kernel.modules":            {"none", mods},
		"kernel.optional-modules":   {"none", mods + "; none of kernel.modules"},
		"kernel.initramfs-modules":  {"required", mods},
		"kernel.hardware-modules":   {"none", mods + "; none of the other module lists"},
		"kernel.cmdline":            {"none", "one word per entry, without spaces or quotes; not `root=`, `init=`, `roothash=` or `ballast.*` (the builder's), nor `console=` when [console] is given"},
		"packages.debian":           {"none", "Debian package names pinned in packages/debian.lock"},
		"packages.go":               {"none", "components of packages/go-components.toml"},
		"programs.include":          {"none: the two inits alone", quoted(includable()) + "; dev-only programs need `dev = true`"},
		"partitions.esp":            {"required", fmt.Sprintf(size, "40 MiB (FAT32)")},
		"partitions.root":           {"required", fmt.Sprintf(size, "16 MiB")},
		"partitions.verity":         {"required", fmt.Sprintf(size, "1 MiB")},
		"partitions.data":           {"required", fmt.Sprintf(size, "16 MiB")},
		"output.formats":            {"required", quoted(KnownFormats) + "; `\"ami\"` needs `\"vmdk\"`; `\"iso\"` and `\"netboot\"` need `\"nocloud\"` in userdata.sources when that is given"},
		"updates.root":              {"none: the image cannot update", "a path relative to the variant file of a signed TUF root.json, at most 1 MiB"},
		"updates.metadata-base-url": {"none", "an http:// or https:// URL without credentials, query or fragment"},
		"updates.targets-base-url":  {"none", "an http:// or https:// URL without credentials, query or fragment"},
		"updates.tries":             {fmt.Sprintf("`%d`", up.Tries), fmt.Sprintf("1 to %d", MaxTries)},
		"updates.health-timeout":    {fmt.Sprintf("`\"%s\"`", time2s(up.HealthTimeout)), fmt.Sprintf("a Go duration (`\"90s\"`, `\"5m\"`) from %s to %s", time2s(contract.Duration(MinHealthTimeout)), time2s(contract.Duration(MaxDuration)))},
		"updates.bless-after":       {fmt.Sprintf("`\"%s\"`", time2s(up.BlessAfter)), fmt.Sprintf("a Go duration from 0s to %s", time2s(contract.Duration(MaxDuration)))},
		"secure-boot.keys":          {"none: unsigned (dev variants only)", "a directory made by `ballast keys init`, relative to the variant file; required when `dev = false`"},
		"local.encryption":          {fmt.Sprintf("`%q`", contract.DefaultLocalPolicy().Encryption), fmt.Sprintf("`%q`, `%q`", contract.LocalTPM, contract.LocalPlain)},
		"local.without-tpm":         {fmt.Sprintf("`%q` with `dev = false`, `%q` with `dev = true`", contract.WithoutTPMRefuse, contract.WithoutTPMPlain), fmt.Sprintf("`%q`, `%q`", contract.WithoutTPMPlain, contract.WithoutTPMRefuse)},
		"console.serial":            {"`\"\"`: none; without [console], the `console=` words of kernel.cmdline", "a serial device and its settings as `console=` takes them (`\"ttyS0,115200n8\"`), or `\"\"`; with vga off, not `\"\"`"},
		"console.vga":               {"`false`", "`true`, `false`"},
		"userdata.sources":          {"without [userdata], the apiserver's order: " + contract.DefaultUserDataSources(), quoted(contract.UserDataSources()) + ", each once, in the order they are read (later ones win key by key)"},
	}
	for _, a := range archs {
		r[a+".serial"] = rule{"console.serial", "as console.serial; only with a [console] table and `" + a + "` in arch"}
		r[a+".esp"] = rule{"partitions.esp", "as partitions.esp"}
		for _, l := range []string{"modules", "initramfs-modules", "hardware-modules"} {
			r[a+"."+l] = rule{"none", mods + "; added to kernel." + l + " when building for " + a}
		}
	}
	return r
}

func time2s(d contract.Duration) string {
	b, _ := d.MarshalText()
	return string(b)
}

// Reference returns the tables and the keys of a variant file in the order of the Variant type,
// with their types, defaults and allowed values. An error means a key the reference does not
// describe.
func Reference() ([]Table, []Key, error) {
	r := rules()
	var tables []Table
	var keys []Key
	add := func(table string, t reflect.Type) error {
		for i := range t.NumField() {
			f := t.Field(i)
			name := f.Tag.Get("toml")
			if !f.IsExported() || name == "" || name == "-" {
				continue
			}
			key := name
			if table != "" {
				key = table + "." + name
			}
			if table == "" && f.Type.Kind() == reflect.Struct {
				continue // a table: described below
			}
			ru, ok := r[key]
			if !ok {
				return fmt.Errorf("variant reference: key %s has no default and allowed values in rules()", key)
			}
			delete(r, key)
			keys = append(keys, Key{Table: table, Key: key, Type: typeName(f.Type), Default: ru.def, Allowed: ru.allowed, Struct: t.Name(), Field: f.Name})
		}
		return nil
	}
	vt := reflect.TypeFor[Variant]()
	if err := add("", vt); err != nil {
		return nil, nil, err
	}
	for i := range vt.NumField() {
		f := vt.Field(i)
		if name := f.Tag.Get("toml"); f.Type.Kind() == reflect.Struct && name != "" && name != "-" {
			tables = append(tables, Table{Name: name, Struct: f.Type.Name()})
			if err := add(name, f.Type); err != nil {
				return nil, nil, err
			}
		}
	}
	for k := range r {
		return nil, nil, fmt.Errorf("variant reference: rules() describes %s, which the Variant type does not have", k)
	}
	return tables, keys, nil
}

func typeName(t reflect.Type) string {
	switch t {
	case reflect.TypeFor[Size]():
		return "size"
	case reflect.TypeFor[*contract.Duration]():
		return "duration"
	}
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	switch t.Kind() {
	case reflect.String:
		return "string"
	case reflect.Bool:
		return "boolean"
	case reflect.Int:
		return "integer"
	case reflect.Slice:
		return "list of " + typeName(t.Elem()) + "s"
	}
	return t.String()
}
