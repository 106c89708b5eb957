package system

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"strings"
	"time"

	"github.com/ballast-os/ballast/contract"
	"github.com/ballast-os/ballast/init/efivar"
	"github.com/ballast-os/ballast/init/system/supervise"
)

// The boot health gate. systemd-boot counts the tries of an entry on trial in its file name and
// tells the OS which file it booted (LoaderBootCountPath). The host is healthy when
//
//   - the ready line is out: the API answers (the apiserver listens only once its datastore is
//     open), the bootstrap containers are done (readyLineServices), the boot modules are in;
//   - the services the ready line waited for are still ready;
//   - no service has failed for good;
//   - the Kubernetes node of a service whose Health is contract.HealthKubernetesNode is
//     registered and Ready (nodehealth.go);
//   - no service is in a crash loop: crashLoopCrashes ends that nobody asked for (crashes, see
//     supervise.Status.Crashes) within the bless window, Image.Updates.BlessAfter.
//
// A trial boot healthy for BlessAfter in a row is blessed: its entry is renamed without the
// counter. One that is not healthy HealthTimeout after the init started, or not blessed
// BlessAfter later, or in a crash loop before it is blessed, is given up: its entry is renamed
// with no tries left and the host reboots, so the loader boots the entry before it. A boot that
// is not on trial is judged the same way and the verdict reported, nothing more. Every verdict
// goes to contract.BootHistoryPath.

// crashLoopCrashes crashes of one service within the bless window are a crash loop.
const crashLoopCrashes = 3

// Boot verdicts, BootRecord.Result.
const (
	resultBlessed   = "blessed"
	resultHealthy   = "healthy"
	resultUnhealthy = "unhealthy"
)

// bootedEntry is the boot entry the loader booted.
type bootedEntry struct {
	name  string         // the entry file's name as the loader gave it; "" when unknown
	file  string         // a trial's file, relative to the ESP's root
	entry contract.Entry // a trial's entry
	trial bool
}

// bootedEntry reads which entry the loader booted. Without the loader's variables (no UEFI, no
// systemd-boot, no efivarfs) it is an unknown entry, not on trial.
func (i *Init) bootedEntry() (bootedEntry, error) {
	l := i.loader()
	p, err := l.BootCountPath()
	if err == nil {
		file, err := efivar.ESPFile(p)
		if err != nil {
			return bootedEntry{}, fmt.Errorf("%s: %w", efivar.LoaderBootCountPath, err)
		}
		dir, name := path.Split(file)
		b := bootedEntry{name: name}
		if !strings.EqualFold(strings.TrimSuffix(dir, "/"), contract.ESPEntries) {
			return b, fmt.Errorf("%s %q: not an entry in %s", efivar.LoaderBootCountPath, p, contract.ESPEntries)
		}
		e, err := contract.ParseEntry(name)
		if err != nil {
			return b, fmt.Errorf("%s: %w", efivar.LoaderBootCountPath, err)
		}
		if !e.Counting {
			return b, nil
		}
		return bootedEntry{name: name, file: file, entry: e, trial: true}, nil
	}
	if !errors.Is(err, fs.ErrNotExist) {
		return bootedEntry{}, err
	}
	sel, err := l.EntrySelected()
	if errors.Is(err, fs.ErrNotExist) {
		return bootedEntry{}, nil
	}
	if err != nil {
		return bootedEntry{}, err
	}
	return bootedEntry{name: sel}, nil
}

// healthTimes are the image's HealthTimeout and BlessAfter, Ballast's defaults where unset.
func (i *Init) healthTimes() (timeout, blessAfter time.Duration) {
	def := contract.DefaultUpdatePolicy()
	timeout, blessAfter = time.Duration(i.image.Updates.HealthTimeout), time.Duration(i.image.Updates.BlessAfter)
	if timeout <= 0 {
		timeout = time.Duration(def.HealthTimeout)
	}
	if blessAfter <= 0 {
		blessAfter = time.Duration(def.BlessAfter)
	}
	return timeout, blessAfter
}

