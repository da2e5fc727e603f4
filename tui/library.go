package tui

import (
	"fmt"

	"charm.land/bubbles/v2/key"
	tea "charm.land/bubbletea/v2"
	"github.com/charmbracelet/x/ansi"
)

type libraryKeys struct {
	Up, Down, Pick, Launch, Refresh key.Binding
}

func newLibraryKeys() libraryKeys {
	return libraryKeys{
		Up:      key.NewBinding(key.WithKeys("up", "k"), key.WithHelp("↑/k", "up")),
		Down:    key.NewBinding(key.WithKeys("down", "j"), key.WithHelp("↓/j", "down")),
		Pick:    key.NewBinding(key.WithKeys("space", "x"), key.WithHelp("space", "pick (one of each kind)")),
		Launch:  key.NewBinding(key.WithKeys("enter"), key.WithHelp("enter", "launch the picks")),
		Refresh: key.NewBinding(key.WithKeys("ctrl+r"), key.WithHelp("ctrl+r", "reload the library")),
	}
}

// launchMsg asks the app to launch a request.
type launchMsg struct{ req LaunchRequest }

var kindOrder = []ItemKind{KindRootFS, KindInit, KindKernel}

var kindTitles = map[ItemKind]string{KindRootFS: "root filesystems", KindInit: "init payloads", KindKernel: "kernels"}

// library is the pane that lists what can be launched.
type library struct {
	ctx  *Context
	keys libraryKeys
	lib  Library
	// want names the items to pick at start (Options.Picks).
	want   []string
	items  []Item
	cursor int
	picked map[ItemKind]int
	note   string
	viewCache
	top  int
	w, h int
}

func newLibrary(ctx *Context, lib Library, picks []string) *library {
	l := &library{ctx: ctx, keys: newLibraryKeys(), lib: lib, want: picks}
	l.reload()
	return l
}

// reload reads the items again, grouped by kind, and picks the only
// usable item of a kind by itself.
func (l *library) reload() {
	l.invalidate()
	l.items, l.picked = nil, map[ItemKind]int{}
	if l.lib == nil {
		return
	}
	all := l.lib.Items()
	for _, k := range kindOrder {
		for _, it := range all {
			if it.Kind == k {
				l.items = append(l.items, it)
			}
		}
	}
	for _, k := range kindOrder {
		usable := -1
		n := 0
		for i, it := range l.items {
			if it.Kind == k && it.Verdict != VerdictError {
				usable, n = i, n+1
			}
		}
		if n == 1 {
			l.picked[k] = usable
		}
	}
	for _, name := range l.want {
		for i, it := range l.items {
			if it.Name == name && it.Verdict != VerdictError {
				l.picked[it.Kind] = i
				break
			}
		}
	}
	l.cursor = min(l.cursor, max(len(l.items)-1, 0))
}

func (l *library) Title() string    { return "library" }
func (l *library) SetSize(w, h int) { l.w, l.h = w, h }
func (l *library) Capturing() bool  { return false }
func (l *library) Bindings() []key.Binding {
	k := l.keys
	return []key.Binding{k.Up, k.Down, k.Pick, k.Launch, k.Refresh}
}

// has reports whether the library lists any item of kind k.
func (l *library) has(k ItemKind) bool {
	for _, it := range l.items {
		if it.Kind == k {
			return true
		}
	}
	return false
}

func (l *library) pick(i int) {
	it := l.items[i]
	if it.Verdict == VerdictError {
		l.note = fmt.Sprintf("%s cannot be used: %s", it.Name, it.Detail)
		return
	}
	l.picked[it.Kind] = i
	l.note = ""
}

// request builds the launch request, or says what is missing.
func (l *library) request() (LaunchRequest, error) {
	var req LaunchRequest
	for _, k := range kindOrder {
		i, ok := l.picked[k]
		if !ok {
			if k == KindKernel && !l.has(k) {
				continue
			}
			return req, fmt.Errorf("pick a %s first (space)", k)
		}
		switch k {
		case KindRootFS:
			req.RootFS = l.items[i]
		case KindInit:
			req.Init = l.items[i]
		case KindKernel:
			req.Kernel = l.items[i]
		}
	}
	return req, nil
}

