package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"

	"github.com/ballast-os/ballast/builder/pipeline"
	"github.com/ballast-os/ballast/tests/timeline"
)

// benchSELinux compares the variant's image with the same image built without the policy load
// (pipeline.Options.BenchWithoutSELinux): boot to the ready line, interleaved boots of each so
// the machine's load falls on both alike, and the container start latency p50.
func benchSELinux(ctx context.Context, repo, variant, disk string, boots, starts int) ([]result, error) {
	out := filepath.Join(repo, "build", "bench-"+variant+"-without-selinux")
	_, err := pipeline.Build(ctx, pipeline.Options{Repo: repo, Variant: variant, Out: out, Log: func(string, ...any) {},
		BenchWithoutSELinux: true, Formats: []string{"raw"}})
	if err != nil {
		return nil, fmt.Errorf("build without the policy: %w", err)
	}
	without := filepath.Join(out, "disk.raw")
	ready := regexp.MustCompile(`ballast: ready `)
	loadRE := regexp.MustCompile(`selinux enforcing, policy version \d+ \(\d+ bytes\), loaded in (\S+)`)
	var with, wo, loads []float64
	for i := range boots {
		for _, side := range []struct {
			disk string
			into *[]float64
		}{{disk, &with}, {without, &wo}} {
			_, con, err := bootOnce(ctx, side.disk, filepath.Join(os.TempDir(), fmt.Sprintf("bench-selinux-%d.raw", i)), ready)
			if err != nil {
				return nil, fmt.Errorf("boot %d of %s: %w", i+1, side.disk, err)
			}
			tl, err := timeline.Parse(con)
			if err != nil {
				return nil, err
			}
			d, err := tl.Duration("initramfs", "ready")
			if err != nil {
				return nil, err
			}
			*side.into = append(*side.into, d)
			if side.disk == disk {
				mm := loadRE.FindStringSubmatch(con)
				if mm == nil {
					return nil, fmt.Errorf("boot %d: no policy load milestone on the console", i+1)
				}
				ms, err := parseDuration(mm[1])
				if err != nil {
					return nil, err
				}
				loads = append(loads, ms)
			}
		}
	}
	medWith, medWo := medianOf(with), medianOf(wo)
	note := fmt.Sprintf("%d interleaved boots of each, TCG, the guest's milestones", boots)
	res := []result{
		{"initramfs → ready, with the SELinux policy (median)", medWith, "s", "", note},
		{"initramfs → ready, without the policy (median)", medWo, "s", "", note},
		{"boot ratio, with ÷ without the policy", medWith / medWo, "x", "≤ 1.03×", note},
		{"SELinux policy load (median)", medianOf(loads), "s", "", "the initramfs's milestone"},
	}
	for _, r := range res {
		// Now: the container figures take many more boots, and a failure there keeps these.
		fmt.Fprintf(os.Stderr, "bench: %s = %s %s\n", r.Name, value(r.Value), r.Unit)
	}
	const p50 = "container start, Ballast host network (create → running) p50"
	var starts50 [2]float64
	for i, d := range []string{disk, without} {
		cr, err := benchContainers(ctx, repo, d, starts, false)
		if err != nil {
			return nil, fmt.Errorf("containers on %s: %w", d, err)
		}
		j := slices.IndexFunc(cr, func(r result) bool { return r.Name == p50 })
		if j < 0 {
			return nil, fmt.Errorf("containers on %s: no %q", d, p50)
		}
		starts50[i] = cr[j].Value
	}
	res = append(res,
		result{"container start p50, with the SELinux policy", starts50[0], "s", "", fmt.Sprintf("%d starts", starts)},
		result{"container start p50, without the policy", starts50[1], "s", "", fmt.Sprintf("%d starts", starts)},
		result{"container start ratio, with ÷ without the policy (p50)", starts50[0] / starts50[1], "x", "", ""})
	return res, nil
}

func medianOf(v []float64) float64 {
	s := slices.Clone(v)
	slices.Sort(s)
	return s[len(s)/2]
}

// parseDuration reads a Go duration as the console prints it ("199ms", "1.2s"), in seconds.
func parseDuration(s string) (float64, error) {
	for _, u := range []struct {
		suffix string
		scale  float64
	}{{"ms", 1e-3}, {"µs", 1e-6}, {"s", 1}} {
		if v, ok := strings.CutSuffix(s, u.suffix); ok {
			f, err := strconv.ParseFloat(v, 64)
			if err != nil {
				return 0, fmt.Errorf("duration %q: %w", s, err)
			}
			return f * u.scale, nil
		}
	}
	return 0, fmt.Errorf("duration %q: no unit", s)
}

// runSELinux measures the SELinux figures alone, on the variant's built image.
func runSELinux(repoArg, variant string, boots int) error {
	repo, err := filepath.Abs(repoArg)
	if err != nil {
		return err
	}
	disk := filepath.Join(repo, "build", variant, "disk.raw")
	if _, err := os.Stat(disk); err != nil {
		return fmt.Errorf("selinux: %w (run make image VARIANT=%s first)", err, variant)
	}
	res, err := benchSELinux(context.Background(), repo, variant, disk, boots, ctrOpts.starts)
	if err != nil {
		return fmt.Errorf("selinux: %w", err)
	}
	return report(filepath.Join(repo, "build", "bench-selinux.json"), variant, res)
}
