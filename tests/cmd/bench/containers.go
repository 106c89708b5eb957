package main

// The container figures of issue 9, from one boot of the image: start latency of Ballast's host
// containers (host network and the default bridge) against `ctr run` in the same guest, memory per
// idle container, and the idle host's memory with containerd and the manager up.
//
// Every figure is read from the guest: the manager's own "started in" lines, the guest's
// monotonic clock around `ctr run`, /proc/meminfo and /proc/<pid>/status through the console
// shell. Whatever is missing or does not parse ends the bench with the console's tail: a row
// with a made-up number in it would be read as a result.

import (
	"bufio"
	"cmp"
	"context"
	"errors"
	"fmt"
	"math"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/ballast-os/ballast/apiserver/client"
	"github.com/ballast-os/ballast/apiserver/settings"
	"github.com/ballast-os/ballast/contract"
	"github.com/ballast-os/ballast/tests/ociimage"
	"github.com/ballast-os/ballast/tests/qemu"
)

const (
	// The small image: tests/image/hello, which prints a line and sleeps.
	helloRef     = "ballast.test/hello:1"
	helloArchive = "hello.tar"
	helloSource  = "oci-archive:" + contract.CIDataMount + "/" + helloArchive
	// ctr's namespace, apart from the manager's.
	ctrNamespace = "bench"
	// ctr events writes here in the guest (a tmpfs), for the phases of each start.
	eventsFile = "/tmp/bench-events"
)

// containerBench is one boot of the image with the remote API forwarded and a seed volume
// holding the hello image.
type containerBench struct {
	vm     *qemu.VM
	api    *client.Client
	lines  chan logLine  // the manager's log, followed
	marks  int           // console command markers used
	exited chan struct{} // closed when QEMU has exited
}