// watchBoot judges this boot once the boot modules and the ESP are in, and acts on the verdict.
func (i *Init) watchBoot(ctx context.Context) {
	select {
	case <-i.bootDone:
	case <-ctx.Done():
		return
	}
	b, err := i.bootedEntry()
	if err != nil {
		i.console.Errorf("boot health: %v; this boot cannot be blessed", err)
	}
	timeout, blessAfter := i.healthTimes()
	if b.trial {
		i.console.Milestone("boot", "trial of %s: blessed after %v healthy; given up if not healthy within %v",
			b.name, blessAfter, timeout)
	}
	healthy, reason, err := i.judgeBoot(ctx, timeout, blessAfter)
	if err != nil {
		return
	}
	rec := contract.BootRecord{Entry: b.name, Slot: contract.Slot(i.identity.Slot), Version: i.image.Version, Trial: b.trial}
	reboot := false
	switch {
	case healthy && b.trial:
		rec.Result = resultBlessed
		name, err := i.renameEntry(b, b.entry.Blessed())
		if err != nil {
			// Healthy all the same; the loader counts the entry down at the next boots and,
			// with its tries gone, falls back to the entry before it.
			rec.Result, rec.Reason = resultHealthy, "not blessed: "+err.Error()
			i.console.Errorf("boot healthy, but not blessed: %v", err)
			break
		}
		i.console.Milestone("boot", "blessed: %s", name)
	case healthy:
		rec.Result = resultHealthy
		i.console.Milestone("boot", "healthy: %s", orUnknown(b.name))
	case b.trial:
		rec.Result, rec.Reason = resultUnhealthy, reason
		fallback, ferr := i.fallbackEntry(b)
		// With no other entry, rebooting would boot this one again, and again: a host that
		// answers is more use. Without a look at the ESP, a reboot is bounded while the loader
		// has tries of this entry left to count down.
		if ferr == nil && fallback == "" || ferr != nil && b.entry.TriesLeft == 0 {
			why := "no other entry is left to boot"
			if ferr != nil {
				why = ferr.Error() + ", and no tries are left"
			}
			i.console.Errorf("boot unhealthy: %s; not giving up %s: %s", reason, b.name, why)
			rec.Reason += "; not given up: " + why
			break
		}
		i.console.Errorf("boot unhealthy: %s; giving up %s and rebooting", reason, b.name)
		if _, err := i.renameEntry(b, b.entry.GiveUp()); err != nil {
			// The loader counts the entry down at each boot anyway: its tries run out.
			i.console.Errorf("boot health: %v", err)
			rec.Reason += "; not renamed: " + err.Error()
		}
		reboot = true
	default:
		rec.Result, rec.Reason = resultUnhealthy, reason
		i.console.Errorf("boot unhealthy: %s; %s is not on trial: not rebooting", reason, orUnknown(b.name))
	}
	rec.Time = time.Now().UTC()
	if err := i.recordBoot(rec); err != nil {
		i.console.Errorf("%v", err)
	}
	if reboot {
		select {
		case i.requests <- shutdownRequest{Reboot, "boot unhealthy"}:
		default: // a shutdown is requested already
		}
		go i.rebootIfStuck(ctx)
	}
}

// rebootIfStuck reboots the machine at once when the shutdown asked for has not ended it within
// rebootGrace (every bounded step of Shutdown and some): a main loop that is gone or hangs must
// not keep an unhealthy entry running.
func (i *Init) rebootIfStuck(ctx context.Context) {
	t := time.NewTimer(i.rebootGrace)
	defer t.Stop()
	select {
	case <-t.C:
	case <-ctx.Done():
		return
	}
	i.console.Errorf("boot health: the reboot asked for %v ago has not happened; rebooting now", i.rebootGrace)
	i.kernel.Sync()
	i.reboot(Reboot)
}

func orUnknown(name string) string {
	if name == "" {
		return "unknown entry"
	}
	return name
}

// judgeBoot watches the host's health until a verdict: healthy for blessAfter in a row, or not
// healthy (why). Its error is ctx's, when ctx ends first.
func (i *Init) judgeBoot(ctx context.Context, timeout, blessAfter time.Duration) (bool, string, error) {
	defer i.startNodeWatch(ctx)()
	deadline := i.started.Add(timeout)
	// Past the deadline a healthy host still gets its bless window, once: the bound on flapping.
	last := deadline.Add(blessAfter)
	var since time.Time // healthy in a row since; zero while not healthy
	lastReason := ""
	t := time.NewTicker(i.healthPoll)
	defer t.Stop()
	for {
		now := time.Now()
		reason, loop, crash := i.health(now, blessAfter)
		switch {
		case loop:
			return false, reason, nil
		case reason != "":
			since, lastReason = time.Time{}, reason
			if !now.Before(deadline) {
				return false, fmt.Sprintf("not healthy %v after the init started: %s", timeout, reason), nil
			}
		default:
			if since.IsZero() || crash.After(since) {
				// A crash between two looks breaks the run as well.
				if !since.IsZero() {
					lastReason = "a service the ready line waits for crashed"
				}
				since = now
			}
			if now.Sub(since) >= blessAfter {
				return true, "", nil
			}
			if !now.Before(last) {
				return false, fmt.Sprintf("not healthy for %v in a row by %v after the init started (last: %s)",
					blessAfter, timeout+blessAfter, lastReason), nil
			}
		}
		select {
		case <-t.C:
		case <-ctx.Done():
			return false, "", ctx.Err()
		}
	}
}

