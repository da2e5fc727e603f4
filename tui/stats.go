package tui

import (
	"fmt"
	"sort"
	"time"

	"charm.land/bubbles/v2/key"
	tea "charm.land/bubbletea/v2"

	"github.com/krunbench/krunbench/session/recording"
	"github.com/krunbench/krunbench/virtiofs/trace"
)

// sparkSeconds is how many seconds the sparklines cover.
const sparkSeconds = 60

type statsKeys struct {
	Up, Down key.Binding
}

func newStatsKeys() statsKeys {
	return statsKeys{
		Up:   key.NewBinding(key.WithKeys("up", "k"), key.WithHelp("↑/k", "scroll opcodes")),
		Down: key.NewBinding(key.WithKeys("down", "j"), key.WithHelp("↓/j", "scroll opcodes")),
	}
}

// opCount is what the pane counted itself for one opcode.
type opCount struct {
	name          string
	count, errors uint64
	ring          *secondRing
}

// stats is the statistics pane: totals, per-opcode counts, errors and
// rates with sparklines, and the boot timeline. Counts come from the
// source's latest snapshot when it sends them (they include what the UI
// never saw), else from the events the pane saw; rates and sparklines
// always come from the events, per second of trace time.
type stats struct {
	ctx  *Context
	keys statsKeys

	snap     *trace.Snapshot
	ops      map[uint32]*opCount
	total    *secondRing
	seen     uint64
	errors   uint64
	bytes    uint64
	timeline bootTimeline
	top      int
	w, h     int
	viewCache
}

func newStats(ctx *Context) *stats {
	s := &stats{ctx: ctx, keys: newStatsKeys()}
	s.reset()
	return s
}

func (s *stats) reset() {
	s.invalidate()
	s.snap, s.ops, s.total = nil, map[uint32]*opCount{}, newSecondRing(sparkSeconds)
	s.seen, s.errors, s.bytes, s.top = 0, 0, 0, 0
	s.timeline.reset()
}

func (s *stats) Title() string    { return "stats" }
func (s *stats) SetSize(w, h int) { s.w, s.h = w, h }
func (s *stats) Capturing() bool  { return false }
func (s *stats) Bindings() []key.Binding {
	return []key.Binding{s.keys.Up, s.keys.Down}
}

func (s *stats) Update(msg tea.KeyPressMsg) tea.Cmd {
	s.invalidate()
	switch {
	case key.Matches(msg, s.keys.Up):
		s.top = max(s.top-1, 0)
	case key.Matches(msg, s.keys.Down):
		s.top = min(s.top+1, max(len(s.ops)-1, 0))
	}
	return nil
}

func (s *stats) add(evs []trace.Event) {
	s.invalidate()
	for i := range evs {
		ev := &evs[i]
		o := s.ops[ev.Op]
		if o == nil {
			o = &opCount{name: opLabel(ev), ring: newSecondRing(sparkSeconds)}
			s.ops[ev.Op] = o
		}
		o.count++
		s.seen++
		if !ev.OK() {
			o.errors++
			s.errors++
		}
		if ev.Bytes > 0 {
			s.bytes += uint64(ev.Bytes)
		}
		o.ring.add(ev.Time)
		s.total.add(ev.Time)
		s.timeline.event(ev)
	}
	s.advance()
}

func (s *stats) setSnapshot(snap *trace.Snapshot) {
	s.invalidate()
	s.snap = snap
	s.advance()
}

func (s *stats) milestone(m recording.Milestone) {
	s.invalidate()
	s.timeline.milestone(m)
}

// advance moves every ring to the latest trace time known, so quiet
// seconds show as gaps.
func (s *stats) advance() {
	if s.snap == nil {
		return
	}
	now := s.snap.Uptime
	s.total.advance(now)
	for _, o := range s.ops {
		o.ring.advance(now)
	}
}

// sourceEnded moves the rates past the session's last second: nothing
// more happens, so the rates read 0 rather than the last second's.
func (s *stats) sourceEnded() {
	s.invalidate()
	if !s.total.seen {
		return
	}
	after := time.Duration(s.total.head+2) * time.Second
	s.total.advance(after)
	for _, o := range s.ops {
		o.ring.advance(after)
	}
}