// benchContainers boots a copy of disk (its dev PKI is pki/ beside it) and measures the container
// rows with starts sequential starts per series.
func benchContainers(ctx context.Context, repo, disk string, starts int, bridge bool) (res []result, err error) {
	t0 := time.Now()
	load0 := hostLoad()
	dir, err := os.MkdirTemp("", "ballast-bench-ctr-")
	if err != nil {
		return nil, err
	}
	defer func() {
		if e := os.RemoveAll(dir); e != nil {
			err = errors.Join(err, fmt.Errorf("clean up: %w", e))
		}
	}()
	seed, err := helloSeed(repo, dir)
	if err != nil {
		return nil, fmt.Errorf("the hello image: %w", err)
	}
	pki, err := client.LoadPKI(filepath.Join(filepath.Dir(disk), "pki"))
	if err != nil {
		return nil, fmt.Errorf("the dev PKI beside %s: %w", disk, err)
	}
	copyPath := filepath.Join(dir, "disk.raw")
	if o, err := exec.Command("cp", "--sparse=always", disk, copyPath).CombinedOutput(); err != nil {
		return nil, fmt.Errorf("copy the disk: %v %s", err, o)
	}
	// Room on the data partition for the snapshots, as the image tests give it.
	if err := os.Truncate(copyPath, 2<<30); err != nil {
		return nil, err
	}
	port, err := freePort()
	if err != nil {
		return nil, err
	}
	// The console is kept where a failed bench can be looked into.
	consoleLog := filepath.Join(repo, "build", "bench-containers-console.log")
	if err := os.Remove(consoleLog); err != nil && !errors.Is(err, os.ErrNotExist) {
		return nil, err
	}
	vm, err := qemu.Start(ctx, qemu.Config{Disk: copyPath, ExtraDisks: []string{seed},
		LogFile: consoleLog, Timeout: 40 * time.Minute,
		HostFwd: []string{fmt.Sprintf("tcp:127.0.0.1:%d-:%d", port, contract.DevAPIPort)}})
	if err != nil {
		return nil, err
	}
	defer func() {
		if e := vm.Kill(); e != nil && err == nil {
			err = fmt.Errorf("stop the VM: %w", e)
		}
	}()
	if _, err := vm.Expect(regexp.MustCompile(`ballast: ready `), 3*time.Minute); err != nil {
		return nil, err
	}
	// The shell's prompt: the console is ready for commands.
	if _, err := vm.Expect(regexp.MustCompile(`# $`), time.Minute); err != nil {
		return nil, err
	}
	api, err := client.NewRemote(fmt.Sprintf("https://127.0.0.1:%d", port), pki)
	if err != nil {
		return nil, err
	}
	defer api.Close()
	b := &containerBench{vm: vm, api: api, lines: make(chan logLine, 4096), exited: make(chan struct{})}
	go func() {
		vm.WaitExit(24 * time.Hour)
		close(b.exited)
	}()
	fctx, stopFollow := context.WithCancel(ctx)
	defer stopFollow()
	go b.follow(fctx, "host-containers")

	// 4. The idle host: containerd and the manager up, no container.
	svcs, err := b.waitServices(ctx, 2*time.Minute, "containerd", "host-containers", "apiserver")
	if err != nil {
		return nil, err
	}
	// What the boot started in the background (the seed volume's mount, the first leases) settles.
	time.Sleep(5 * time.Second)
	idle, idleInfo, err := b.usedMemory(3)
	if err != nil {
		return nil, fmt.Errorf("idle memory: %w", err)
	}
	pids := map[string]int{}
	for _, s := range svcs {
		pids[s.ID] = s.Pid
	}
	rss, err := b.rss(pids["containerd"], pids["host-containers"], pids["apiserver"])
	if err != nil {
		return nil, fmt.Errorf("idle memory: %w", err)
	}
	// MemAvailable leaves out the kernel's free-page reserve (the zones' high watermarks, from
	// vm.min_free_kbytes, which khugepaged raises when transparent huge pages are on), free but
	// not available: worth knowing beside the figure.
	wm, err := b.sh("cat /proc/sys/vm/min_free_kbytes; awk '$1 == \"high\" { s += $2 } END { print s * 4 }' /proc/zoneinfo; "+
		"cat /sys/kernel/mm/transparent_hugepage/enabled", time.Minute)
	if err != nil {
		return nil, err
	}
	var minFree, high int64
	var thp string
	if _, err := fmt.Sscanf(wm, "%d %d", &minFree, &high); err != nil || high <= 0 {
		return nil, b.fail("min_free_kbytes and high watermarks: %q: %v", wm, err)
	}
	if m := regexp.MustCompile(`\[(\w+)\]`).FindStringSubmatch(wm); m != nil {
		thp = m[1]
	} else {
		return nil, b.fail("transparent_hugepage/enabled: no [mode] in %q", wm)
	}
	res = append(res, result{"idle host memory, runtime up, no containers", kib(idle), "MiB", "≤ 96 MiB",
		fmt.Sprintf("MemTotal−MemAvailable, median of 3 reads after boot; MemTotal−MemFree−Buffers−Cached %.0f MiB; "+
			"zones' high watermarks %.0f MiB (vm.min_free_kbytes %d; THP %s), free but not counted available; "+
			"AnonPages %.0f MiB of which AnonHugePages %.0f (THP), Slab %.0f MiB; RSS containerd %.1f, hostctr %.1f, apiserver %.1f MiB",
			kib(idleInfo["MemTotal"]-idleInfo["MemFree"]-idleInfo["Buffers"]-idleInfo["Cached"]), kib(high), minFree, thp,
			kib(idleInfo["AnonPages"]), kib(idleInfo["AnonHugePages"]), kib(idleInfo["Slab"]),
			kib(rss[pids["containerd"]]), kib(rss[pids["host-containers"]]), kib(rss[pids["apiserver"]]))})

	// containerd's events, for where a start's time goes; running through all the series alike.
	evPid, err := b.sh(fmt.Sprintf("ctr events >%s 2>&1 & echo $!", eventsFile), time.Minute)
	if err != nil {
		return nil, err
	}
	if _, err := strconv.Atoi(evPid); err != nil {
		return nil, b.fail("ctr events: %q is no pid", evPid)
	}

	// settings.host-containers holds at most 16 entries and an entry cannot be removed, so a
	// series of more starts recycles names: the first 16 are enabled one after the other and
	// stay running, then the first few are disabled and enabled again. ctr's series does the same
	// with as many containers running.
	pool := names("p", min(starts, maxHostContainers))

	// Warm-ups, untimed: each side imports the image and runs it once, so that neither series
	// pays the first start's page cache (runc, the shim) or the import.
	ref, err := b.ctrImport()
	if err != nil {
		return nil, err
	}
	if _, err := b.ctrRun(ref, "kwarm"); err != nil {
		return nil, fmt.Errorf("ctr warm-up: %w", err)
	}
	if err := b.ctrRemove([]string{"kwarm"}); err != nil {
		return nil, err
	}
	if _, err := b.startOne(ctx, pool[0], true); err != nil {
		return nil, fmt.Errorf("warm-up: %w", err)
	}
	if err := b.disable(ctx, pool[:1]); err != nil {
		return nil, err
	}
	overhead, err := b.clockOverhead()
	if err != nil {
		return nil, err
	}
	ctrVersion, err := b.timeGuest("ctr -n "+ctrNamespace+" version >/dev/null", 3)
	if err != nil {
		return nil, fmt.Errorf("ctr version: %w", err)
	}

	// 1. and 2. Ballast with the host network and ctr run, interleaved: each Ballast start is
	// followed by one of ctr's, so that both series see the same guest and the same host (under
	// TCG a guest is only as fast as the host has cores to spare, which other work changes
	// within minutes). Then 3., the memory of Ballast's containers, idle, once ctr's are gone.
	before, beforeInfo, err := b.usedMemory(3)
	if err != nil {
		return nil, err
	}
	ctrNames := names("k", starts)
	running := slices.Clone(ctrNames)
	var ctrLat []time.Duration
	host, err := b.series(ctx, pool, starts, true, seriesHooks{
		each: func(i int) error {
			d, err := b.ctrRun(ref, ctrNames[i])
			ctrLat = append(ctrLat, d-overhead)
			return err
		},
		recycle: func(n int) error {
			running = ctrNames[n:]
			return b.ctrRemove(ctrNames[:n])
		},
	})
	if err != nil {
		return nil, err
	}
	if err := b.ctrRemove(running); err != nil {
		return nil, err
	}
	after, afterInfo, err := b.usedMemory(3)
	if err != nil {
		return nil, err
	}
	shims, err := b.rssOf("containerd-shim-runc-v2")
	if err != nil {
		return nil, err
	}
	hellos, err := b.rssOf("hello")
	if err != nil {
		return nil, err
	}
	if len(shims) != len(pool) || len(hellos) != len(pool) {
		return nil, b.fail("memory: %d shims and %d hello processes run, want %d each", len(shims), len(hellos), len(pool))
	}
	perCtr := kib(after-before) / float64(len(pool))
	if perCtr <= 0 {
		return nil, b.fail("memory per container: %.2f MiB (%d KiB before, %d KiB with %d containers) is no figure", perCtr, before, after, len(pool))
	}
	memNote := fmt.Sprintf("(MemTotal−MemAvailable with %d idle host-network containers − before) ÷ %d, medians of 3 reads "+
		"(%d, not 20: settings.host-containers allows 16 entries; ctr's containers of the same series removed before the read): "+
		"shim + container process + kernel objects (cgroup, namespaces, overlay mount) + the page cache the kernel does not count reclaimable; "+
		"per container AnonPages +%.1f MiB, of which AnonHugePages +%.1f MiB (THP), Slab +%.2f MiB; mean RSS: shim %.1f MiB, hello %.1f MiB "+
		"(RSS counts shared text)",
		len(pool), len(pool), len(pool), perDelta(beforeInfo, afterInfo, "AnonPages", len(pool)),
		perDelta(beforeInfo, afterInfo, "AnonHugePages", len(pool)), perDelta(beforeInfo, afterInfo, "Slab", len(pool)),
		kib(mean(shims)), kib(mean(hellos)))
	if err := b.disable(ctx, pool); err != nil {
		return nil, err
	}

	// 1b. Ballast, the default bridge network, and the memory of its containers.
	var bridged seriesResult
	var bridgeMem float64
	if bridge {
		before, _, err := b.usedMemory(3)
		if err != nil {
			return nil, err
		}
		if bridged, err = b.series(ctx, pool, starts, false, seriesHooks{}); err != nil {
			return nil, err
		}
		after, _, err := b.usedMemory(3)
		if err != nil {
			return nil, err
		}
		bridgeMem = kib(after-before) / float64(len(pool))
	}

	// Where the time goes: containerd's events of each start, in order: in Ballast's namespace
	// the warm-up, the host-network series, the bridge series; in ctr's the warm-up and its series.
	events, err := b.events(evPid)
	if err != nil {
		return nil, err
	}
	ours := startsOf(events, contract.ContainersNamespace)
	theirs := startsOf(events, ctrNamespace)
	want := 1 + starts
	if bridge {
		want += starts
	}
	if len(ours) != want || len(theirs) != 1+starts {
		return nil, b.fail("ctr events: %d starts in %s and %d in %s, want %d and %d",
			len(ours), contract.ContainersNamespace, len(theirs), ctrNamespace, want, 1+starts)
	}
	hostPh, err := phases(ours[1 : 1+starts])
	if err != nil {
		return nil, err
	}
	ctrPh, err := phases(theirs[1:])
	if err != nil {
		return nil, err
	}

	const tcg = "TCG guest, 2 vCPUs, 1 GiB"
	hostLat, ctrSpan := host.latency, spans(theirs[1:])
	hp50, hp99 := pct(hostLat, 50), pct(hostLat, 99)
	cp50, cp99 := pct(ctrLat, 50), pct(ctrLat, 99)
	seriesNote := fmt.Sprintf("%d sequential starts of the hello image after a warm-up, each once the one before runs, at most %d running", starts, len(pool))
	res = append(res,
		result{"container start, Ballast host network (create → running) p50", hp50.Seconds(), "s", "",
			fmt.Sprintf("%s; the manager's \"started in\" lines (NewContainer → task started, in hostctr); %s; "+
				"API apply → running line on the host p50 %.2f s; %s", seriesNote+", interleaved with ctr's", hostPh, pct(host.e2e, 50).Seconds(), tcg)},
		result{"container start, Ballast host network (create → running) p99", hp99.Seconds(), "s", "",
			fmt.Sprintf("nearest rank of %d: the slowest; API apply → running line p99 %.2f s", starts, pct(host.e2e, 99).Seconds())},
	)
	if bridge {
		bp, err := phases(ours[1+starts:])
		if err != nil {
			return nil, err
		}
		res = append(res,
			result{"container start, Ballast bridge network (create → running) p50", pct(bridged.latency, 50).Seconds(), "s", "",
				fmt.Sprintf("%s, after the host-network series (so under another host load: compare the phases); the CNI attach "+
					"comes before create, not in this figure; %s; API apply → running line p50 %.2f s", seriesNote, bp, pct(bridged.e2e, 50).Seconds())},
			result{"container start, Ballast bridge network (create → running) p99", pct(bridged.latency, 99).Seconds(), "s", "",
				fmt.Sprintf("API apply → running line p99 %.2f s", pct(bridged.e2e, 99).Seconds())},
		)
	}
	res = append(res,
		result{"container start, ctr run -d --net-host p50", cp50.Seconds(), "s", "",
			fmt.Sprintf("%s; guest monotonic clock (/proc/timer_list) around ctr, less %.1f ms of clock reading; "+
				"includes ctr's exec and connect (ctr version: %.0f ms); %s", seriesNote+", interleaved with Ballast's", msOf(overhead), msOf(medianDur(ctrVersion)-overhead), ctrPh)},
		result{"container start, ctr run -d --net-host p99", cp99.Seconds(), "s", "", fmt.Sprintf("nearest rank of %d: the slowest", starts)},
		result{"container start ratio, Ballast ÷ ctr (p50)", hp50.Seconds() / cp50.Seconds(), "x", "≤ 1.2×",
			fmt.Sprintf("host network both; p99 ratio %.2f; containerd's span (snapshot prepare → task started) p50 Ballast %.2f s, ctr %.2f s",
				hp99.Seconds()/cp99.Seconds(), pct(spans(ours[1:1+starts]), 50).Seconds(), pct(ctrSpan, 50).Seconds())},
		result{"memory per idle container", perCtr, "MiB", "", memNote},
	)
	if bridge {
		res = append(res, result{"memory per idle container, bridge network", bridgeMem, "MiB", "",
			"as above, bridge containers: + veth, network namespace"})
	}
	res = append(res, result{"container benchmarks wall time", time.Since(t0).Seconds(), "s", "",
		fmt.Sprintf("boot, warm-ups, all series; host load average %s at start, %s at end", load0, hostLoad())})
	return res, nil
}

