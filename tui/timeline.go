package tui

import (
	"fmt"
	"sort"
	"strings"
	"time"

	"charm.land/lipgloss/v2"
	"github.com/charmbracelet/x/ansi"

	"github.com/krunbench/krunbench/session/recording"
	"github.com/krunbench/krunbench/virtiofs/fuse"
	"github.com/krunbench/krunbench/virtiofs/trace"
)

// mark is one point of the boot timeline.
type mark struct {
	glyph string
	label string
	at    time.Duration
	fuse  bool // a first FUSE request, not an init milestone
}

// bootTimeline collects the boot's landmarks on one axis, time since the
// session started: the first FUSE requests that matter for booting
// (INIT, the LOOKUP of init.krun, its first READ and its EOF read, at
// their trace time) and the init's milestones (at the time the host saw
// them).
type bootTimeline struct {
	init, lookup, read, eof *mark
	initNodes               map[uint64]bool
	milestones              []mark
}

var milestoneGlyphs = map[string]string{"mounted": "M", "config": "C", "exec": "E", "exit": "X"}

func (b *bootTimeline) reset() { *b = bootTimeline{} }

func (b *bootTimeline) event(ev *trace.Event) {
	if b.initNodes == nil {
		b.initNodes = map[uint64]bool{}
	}
	switch {
	case ev.Op == fuse.OpInit && b.init == nil:
		b.init = &mark{glyph: "I", label: "INIT", at: ev.Time, fuse: true}
	case ev.Op == fuse.OpLookup && ev.Name == "init.krun" && ev.Errno == 0:
		b.initNodes[ev.NewNodeid] = true
		if b.lookup == nil {
			b.lookup = &mark{glyph: "L", label: "LOOKUP init.krun", at: ev.Time, fuse: true}
		}
	case ev.Op == fuse.OpRead && ev.Synthetic && (ev.IsInit() || b.initNodes[ev.Nodeid]):
		if b.read == nil {
			b.read = &mark{glyph: "R", label: "first READ", at: ev.Time, fuse: true}
		}
		if ev.EOF && b.eof == nil {
			b.eof = &mark{glyph: "⏎", label: "EOF read", at: ev.Time, fuse: true}
		}
	}
}

func (b *bootTimeline) milestone(m recording.Milestone) {
	g := milestoneGlyphs[m.Name]
	if g == "" {
		g = "•"
	}
	label := m.Name
	if m.HasCode {
		label += fmt.Sprintf(" (code %d)", m.Code)
	}
	b.milestones = append(b.milestones, mark{glyph: g, label: label, at: m.At})
}

func (b *bootTimeline) marks() []mark {
	var ms []mark
	for _, m := range []*mark{b.init, b.lookup, b.read, b.eof} {
		if m != nil {
			ms = append(ms, *m)
		}
	}
	ms = append(ms, b.milestones...)
	sort.SliceStable(ms, func(i, j int) bool { return ms[i].at < ms[j].at })
	return ms
}

// render draws the timeline as a bar of width cells and a legend wrapped
// to width.
func (b *bootTimeline) render(st *themesStyles, width int) []string {
	ms := b.marks()
	if len(ms) == 0 {
		return []string{st.muted.Render("boot timeline: waiting for the guest…")}
	}
	end := ms[len(ms)-1].at
	label := " " + fmtSecs(end)
	barW := max(width-ansi.StringWidth(label)-2, 4)
	cells := make([]string, barW)
	for i := range cells {
		cells[i] = st.muted.Render("─")
	}
	for i, m := range ms {
		style := st.accent
		if m.fuse {
			style = st.initRead
		}
		cells[markCells(ms, end, barW)[i]] = style.Render(m.glyph)
	}
	bar := st.muted.Render("├") + strings.Join(cells, "") + st.muted.Render("┤") + label
	lines := []string{bar}
	var cur strings.Builder
	curW := 0
	for _, m := range ms {
		item := fmt.Sprintf("%s %s %s", m.glyph, m.label, fmtSecs(m.at))
		w := ansi.StringWidth(item) + 2
		if curW > 0 && curW+w > width {
			lines = append(lines, cur.String())
			cur.Reset()
			curW = 0
		}
		cur.WriteString(item + "  ")
		curW += w
	}
	if curW > 0 {
		lines = append(lines, cur.String())
	}
	return lines
}

// markCells places the marks (sorted by time) on a bar of barW cells at
// their times' proportion of end; marks that would share a cell are moved
// apart, in order, so that none hides another while the bar has room.
func markCells(ms []mark, end time.Duration, barW int) []int {
	xs := make([]int, len(ms))
	for i, m := range ms {
		x := 0
		if end > 0 {
			x = int(float64(m.at) / float64(end) * float64(barW-1))
		}
		if i > 0 {
			x = max(x, xs[i-1]+1)
		}
		xs[i] = x
	}
	for i := len(xs) - 1; i >= 0; i-- {
		limit := barW - len(xs) + i // leave a cell for each later mark
		xs[i] = min(max(min(xs[i], limit), 0), barW-1)
	}
	return xs
}

// themesStyles are the few styles the timeline draws with.
type themesStyles struct {
	muted, accent, initRead lipgloss.Style
}

func fmtSecs(d time.Duration) string { return fmt.Sprintf("%.3fs", d.Seconds()) }
