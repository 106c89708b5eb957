// Command bench measures what the build and the image promise: build times, sizes, verity speed,
// boot time, container start latency and memory (containers.go). It prints a table and writes
// build/bench.json. Run it with `make bench`; `-only containers` measures the container figures
// alone on the image `make image` built.
//
// Any measurement that fails ends the bench with a non-zero status and a message naming it: a
// table with a made-up figure in it (a -1, a size of 0) would be read as a result.
package main

import (
	"bytes"
	"cmp"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"regexp"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/ballast-os/ballast/tests/timeline"

	"golang.org/x/sys/unix"

	"github.com/ballast-os/ballast/builder/pipeline"
	"github.com/ballast-os/ballast/builder/rootfs"
	"github.com/ballast-os/ballast/builder/variant"
	"github.com/ballast-os/ballast/contract"
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
	runs := flag.Int("runs", 7, "runs of each verity timing, of which the fastest counts (at least 5)")
	only := flag.String("only", "", `"containers": only the container figures, on the image `+"`make image`"+` built (build/VARIANT/disk.raw), written to build/bench-containers.json; "selinux": only the with/without-policy figures, to build/bench-selinux.json`)
	flag.IntVar(&ctrOpts.starts, "container-starts", 20, "sequential container starts per series (5 to 32)")
	flag.BoolVar(&ctrOpts.bridge, "bridge", true, "also time starts on the default bridge network (CNI)")
	flag.Parse()
	// At most 16 host containers can be configured, and a series runs at most twice through them.
	if ctrOpts.starts < 5 || ctrOpts.starts > 32 {
		fmt.Fprintf(os.Stderr, "bench: -container-starts %d: need 5 to 32\n", ctrOpts.starts)
		os.Exit(2)
	}
	var err error
	switch *only {
	case "":
		err = run(*repo, *variant, *boots, *runs)
	case "containers":
		err = runContainers(*repo, *variant)
	case "selinux":
		err = runSELinux(*repo, *variant, *boots)
	default:
		err = fmt.Errorf("-only %q: the parts are \"containers\" and \"selinux\"", *only)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "bench: FAILED:", err)
		os.Exit(1)
	}
}

