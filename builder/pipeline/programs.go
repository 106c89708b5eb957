package pipeline

import (
	"context"
	"fmt"
	"path/filepath"
	"slices"
	"strings"

	"github.com/ballast-os/ballast/builder/programs"
	"github.com/ballast-os/ballast/contract"
	"github.com/ballast-os/ballast/packages/gocomponents"
)

// builtPrograms are the variant's programs the builder compiles (the others come from packages).
func (b *builder) builtPrograms() []contract.Program {
	var out []contract.Program
	for _, p := range b.v.ProgramList() {
		if p.Main != "" {
			out = append(out, p)
		}
	}
	return out
}

// buildPrograms compiles Ballast's programs.
func (b *builder) buildPrograms(ctx context.Context) error {
	progs := b.builtPrograms()
	var names []string
	for _, p := range progs {
		names = append(names, p.Name)
	}
	// The installer (its HTTP client, DHCP, the ISO reader: 3.9 MB of the initramfs init) goes
	// only into the initramfs of a variant that installs.
	var tags []string
	if fs := b.formats(); slices.Contains(fs, FormatISO) || slices.Contains(fs, FormatNetboot) {
		tags = append(tags, contract.TagInstaller)
	}
	b.step("programs: go build %s%s", strings.Join(names, " "), map[bool]string{true: " (with the installer)"}[len(tags) > 0])
	var err error
	b.bins, err = programs.Build(ctx, b.Repo, filepath.Join(b.work, "bin"), b.arch, progs, b.version, tags...)
	return err
}

// buildComponents builds (or takes from the work cache) the variant's pinned Go components.
// Module downloads are verified against the pinned sums and shared through the download cache.
func (b *builder) buildComponents(ctx context.Context) error {
	b.comps = nil
	if len(b.v.Packages.Go) == 0 {
		return nil
	}
	pins, err := gocomponents.Load(filepath.Join(b.Repo, "packages", "go-components.toml"))
	if err != nil {
		return err
	}
	var comps []gocomponents.Component
	for _, name := range b.v.Packages.Go {
		c, err := pins.Find(name)
		if err != nil {
			return err
		}
		comps = append(comps, c)
	}
	if err := checkComponents(b.v.Path, b.v.ProgramList(), comps); err != nil {
		return err
	}
	goarch := b.arch.Info().GOARCH
	for _, c := range comps {
		b.step("components: %s %s", c.Name, c.Version)
		built, err := gocomponents.Build(ctx, c.ForArch(goarch), gocomponents.Options{
			GOARCH:   goarch,
			CacheDir: b.WorkCache,
			ModCache: filepath.Join(b.CacheDir, "go", "mod"),
			Log:      b.step,
		})
		if err != nil {
			return err
		}
		b.comps = append(b.comps, built)
	}
	return nil
}

// checkComponents refuses a variant whose listed components install the same path twice (e.g.
// containerd with and without CRI), and one whose component programs have no listed component
// installing their path. A program names the component that usually installs it ("containerd");
// any listed component installing the same path serves ("containerd-cri"). Test-only binaries
// install nothing.
func checkComponents(variantFile string, progs []contract.Program, comps []gocomponents.Component) error {
	installs := map[string]string{} // path → component/binary
	for _, c := range comps {
		for _, bin := range c.Binaries {
			if c.TestOnly || bin.TestOnly {
				continue
			}
			by := c.Name + "/" + bin.Name
			if other, ok := installs[bin.Install]; ok {
				return fmt.Errorf("variant %s: packages.go: components %s and %s both install %s: list one of them", variantFile, other, by, bin.Install)
			}
			installs[bin.Install] = by
		}
	}
	for _, p := range progs {
		if p.Component == "" || p.Main != "" || p.Package != "" {
			continue
		}
		if _, ok := installs[p.Path]; !ok {
			return fmt.Errorf("variant %s: program %s: no component in packages.go installs %s (%s does)", variantFile, p.Name, p.Path, p.Component)
		}
	}
	return nil
}

// installed is the component binaries a variant gets: dev-only tools in dev variants only, and
// never the binaries only tests run.
func installed(bins []gocomponents.Binary, dev bool) []gocomponents.Binary {
	var out []gocomponents.Binary
	for _, b := range bins {
		if b.TestOnly {
			continue
		}
		if dev || !b.DevOnly {
			out = append(out, b)
		}
	}
	return out
}
