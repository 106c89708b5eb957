// Command bench measures what the build and the image promise: build times, sizes, verity speed and
// boot time. It prints a table and writes build/bench.json. Run it with `make bench`.
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/ballast-os/ballast/builder/pipeline"
	"github.com/ballast-os/ballast/builder/rootfs"
	"github.com/ballast-os/ballast/images/verity"
	"github.com/ballast-os/ballast/tests/qemu"
)

type result struct {
	Name   string  `json:"name"`
	Value  float64 `json:"value"`
	Unit   string  `json:"unit"`
	Target string  `json:"target,omitempty"`
	Note   string  `json:"note,omitempty"`
}

func main() {
	repo := flag.String("repo", ".", "repository root")
	variant := flag.String("variant", "qemu", "variant")
	boots := flag.Int("boots", 5, "boots for the median boot time")
	flag.Parse()
	if err := run(*repo, *variant, *boots); err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		os.Exit(1)
	}
}

func run(repoArg, variant string, boots int) error {
	repo, err := filepath.Abs(repoArg)
	if err != nil {
		return err
	}
	ctx := context.Background()
	var res []result
	add := func(r result) {
		res = append(res, r)
		fmt.Fprintf(os.Stderr, "bench: %s = %.3g %s\n", r.Name, r.Value, r.Unit)
	}
	quiet := func(string, ...any) {}

	// Cold: empty build directory, warm download cache.
	out := filepath.Join(repo, "build", "bench-"+variant)
	os.RemoveAll(out)
	t0 := time.Now()
	m, err := pipeline.Build(ctx, pipeline.Options{Repo: repo, Variant: variant, Out: out, Log: quiet})
	if err != nil {
		return err
	}
	add(result{"cold build (empty build dir, warm download cache)", time.Since(t0).Seconds(), "s", "≤ 60 s", ""})

	t0 = time.Now()
	if _, err := pipeline.Build(ctx, pipeline.Options{Repo: repo, Variant: variant, Out: out, Log: quiet}); err != nil {
		return err
	}
	add(result{"no-op rebuild", time.Since(t0).Seconds(), "s", "≤ 3 s", ""})

	// One Ballast program changed: a copy of the tracked tree with a comment added to the apiserver.
	copyDir, err := os.MkdirTemp("", "ballast-bench-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(copyDir)
	if err := exportTree(repo, copyDir); err != nil {
		return err
	}
	os.MkdirAll(filepath.Join(copyDir, "build"), 0o755)
	copyOut := filepath.Join(copyDir, "build", variant)
	if _, err := pipeline.Build(ctx, pipeline.Options{Repo: copyDir, Variant: variant, Out: copyOut, Log: quiet}); err != nil {
		return err
	}
	f, err := os.OpenFile(filepath.Join(copyDir, "apiserver/cmd/apiserver/main.go"), os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		return err
	}
	fmt.Fprintf(f, "\n// bench edit %d\n", time.Now().UnixNano())
	f.Close()
	t0 = time.Now()
	if _, err := pipeline.Build(ctx, pipeline.Options{Repo: copyDir, Variant: variant, Out: copyOut, Log: quiet}); err != nil {
		return err
	}
	add(result{"rebuild after changing one Ballast program", time.Since(t0).Seconds(), "s", "", ""})

	// Root filesystem and verity, on this build's staged tree and root image.
	work := filepath.Join(out, "work")
	img := filepath.Join(os.TempDir(), "bench-root.erofs")
	defer os.Remove(img)
	rootSec := median(5, func() error {
		return rootfs.MkfsErofs(filepath.Join(work, "rootfs"), img, rootfs.ErofsOptions{
			FileContexts: filepath.Join(repo, "selinux", "file_contexts"), Epoch: 0, Compression: "lz4hc"})
	})
	add(result{"root fs build (mkfs.erofs lz4hc)", rootSec, "s", "", ""})
	rootImg := filepath.Join(work, "root.erofs")
	size := fileSize(rootImg)
	hashOut := filepath.Join(os.TempDir(), "bench-verity.img")
	defer os.Remove(hashOut)
	// Best of 7 for both: the machine is shared, and the fastest run is the one least disturbed.
	goSec := best(7, func() error {
		in, err := os.Open(rootImg)
		if err != nil {
			return err
		}
		defer in.Close()
		o, err := os.Create(hashOut)
		if err != nil {
			return err
		}
		defer o.Close()
		_, err = verity.Build(in, size, o, verity.Params{Salt: make([]byte, 32)})
		return err
	})
	vsSec := best(7, func() error {
		return exec.Command("veritysetup", "format", "--salt="+strings.Repeat("00", 32), rootImg, hashOut).Run()
	})
	add(result{"verity (Go)", goSec * 1000, "ms", "", fmt.Sprintf("%d MiB root, best of 7", size>>20)})
	add(result{"verity (veritysetup format)", vsSec * 1000, "ms", "", ""})
	add(result{"verity speed-up vs veritysetup", vsSec / goSec, "x", "≥ 2x", ""})

	// Sizes.
	disk := filepath.Join(out, "disk.raw")
	zst := filepath.Join(os.TempDir(), "bench-disk.zst")
	defer os.Remove(zst)
	if o, err := exec.Command("zstd", "-q", "-f", "-19", "-T0", disk, "-o", zst).CombinedOutput(); err != nil {
		return fmt.Errorf("zstd: %v %s", err, o)
	}
	add(result{"image size raw (apparent)", mib(fileSize(disk)), "MiB", "", ""})
	add(result{"image size zstd -19", mib(fileSize(zst)), "MiB", "≤ 76.3 MiB (80 MB)", ""})
	add(result{"root fs (EROFS)", mib(m.Files["root.erofs"].Size), "MiB", "", ""})
	add(result{"UKI", mib(m.Files["uki"].Size), "MiB", "", ""})
	add(result{"initramfs", mib(m.Files["initramfs"].Size), "MiB", "", ""})

	// Boot: QEMU start → ready line, median of N boots of fresh copies.
	ready := regexp.MustCompile(`ballast: ready `)
	var times []float64
	for i := 0; i < boots; i++ {
		d := filepath.Join(os.TempDir(), fmt.Sprintf("bench-boot-%d.raw", i))
		if o, err := exec.Command("cp", "--sparse=always", disk, d).CombinedOutput(); err != nil {
			return fmt.Errorf("copy: %v %s", err, o)
		}
		t0 := time.Now()
		vm, err := qemu.Start(ctx, qemu.Config{Disk: d, Timeout: 3 * time.Minute})
		if err != nil {
			return err
		}
		_, err = vm.Expect(ready, 2*time.Minute)
		el := time.Since(t0).Seconds()
		vm.Kill()
		os.Remove(d)
		if err != nil {
			return err
		}
		times = append(times, el)
	}
	slices.Sort(times)
	add(result{"QEMU start → ready line (median)", times[len(times)/2], "s", "", fmt.Sprintf("%d boots, TCG, first boot each", boots)})

	tw := tabwriter.NewWriter(os.Stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "measure\tvalue\tunit\ttarget\tnote")
	for _, r := range res {
		fmt.Fprintf(tw, "%s\t%.3g\t%s\t%s\t%s\n", r.Name, r.Value, r.Unit, r.Target, r.Note)
	}
	tw.Flush()
	j, _ := json.MarshalIndent(map[string]any{"variant": variant, "when": time.Now().UTC().Format(time.RFC3339), "results": res}, "", "  ")
	os.RemoveAll(out)
	return os.WriteFile(filepath.Join(repo, "build", "bench.json"), append(j, '\n'), 0o644)
}

// exportTree copies the tracked files of repo to dst (what a clean checkout has).
func exportTree(repo, dst string) error {
	cmd := exec.Command("sh", "-c", "git -C \"$0\" ls-files -z | (cd \"$0\" && xargs -0 cp --parents -t \"$1\")", repo, dst)
	if o, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("copy tree: %v %s", err, o)
	}
	return nil
}

func best(n int, f func() error) float64 {
	var ts []float64
	for i := 0; i < n; i++ {
		t0 := time.Now()
		if err := f(); err != nil {
			fmt.Fprintln(os.Stderr, "bench:", err)
			return -1
		}
		ts = append(ts, time.Since(t0).Seconds())
	}
	return slices.Min(ts)
}

func median(n int, f func() error) float64 {
	var ts []float64
	for i := 0; i < n; i++ {
		t0 := time.Now()
		if err := f(); err != nil {
			fmt.Fprintln(os.Stderr, "bench:", err)
			return -1
		}
		ts = append(ts, time.Since(t0).Seconds())
	}
	slices.Sort(ts)
	return ts[n/2]
}

func fileSize(p string) int64 {
	st, err := os.Stat(p)
	if err != nil {
		return 0
	}
	return st.Size()
}

func mib(n int64) float64 { return float64(n) / (1 << 20) }
