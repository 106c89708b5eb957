package manifest

import (
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"
)

// LockLatest is the version lock that follows the newest release.
const LockLatest = "latest"

// Choice is what Choose decided for a host.
type Choice struct {
	// Update is the release to take now; nil when there is none.
	Update *Release
	// UpToDate: the host runs the release it would take (or, following "latest", something at
	// least as new as every release open to it).
	UpToDate bool
	// Available lists every version no newer than max_version, newest first.
	Available []string
	// Waiting is the newest release the lock allows that this host may not take yet because its
	// wave has not started; WaveOpens is when it does for this host's seed.
	Waiting   string
	WaveOpens time.Time
	// Reason says in one sentence why.
	Reason string
}

// Choose picks the newest release a host running current may take now.
//
// lock is "latest" (or empty, the same) or an exact version; an exact version may be older than
// current, which is a downgrade. Releases newer than max_version are never chosen. Waves apply to
// either lock unless ignoreWaves: a release without waves is open to every host; with waves
// (sorted by seed bound), a host is in the first wave whose bound is at least its seed (a seed
// above the last bound is in the last wave) and may take the release once now reaches that wave's
// start, so before the first wave's start no host may. Following "latest", a host never moves to
// an older version, and takes the newest open release even when a newer one is still waiting for
// its wave.
func (m *Manifest) Choose(current, lock string, seed int, ignoreWaves bool, now time.Time) (Choice, error) {
	cur, err := ParseVersion(current)
	if err != nil {
		return Choice{}, fmt.Errorf("manifest %s: current version: %w", m.Variant, err)
	}
	if seed < 0 || seed > MaxSeed {
		return Choice{}, fmt.Errorf("manifest %s: seed %d: want 0..%d", m.Variant, seed, MaxSeed)
	}
	if lock == "" {
		lock = LockLatest
	}
	var pinned Version
	if lock != LockLatest {
		if pinned, err = ParseVersion(lock); err != nil {
			return Choice{}, fmt.Errorf("manifest %s: version lock: want %q or a version: %w", m.Variant, LockLatest, err)
		}
	}
	var maxV *Version
	if m.MaxVersion != "" {
		v, err := ParseVersion(m.MaxVersion)
		if err != nil {
			return Choice{}, fmt.Errorf("manifest %s: max_version: %w", m.Variant, err)
		}
		maxV = &v
	}

	type candidate struct {
		r *Release
		v Version
	}
	var cands []candidate
	for i := range m.Releases {
		r := &m.Releases[i]
		v, err := ParseVersion(r.Version)
		if err != nil {
			return Choice{}, fmt.Errorf("manifest %s: releases[%d]: %w", m.Variant, i, err)
		}
		if maxV != nil && v.Compare(*maxV) > 0 {
			continue
		}
		cands = append(cands, candidate{r, v})
	}
	slices.SortStableFunc(cands, func(a, b candidate) int { return b.v.Compare(a.v) })
	var c Choice
	c.Available = []string{}
	for _, k := range cands {
		c.Available = append(c.Available, k.r.Version)
	}

	if lock != LockLatest {
		i := slices.IndexFunc(cands, func(k candidate) bool { return k.v.Compare(pinned) == 0 })
		if i < 0 {
			if m.Release(lock) != nil {
				return Choice{}, fmt.Errorf("manifest %s: version lock %s: above max_version %s", m.Variant, lock, m.MaxVersion)
			}
			return Choice{}, fmt.Errorf("manifest %s: version lock %s: no such release", m.Variant, lock)
		}
		k := cands[i]
		if k.v.Compare(cur) == 0 {
			c.UpToDate = true
			c.Reason = fmt.Sprintf("up to date: running %s, the locked version", current)
			return c, nil
		}
		open, opens := waveOpen(k.r.Waves, seed, now)
		if open || ignoreWaves {
			c.Update = k.r
			c.Reason = fmt.Sprintf("%s (locked) is available", k.r.Version)
			return c, nil
		}
		c.Waiting, c.WaveOpens = k.r.Version, opens
		c.Reason = fmt.Sprintf("%s (locked) opens for seed %d at %s", k.r.Version, seed, opens.UTC().Format(time.RFC3339))
		return c, nil
	}

	for _, k := range cands {
		if k.v.Compare(cur) <= 0 {
			break
		}
		open, opens := waveOpen(k.r.Waves, seed, now)
		if open || ignoreWaves {
			c.Update = k.r
			break
		}
		if c.Waiting == "" {
			c.Waiting, c.WaveOpens = k.r.Version, opens
		}
	}
	var reason []string
	switch {
	case c.Update != nil:
		reason = append(reason, c.Update.Version+" is available")
	case c.Waiting != "":
		reason = append(reason, "no newer release open to this host yet")
	default:
		c.UpToDate = true
		reason = append(reason, "up to date: running "+current)
	}
	if c.Waiting != "" {
		reason = append(reason, fmt.Sprintf("%s opens for seed %d at %s", c.Waiting, seed, c.WaveOpens.UTC().Format(time.RFC3339)))
	}
	c.Reason = strings.Join(reason, "; ")
	return c, nil
}

// waveOpen reports whether a release with these waves is open to a host of this seed now, and
// when it opens for it (zero without waves).
func waveOpen(ws []Wave, seed int, now time.Time) (bool, time.Time) {
	if len(ws) == 0 {
		return true, time.Time{}
	}
	w := ws[len(ws)-1]
	for _, x := range ws {
		if seed <= x.Seeds {
			w = x
			break
		}
	}
	return !now.Before(w.Start), w.Start
}

// ParseWaves reads a wave schedule written as comma-separated SEEDS@WHEN pairs, WHEN being an
// RFC 3339 time or an offset from now ("+0h", "+4h", "+90m"): "0@+0h,1024@+4h,2047@+24h".
// Times are kept to the second, in UTC.
func ParseWaves(spec string, now time.Time) ([]Wave, error) {
	var ws []Wave
	if strings.TrimSpace(spec) == "" {
		return nil, nil
	}
	for i, part := range strings.Split(spec, ",") {
		part = strings.TrimSpace(part)
		seeds, when, ok := strings.Cut(part, "@")
		if !ok {
			return nil, fmt.Errorf("waves: %q (wave %d): want SEEDS@TIME or SEEDS@+DURATION", part, i+1)
		}
		n, err := strconv.Atoi(strings.TrimSpace(seeds))
		if err != nil {
			return nil, fmt.Errorf("waves: %q (wave %d): seeds: %w", part, i+1, err)
		}
		when = strings.TrimSpace(when)
		var t time.Time
		if off, rel := strings.CutPrefix(when, "+"); rel {
			d, err := time.ParseDuration(off)
			if err != nil {
				return nil, fmt.Errorf("waves: %q (wave %d): offset: %w", part, i+1, err)
			}
			t = now.Add(d)
		} else if t, err = time.Parse(time.RFC3339, when); err != nil {
			return nil, fmt.Errorf("waves: %q (wave %d): time: want RFC 3339 or +DURATION: %w", part, i+1, err)
		}
		ws = append(ws, Wave{Seeds: n, Start: t.UTC().Truncate(time.Second)})
	}
	if err := ValidateWaves(ws); err != nil {
		return nil, fmt.Errorf("waves %q: %w", spec, err)
	}
	return ws, nil
}