// helloSeed builds tests/image/hello as a static program, puts it in an OCI archive and that on a
// NoCloud volume, and returns the volume's path.
func helloSeed(repo, dir string) (string, error) {
	bin := filepath.Join(dir, "hello")
	cmd := exec.Command("go", "build", "-trimpath", "-ldflags=-s -w", "-o", bin, "./tests/image/hello")
	cmd.Dir = repo
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if o, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("go build: %v\n%s", err, o)
	}
	f, err := ociimage.Program(bin, "/hello")
	if err != nil {
		return "", err
	}
	archive := filepath.Join(dir, helloArchive)
	out, err := os.Create(archive)
	if err != nil {
		return "", err
	}
	err = ociimage.WriteOCI(out, ociimage.Image{Ref: helloRef, Files: []ociimage.File{f}, Entrypoint: []string{"/hello"}})
	if e := out.Close(); err == nil {
		err = e
	}
	if err != nil {
		return "", err
	}
	ud := filepath.Join(dir, "user-data")
	if err := os.WriteFile(ud, []byte("[settings]\nmotd = \"ballast bench\"\n"), 0o644); err != nil {
		return "", err
	}
	st, err := os.Stat(archive)
	if err != nil {
		return "", err
	}
	img := filepath.Join(dir, "cidata.img")
	sizeKiB := strconv.FormatInt((st.Size()+2<<20)/1024*5/4, 10)
	for _, c := range [][]string{
		{"mkfs.fat", "-C", "-n", "CIDATA", img, sizeKiB},
		{"mcopy", "-i", img, ud, "::user-data"},
		{"mcopy", "-i", img, archive, "::" + helloArchive},
	} {
		if o, err := exec.Command(c[0], c[1:]...).CombinedOutput(); err != nil {
			return "", fmt.Errorf("%s: %v\n%s", strings.Join(c, " "), err, o)
		}
	}
	return img, nil
}

