package tui

import (
	"strings"

	"charm.land/bubbles/v2/key"
	tea "charm.land/bubbletea/v2"
	"charm.land/lipgloss/v2"
	"github.com/charmbracelet/x/ansi"

	"github.com/krunbench/krunbench/themes"
)

// Context is what every pane shares: the terminal's size and the theme.
type Context struct {
	Width, Height int
	Theme         *themes.Theme
	Styles        *themes.Styles
}

// SetTheme switches the theme.
func (c *Context) SetTheme(t *themes.Theme) {
	c.Theme = t
	c.Styles = &t.Styles
}

// pane is one component of the app: it draws itself, boxed, at the size
// the layout gives it, and handles the keys while it has the focus.
type pane interface {
	// Title names the pane in its border and tab.
	Title() string
	// SetSize gives the pane its outer size, border included.
	SetSize(w, h int)
	// Update handles a key press while the pane has the focus.
	Update(msg tea.KeyPressMsg) tea.Cmd
	// View draws the pane at its size.
	View(focused bool) string
	// Bindings are the pane's keys, for the help.
	Bindings() []key.Binding
	// Capturing reports whether the pane takes every key (an attached
	// console, a filter being typed), global keys included.
	Capturing() bool
	// cache is the pane's last drawing (an embedded viewCache).
	cache() *viewCache
}

// fitLine truncates s to w cells and pads it with spaces to w.
func fitLine(s string, w int) string {
	if w <= 0 {
		return ""
	}
	if sw := width(s); sw > w {
		s = ansi.Truncate(s, w, "…")
	} else if sw < w {
		s += strings.Repeat(" ", w-sw)
	}
	return s
}

// fitBlock makes lines exactly w cells wide and h lines high.
func fitBlock(lines []string, w, h int) string {
	if h <= 0 {
		return ""
	}
	out := make([]string, h)
	for i := range out {
		if i < len(lines) {
			out[i] = fitLine(lines[i], w)
		} else {
			out[i] = strings.Repeat(" ", max(w, 0))
		}
	}
	return strings.Join(out, "\n")
}

// box draws body (lines, fitted to the inside) in a border of outer size
// w x h, with title at the left of the top border and badge at its right.
// It draws the border itself, one styled run per line, rather than through
// lipgloss, which would measure every line again.
func box(ctx *Context, style lipgloss.Style, titleStyle lipgloss.Style, title, badge string, lines []string, w, h int) string {
	if w < 2 || h < 2 {
		return fitBlock(nil, max(w, 0), max(h, 0))
	}
	b := style.GetBorderStyle()
	paint := lipgloss.NewStyle().Foreground(style.GetBorderTopForeground())
	if ctx.Theme.NoColor {
		paint = lipgloss.NewStyle()
	}
	inner := w - 2
	t := " " + title + " "
	if width(t) > inner-2 {
		t = ansi.Truncate(t, max(inner-2, 0), "…")
	}
	tw, bw := width(t), 0
	bd := ""
	if badge != "" {
		bd = " " + badge + " "
		if bw = width(bd); tw+bw+2 > inner {
			bd, bw = "", 0
		}
	}
	fill := inner - 1 - tw - bw
	var out strings.Builder
	out.WriteString(paint.Render(b.TopLeft + b.Top))
	out.WriteString(titleStyle.Render(t))
	out.WriteString(paint.Render(strings.Repeat(b.Top, max(fill, 0))))
	out.WriteString(bd)
	out.WriteString(paint.Render(b.TopRight))
	left, right := paint.Render(b.Left), paint.Render(b.Right)
	for i := range h - 2 {
		l := ""
		if i < len(lines) {
			l = lines[i]
		}
		out.WriteByte('\n')
		out.WriteString(left)
		out.WriteString(fitLine(l, inner))
		out.WriteString(ansi.ResetStyle)
		out.WriteString(right)
	}
	out.WriteByte('\n')
	out.WriteString(paint.Render(b.BottomLeft + strings.Repeat(b.Bottom, inner) + b.BottomRight))
	return out.String()
}

// styleFor picks the border and title styles of a pane.
func styleFor(ctx *Context, focused bool) (lipgloss.Style, lipgloss.Style) {
	if focused {
		return ctx.Styles.FocusedPane, ctx.Styles.FocusedTitle
	}
	return ctx.Styles.Pane, ctx.Styles.Title
}
