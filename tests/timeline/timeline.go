// Package timeline reads a boot's "[uptime] ballast: <stage> ..." console milestones (init/console)
// into a timeline and draws it as an SVG: the boot stages one after the other, each service from
// started to ready, so where the time goes shows at a glance.
package timeline

import (
	"bufio"
	"fmt"
	"html"
	"regexp"
	"slices"
	"strconv"
	"strings"
)

// Event is one milestone.
type Event struct {
	At     float64 // seconds since the kernel started
	Stage  string  // "initramfs", "modules", "service", "ready", "error:", ...
	Detail string
}

// Span is a named stretch of the boot.
type Span struct {
	Name       string
	Start, End float64
	Service    bool // a service's start → ready, drawn on its own row
}

// Timeline is a boot as its console told it.
type Timeline struct {
	Events []Event
	Spans  []Span
}

var milestone = regexp.MustCompile(`^\[\s*([0-9]+\.[0-9]+)\] ballast: (\S+)\s*(.*)$`)

// Parse reads the milestones of one boot from console text; other lines are ignored. It fails when
// the boot has no initramfs line or no ready line, since a timeline without both ends says nothing.
func Parse(console string) (Timeline, error) {
	var tl Timeline
	sc := bufio.NewScanner(strings.NewReader(console))
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		m := milestone.FindStringSubmatch(strings.TrimRight(sc.Text(), "\r"))
		if m == nil {
			continue
		}
		at, err := strconv.ParseFloat(m[1], 64)
		if err != nil {
			return Timeline{}, fmt.Errorf("timeline: %q: %w", sc.Text(), err)
		}
		tl.Events = append(tl.Events, Event{At: at, Stage: m[2], Detail: m[3]})
	}
	if err := sc.Err(); err != nil {
		return Timeline{}, fmt.Errorf("timeline: %w", err)
	}
	first, ok := tl.find("initramfs")
	if !ok {
		return Timeline{}, fmt.Errorf("timeline: no initramfs milestone")
	}
	ready, ok := tl.find("ready")
	if !ok {
		return Timeline{}, fmt.Errorf("timeline: no ready line")
	}
	// Boot stages: from each milestone to the next one, up to the ready line; services apart.
	var stages []Event
	for _, e := range tl.Events {
		if e.At >= first.At && e.At <= ready.At && e.Stage != "service" && e.Stage != "error:" {
			stages = append(stages, e)
		}
	}
	for i := 1; i < len(stages); i++ {
		tl.Spans = append(tl.Spans, Span{Name: stages[i].Stage, Start: stages[i-1].At, End: stages[i].At})
	}
	started := map[string]float64{}
	for _, e := range tl.Events {
		if e.Stage != "service" {
			continue
		}
		f := strings.Fields(e.Detail)
		if len(f) < 2 {
			continue
		}
		switch f[1] {
		case "started":
			if _, seen := started[f[0]]; !seen {
				started[f[0]] = e.At
			}
		case "ready":
			if s, ok := started[f[0]]; ok && !slices.ContainsFunc(tl.Spans, func(sp Span) bool { return sp.Service && sp.Name == f[0] }) {
				tl.Spans = append(tl.Spans, Span{Name: f[0], Start: s, End: e.At, Service: true})
			}
		}
	}
	return tl, nil
}

func (tl Timeline) find(stage string) (Event, bool) {
	for _, e := range tl.Events {
		if e.Stage == stage {
			return e, true
		}
	}
	return Event{}, false
}

// Duration returns the seconds from the first from milestone to the first to milestone.
func (tl Timeline) Duration(from, to string) (float64, error) {
	a, ok := tl.find(from)
	if !ok {
		return 0, fmt.Errorf("timeline: no %s milestone", from)
	}
	b, ok := tl.find(to)
	if !ok {
		return 0, fmt.Errorf("timeline: no %s milestone", to)
	}
	return b.At - a.At, nil
}

// Service returns a service's seconds from started to ready.
func (tl Timeline) Service(id string) (float64, error) {
	for _, s := range tl.Spans {
		if s.Service && s.Name == id {
			return s.End - s.Start, nil
		}
	}
	return 0, fmt.Errorf("timeline: service %s never got from started to ready", id)
}