// sh runs cmd on the console's shell and returns what it printed, lines joined by spaces. The
// marker is typed in two quoted halves, so the echo of the typed line never matches it.
func (b *containerBench) sh(cmd string, timeout time.Duration) (string, error) {
	b.marks++
	n := b.marks
	if err := b.vm.Send(fmt.Sprintf("echo \"O\"\"UT%d-$( { %s ; } 2>&1 | tr '\\n' ' ')-END\"\r", n, cmd)); err != nil {
		return "", err
	}
	m, err := b.vm.Expect(regexp.MustCompile(fmt.Sprintf(`^OUT%d-(.*)-END$`, n)), timeout)
	if err != nil {
		return "", fmt.Errorf("console command %q: %w", cmd, err)
	}
	return strings.TrimSpace(m[1]), nil
}

func (b *containerBench) hasExited() bool {
	select {
	case <-b.exited:
		return true
	default:
		return false
	}
}

// fail is an error about the guest's answer, with the console's tail.
func (b *containerBench) fail(format string, args ...any) error {
	msg := fmt.Sprintf(format, args...)
	select {
	case <-b.exited:
		// Not by our hand: QEMU's stderr in the log says who (e.g. "terminating on signal 15 from pid N").
		msg += fmt.Sprintf("\nQEMU has exited (reason %q)", b.vm.ShutdownReason())
	default:
	}
	return fmt.Errorf("%s\nconsole (last lines; all of it and QEMU's stderr in %s):\n%s", msg, b.vm.LogFile(), tail(b.vm.Console()))
}

func tail(s string) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	return strings.Join(lines[max(0, len(lines)-40):], "\n")
}

var (
	meminfoRE     = regexp.MustCompile(`(\w+):\s+(\d+) kB`)
	meminfoFields = []string{"MemTotal", "MemFree", "MemAvailable", "Buffers", "Cached", "AnonPages", "AnonHugePages", "Slab"}
)