func run(repoArg, variant string, boots, runs int) (err error) {
	if boots < 1 {
		return fmt.Errorf("-boots %d: need at least one boot", boots)
	}
	// Fewer runs would let one undisturbed or one unlucky run decide a ratio on a shared machine.
	if runs < 5 {
		return fmt.Errorf("-runs %d: need at least 5", runs)
	}
	repo, err := filepath.Abs(repoArg)
	if err != nil {
		return err
	}
	// A leftover temporary file is reported, not ignored: the next bench would measure a fuller disk.
	cleanup := func(p string) {
		if e := os.RemoveAll(p); e != nil {
			err = errors.Join(err, fmt.Errorf("clean up: %w", e))
		}
	}
	ctx := context.Background()
	var res []result
	add := func(rs ...result) {
		for _, r := range rs {
			res = append(res, r)
			fmt.Fprintf(os.Stderr, "bench: %s = %s %s\n", r.Name, value(r.Value), r.Unit)
		}
	}
	quiet := func(string, ...any) {}

	// Cold: empty build directory, warm download cache.
	const cold = "cold build"
	out := filepath.Join(repo, "build", "bench-"+variant)
	if err := os.RemoveAll(out); err != nil {
		return fmt.Errorf("%s: empty the build directory: %w", cold, err)
	}
	t0 := time.Now()
	m, err := pipeline.Build(ctx, pipeline.Options{Repo: repo, Variant: variant, Out: out, Log: quiet})
	if err != nil {
		return fmt.Errorf("%s: %w", cold, err)
	}
	coldSec := time.Since(t0).Seconds()
	add(result{cold + " (empty build dir, warm download cache)", coldSec, "s", "≤ 60 s", ""})

	t0 = time.Now()
	if _, err := pipeline.Build(ctx, pipeline.Options{Repo: repo, Variant: variant, Out: out, Log: quiet}); err != nil {
		return fmt.Errorf("no-op rebuild: %w", err)
	}
	add(result{"no-op rebuild", time.Since(t0).Seconds(), "s", "≤ 3 s", ""})

	// One Ballast program changed: a copy of the tracked tree with a comment added to the apiserver.
	const changed = "rebuild after changing one Ballast program"
	copyDir, err := os.MkdirTemp("", "ballast-bench-")
	if err != nil {
		return fmt.Errorf("%s: %w", changed, err)
	}
	defer cleanup(copyDir)
	if err := exportTree(repo, copyDir); err != nil {
		return fmt.Errorf("%s: %w", changed, err)
	}
	if err := os.MkdirAll(filepath.Join(copyDir, "build"), 0o755); err != nil {
		return fmt.Errorf("%s: %w", changed, err)
	}
	copyOut := filepath.Join(copyDir, "build", variant)
	if _, err := pipeline.Build(ctx, pipeline.Options{Repo: copyDir, Variant: variant, Out: copyOut, Log: quiet}); err != nil {
		return fmt.Errorf("%s: first build of the copy: %w", changed, err)
	}
	if err := appendLine(filepath.Join(copyDir, "apiserver/cmd/apiserver/main.go"),
		fmt.Sprintf("// bench edit %d", time.Now().UnixNano())); err != nil {
		return fmt.Errorf("%s: %w", changed, err)
	}
	t0 = time.Now()
	if _, err := pipeline.Build(ctx, pipeline.Options{Repo: copyDir, Variant: variant, Out: copyOut, Log: quiet}); err != nil {
		return fmt.Errorf("%s: %w", changed, err)
	}
	add(result{changed, time.Since(t0).Seconds(), "s", "", ""})

	// Root filesystem and verity, on this build's staged tree and root image.
	const erofs = "root fs build (mkfs.erofs lz4hc)"
	work := filepath.Join(out, "work")
	img := filepath.Join(os.TempDir(), "bench-root.erofs")
	defer cleanup(img)
	rootSec, err := median(erofs, 5, func() error {
		return rootfs.MkfsErofs(filepath.Join(work, "rootfs"), img, rootfs.ErofsOptions{
			FileContexts: filepath.Join(work, "file_contexts"), Epoch: 0, Compression: "lz4hc"})
	})
	if err != nil {
		return err
	}
	add(result{erofs, rootSec, "s", "", ""})

	// The hash trees go under build/, not $TMPDIR: /tmp is often a tmpfs, where fsync costs nothing.
	hashDir, err := os.MkdirTemp(filepath.Join(repo, "build"), "bench-verity-")
	if err != nil {
		return fmt.Errorf("verity: %w", err)
	}
	defer cleanup(hashDir)
	vr, err := benchVerity(filepath.Join(work, "root.erofs"), hashDir, runs)
	if err != nil {
		return err
	}
	add(vr...)

	// Sizes.
	disk := filepath.Join(out, "disk.raw")
	zst := filepath.Join(os.TempDir(), "bench-disk.zst")
	defer cleanup(zst)
	diskSize, err := fileSize(disk)
	if err != nil {
		return fmt.Errorf("image size raw: %w", err)
	}
	add(result{"image size raw (apparent)", mib(diskSize), "MiB", "", ""})
	if o, err := exec.Command("zstd", "-q", "-f", "-19", "-T0", disk, "-o", zst).CombinedOutput(); err != nil {
		return fmt.Errorf("image size zstd -19: zstd: %v\n%s", err, o)
	}
	zstSize, err := fileSize(zst)
	if err != nil {
		return fmt.Errorf("image size zstd -19: %w", err)
	}
	add(result{"image size zstd -19", mib(zstSize), "MiB", "≤ 76.3 MiB (80 MB)", ""})
	// arm64, when the variant builds for it: the same cold build and size, side by side.
	if err := benchOtherArchs(ctx, repo, variant, coldSec, zstSize, add); err != nil {
		return err
	}
	for _, a := range []struct{ name, file string }{
		{"root fs (EROFS)", "root.erofs"}, {"UKI", "uki"}, {"initramfs", "initramfs"},
	} {
		f, ok := m.Files[a.file]
		if !ok {
			return fmt.Errorf("%s: the build manifest lists no %q", a.name, a.file)
		}
		add(result{a.name, mib(f.Size), "MiB", "", ""})
	}

	// Boot: QEMU start → ready line, median of N boots of fresh copies.
	const boot = "QEMU start → ready line"
	ready := regexp.MustCompile(`ballast: ready `)
	type bootRun struct {
		total float64
		tl    timeline.Timeline
	}
	var bootRuns []bootRun
	for i := range boots {
		el, con, err := bootOnce(ctx, disk, filepath.Join(os.TempDir(), fmt.Sprintf("bench-boot-%d.raw", i)), ready)
		if err != nil {
			return fmt.Errorf("%s: boot %d of %d: %w", boot, i+1, boots, err)
		}
		tl, err := timeline.Parse(con)
		if err != nil {
			return fmt.Errorf("%s: boot %d of %d: %w", boot, i+1, boots, err)
		}
		bootRuns = append(bootRuns, bootRun{el, tl})
	}
	slices.SortFunc(bootRuns, func(a, b bootRun) int { return cmp.Compare(a.total, b.total) })
	med := bootRuns[len(bootRuns)/2]
	note := fmt.Sprintf("%d boots, TCG, first boot each", boots)
	add(result{boot + " (median)", med.total, "s", "", note})
	// The measure: from the initramfs's first line to the ready line, by the guest's clock.
	var guest []float64
	for _, r := range bootRuns {
		d, err := r.tl.Duration("initramfs", "ready")
		if err != nil {
			return fmt.Errorf("%s: %w", boot, err)
		}
		guest = append(guest, d)
	}
	slices.Sort(guest)
	add(result{"initramfs → ready line (median)", guest[len(guest)/2], "s", "≤ 1.5 s", note + ", the guest's milestones"})
	for _, id := range []string{"apiserver"} {
		d, err := med.tl.Service(id)
		if err != nil {
			return fmt.Errorf("%s: %w", boot, err)
		}
		add(result{"service " + id + " started → ready", d, "s", "", "the median boot"})
	}
	// Containers: one more boot, for the start latency and memory figures.
	cr, err := benchContainers(ctx, repo, disk, ctrOpts.starts, ctrOpts.bridge)
	if err != nil {
		return fmt.Errorf("containers: %w", err)
	}
	add(cr...)
	sr, err := benchSELinux(ctx, repo, variant, disk, boots, ctrOpts.starts)
	if err != nil {
		return fmt.Errorf("selinux: %w", err)
	}
	add(sr...)

	svg := filepath.Join(repo, "build", "boot-timeline.svg")
	if err := os.WriteFile(svg, med.tl.SVG(fmt.Sprintf("Ballast %s, median of %d boots under TCG", variant, boots)), 0o644); err != nil {
		return fmt.Errorf("boot timeline: %w", err)
	}
	fmt.Printf("boot timeline: %s\n", svg)

	if err := report(filepath.Join(repo, "build", "bench.json"), variant, res); err != nil {
		return err
	}
	// Only now: after a failure the build is left to look at.
	cleanup(out)
	return nil
}

