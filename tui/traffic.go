package tui

import (
	"fmt"
	"strconv"
	"strings"

	"charm.land/bubbles/v2/key"
	"charm.land/bubbles/v2/textinput"
	tea "charm.land/bubbletea/v2"

	"github.com/krunbench/krunbench/themes"
	"github.com/krunbench/krunbench/virtiofs/fuse"
	"github.com/krunbench/krunbench/virtiofs/trace"
)

// DefaultTrafficLimit is how many recent events the traffic pane keeps.
const DefaultTrafficLimit = 2000

// EOFMarker marks the read of /init.krun at its end, the 0-byte read that
// tells the guest's loader the file is complete.
const EOFMarker = "EOF ⏎ 0 bytes"

// InjectedMarker marks a reply a fault rule made (virtiofs/rules).
const InjectedMarker = "INJECTED"

type trafficKeys struct {
	Pause, OpFilter, PathFilter, Errors, Clear, Up, Down, PageUp, PageDown, Top, Follow, Apply, Cancel key.Binding
}

func newTrafficKeys() trafficKeys {
	return trafficKeys{
		Pause:      key.NewBinding(key.WithKeys("space", "p"), key.WithHelp("space/p", "pause / resume")),
		OpFilter:   key.NewBinding(key.WithKeys("o"), key.WithHelp("o", "filter by opcodes (READ,LOOKUP)")),
		PathFilter: key.NewBinding(key.WithKeys("/"), key.WithHelp("/", "filter by path")),
		Errors:     key.NewBinding(key.WithKeys("e"), key.WithHelp("e", "errors only")),
		Clear:      key.NewBinding(key.WithKeys("c"), key.WithHelp("c", "clear filters")),
		Up:         key.NewBinding(key.WithKeys("up", "k"), key.WithHelp("↑/k", "scroll up")),
		Down:       key.NewBinding(key.WithKeys("down", "j"), key.WithHelp("↓/j", "scroll down")),
		PageUp:     key.NewBinding(key.WithKeys("pgup", "b"), key.WithHelp("pgup", "page up")),
		PageDown:   key.NewBinding(key.WithKeys("pgdown", "f"), key.WithHelp("pgdn", "page down")),
		Top:        key.NewBinding(key.WithKeys("home", "g"), key.WithHelp("home/g", "oldest")),
		Follow:     key.NewBinding(key.WithKeys("end", "G"), key.WithHelp("end/G", "follow newest")),
		Apply:      key.NewBinding(key.WithKeys("enter"), key.WithHelp("enter", "apply filter")),
		Cancel:     key.NewBinding(key.WithKeys("esc"), key.WithHelp("esc", "cancel filter")),
	}
}

type trafficEntry struct {
	ev   trace.Event
	idx  uint64
	init bool
	// line is the entry drawn with theme, kept while the entry is shown.
	line  string
	theme *themes.Theme
}

// Filter selects the events the traffic pane shows.
type Filter struct {
	// Ops are opcode names (any case); empty shows every opcode.
	Ops []string
	// Path is a substring of the path (or name) to match.
	Path string
	// ErrorsOnly keeps failed and dropped requests.
	ErrorsOnly bool
}

func (f Filter) active() bool { return len(f.Ops) > 0 || f.Path != "" || f.ErrorsOnly }

func (f Filter) match(e *trafficEntry) bool {
	ev := &e.ev
	if f.ErrorsOnly && ev.OK() {
		return false
	}
	if len(f.Ops) > 0 {
		name := opLabel(ev)
		found := false
		for _, o := range f.Ops {
			if strings.EqualFold(o, name) {
				found = true
				break
			}
		}
		if !found {
			return false
		}
	}
	if f.Path != "" && !strings.Contains(target(ev), f.Path) {
		return false
	}
	return true
}

func (f Filter) String() string {
	var parts []string
	if len(f.Ops) > 0 {
		parts = append(parts, "op="+strings.Join(f.Ops, ","))
	}
	if f.Path != "" {
		parts = append(parts, "path~"+f.Path)
	}
	if f.ErrorsOnly {
		parts = append(parts, "errors")
	}
	return strings.Join(parts, " ")
}

