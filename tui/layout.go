package tui

import "strings"

// Below these sizes the panes become tabs; from SplitMinWidth x
// SplitMinHeight the console and the traffic still share the screen (one
// above the other) while either has the focus, the other panes a key
// away.
const (
	GridMinWidth   = 120
	GridMinHeight  = 36
	SplitMinWidth  = 60
	SplitMinHeight = 20
)

// rect is where a pane is drawn.
type rect struct{ x, y, w, h int }

// layout places the panes: in grid mode every pane has a rect; in tab mode
// only the focused one is drawn, under a tab bar, except that in split
// mode the console and the traffic are drawn together when either has
// the focus.
type layout struct {
	grid  bool
	split bool
	rects map[pane]rect
}

// Split reports whether the console and the traffic share the screen in
// tab mode.
func (m *Model) Split() bool { return m.lay.split }

// visible are the panes drawn now.
func (m *Model) visible() []pane {
	focused := m.panes[m.focus]
	switch {
	case m.lay.grid:
		return m.panes
	case m.lay.split && (focused == m.con || focused == m.traf):
		return []pane{m.con, m.traf}
	}
	return []pane{focused}
}

// paneAt is the drawn pane at screen cell x, y.
func (m *Model) paneAt(x, y int) (pane, rect, bool) {
	for _, p := range m.visible() {
		r := m.lay.rects[p]
		if x >= r.x && x < r.x+r.w && y >= r.y && y < r.y+r.h {
			return p, r, true
		}
	}
	return nil, rect{}, false
}

// Grid reports whether the panes share the screen (else they are tabs).
func (m *Model) Grid() bool { return m.lay.grid }

func (m *Model) relayout() {
	w, h := m.ctx.Width, m.ctx.Height
	body := max(h-1, 1) // the status bar
	m.lay = layout{grid: w >= GridMinWidth && h >= GridMinHeight, rects: map[pane]rect{}}
	if !m.lay.grid {
		r := rect{0, 1, w, max(body-1, 2)}
		for _, p := range m.panes {
			m.lay.rects[p] = r
			p.SetSize(r.w, r.h)
		}
		if w >= SplitMinWidth && h >= SplitMinHeight {
			m.lay.split = true
			ch := r.h * 55 / 100
			m.place(m.con, rect{0, 1, w, ch})
			m.place(m.traf, rect{0, 1 + ch, w, r.h - ch})
		}
		return
	}
	lw := max(40, w*3/10)
	rw := w - lw
	left, heights := m.leftColumn(body)
	y := 0
	for i, p := range left {
		m.place(p, rect{0, y, lw, heights[i]})
		y += heights[i]
	}
	ch := body / 2
	th := (body - ch) * 55 / 100
	m.place(m.con, rect{lw, 0, rw, ch})
	m.place(m.traf, rect{lw, ch, rw, th})
	m.place(m.ino, rect{lw, ch + th, rw, body - ch - th})
}

// leftColumn is the grid's left column, top down, and the panes' heights:
// the library, the debugger, the stats, those of them the app has.
func (m *Model) leftColumn(body int) ([]pane, []int) {
	var ps []pane
	var hs []int
	rest := body
	if m.lib != nil {
		ps, hs = append(ps, m.lib), append(hs, max(body*3/10, 8))
		rest -= hs[len(hs)-1]
	}
	if m.dbg != nil {
		ps, hs = append(ps, m.dbg), append(hs, max(body*3/10, 10))
		rest -= hs[len(hs)-1]
	}
	return append(ps, m.st), append(hs, rest)
}

func (m *Model) place(p pane, r rect) {
	m.lay.rects[p] = r
	p.SetSize(r.w, r.h)
}

// body draws the panes, one string per line of the screen but the last
// (the status bar). Panes that did not change come from their caches; the
// lines returned are the caller's to change.
func (m *Model) body() []string {
	if !m.lay.grid {
		lines := []string{m.tabBar()}
		for _, p := range m.visible() {
			lines = append(lines, m.draw(p, m.lay.rects[p], p == m.panes[m.focus])...)
		}
		return lines
	}
	col := func(ps ...pane) (lines []string, w int) {
		for _, p := range ps {
			r := m.lay.rects[p]
			lines = append(lines, m.draw(p, r, p == m.panes[m.focus])...)
			w = max(w, r.w)
		}
		return lines, w
	}
	leftPanes, _ := m.leftColumn(m.ctx.Height - 1)
	left, lw := col(leftPanes...)
	right, _ := col(m.con, m.traf, m.ino)
	out := make([]string, max(len(left), len(right)), max(len(left), len(right))+1)
	for i := range out {
		var l, r string
		if i < len(left) {
			l = left[i]
		} else {
			l = strings.Repeat(" ", lw)
		}
		if i < len(right) {
			r = right[i]
		}
		out[i] = l + r
	}
	return out
}

func (m *Model) tabBar() string {
	st := m.ctx.Styles
	var b strings.Builder
	for i, p := range m.panes {
		label := string(rune('1'+i)) + " " + p.Title()
		if i == m.focus {
			b.WriteString(st.ActiveTab.Render(label))
		} else {
			b.WriteString(st.Tab.Render(label))
		}
	}
	return fitLine(b.String(), m.ctx.Width)
}