// health says why the host is not healthy at now ("" when it is), whether that is a crash loop,
// and when a service the ready line waits for last crashed.
func (i *Init) health(now time.Time, window time.Duration) (reason string, crashLoop bool, lastCrash time.Time) {
	if i.sup == nil {
		return "no services run", false, lastCrash
	}
	essential := map[string]bool{}
	if api := i.readyService(); api != "" {
		essential[api] = true
	}
	for _, id := range i.readyLineServices() {
		essential[id] = true
	}
	statuses := i.sup.Statuses()
	for _, st := range statuses {
		if p, err := contract.FindService(st.ID); err == nil && p.Service.Console {
			continue // the console shell ends when its user says so
		}
		n := 0
		for _, c := range st.Crashes {
			if now.Sub(c) < window {
				n++
			}
		}
		if n >= crashLoopCrashes {
			return fmt.Sprintf("service %s is in a crash loop: %d crashes within %v", st.ID, n, window), true, lastCrash
		}
		if essential[st.ID] && len(st.Crashes) > 0 && st.Crashes[len(st.Crashes)-1].After(lastCrash) {
			lastCrash = st.Crashes[len(st.Crashes)-1]
		}
	}
	// What keeps the host from being healthy, once the ready line is out; before it, what keeps
	// the ready line back.
	why := ""
	for _, st := range statuses {
		switch {
		case st.State == supervise.StateFailed:
			why = fmt.Sprintf("service %s failed: %v", st.ID, st.Err)
		case essential[st.ID] && st.State != supervise.StateReady && st.State != supervise.StateFinished:
			why = fmt.Sprintf("service %s is %s", st.ID, st.State)
			if st.LastExit != "" {
				why += " (last exit: " + st.LastExit + ")"
			}
		default:
			continue
		}
		break
	}
	if why == "" {
		why = i.nodeReason()
	}
	select {
	case <-i.ready:
		return why, false, lastCrash
	default:
	}
	select {
	case <-i.announced:
		if i.noReady != "" {
			return "no ready line: " + i.noReady, false, lastCrash
		}
		return "no ready line", false, lastCrash
	default:
	}
	if why != "" {
		return "no ready line yet: " + why, false, lastCrash
	}
	return "no ready line yet", false, lastCrash
}

// renameEntry renames the booted trial entry on the ESP to to's file name and syncs the
// directory; it returns the new name. The name keeps the case the loader gave it: FAT keeps
// case, ParseEntry does not.
func (i *Init) renameEntry(b bootedEntry, to contract.Entry) (string, error) {
	name := entryName(b.name, to)
	if name == b.name {
		return name, nil
	}
	dir := filepath.Join(i.path(contract.ESPMount), filepath.FromSlash(path.Dir(b.file)))
	oldPath, newPath := filepath.Join(dir, b.name), filepath.Join(dir, name)
	if _, err := os.Lstat(newPath); err == nil {
		return "", fmt.Errorf("ESP: rename %s to %s: the new name exists", b.name, name)
	}
	if err := os.Rename(oldPath, newPath); err != nil {
		return "", fmt.Errorf("ESP: %w", err)
	}
	if err := syncDir(dir); err != nil {
		return "", fmt.Errorf("ESP: %w", err)
	}
	return name, nil
}

// entryName is to's file name in the case of name, a name of the same entry.
func entryName(name string, to contract.Entry) string {
	want := to.FileName()
	stem := strings.TrimSuffix(to.Blessed().FileName(), ".efi")
	if len(name) >= len(stem) && strings.EqualFold(name[:len(stem)], stem) {
		return name[:len(stem)] + want[len(stem):]
	}
	return want
}

// fallbackEntry returns an entry the loader would boot instead of b once b is given up: another
// Ballast entry in b's directory with tries left (or no counter). "" when there is none.
func (i *Init) fallbackEntry(b bootedEntry) (string, error) {
	dir := filepath.Join(i.path(contract.ESPMount), filepath.FromSlash(path.Dir(b.file)))
	ents, err := os.ReadDir(dir)
	if err != nil {
		return "", fmt.Errorf("ESP: %w", err)
	}
	for _, e := range ents {
		if strings.EqualFold(e.Name(), b.name) || !e.Type().IsRegular() {
			continue
		}
		if other, err := contract.ParseEntry(e.Name()); err == nil && !other.Exhausted() {
			return e.Name(), nil
		}
	}
	return "", nil
}