// parseOps splits "read, lookup" into upper-case names.
func parseOps(s string) []string {
	var ops []string
	for _, f := range strings.FieldsFunc(s, func(r rune) bool { return r == ',' || r == ' ' }) {
		ops = append(ops, strings.ToUpper(f))
	}
	return ops
}

type editField int

const (
	editNone editField = iota
	editOps
	editPath
)

// traffic is the live FUSE request pane: the last events, newest at the
// bottom, following the stream unless paused or scrolled.
type traffic struct {
	ctx   *Context
	keys  trafficKeys
	limit int

	// entries is a ring of the last limit events: entries[first] is the
	// oldest, and their idx are consecutive.
	entries   []trafficEntry
	first     int
	next      uint64
	initNodes map[uint64]bool
	filter    Filter

	paused bool
	// anchor is the newest idx shown while paused or scrolled; off is how
	// many matching lines the view is scrolled up from it.
	anchor   uint64
	frozen   bool
	off      int
	newCount int

	editing editField
	input   textinput.Model
	w, h    int
	viewCache
}

func newTraffic(ctx *Context, limit int) *traffic {
	if limit <= 0 {
		limit = DefaultTrafficLimit
	}
	in := textinput.New()
	in.Prompt = ""
	in.CharLimit = 128
	return &traffic{ctx: ctx, keys: newTrafficKeys(), limit: limit, initNodes: map[uint64]bool{}, input: in}
}

func (t *traffic) Title() string { return "traffic" }

func (t *traffic) SetSize(w, h int) {
	t.w, t.h = w, h
	t.input.SetWidth(max(w-16, 8))
}

func (t *traffic) Capturing() bool { return t.editing != editNone }

func (t *traffic) Bindings() []key.Binding {
	k := t.keys
	return []key.Binding{k.Pause, k.OpFilter, k.PathFilter, k.Errors, k.Clear, k.Up, k.Down, k.PageUp, k.PageDown, k.Top, k.Follow, k.Apply, k.Cancel}
}

// reset forgets every event (a new session).
func (t *traffic) reset() {
	t.invalidate()
	t.entries, t.first, t.next, t.newCount, t.off = nil, 0, 0, 0, 0
	t.frozen, t.paused = false, false
	t.initNodes = map[uint64]bool{}
}

// isInitRead reports whether ev reads /init.krun.
func (t *traffic) isInitRead(ev *trace.Event) bool {
	return ev.Op == fuse.OpRead && ev.Synthetic && (ev.IsInit() || t.initNodes[ev.Nodeid])
}

// add appends events, overwriting the oldest past the limit. Of a batch
// larger than the limit only the newest limit events are kept (all are
// counted).
func (t *traffic) add(evs []trace.Event) {
	t.invalidate()
	for i := range evs {
		ev := &evs[i]
		if ev.Synthetic && ev.NewNodeid != 0 && ev.Name == "init.krun" {
			t.initNodes[ev.NewNodeid] = true
		}
		if ev.Synthetic && ev.Nodeid != 0 && ev.IsInit() {
			t.initNodes[ev.Nodeid] = true
		}
	}
	t.next += uint64(len(evs))
	if t.frozen {
		t.newCount += len(evs)
	}
	skip := max(len(evs)-t.limit, 0)
	for i := skip; i < len(evs); i++ {
		e := trafficEntry{ev: evs[i], idx: t.next - uint64(len(evs)-1-i), init: t.isInitRead(&evs[i])}
		if len(t.entries) < t.limit {
			t.entries = append(t.entries, e)
			continue
		}
		t.entries[t.first] = e
		t.first = (t.first + 1) % len(t.entries)
	}
}

// at is the i-th entry kept, oldest first.
func (t *traffic) at(i int) *trafficEntry {
	return &t.entries[(t.first+i)%len(t.entries)]
}

// SetFilter replaces the filter and goes back to the newest events.
func (t *traffic) SetFilter(f Filter) {
	t.invalidate()
	t.filter = f
	t.off = 0
	t.refreeze()
}

// Filter is the current filter.
func (t *traffic) Filter() Filter { return t.filter }

