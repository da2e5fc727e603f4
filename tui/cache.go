package tui

import (
	"strings"
	"unicode/utf8"

	"github.com/charmbracelet/x/ansi"

	"github.com/krunbench/krunbench/themes"
)

// viewCache keeps a pane's last drawing, as lines, until it is stale: the
// pane invalidates it when its data or state changes, and a different
// focus, size or theme is a miss too. Every pane embeds one.
type viewCache struct {
	valid   bool
	focused bool
	w, h    int
	theme   *themes.Theme
	lines   []string
}

// cache is the pane's cache (promoted to the pane that embeds it).
func (c *viewCache) cache() *viewCache { return c }

// invalidate makes the next frame draw the pane again.
func (c *viewCache) invalidate() { c.valid = false }

// draw returns p's lines at its rect r: the cached ones when they are
// still good, else p's View, split and made exactly r.h lines high.
func (m *Model) draw(p pane, r rect, focused bool) []string {
	c := p.cache()
	if c.valid && c.focused == focused && c.w == r.w && c.h == r.h && c.theme == m.ctx.Theme {
		m.debug.reused++
		return c.lines
	}
	lines := strings.Split(p.View(focused), "\n")
	if len(lines) > r.h {
		lines = lines[:max(r.h, 0)]
	}
	for len(lines) < r.h {
		lines = append(lines, strings.Repeat(" ", max(r.w, 0)))
	}
	*c = viewCache{valid: true, focused: focused, w: r.w, h: r.h, theme: m.ctx.Theme, lines: lines}
	m.debug.drawn++
	return lines
}

// invalidateAll makes the next frame draw every pane again.
func (m *Model) invalidateAll() {
	for _, p := range m.panes {
		p.cache().invalidate()
	}
}

// overlayLines draws top's lines over base's at x, y, cut to width w and
// to base's height; base is changed in place. The cells of base left and
// right of top keep their styles.
func overlayLines(base, top []string, w, x, y int) {
	x, y = max(x, 0), max(y, 0)
	for i, t := range top {
		row := y + i
		if row >= len(base) {
			break
		}
		tw := width(t)
		if tw > w-x {
			t = ansi.Truncate(t, max(w-x, 0), "")
			tw = width(t)
		}
		b := base[row]
		left := ansi.Truncate(b, x, "")
		if lw := width(left); lw < x {
			left += strings.Repeat(" ", x-lw)
		}
		right := ansi.TruncateLeft(b, x+tw, "")
		base[row] = left + ansi.ResetStyle + t + ansi.ResetStyle + right
	}
}

// width is ansi.StringWidth with a fast path for what the panes mostly
// hold: ASCII, SGR and other CSI sequences, and the single-width runes of
// Latin-1, box drawing and block elements. Anything else takes the slow,
// grapheme-aware path.
func width(s string) int {
	w := 0
	for i := 0; i < len(s); {
		c := s[i]
		switch {
		case c == 0x1b:
			if i+1 >= len(s) || s[i+1] != '[' {
				return ansi.StringWidth(s)
			}
			i += 2
			for i < len(s) && (s[i] < 0x40 || s[i] > 0x7e) {
				i++
			}
			i++
		case c >= 0x20 && c < 0x7f:
			w++
			i++
		case c < 0x80:
			return ansi.StringWidth(s)
		default:
			r, n := utf8.DecodeRuneInString(s[i:])
			if !singleWidth(r) {
				return ansi.StringWidth(s)
			}
			w++
			i += n
		}
	}
	return w
}

// singleWidth reports runes known to take one cell and never to join a
// grapheme cluster with what follows.
func singleWidth(r rune) bool {
	switch {
	case r >= 0xa0 && r < 0x300: // Latin-1 supplement, Latin extended
		return r != 0xad
	case r >= 0x2500 && r < 0x25a0: // box drawing, block elements
		return true
	}
	switch r {
	case '…', '→', '←', '↑', '↓', '✗', '✓', '●', '⏎':
		return true
	}
	return false
}