// ctrOpts are the container figures' flags.
var ctrOpts struct {
	starts int
	bridge bool
}

// runContainers measures the container figures alone, on the variant's built image.
func runContainers(repoArg, variant string) error {
	repo, err := filepath.Abs(repoArg)
	if err != nil {
		return err
	}
	disk := filepath.Join(repo, "build", variant, "disk.raw")
	if _, err := os.Stat(disk); err != nil {
		return fmt.Errorf("containers: %w (run make image VARIANT=%s first)", err, variant)
	}
	res, err := benchContainers(context.Background(), repo, disk, ctrOpts.starts, ctrOpts.bridge)
	if err != nil {
		return fmt.Errorf("containers: %w", err)
	}
	for _, r := range res {
		fmt.Fprintf(os.Stderr, "bench: %s = %s %s\n", r.Name, value(r.Value), r.Unit)
	}
	return report(filepath.Join(repo, "build", "bench-containers.json"), variant, res)
}

// report prints the table and writes the rows to path.
func report(path, variant string, res []result) error {
	tw := tabwriter.NewWriter(os.Stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "measure\tvalue\tunit\ttarget\tnote")
	for _, r := range res {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", r.Name, value(r.Value), r.Unit, r.Target, r.Note)
	}
	if err := tw.Flush(); err != nil {
		return fmt.Errorf("print the table: %w", err)
	}
	j, err := json.MarshalIndent(map[string]any{"variant": variant, "when": time.Now().UTC().Format(time.RFC3339), "results": res}, "", "  ")
	if err != nil {
		return fmt.Errorf("%s: %w", filepath.Base(path), err)
	}
	if err := os.WriteFile(path, append(j, '\n'), 0o644); err != nil {
		return fmt.Errorf("%s: %w", filepath.Base(path), err)
	}
	return nil
}