// refreeze follows the stream again unless paused or scrolled.
func (t *traffic) refreeze() {
	if t.paused || t.off > 0 {
		if !t.frozen {
			t.frozen, t.anchor, t.newCount = true, t.next, 0
		}
		return
	}
	t.frozen, t.newCount = false, 0
}

// rows is how many event lines fit.
func (t *traffic) rows() int { return max(t.h-3, 1) }

// visible returns the window of matching entries to draw, oldest first,
// and how many entries match in all. Without a filter it only looks at
// the rows it returns.
func (t *traffic) visible() ([]*trafficEntry, int) {
	rows := t.rows()
	n := len(t.entries)
	if !t.filter.active() {
		end := n
		if t.frozen && n > 0 {
			end = n - int(min(t.at(n-1).idx-min(t.anchor, t.at(n-1).idx), uint64(n)))
		}
		hi := max(end-t.off, 0)
		lo := max(hi-rows, 0)
		win := make([]*trafficEntry, 0, hi-lo)
		for i := lo; i < hi; i++ {
			win = append(win, t.at(i))
		}
		return win, end
	}
	var win []*trafficEntry
	matched := 0
	skip := t.off
	for i := n - 1; i >= 0; i-- {
		e := t.at(i)
		if t.frozen && e.idx > t.anchor {
			continue
		}
		if !t.filter.match(e) {
			continue
		}
		matched++
		if skip > 0 {
			skip--
			continue
		}
		if len(win) < rows {
			win = append(win, e)
		}
	}
	for i, j := 0, len(win)-1; i < j; i, j = i+1, j-1 {
		win[i], win[j] = win[j], win[i]
	}
	return win, matched
}

func (t *traffic) scroll(by int) {
	_, matched := t.visible()
	t.off = min(max(t.off+by, 0), max(matched-t.rows(), 0))
	t.refreeze()
}

func (t *traffic) Update(msg tea.KeyPressMsg) tea.Cmd {
	t.invalidate()
	k := t.keys
	if t.editing != editNone {
		switch {
		case key.Matches(msg, k.Apply):
			f := t.filter
			if t.editing == editOps {
				f.Ops = parseOps(t.input.Value())
			} else {
				f.Path = strings.TrimSpace(t.input.Value())
			}
			t.editing = editNone
			t.input.Blur()
			t.SetFilter(f)
			return nil
		case key.Matches(msg, k.Cancel):
			t.editing = editNone
			t.input.Blur()
			return nil
		}
		var cmd tea.Cmd
		t.input, cmd = t.input.Update(msg)
		return cmd
	}
	switch {
	case key.Matches(msg, k.Pause):
		t.paused = !t.paused
		if !t.paused {
			t.off = 0
		}
		t.refreeze()
	case key.Matches(msg, k.OpFilter):
		t.editing = editOps
		t.input.SetValue(strings.Join(t.filter.Ops, ","))
		return t.input.Focus()
	case key.Matches(msg, k.PathFilter):
		t.editing = editPath
		t.input.SetValue(t.filter.Path)
		return t.input.Focus()
	case key.Matches(msg, k.Errors):
		f := t.filter
		f.ErrorsOnly = !f.ErrorsOnly
		t.SetFilter(f)
	case key.Matches(msg, k.Clear):
		t.SetFilter(Filter{})
	case key.Matches(msg, k.Up):
		t.scroll(1)
	case key.Matches(msg, k.Down):
		t.scroll(-1)
	case key.Matches(msg, k.PageUp):
		t.scroll(t.rows())
	case key.Matches(msg, k.PageDown):
		t.scroll(-t.rows())
	case key.Matches(msg, k.Top):
		t.scroll(len(t.entries))
	case key.Matches(msg, k.Follow):
		t.paused = false
		t.off = 0
		t.refreeze()
	}
	return nil
}