// usedMemory returns the median over n reads, 1 s apart, of MemTotal−MemAvailable in KiB, and
// that read's fields.
func (b *containerBench) usedMemory(n int) (int64, map[string]int64, error) {
	type read struct {
		used int64
		info map[string]int64
	}
	var reads []read
	for i := range n {
		if i > 0 {
			time.Sleep(time.Second)
		}
		out, err := b.sh("grep -E '^("+strings.Join(meminfoFields, "|")+"):' /proc/meminfo", time.Minute)
		if err != nil {
			return 0, nil, err
		}
		info := map[string]int64{}
		for _, m := range meminfoRE.FindAllStringSubmatch(out, -1) {
			info[m[1]], _ = strconv.ParseInt(m[2], 10, 64)
		}
		for _, k := range meminfoFields {
			if _, ok := info[k]; !ok {
				return 0, nil, b.fail("/proc/meminfo: no %s in %q", k, out)
			}
		}
		used := info["MemTotal"] - info["MemAvailable"]
		if used <= 0 {
			return 0, nil, b.fail("/proc/meminfo: MemTotal−MemAvailable = %d KiB in %q", used, out)
		}
		reads = append(reads, read{used, info})
	}
	slices.SortFunc(reads, func(a, b read) int { return cmp.Compare(a.used, b.used) })
	r := reads[len(reads)/2]
	return r.used, r.info, nil
}

var vmRSSRE = regexp.MustCompile(`/proc/(\d+)/status:VmRSS:\s+(\d+) kB`)

// rss returns the VmRSS in KiB of each pid.
func (b *containerBench) rss(pids ...int) (map[int]int64, error) {
	var files []string
	for _, p := range pids {
		if p <= 0 {
			return nil, b.fail("RSS: no pid (%v)", pids)
		}
		files = append(files, fmt.Sprintf("/proc/%d/status", p))
	}
	out, err := b.sh("grep -H VmRSS "+strings.Join(files, " "), time.Minute)
	if err != nil {
		return nil, err
	}
	got := map[int]int64{}
	for _, m := range vmRSSRE.FindAllStringSubmatch(out, -1) {
		p, _ := strconv.Atoi(m[1])
		got[p], _ = strconv.ParseInt(m[2], 10, 64)
	}
	for _, p := range pids {
		if got[p] <= 0 {
			return nil, b.fail("RSS: no VmRSS for pid %d in %q", p, out)
		}
	}
	return got, nil
}

// rssOf returns the VmRSS in KiB of every process named name.
func (b *containerBench) rssOf(name string) ([]int64, error) {
	out, err := b.sh(fmt.Sprintf("for p in $(pidof %s); do grep -H VmRSS /proc/$p/status; done", name), time.Minute)
	if err != nil {
		return nil, err
	}
	var kb []int64
	for _, m := range vmRSSRE.FindAllStringSubmatch(out, -1) {
		v, _ := strconv.ParseInt(m[2], 10, 64)
		kb = append(kb, v)
	}
	if len(kb) == 0 {
		return nil, b.fail("RSS: no process %s: %q", name, out)
	}
	return kb, nil
}

// waitServices polls GET /services until every one of ids is ready or running with a pid.
func (b *containerBench) waitServices(ctx context.Context, timeout time.Duration, ids ...string) ([]contract.ServiceStatus, error) {
	deadline := time.Now().Add(timeout)
	var last string
	for {
		cctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		svcs, err := b.api.Services(cctx)
		cancel()
		last = fmt.Sprintf("%+v %v", svcs, err)
		if err == nil && !slices.ContainsFunc(ids, func(id string) bool {
			i := slices.IndexFunc(svcs, func(s contract.ServiceStatus) bool { return s.ID == id })
			return i < 0 || svcs[i].Pid <= 0 || svcs[i].State != "ready" && svcs[i].State != "running"
		}) {
			return svcs, nil
		}
		if time.Now().After(deadline) || b.hasExited() {
			return nil, b.fail("services %v not all up within %v: %s", ids, timeout, last)
		}
		time.Sleep(time.Second)
	}
}

// logLine is a line of the followed log and when it reached this side.
type logLine struct {
	text string
	at   time.Time
}

// follow reads source's log as it is written into b.lines. If the stream breaks, it reads the
// log again from the start and skips the lines it has delivered (the log only grows within a
// boot), so that no old line can pass for a new start.
func (b *containerBench) follow(ctx context.Context, source string) {
	delivered := 0
	for ctx.Err() == nil {
		rc, err := b.api.Logs(ctx, source, true)
		if err != nil {
			time.Sleep(time.Second)
			continue
		}
		sc := bufio.NewScanner(rc)
		for n := 0; sc.Scan(); n++ {
			if n < delivered {
				continue
			}
			select {
			case b.lines <- logLine{sc.Text(), time.Now()}:
				delivered++
			case <-ctx.Done():
			}
		}
		rc.Close()
	}
}