// bootOnce boots a fresh sparse copy of disk and returns the seconds from starting QEMU to the
// ready line, and the console up to it.
func bootOnce(ctx context.Context, disk, copyPath string, ready *regexp.Regexp) (sec float64, console string, err error) {
	if o, err := exec.Command("cp", "--sparse=always", disk, copyPath).CombinedOutput(); err != nil {
		return 0, "", fmt.Errorf("copy the disk: %v %s", err, o)
	}
	defer func() {
		if e := os.Remove(copyPath); e != nil {
			err = errors.Join(err, e)
		}
	}()
	t0 := time.Now()
	vm, err := qemu.Start(ctx, qemu.Config{Disk: copyPath, Timeout: 3 * time.Minute})
	if err != nil {
		return 0, "", err
	}
	_, err = vm.Expect(ready, 2*time.Minute)
	sec = time.Since(t0).Seconds()
	return sec, vm.Console(), errors.Join(err, vm.Kill())
}

// benchVerity times the Go verity builder against `veritysetup format` on the root image data and
// checks that every run of either wrote the same hash device, byte for byte.
//
// Both sides run as child processes timed from exec to exit, and each creates its hash device as
// a new file in dir and fsyncs it (veritysetup always does), so start-up, the write and the flush
// are charged to both alike. The Go side is a small program built here (verityChildSrc), not
// verity.Build called in this process under runtime.GOMAXPROCS(1), because that would measure a
// different thing: the runtime here carries the heap of the image builds above for its collector
// to walk, and GOMAXPROCS only bounds the threads running Go code; threads blocked in pread or
// fsync, and the kernel's work for them, would still spread over the other cores. So the 1-core
// child gets GOMAXPROCS=1 in its environment, which the runtime reads at start-up, and taskset
// pins it (every thread it will have) to one CPU; veritysetup is pinned to the same CPU for its
// 1-core figure. The all-cores child gets GOMAXPROCS = the CPUs this process may use, and each
// child reports the GOMAXPROCS it ran with, so a runtime that ignored the setting fails the bench.
func benchVerity(data, dir string, runs int) ([]result, error) {
	const name = "verity"
	st, err := os.Stat(data)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	child, err := buildVerityChild(dir)
	if err != nil {
		return nil, fmt.Errorf("%s: build the Go child: %w", name, err)
	}
	cpu, err := lastCPU()
	if err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	cores := runtime.NumCPU()

	// A fixed salt and UUID: veritysetup would pick random ones, and the outputs must be equal.
	salt := sha256.Sum256([]byte("ballast bench verity salt"))
	uuid := [16]byte{0xba, 0x11, 0xa5, 0x7b, 0xe0, 0xc4, 0x4e, 0x11, 0x80, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x01}
	veritysetup := func(hash string) []string {
		h := hex.EncodeToString(uuid[:])
		return []string{"veritysetup", "format", "--format=1", "--hash=sha256",
			"--data-block-size=4096", "--hash-block-size=4096",
			"--salt=" + hex.EncodeToString(salt[:]),
			"--uuid=" + h[:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:],
			data, hash}
	}
	goBuilder := func(hash string) []string {
		return []string{child, data, hash, hex.EncodeToString(salt[:]), hex.EncodeToString(uuid[:])}
	}

	// The reference, untimed: veritysetup's hash device and root hash. It also brings the data
	// into the page cache, so no timed run pays for reading it from disk.
	refPath := filepath.Join(dir, "reference")
	refArgv := veritysetup(refPath)
	o, err := exec.Command(refArgv[0], refArgv[1:]...).CombinedOutput()
	if err != nil {
		return nil, fmt.Errorf("%s: reference veritysetup format: %v\n%s", name, err, o)
	}
	refRoot, err := veritysetupRoot(o)
	if err != nil {
		return nil, fmt.Errorf("%s: reference veritysetup format: %w", name, err)
	}
	ref, err := os.ReadFile(refPath)
	if err != nil {
		return nil, fmt.Errorf("%s: reference: %w", name, err)
	}

	side := func(row, file string, argv func(hash string) []string, pinned bool, gomaxprocs int) *verityProc {
		p := &verityProc{name: row, hash: filepath.Join(dir, file), gomaxprocs: gomaxprocs}
		if p.argv = argv(p.hash); pinned {
			p.argv = append([]string{"taskset", "--cpu-list", strconv.Itoa(cpu)}, p.argv...)
		}
		return p
	}
	// The names stay the same on every machine, for whoever compares bench.json files; the CPU
	// and core counts go in the notes.
	goOne := side("verity Go, 1 core", "go-1", goBuilder, true, 1)
	goAll := side("verity Go, all cores", "go-all", goBuilder, false, cores)
	vsOne := side("verity veritysetup format, 1 core", "veritysetup-1", veritysetup, true, 0)
	vsAll := side("verity veritysetup format, all cores", "veritysetup-all", veritysetup, false, 0)
	procs := []*verityProc{goOne, goAll, vsOne, vsAll}
	const shaName = "sha256 throughput, 1 core"
	shaBuf := make([]byte, 128<<20)
	// Written, not left zero: untouched pages all map the one zero page and would stay in cache.
	rand.NewChaCha8([32]byte{}).Read(shaBuf)
	var shaBest time.Duration
	// Rounds of one run each, the processes in a rotating order and the sha256 limit measured in
	// every round too, so that a slow spell of the shared machine, or the page cache and journal
	// state one run leaves behind, falls on all of them alike.
	for round := range runs {
		for k := range procs {
			p := procs[(round+k)%len(procs)]
			if err := p.run(ref, refRoot); err != nil {
				return nil, fmt.Errorf("%s: run %d of %d: %w", p.name, round+1, runs, err)
			}
		}
		if d := sha256Time(shaBuf); shaBest == 0 || d < shaBest {
			shaBest = d
		}
	}
	sha := mib(int64(len(shaBuf))) / shaBest.Seconds()
	if sha <= 0 || math.IsInf(sha, 0) {
		return nil, fmt.Errorf("%s: %v MiB/s is no throughput", shaName, sha)
	}
	size := mib(st.Size())
	timed := fmt.Sprintf("%.0f MiB root, best of %d, exec to exit incl. fsync", size, runs)
	ms := func(d time.Duration) float64 { return d.Seconds() * 1000 }
	perSec := func(d time.Duration) float64 { return size / d.Seconds() }
	return []result{
		{goOne.name, ms(goOne.best), "ms", "", fmt.Sprintf("GOMAXPROCS=1, pinned to CPU %d; %s", cpu, timed)},
		{goAll.name, ms(goAll.best), "ms", "", fmt.Sprintf("GOMAXPROCS=%d; %s", cores, timed)},
		{vsOne.name, ms(vsOne.best), "ms", "", fmt.Sprintf("pinned to CPU %d; %s", cpu, timed)},
		{vsAll.name, ms(vsAll.best), "ms", "", "unpinned (it hashes on one thread); " + timed},
		{"verity speed-up, 1 core (veritysetup ÷ Go)", vsOne.best.Seconds() / goOne.best.Seconds(), "x", "",
			"every Go output byte-identical to veritysetup's"},
		{"verity speed-up, all cores (veritysetup ÷ Go)", vsAll.best.Seconds() / goAll.best.Seconds(), "x", "≥ 2x",
			fmt.Sprintf("Go on %d cores", cores)},
		{shaName, sha, "MiB/s", "", fmt.Sprintf("crypto/sha256 over %d MiB, best of %d: the limit per core", len(shaBuf)>>20, runs)},
		{"verity Go throughput, 1 core", perSec(goOne.best), "MiB/s", "", "root image ÷ time"},
		// Below 100% even with nothing else in the way: every 4 KiB block is hashed with the salt
		// and its own padding (65 sha256 blocks for 64 of data), and the upper levels add 1/128.
		{"verity Go share of sha256 limit, 1 core", 100 * perSec(goOne.best) / sha, "%", "", "limit: 1 × sha256 1 core"},
		{"verity Go throughput, all cores", perSec(goAll.best), "MiB/s", "", "root image ÷ time"},
		{"verity Go share of sha256 limit, all cores", 100 * perSec(goAll.best) / (float64(cores) * sha), "%", "",
			fmt.Sprintf("limit: %d × sha256 1 core", cores)},
	}, nil
}

