package tui

import (
	"fmt"
	"runtime"
	"slices"
	"strings"
	"time"

	"charm.land/lipgloss/v2"
	"github.com/charmbracelet/x/ansi"
)

// debugWindow is how many recent frames and batches the debug overlay's
// percentiles and rates look at.
const debugWindow = 512

// debugStats measure the app for the debug overlay: what frames cost and
// how fast the source's batches come and how old they are when shown.
type debugStats struct {
	frames                        uint64
	lastFrame, maxFrame, sumFrame time.Duration
	frameTime                     [debugWindow]time.Duration
	frameAt                       [debugWindow]time.Time
	// drawn and reused count the panes of the frame being drawn: drawn
	// again, or taken from their cache.
	drawn, reused         int
	lastDrawn, lastReused int

	lastUpdate time.Duration

	batches, events uint64
	lastBatch       int
	batchAt         [debugWindow]time.Time
	batchEvents     [debugWindow]int
	// backlog is the age of the last batch when it was applied: how long
	// its oldest part waited to be shown.
	backlog    time.Duration
	backlogAge [debugWindow]time.Duration

	scratch []time.Duration
}

func (d *debugStats) frame(t time.Duration, at time.Time) {
	i := d.frames % debugWindow
	d.frameTime[i], d.frameAt[i] = t, at
	d.lastFrame = t
	d.maxFrame = max(d.maxFrame, t)
	d.sumFrame += t
	d.frames++
	d.lastDrawn, d.lastReused = d.drawn, d.reused
	d.drawn, d.reused = 0, 0
}

func (d *debugStats) update(t time.Duration) { d.lastUpdate = t }

func (d *debugStats) batch(b *SourceMsg, now time.Time) {
	i := d.batches % debugWindow
	d.batchAt[i], d.batchEvents[i] = now, len(b.Events)
	d.backlog = 0
	if !b.Queued.IsZero() {
		d.backlog = max(now.Sub(b.Queued), 0)
	}
	d.backlogAge[i] = d.backlog
	d.batches++
	d.events += uint64(len(b.Events))
	d.lastBatch = len(b.Events)
}

// percentiles are the p50 and p99 of the recent frame times.
func (d *debugStats) percentiles() (p50, p99 time.Duration) {
	n := int(min(d.frames, debugWindow))
	if n == 0 {
		return 0, 0
	}
	d.scratch = append(d.scratch[:0], d.frameTime[:n]...)
	slices.Sort(d.scratch)
	return d.scratch[(n-1)*50/100], d.scratch[(n-1)*99/100]
}

// fps is how many frames were drawn in the second before now.
func (d *debugStats) fps(now time.Time) int {
	n := 0
	for k := uint64(0); k < min(d.frames, debugWindow); k++ {
		if now.Sub(d.frameAt[(d.frames-1-k)%debugWindow]) > time.Second {
			break
		}
		n++
	}
	return n
}

// rate is how many events arrived in the second before now, and the
// largest backlog of the batches that brought them (of the last batch if
// none came in that second).
func (d *debugStats) rate(now time.Time) (events int, maxBacklog time.Duration) {
	maxBacklog = d.backlog
	for k := uint64(0); k < min(d.batches, debugWindow); k++ {
		i := (d.batches - 1 - k) % debugWindow
		if now.Sub(d.batchAt[i]) > time.Second {
			break
		}
		events += d.batchEvents[i]
		maxBacklog = max(maxBacklog, d.backlogAge[i])
	}
	return events, maxBacklog
}

func us(d time.Duration) time.Duration { return d.Round(time.Microsecond) }

// debugOverlay shows, over content's lines, how fast the app draws, what
// it receives and what was dropped. Frame times are View's alone, not the
// terminal's write.
func (m *Model) debugOverlay(content []string) {
	d := &m.debug
	now := time.Now()
	avg := time.Duration(0)
	if d.frames > 0 {
		avg = d.sumFrame / time.Duration(d.frames)
	}
	p50, p99 := d.percentiles()
	evRate, maxBacklog := d.rate(now)
	cols, rows := m.con.Size()
	lines := []string{
		m.ctx.Styles.FocusedTitle.Render("debug"),
		fmt.Sprintf("frame     %s (p50 %s, p99 %s, avg %s, max %s)", us(d.lastFrame), us(p50), us(p99), us(avg), us(d.maxFrame)),
		fmt.Sprintf("frames    %d · %d/s · panes %d drawn, %d reused", d.frames, d.fps(now), d.lastDrawn, d.lastReused),
		fmt.Sprintf("update    %s", us(d.lastUpdate)),
		fmt.Sprintf("batches   %d (last %d events)", d.batches, d.lastBatch),
		fmt.Sprintf("events    %d seen, %d kept · %d/s", d.events, len(m.traf.entries), evRate),
		fmt.Sprintf("backlog   %s (max %s in 1s)", us(d.backlog), us(maxBacklog)),
		fmt.Sprintf("dropped   %d events, %d console bytes", m.dropped, m.consoleDropped),
		fmt.Sprintf("          %d by the subscription, %d by the buffer", m.upstreamDropped, m.dropped-min(m.upstreamDropped, m.dropped)),
		fmt.Sprintf("console   %dx%d, %d keys typed", cols, rows, m.con.sent),
		fmt.Sprintf("layout    %dx%d %s, theme %s", m.ctx.Width, m.ctx.Height, map[bool]string{true: "grid", false: "tabs"}[m.lay.grid], m.ctx.Theme.Name),
		fmt.Sprintf("goroutines %d", runtime.NumGoroutine()),
	}
	box, w := panel(&m.ctx, m.ctx.Styles.Overlay, lines)
	overlayLines(content, box, m.ctx.Width, m.ctx.Width-w-1, 1)
}

// panel draws lines in style's border with one cell of padding at each
// side, as style.Render would for the overlay styles, without measuring
// every line twice; it returns the panel's lines and width.
func panel(ctx *Context, style lipgloss.Style, lines []string) ([]string, int) {
	b := style.GetBorderStyle()
	paint := lipgloss.NewStyle().Foreground(style.GetBorderTopForeground())
	if ctx.Theme.NoColor {
		paint = lipgloss.NewStyle()
	}
	inner := 0
	for _, l := range lines {
		inner = max(inner, width(l))
	}
	left, right := paint.Render(b.Left)+" ", " "+ansi.ResetStyle+paint.Render(b.Right)
	out := make([]string, 0, len(lines)+2)
	out = append(out, paint.Render(b.TopLeft+strings.Repeat(b.Top, inner+2)+b.TopRight))
	for _, l := range lines {
		out = append(out, left+fitLine(l, inner)+right)
	}
	out = append(out, paint.Render(b.BottomLeft+strings.Repeat(b.Bottom, inner+2)+b.BottomRight))
	return out, inner + 4
}