// SVG draws the timeline: a time axis from the initramfs's first line to the ready line, a row of
// boot stages (each bar named for the milestone that ends it) and a row per service.
func (tl Timeline) SVG(title string) []byte {
	first, _ := tl.find("initramfs")
	ready, _ := tl.find("ready")
	t0, t1 := first.At, ready.At
	for _, s := range tl.Spans {
		t1 = max(t1, s.End)
	}
	const (
		left, width, rowH, top = 130.0, 760.0, 26.0, 50.0
	)
	span := max(t1-t0, 0.001)
	x := func(t float64) float64 { return left + (t-t0)/span*width }
	var rows []Span
	var stages []Span
	for _, s := range tl.Spans {
		if s.Service {
			rows = append(rows, s)
		} else {
			stages = append(stages, s)
		}
	}
	height := top + rowH*float64(len(rows)+1) + 60
	var b strings.Builder
	fmt.Fprintf(&b, `<svg xmlns="http://www.w3.org/2000/svg" width="%.0f" height="%.0f" font-family="sans-serif" font-size="11">`+"\n", left+width+40, height)
	fmt.Fprintf(&b, `<text x="10" y="20" font-size="14">%s — initramfs → ready %.2f s</text>`+"\n", html.EscapeString(title), ready.At-first.At)
	// Axis with a tick every 0.5 s.
	axisY := top + rowH*float64(len(rows)+1) + 10
	fmt.Fprintf(&b, `<line x1="%.1f" y1="%.1f" x2="%.1f" y2="%.1f" stroke="#333"/>`+"\n", left, axisY, left+width, axisY)
	for t := 0.0; t <= span+1e-9; t += 0.5 {
		fmt.Fprintf(&b, `<line x1="%.1f" y1="%.1f" x2="%.1f" y2="%.1f" stroke="#ccc"/>`, x(t0+t), top-5, x(t0+t), axisY)
		fmt.Fprintf(&b, `<text x="%.1f" y="%.1f" text-anchor="middle">%.1f s</text>`+"\n", x(t0+t), axisY+15, t)
	}
	colors := []string{"#4e79a7", "#f28e2b", "#59a14f", "#e15759", "#76b7b2", "#edc948", "#b07aa1", "#ff9da7", "#9c755f", "#bab0ac"}
	fmt.Fprintf(&b, `<text x="10" y="%.1f">boot stages</text>`+"\n", top+rowH*0.6)
	for i, s := range stages {
		w := max(x(s.End)-x(s.Start), 1)
		fmt.Fprintf(&b, `<rect x="%.1f" y="%.1f" width="%.1f" height="%.1f" fill="%s"><title>%s: %.2f s</title></rect>`+"\n",
			x(s.Start), top, w, rowH-6, colors[i%len(colors)], html.EscapeString(s.Name), s.End-s.Start)
		if w > 40 {
			fmt.Fprintf(&b, `<text x="%.1f" y="%.1f" fill="white">%s</text>`+"\n", x(s.Start)+3, top+rowH*0.55, html.EscapeString(s.Name))
		}
	}
	for i, s := range rows {
		y := top + rowH*float64(i+1)
		fmt.Fprintf(&b, `<text x="10" y="%.1f">service %s</text>`+"\n", y+rowH*0.6, html.EscapeString(s.Name))
		fmt.Fprintf(&b, `<rect x="%.1f" y="%.1f" width="%.1f" height="%.1f" fill="#888"><title>%s started → ready: %.2f s</title></rect>`+"\n",
			x(s.Start), y, max(x(s.End)-x(s.Start), 1), rowH-6, html.EscapeString(s.Name), s.End-s.Start)
		fmt.Fprintf(&b, `<text x="%.1f" y="%.1f">%.2f s</text>`+"\n", x(s.End)+4, y+rowH*0.6, s.End-s.Start)
	}
	b.WriteString("</svg>\n")
	return []byte(b.String())
}