// verityProc is one side of the verity comparison: a command that writes a hash device to hash
// and prints its root hash.
type verityProc struct {
	name string
	hash string
	argv []string
	// gomaxprocs is what the Go builder child must report; 0 means the command is veritysetup.
	gomaxprocs int
	best       time.Duration
}

// run times one run of p, checks its output against veritysetup's reference and keeps the fastest.
func (p *verityProc) run(ref []byte, refRoot string) error {
	hash := p.hash
	if err := os.RemoveAll(hash); err != nil {
		return err
	}
	// Flush what earlier runs left to write back (their unlinked files included), so it does
	// not land on this run's fsync.
	if err := syncFS(filepath.Dir(hash)); err != nil {
		return err
	}
	cmd := exec.Command(p.argv[0], p.argv[1:]...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	cmd.Env = slices.DeleteFunc(os.Environ(), func(e string) bool { return strings.HasPrefix(e, "GOMAXPROCS=") })
	if p.gomaxprocs > 0 {
		cmd.Env = append(cmd.Env, "GOMAXPROCS="+strconv.Itoa(p.gomaxprocs))
	}
	t0 := time.Now()
	err := cmd.Run()
	d := time.Since(t0)
	if err != nil {
		return fmt.Errorf("%s: %v\n%s%s", strings.Join(p.argv, " "), err, stdout.Bytes(), stderr.Bytes())
	}

	var root string
	if p.gomaxprocs == 0 {
		if root, err = veritysetupRoot(stdout.Bytes()); err != nil {
			return err
		}
	} else {
		var procs int
		if _, err := fmt.Sscanf(stdout.String(), "root %s gomaxprocs %d", &root, &procs); err != nil {
			return fmt.Errorf("unexpected output %q: %v", stdout.Bytes(), err)
		}
		if procs != p.gomaxprocs {
			return fmt.Errorf("the Go builder ran with GOMAXPROCS %d, not %d", procs, p.gomaxprocs)
		}
	}
	if root != refRoot {
		return fmt.Errorf("root hash %s, veritysetup's reference is %s", root, refRoot)
	}
	got, err := os.ReadFile(hash)
	if err != nil {
		return err
	}
	if !bytes.Equal(got, ref) {
		return fmt.Errorf("hash device %s differs from veritysetup's reference (%d vs %d bytes) first at byte %d",
			hash, len(got), len(ref), firstDiff(got, ref))
	}
	if p.best == 0 || d < p.best {
		p.best = d
	}
	return nil
}

var rootHashLine = regexp.MustCompile(`(?m)^Root hash:\s+([0-9a-f]{64})$`)

func veritysetupRoot(out []byte) (string, error) {
	m := rootHashLine.FindSubmatch(out)
	if m == nil {
		return "", fmt.Errorf("no root hash in veritysetup's output:\n%s", out)
	}
	return string(m[1]), nil
}

// verityChildSrc is the Go side of the verity comparison, a program of its own rather than this
// one re-executed: this binary starts by initialising the image builder's packages, about 20 ms
// that are not the verity builder's and would be charged to it. `verity-child DATA HASH SALT UUID`
// (salt and UUID in hex) builds DATA's hash device into HASH, a new file, fsyncs it, and prints
// the root hash and the GOMAXPROCS it ran with.
const verityChildSrc = `package main

import (
	"encoding/hex"
	"fmt"
	"os"
	"runtime"

	"VERITY_PACKAGE"
)

func main() {
	if err := run(os.Args[1:]); err != nil {
		fmt.Fprintln(os.Stderr, "verity-child:", err)
		os.Exit(1)
	}
}

func run(args []string) error {
	if len(args) != 4 {
		return fmt.Errorf("usage: verity-child DATA HASH SALT UUID")
	}
	salt, err := hex.DecodeString(args[2])
	if err != nil {
		return fmt.Errorf("salt: %w", err)
	}
	u, err := hex.DecodeString(args[3])
	if err != nil || len(u) != 16 {
		return fmt.Errorf("uuid %q: want 32 hex digits", args[3])
	}
	in, err := os.Open(args[0])
	if err != nil {
		return err
	}
	defer in.Close()
	st, err := in.Stat()
	if err != nil {
		return err
	}
	// O_EXCL as veritysetup creates a missing hash device, so neither side reuses old blocks.
	out, err := os.OpenFile(args[1], os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return err
	}
	res, err := verity.Build(in, st.Size(), out, verity.Params{Salt: salt, UUID: [16]byte(u)})
	if err == nil {
		err = out.Sync()
	}
	if e := out.Close(); err == nil {
		err = e
	}
	if err != nil {
		return err
	}
	fmt.Printf("root %x gomaxprocs %d\n", res.RootHash, runtime.GOMAXPROCS(0))
	return nil
}
`

// buildVerityChild compiles verityChildSrc in dir, which must be inside this module, and returns
// the program's path.
func buildVerityChild(dir string) (string, error) {
	// Under testdata, so that `go vet ./...` or `go test ./...` run meanwhile skip the package.
	src := filepath.Join(dir, "testdata", "verity-child")
	if err := os.MkdirAll(src, 0o755); err != nil {
		return "", err
	}
	// The import path is taken from the package this file imports, so a move of images/verity
	// that updates the import cannot leave the child behind.
	code := strings.ReplaceAll(verityChildSrc, "VERITY_PACKAGE", reflect.TypeFor[verity.Params]().PkgPath())
	if err := os.WriteFile(filepath.Join(src, "main.go"), []byte(code), 0o644); err != nil {
		return "", err
	}
	bin := filepath.Join(dir, "verity-child")
	cmd := exec.Command("go", "build", "-o", bin, ".")
	cmd.Dir = src
	if o, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("go build: %v\n%s", err, o)
	}
	return bin, nil
}