// row is one line of the opcode table.
type statRow struct {
	op                   uint32
	name                 string
	count, errors, bytes uint64
	p50, p99             time.Duration
	lat                  bool
	ring                 *secondRing
}

func (s *stats) rows() []statRow {
	byOp := map[uint32]*statRow{}
	for op, o := range s.ops {
		byOp[op] = &statRow{op: op, name: o.name, count: o.count, errors: o.errors, ring: o.ring}
	}
	if s.snap != nil {
		for _, o := range s.snap.Ops {
			r := byOp[o.Op]
			if r == nil {
				r = &statRow{op: o.Op}
				byOp[o.Op] = r
			}
			r.name, r.count, r.errors, r.bytes = trace.Printable(o.Name), o.Count, o.Errors, o.Bytes
			r.p50, r.p99, r.lat = o.Latency.P50, o.Latency.P99, true
		}
	}
	rows := make([]statRow, 0, len(byOp))
	for _, r := range byOp {
		rows = append(rows, *r)
	}
	sort.Slice(rows, func(i, j int) bool {
		if rows[i].count != rows[j].count {
			return rows[i].count > rows[j].count
		}
		return rows[i].op < rows[j].op
	})
	return rows
}

func (s *stats) View(focused bool) string {
	st := s.ctx.Styles
	style, title := styleFor(s.ctx, focused)
	inner := max(s.w-2, 1)
	height := max(s.h-2, 1)

	count, errs, nbytes := s.seen, s.errors, s.bytes
	if s.snap != nil {
		count, errs, nbytes = s.snap.Total.Count, s.snap.Total.Errors, s.snap.Total.Bytes
	}
	errText := fmt.Sprintf("errors %d", errs)
	if errs > 0 {
		errText = st.Error.Render(errText)
	}
	lines := []string{
		fmt.Sprintf("requests %d  %s  bytes %s  %d/s", count, errText, HumanBytes(nbytes), s.total.rate()),
	}
	sparkW := min(max(inner-8, 4), sparkSeconds)
	lines = append(lines, st.Muted.Render("total ")+st.Accent.Render(Sparkline(s.total.values(), sparkW)))

	tl := s.timeline.render(&themesStyles{muted: st.Muted, accent: st.Accent, initRead: st.InitRead}, inner)
	lat := inner >= 45
	rowW := 29
	if lat {
		rowW += 16
	}
	opSpark := min(inner-rowW-1, sparkSeconds)
	room := height - len(lines) - len(tl) - 3
	rows := s.rows()
	s.top = min(s.top, max(len(rows)-1, 0))
	if room > 0 {
		hdr := fmt.Sprintf("%-11s %6s %4s %5s", "OP", "COUNT", "ERR", "/s")
		if lat {
			hdr += fmt.Sprintf(" %7s %7s", "P50", "P99")
		}
		lines = append(lines, st.Muted.Render(hdr))
		for i := s.top; i < len(rows) && i < s.top+room; i++ {
			r := rows[i]
			p50, p99 := "-", "-"
			if r.lat {
				p50, p99 = trace.FormatLatency(r.p50), trace.FormatLatency(r.p99)
			}
			var rate uint64
			var spark string
			if r.ring != nil {
				rate = r.ring.rate()
				if opSpark >= 4 {
					spark = " " + st.Accent.Render(Sparkline(r.ring.values(), opSpark))
				}
			}
			errCol := fmt.Sprintf("%4d", r.errors)
			if r.errors > 0 {
				errCol = st.Error.Render(errCol)
			}
			row := fmt.Sprintf("%-11s %6d %s %5d", r.name, r.count, errCol, rate)
			if lat {
				row += fmt.Sprintf(" %7s %7s", p50, p99)
			}
			lines = append(lines, row+spark)
		}
	}
	for len(lines) < height-len(tl)-1 {
		lines = append(lines, "")
	}
	lines = append(lines, st.Title.Render("boot timeline"))
	lines = append(lines, tl...)
	return box(s.ctx, style, title, s.Title(), "", lines, s.w, s.h)
}