// target names what a request is about: the path, joined with the name
// it looks up or creates, escaped for the terminal (trace.Printable).
func target(ev *trace.Event) string {
	p := trace.Printable(ev.Path)
	if p == "" && ev.Nodeid != 0 {
		p = "#" + strconv.FormatUint(ev.Nodeid, 10)
	}
	if ev.Name != "" && isXattr(ev.Op) {
		// An attribute's name, not a path component.
		return p + " xattr " + ev.Name
	}
	if ev.Name != "" {
		if strings.HasPrefix(p, "/") {
			p = joinPath(p, trace.Printable(ev.Name))
		} else {
			p += " " + trace.Printable(ev.Name)
		}
	}
	if ev.NewName != "" {
		p += " → " + trace.Printable(ev.NewName)
	}
	return p
}

func isXattr(op uint32) bool {
	switch op {
	case fuse.OpGetxattr, fuse.OpSetxattr, fuse.OpRemovexattr:
		return true
	}
	return false
}

func hasRange(op uint32) bool {
	switch op {
	case fuse.OpRead, fuse.OpWrite, fuse.OpReaddir, fuse.OpReaddirplus:
		return true
	}
	return false
}

// line renders one event, or returns it as it was last rendered.
func (t *traffic) line(e *trafficEntry) string {
	if e.theme != t.ctx.Theme {
		e.line, e.theme = t.render(e), t.ctx.Theme
	}
	return e.line
}

func (t *traffic) render(e *trafficEntry) string {
	st := t.ctx.Styles
	ev := &e.ev
	gutter := " "
	switch {
	case ev.Injected != "":
		gutter = st.Warn.Render("⚡")
	case e.init:
		gutter = st.InitRead.Render("▌")
	case !ev.OK():
		gutter = st.Error.Render("✗")
	}
	head := fmt.Sprintf("+%.6f %-11s %s", ev.Time.Seconds(), opLabel(ev), target(ev))
	if hasRange(ev.Op) {
		head += fmt.Sprintf(" off=%d size=%d", ev.Offset, ev.Size)
	}
	var result string
	switch {
	case ev.Dropped != "":
		result = st.Error.Render("DROPPED: " + trace.Printable(ev.Dropped))
	case ev.Errno != 0:
		result = st.Error.Render(trace.ErrnoName(ev.Errno))
	case e.init && ev.EOF:
		result = st.EOF.Render(EOFMarker)
	case ev.NewNodeid != 0:
		result = "→ #" + strconv.FormatUint(ev.NewNodeid, 10)
	case ev.Bytes > 0 || ev.Op == fuse.OpRead:
		result = "→ " + strconv.Itoa(ev.Bytes) + " B"
	default:
		result = st.OK.Render("ok")
	}
	if e.init {
		head = st.InitRead.Render(head)
	}
	s := gutter + head + "  " + result
	if ev.Injected != "" {
		s += "  " + st.Warn.Render(InjectedMarker+" "+ev.Injected)
	}
	if ev.Latency > 0 {
		s += st.Muted.Render("  " + trace.FormatLatency(ev.Latency))
	}
	return s
}

func (t *traffic) View(focused bool) string {
	st := t.ctx.Styles
	style, title := styleFor(t.ctx, focused)
	win, matched := t.visible()
	lines := make([]string, 0, t.rows()+1)
	for _, e := range win {
		lines = append(lines, t.line(e))
	}
	for len(lines) < t.rows() {
		lines = append(lines, "")
	}
	var foot string
	switch t.editing {
	case editOps:
		foot = st.Accent.Render("opcodes: ") + t.input.View()
	case editPath:
		foot = st.Accent.Render("path: ") + t.input.View()
	default:
		if t.filter.active() {
			foot = st.Accent.Render("filter: "+t.filter.String()) + st.Muted.Render(fmt.Sprintf(" · %d shown", matched))
		} else {
			foot = st.Muted.Render(fmt.Sprintf("%d requests · o op  / path  e errors", t.next))
		}
	}
	lines = append(lines, foot)
	var badge string
	switch {
	case t.paused:
		badge = st.Warn.Render(fmt.Sprintf("⏸ paused · %d new", t.newCount))
	case t.frozen:
		badge = st.Muted.Render(fmt.Sprintf("↑ scrolled · %d new", t.newCount))
	default:
		badge = st.OK.Render("● live")
	}
	return box(t.ctx, style, title, t.Title(), badge, lines, t.w, t.h)
}