func (l *library) Update(msg tea.KeyPressMsg) tea.Cmd {
	l.invalidate()
	k := l.keys
	switch {
	case key.Matches(msg, k.Up):
		l.cursor = max(l.cursor-1, 0)
	case key.Matches(msg, k.Down):
		l.cursor = min(l.cursor+1, max(len(l.items)-1, 0))
	case key.Matches(msg, k.Pick):
		if len(l.items) > 0 {
			l.pick(l.cursor)
		}
	case key.Matches(msg, k.Refresh):
		l.reload()
	case key.Matches(msg, k.Launch):
		if len(l.items) > 0 {
			if _, ok := l.picked[l.items[l.cursor].Kind]; !ok {
				l.pick(l.cursor)
			}
		}
		req, err := l.request()
		if err != nil {
			l.note = err.Error()
			return nil
		}
		l.note = "launching…"
		return func() tea.Msg { return launchMsg{req: req} }
	}
	return nil
}

func (l *library) verdict(v Verdict) string {
	st := l.ctx.Styles
	switch v {
	case VerdictOK:
		return st.OK.Render("✓ ok  ")
	case VerdictWarn:
		return st.Warn.Render("! warn")
	case VerdictError:
		return st.Error.Render("✗ err ")
	}
	return "      "
}

// View draws the list, scrolled to keep the cursor in view under the
// header of its kind, above a footer that always shows: the path and
// verdict detail of the item under the cursor, and the last note (why a
// launch failed, say).
func (l *library) View(focused bool) string {
	st := l.ctx.Styles
	style, title := styleFor(l.ctx, focused)
	inner := max(l.w-2, 1)
	var foot []string
	if l.cursor < len(l.items) {
		it := l.items[l.cursor]
		if it.Path != "" {
			foot = append(foot, st.Muted.Render(fitLine(it.Path, inner)))
		}
		if it.Detail != "" {
			foot = append(foot, st.Muted.Render(fitLine(it.Detail, inner)))
		}
	}
	if l.note != "" {
		foot = append(foot, st.Warn.Render(fitLine(l.note, inner)))
	}
	page := max(l.h-2, 1)
	if len(foot) > 0 && page > len(foot)+2 {
		foot = append([]string{""}, foot...)
	} else {
		foot = nil // no room: the list first
	}
	listRows := page - len(foot)

	var lines []string
	var kindOf []ItemKind // the kind each line belongs to
	cursorLine := 0
	if l.lib == nil || len(l.items) == 0 {
		lines = append(lines, st.Muted.Render("nothing to launch"))
		kindOf = append(kindOf, "")
	}
	var kind ItemKind
	for i, it := range l.items {
		if it.Kind != kind {
			kind = it.Kind
			lines = append(lines, st.Title.Render(kindTitles[kind]))
			kindOf = append(kindOf, "")
		}
		mark := "  "
		if j, ok := l.picked[it.Kind]; ok && j == i {
			mark = st.Accent.Render("● ")
		}
		row := mark + l.verdict(it.Verdict) + " " + it.Name
		if i == l.cursor && focused {
			row = st.Selection.Render(fitLine(ansi.Strip(row), inner))
		}
		if i == l.cursor {
			cursorLine = len(lines)
		}
		lines = append(lines, row)
		kindOf = append(kindOf, it.Kind)
	}
	// Scroll so that the cursor's line shows, with a line above it for
	// the kind's header.
	if cursorLine-1 < l.top {
		l.top = max(cursorLine-1, 0)
	} else if cursorLine >= l.top+listRows {
		l.top = max(cursorLine-listRows+1, 0)
	}
	l.top = min(l.top, max(len(lines)-1, 0))
	window := lines[l.top:min(l.top+listRows, len(lines))]
	if k := kindOf[l.top]; l.top > 0 && k != "" && len(window) > 1 {
		// A scrolled list keeps the header of the kind it shows.
		window = append([]string{st.Title.Render(kindTitles[k])}, window[1:]...)
	}
	out := append([]string{}, window...)
	for len(out) < listRows {
		out = append(out, "")
	}
	return box(l.ctx, style, title, l.Title(), "", append(out, foot...), l.w, l.h)
}