// log reads the manager's whole log.
func (b *containerBench) log(ctx context.Context) (string, error) {
	cctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	rc, err := b.api.Logs(cctx, "host-containers", false)
	if err != nil {
		return "", fmt.Errorf("GET /logs?service=host-containers: %w", err)
	}
	defer rc.Close()
	var sb strings.Builder
	if _, err := bufio.NewReader(rc).WriteTo(&sb); err != nil {
		return "", fmt.Errorf("GET /logs?service=host-containers: %w", err)
	}
	return sb.String(), nil
}

func (b *containerBench) apply(ctx context.Context, body string) error {
	s, err := settings.DecodeJSON(strings.NewReader(body))
	if err != nil {
		return fmt.Errorf("settings %s: %w", body, err)
	}
	cctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()
	if _, err := b.api.Apply(cctx, s); err != nil {
		return fmt.Errorf("apply %s: %w", body, err)
	}
	return nil
}

// managerLine is a line of the manager's log about one container.
var managerLine = regexp.MustCompile(`^\S+ \[\s*[0-9.]+\] ([a-z0-9-]+): (.*)$`)

// seriesResult is a series of starts: each start's create → running from the manager's log, and
// the time from the apply request to the running line reaching this side.
type seriesResult struct {
	latency, e2e []time.Duration
}

// maxHostContainers is how many entries settings.host-containers may hold.
const maxHostContainers = 16

// seriesHooks are what a series does besides its own starts.
type seriesHooks struct {
	each    func(i int) error // after the i-th start
	recycle func(n int) error // before the starts beyond the pool, when the first n names are disabled
}

// series starts host containers one at a time, each once the one before runs: the names of pool
// in order, then the first ones again after disabling them, until there were starts starts.
func (b *containerBench) series(ctx context.Context, pool []string, starts int, hostNetwork bool, hooks seriesHooks) (seriesResult, error) {
	var r seriesResult
	if starts > 2*len(pool) {
		return r, fmt.Errorf("%d starts: at most %d with %d names", starts, 2*len(pool), len(pool))
	}
	log, err := b.log(ctx)
	if err != nil {
		return r, err
	}
	seen := len(startLines(log))
	var order []string
	for i := range starts {
		if i == len(pool) {
			n := starts - len(pool)
			if err := b.disable(ctx, pool[:n]); err != nil {
				return r, err
			}
			if hooks.recycle != nil {
				if err := hooks.recycle(n); err != nil {
					return r, err
				}
			}
		}
		name := pool[i%len(pool)]
		d, err := b.startOne(ctx, name, hostNetwork)
		if err != nil {
			return r, err
		}
		r.e2e = append(r.e2e, d)
		order = append(order, name)
		if hooks.each != nil {
			if err := hooks.each(i); err != nil {
				return r, err
			}
		}
	}
	// The figures are the manager's own lines, read back from its log.
	if log, err = b.log(ctx); err != nil {
		return r, err
	}
	lines := startLines(log)[seen:]
	if len(lines) != starts {
		return r, fmt.Errorf("the manager's log has %d start lines for a series of %d starts:\n%s", len(lines), starts, log)
	}
	for i, l := range lines {
		if l.d <= 0 {
			return r, fmt.Errorf("the manager's log: start %d of the series (%s): no duration in its line:\n%s", i+1, l.name, log)
		}
		if l.name != order[i] {
			return r, fmt.Errorf("the manager's log: start %d of the series is %s's, want %s's:\n%s", i+1, l.name, order[i], log)
		}
		r.latency = append(r.latency, l.d)
	}
	return r, nil
}

// startOne enables a host container and waits for its running line; it returns the time from
// the apply request to the line reaching this side.
func (b *containerBench) startOne(ctx context.Context, name string, hostNetwork bool) (time.Duration, error) {
	// Lines already read belong to earlier starts.
	for len(b.lines) > 0 {
		<-b.lines
	}
	t0 := time.Now()
	if err := b.apply(ctx, fmt.Sprintf(`{"host-containers":{%q:{"source":%q,"enabled":true,"host-network":%t}}}`,
		name, helloSource, hostNetwork)); err != nil {
		return 0, err
	}
	timeout := time.NewTimer(3 * time.Minute)
	defer timeout.Stop()
	for {
		select {
		case l := <-b.lines:
			m := managerLine.FindStringSubmatch(l.text)
			if m == nil || m[1] != name {
				continue
			}
			switch msg := m[2]; {
			case strings.HasPrefix(msg, "running pid "):
				return l.at.Sub(t0), nil
			case strings.HasPrefix(msg, "network "), strings.HasPrefix(msg, "stopping "):
			default:
				return 0, b.fail("container %s: %s", name, l.text)
			}
		case <-b.exited:
			return 0, b.fail("container %s: QEMU exited while it started", name)
		case <-timeout.C:
			l, _ := b.log(ctx)
			return 0, b.fail("container %s: no running line within 3 minutes; the manager's log:\n%s", name, l)
		case <-ctx.Done():
			return 0, ctx.Err()
		}
	}
}