// sha256Sink keeps the compiler from dropping a hash nobody reads.
var sha256Sink byte

// sha256Time hashes buf with crypto/sha256 on this goroutine, so on one core: at len(buf) divided
// by the time, the fastest any sha256 hash tree can be built per core on this machine.
func sha256Time(buf []byte) time.Duration {
	t0 := time.Now()
	sum := sha256.Sum256(buf)
	d := time.Since(t0)
	sha256Sink ^= sum[0]
	return d
}

// lastCPU returns the highest-numbered CPU this process may run on, to pin the 1-core runs to;
// the last rather than CPU 0, which tends to take more of the interrupts.
func lastCPU() (int, error) {
	var set unix.CPUSet
	if err := unix.SchedGetaffinity(0, &set); err != nil {
		return 0, fmt.Errorf("CPU affinity: %w", err)
	}
	for c := len(set)*64 - 1; c >= 0; c-- {
		if set.IsSet(c) {
			return c, nil
		}
	}
	return 0, errors.New("CPU affinity: no CPU allowed")
}

func syncFS(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	if err := unix.Syncfs(int(d.Fd())); err != nil {
		return fmt.Errorf("syncfs %s: %w", dir, err)
	}
	return nil
}

func firstDiff(a, b []byte) int {
	for i := range min(len(a), len(b)) {
		if a[i] != b[i] {
			return i
		}
	}
	return min(len(a), len(b))
}

// exportTree copies the tracked files of repo to dst (what a clean checkout has).
func exportTree(repo, dst string) error {
	cmd := exec.Command("sh", "-c", "git -C \"$0\" ls-files -z | (cd \"$0\" && xargs -0 cp --parents -t \"$1\")", repo, dst)
	if o, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("copy tree: %v %s", err, o)
	}
	return nil
}

func appendLine(path, line string) error {
	f, err := os.OpenFile(path, os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		return err
	}
	_, err = fmt.Fprintf(f, "\n%s\n", line)
	return errors.Join(err, f.Close())
}

// median runs f n times and returns the median in seconds; an error names the measurement.
func median(name string, n int, f func() error) (float64, error) {
	var ts []float64
	for i := range n {
		t0 := time.Now()
		if err := f(); err != nil {
			return 0, fmt.Errorf("%s: run %d of %d: %w", name, i+1, n, err)
		}
		ts = append(ts, time.Since(t0).Seconds())
	}
	slices.Sort(ts)
	return ts[n/2], nil
}

func fileSize(p string) (int64, error) {
	st, err := os.Stat(p)
	if err != nil {
		return 0, err
	}
	return st.Size(), nil
}

func mib(n int64) float64 { return float64(n) / (1 << 20) }

// value prints three significant digits, but whole numbers from 1000 up: %.3g would print a
// throughput of 1850 MiB/s as 1.85e+03.
func value(v float64) string {
	if math.Abs(v) >= 1000 {
		return strconv.FormatFloat(v, 'f', 0, 64)
	}
	return strconv.FormatFloat(v, 'g', 3, 64)
}