// disable disables the named host containers in one apply and waits until they are gone.
func (b *containerBench) disable(ctx context.Context, names []string) error {
	var parts []string
	for _, n := range names {
		parts = append(parts, fmt.Sprintf(`%q:{"enabled":false}`, n))
	}
	if err := b.apply(ctx, `{"host-containers":{`+strings.Join(parts, ",")+`}}`); err != nil {
		return err
	}
	deadline := time.Now().Add(5 * time.Minute)
	for {
		cctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		svcs, err := b.api.Services(cctx)
		cancel()
		if err == nil && !slices.ContainsFunc(svcs, func(s contract.ServiceStatus) bool { return slices.Contains(names, s.ID) }) {
			return nil
		}
		if time.Now().After(deadline) || b.hasExited() {
			return b.fail("containers %v still listed 5 minutes after being disabled: %+v %v", names, svcs, err)
		}
		time.Sleep(time.Second)
	}
}

// startLine is a manager's line "<name>: running pid <pid>, started in <duration>".
type startLine struct {
	name string
	d    time.Duration
}

var startRE = regexp.MustCompile(`(?m)^\S+ \[\s*[0-9.]+\] ([a-z0-9-]+): running pid \d+, started in (\S+)$`)

// startLines returns the start lines of the manager's log, in order. A duration that does not
// parse is returned as 0, which no caller takes for a figure.
func startLines(log string) []startLine {
	var ls []startLine
	for _, m := range startRE.FindAllStringSubmatch(log, -1) {
		d, _ := time.ParseDuration(m[2])
		ls = append(ls, startLine{m[1], d})
	}
	return ls
}

// clockNow is a shell command that sets $3 to the guest's monotonic clock in ns.
const clockNow = "set -- $(grep -m1 'now at' /proc/timer_list)"

// ctrImport imports the hello archive with ctr and returns the name it got.
func (b *containerBench) ctrImport() (string, error) {
	out, err := b.sh(fmt.Sprintf("ctr -n %s images import %s/%s >/dev/null && ctr -n %s images ls -q",
		ctrNamespace, contract.CIDataMount, helloArchive, ctrNamespace), 3*time.Minute)
	if err != nil {
		return "", err
	}
	if len(strings.Fields(out)) != 1 {
		return "", b.fail("ctr images import: want one image name, got %q", out)
	}
	return out, nil
}

// ctrRun runs the hello image with ctr in a container named name and returns the time it took
// by the guest's clock, the clock reading included.
func (b *containerBench) ctrRun(ref, name string) (time.Duration, error) {
	out, err := b.sh(fmt.Sprintf("%s; a=$3; ctr -n %s run -d --net-host %s %s >/tmp/bench-ctr.out 2>&1 || echo FAIL $(cat /tmp/bench-ctr.out); %s; echo $a $3",
		clockNow, ctrNamespace, ref, name, clockNow), 3*time.Minute)
	if err != nil {
		return 0, err
	}
	f := strings.Fields(out)
	if strings.Contains(out, "FAIL") || len(f) != 2 {
		return 0, b.fail("ctr run %s: %q", name, out)
	}
	a, err1 := strconv.ParseInt(f[0], 10, 64)
	e, err2 := strconv.ParseInt(f[1], 10, 64)
	if err1 != nil || err2 != nil || e <= a {
		return 0, b.fail("ctr run %s: bad clock readings %q", name, out)
	}
	return time.Duration(e - a), nil
}

// timeGuest times cmd n times by the guest's clock, the clock reading included.
func (b *containerBench) timeGuest(cmd string, n int) ([]time.Duration, error) {
	out, err := b.sh(fmt.Sprintf("for i in $(seq %d); do %s; a=$3; %s || echo FAIL; %s; echo $a $3; done", n, clockNow, cmd, clockNow), 5*time.Minute)
	if err != nil {
		return nil, err
	}
	f := strings.Fields(out)
	if strings.Contains(out, "FAIL") || len(f) != 2*n {
		return nil, b.fail("timing %q: want %d start, end pairs, got %q", cmd, n, out)
	}
	var ds []time.Duration
	for i := range n {
		a, err1 := strconv.ParseInt(f[2*i], 10, 64)
		e, err2 := strconv.ParseInt(f[2*i+1], 10, 64)
		if err1 != nil || err2 != nil || e < a {
			return nil, b.fail("timing %q: bad pair %q", cmd, f[2*i:2*i+2])
		}
		ds = append(ds, time.Duration(e-a))
	}
	return ds, nil
}

// clockOverhead is the median time between two clock readings with nothing between them.
func (b *containerBench) clockOverhead() (time.Duration, error) {
	ds, err := b.timeGuest("true", 7)
	if err != nil {
		return 0, err
	}
	return medianDur(ds), nil
}

// ctrRemove kills and removes ctr's containers names and checks that they are gone.
func (b *containerBench) ctrRemove(names []string) error {
	ids := strings.Join(names, " ")
	out, err := b.sh(fmt.Sprintf("ctr -n %s tasks rm -f %s >/dev/null 2>&1; ctr -n %s containers rm %s >/dev/null; echo listed $(ctr -n %s containers ls -q)",
		ctrNamespace, ids, ctrNamespace, ids, ctrNamespace), time.Duration(len(names))*time.Minute)
	if err != nil {
		return err
	}
	listed, ok := strings.CutPrefix(out, "listed")
	if !ok || slices.ContainsFunc(strings.Fields(listed), func(n string) bool { return slices.Contains(names, n) }) {
		return b.fail("removing ctr's containers %v: %q", names, out)
	}
	return nil
}