// benchOtherArchs builds the variant for each of its architectures but amd64 the way the amd64
// figures were taken (empty build directory, warm download and work caches), and reports the
// build time and the zstd -19 image size beside amd64's, as ratios.
func benchOtherArchs(ctx context.Context, repo, name string, amd64Sec float64, amd64Zst int64, add func(...result)) error {
	v, err := variant.Load(filepath.Join(repo, "variants", name+".toml"))
	if err != nil {
		return err
	}
	for _, arch := range v.ArchList() {
		if arch == contract.AMD64 {
			continue
		}
		label := string(arch) + ": "
		out := filepath.Join(repo, "build", "bench-"+pipeline.OutName(name, arch))
		if err := os.RemoveAll(out); err != nil {
			return fmt.Errorf("%scold build: empty the build directory: %w", label, err)
		}
		t0 := time.Now()
		if _, err := pipeline.Build(ctx, pipeline.Options{Repo: repo, Variant: name, Arch: arch, Out: out, Log: func(string, ...any) {}}); err != nil {
			return fmt.Errorf("%scold build: %w", label, err)
		}
		sec := time.Since(t0).Seconds()
		add(result{label + "cold build (empty build dir, warm download and work caches)", sec, "s", "", fmt.Sprintf("%.2f× amd64's", sec/amd64Sec)})
		zst := filepath.Join(os.TempDir(), "bench-disk-"+string(arch)+".zst")
		if o, err := exec.Command("zstd", "-q", "-f", "-19", "-T0", filepath.Join(out, "disk.raw"), "-o", zst).CombinedOutput(); err != nil {
			return fmt.Errorf("%simage size zstd -19: zstd: %v\n%s", label, err, o)
		}
		size, err := fileSize(zst)
		os.Remove(zst)
		if err != nil {
			return fmt.Errorf("%simage size zstd -19: %w", label, err)
		}
		add(result{label + "image size zstd -19", mib(size), "MiB", "", fmt.Sprintf("%.2f× amd64's", float64(size)/float64(amd64Zst))})
	}
	return nil
}