// event is one containerd event of a container.
type event struct {
	at        time.Time
	namespace string
	topic     string
	id        string
}

// eventRE takes the first field of an event's JSON: the snapshot's key, the container's id.
var eventRE = regexp.MustCompile(`^\{"\w+":"([^"]+)`)

// events stops ctr events and returns what it saw of container starts.
func (b *containerBench) events(pid string) ([]event, error) {
	var evs []event
	// One namespace at a time keeps each console line short.
	for _, ns := range []string{contract.ContainersNamespace, ctrNamespace} {
		out, err := b.sh(fmt.Sprintf(`kill %s 2>/dev/null; awk '$5 == "%s" && $6 ~ /^\/(snapshot\/prepare|containers\/create|tasks\/create|tasks\/start)$/ `+
			`{ print $1 "T" $2 "Z", $5, $6, substr($7, 1, 40) }' %s`, pid, ns, eventsFile), time.Minute)
		if err != nil {
			return nil, err
		}
		f := strings.Fields(out)
		if len(f)%4 != 0 || len(f) == 0 {
			return nil, b.fail("ctr events in %s: %q", ns, out)
		}
		for i := 0; i < len(f); i += 4 {
			at, err := time.Parse(time.RFC3339Nano, f[i])
			m := eventRE.FindStringSubmatch(f[i+3])
			if err != nil || m == nil {
				return nil, b.fail("ctr events: bad line %q (%v)", f[i:i+4], err)
			}
			evs = append(evs, event{at, f[i+1], f[i+2], m[1]})
		}
	}
	return evs, nil
}

// startEvents are the events of one start: snapshot prepared, container created, task created,
// task started.
type startEvents [4]time.Time

var startTopics = []string{"/snapshot/prepare", "/containers/create", "/tasks/create", "/tasks/start"}

// startsOf returns the starts in namespace ns, in order: each snapshot prepared begins one, the
// events after it with its id belong to it.
func startsOf(evs []event, ns string) []startEvents {
	evs = slices.Clone(evs)
	slices.SortStableFunc(evs, func(a, b event) int { return a.at.Compare(b.at) })
	var starts []startEvents
	last := map[string]int{}
	for _, e := range evs {
		if e.namespace != ns {
			continue
		}
		i := slices.Index(startTopics, e.topic)
		// The snapshots an image's unpacking prepares are no container's.
		if i == 0 && !strings.HasPrefix(e.id, "extract-") {
			starts = append(starts, startEvents{e.at})
			last[e.id] = len(starts) - 1
			continue
		}
		if j, ok := last[e.id]; ok && i > 0 && starts[j][i].IsZero() {
			starts[j][i] = e.at
		}
	}
	return starts
}

// phases describes the median phases of starts.
func phases(starts []startEvents) (string, error) {
	var ph [3][]time.Duration
	for n, s := range starts {
		for i := range 3 {
			if s[i].IsZero() || s[i+1].IsZero() || s[i+1].Before(s[i]) {
				return "", fmt.Errorf("ctr events: start %d lacks %s or %s (%v)", n+1, startTopics[i], startTopics[i+1], s)
			}
			ph[i] = append(ph[i], s[i+1].Sub(s[i]))
		}
	}
	return fmt.Sprintf("containerd's events, medians: snapshot prepared → container created %.2f s (spec), "+
		"→ task created %.2f s (shim + runc create), → task started %.2f s (runc start)",
		medianDur(ph[0]).Seconds(), medianDur(ph[1]).Seconds(), medianDur(ph[2]).Seconds()), nil
}

// spans are the starts' times from snapshot prepared to task started.
func spans(starts []startEvents) []time.Duration {
	var ds []time.Duration
	for _, s := range starts {
		ds = append(ds, s[3].Sub(s[0]))
	}
	return ds
}

func names(prefix string, n int) []string {
	var ns []string
	for i := range n {
		ns = append(ns, fmt.Sprintf("%s%02d", prefix, i))
	}
	return ns
}

// pct is the p-th percentile by nearest rank.
func pct(ds []time.Duration, p float64) time.Duration {
	s := slices.Clone(ds)
	slices.Sort(s)
	i := int(math.Ceil(p/100*float64(len(s)))) - 1
	return s[max(0, min(i, len(s)-1))]
}

func medianDur(ds []time.Duration) time.Duration { return pct(ds, 50) }

func mean(v []int64) int64 {
	var s int64
	for _, x := range v {
		s += x
	}
	return s / int64(len(v))
}

func kib(v int64) float64 { return float64(v) / 1024 }

// perDelta is the growth of a /proc/meminfo field in MiB, divided by n.
func perDelta(before, after map[string]int64, field string, n int) float64 {
	return kib(after[field]-before[field]) / float64(n)
}

func msOf(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

// hostLoad is this machine's 1-minute load average: a TCG guest is only as fast as its host is idle.
func hostLoad() string {
	b, err := os.ReadFile("/proc/loadavg")
	if f := strings.Fields(string(b)); err == nil && len(f) > 0 {
		return f[0]
	}
	return "unknown"
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}
