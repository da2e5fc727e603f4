package tui

import (
	"strings"
	"time"

	"charm.land/bubbles/v2/help"
	"charm.land/bubbles/v2/key"
	tea "charm.land/bubbletea/v2"

	"github.com/krunbench/krunbench/session/recording"
	"github.com/krunbench/krunbench/themes"
	"github.com/krunbench/krunbench/virtiofs/rules"
)

// Options configure the app.
type Options struct {
	// Theme defaults to themes.Default.
	Theme *themes.Theme
	// Library lists what can be launched; nil hides the library pane.
	Library Library
	// Picks names library items picked at start (one per kind; the last
	// usable one of a kind wins). An only usable item of a kind is picked
	// anyway.
	Picks []string
	// Launch starts a session; nil disables launching.
	Launch Launcher
	// Source, when set, is shown from the start (a replay, say).
	Source Source
	// Attach gives the console the keyboard as Source starts.
	Attach bool
	// Title is shown at the left of the status bar.
	Title string
	// TrafficLimit bounds the traffic pane's events (DefaultTrafficLimit).
	TrafficLimit int
	// Rules, when set, adds the debugger pane: breakpoints and faults on
	// the FUSE conversation of the sessions launched (debugger.go).
	Rules *rules.Engine
}

// Model is the app: the panes, the status bar and the overlays, fed by
// one Source at a time. Its methods must be called from one goroutine
// (bubbletea's).
type Model struct {
	ctx    Context
	keys   globalKeys
	help   help.Model
	title  string
	launch Launcher

	lib   *library
	con   *console
	traf  *traffic
	ino   *inodes
	st    *stats
	dbg   *debugger // nil without Options.Rules
	panes []pane
	focus int
	lay   layout

	src             Source
	gen             int
	bootStart       time.Time
	info            recording.Config
	status          recording.Status
	ended           bool
	dropped         uint64
	upstreamDropped uint64
	consoleDropped  uint64

	// confirmQuit: the user asked to quit while a guest runs, and is
	// asked first; quitting: the guest is being stopped, the app quits
	// when its source closes.
	confirmQuit bool
	quitting    bool
	// flash is a short word in the status bar until the next key (the
	// theme's name after t).
	flash string

	showHelp   bool
	helpScroll int
	showDebug  bool
	debug      debugStats
}

// launchedMsg carries the result of a launch.
type launchedMsg struct {
	src Source
	err error
}

// sourceMsg is a batch of the source of generation gen.
type sourceMsg struct {
	gen int
	msg SourceMsg
}

// sourceDoneMsg says the source of generation gen closed its channel.
type sourceDoneMsg struct{ gen int }

// New builds the app.
func New(opts Options) *Model {
	th := opts.Theme
	if th == nil {
		th = themes.MustGet(themes.Default)
	}
	m := &Model{keys: newGlobalKeys(), help: help.New(), title: opts.Title, launch: opts.Launch}
	m.ctx.SetTheme(th)
	m.ctx.Width, m.ctx.Height = 80, 24
	if opts.Library != nil {
		m.lib = newLibrary(&m.ctx, opts.Library, opts.Picks)
		m.panes = append(m.panes, m.lib)
	}
	m.con = newConsole(&m.ctx)
	m.traf = newTraffic(&m.ctx, opts.TrafficLimit)
	m.ino = newInodes(&m.ctx)
	m.st = newStats(&m.ctx)
	m.panes = append(m.panes, m.con, m.traf, m.ino, m.st)
	if opts.Rules != nil {
		m.dbg = newDebugger(&m.ctx, opts.Rules)
		m.panes = append(m.panes, m.dbg)
	}
	m.applyTheme()
	m.relayout()
	if opts.Source != nil {
		m.attachSource(opts.Source, opts.Attach)
	}
	return m
}

// Init starts listening to the source, if there is one.
func (m *Model) Init() tea.Cmd {
	var watch tea.Cmd
	if m.dbg != nil {
		watch = m.dbg.watch()
	}
	if m.src == nil {
		return watch
	}
	return tea.Batch(m.listen(), m.bootTick(), watch)
}

// bootTickMsg redraws the boot timer.
type bootTickMsg struct{ gen int }

// bootTickEvery is how often the boot timer is redrawn.
const bootTickEvery = 200 * time.Millisecond

// booting reports whether the current source's guest is still booting
// (no FUSE request yet).
func (m *Model) booting() bool {
	return m.src != nil && !m.ended && (m.status.State == "" || m.status.State == recording.StateBooting)
}

// bootTick schedules the next redraw of the boot timer.
func (m *Model) bootTick() tea.Cmd {
	gen := m.gen
	return tea.Tick(bootTickEvery, func(time.Time) tea.Msg { return bootTickMsg{gen: gen} })
}

// BootElapsed is how long the current guest has been booting.
func (m *Model) BootElapsed() time.Duration { return time.Since(m.bootStart) }

// listen waits for the current source's next batch.
func (m *Model) listen() tea.Cmd {
	ch, gen := m.src.Events(), m.gen
	return func() tea.Msg {
		b, ok := <-ch
		if !ok {
			return sourceDoneMsg{gen: gen}
		}
		return sourceMsg{gen: gen, msg: b}
	}
}

// attachSource replaces the source (stopping the old one) and clears the
// panes that show a session.
func (m *Model) attachSource(src Source, attach bool) {
	if m.src != nil {
		m.src.Stop()
	}
	m.src = src
	m.gen++
	m.bootStart = time.Now()
	m.info, m.status, m.ended = recording.Config{}, recording.Status{}, false
	m.dropped, m.upstreamDropped, m.consoleDropped = 0, 0, 0
	m.traf.reset()
	m.st.reset()
	m.ino.set(nil)
	m.con.setSource(src)
	if attach {
		m.focusPane(m.con)
		m.con.attach()
	} else if m.lib != nil && m.panes[m.focus] == m.lib {
		m.focusPane(m.con)
	}
}

// Close stops the source and the console's goroutine.
func (m *Model) Close() {
	if m.src != nil {
		m.src.Stop()
	}
	m.con.close()
}

func (m *Model) focusPane(p pane) {
	for i, q := range m.panes {
		if q == p {
			m.focus = i
		}
	}
}

// SetTheme switches the theme.
func (m *Model) SetTheme(t *themes.Theme) {
	m.invalidateAll()
	m.ctx.SetTheme(t)
	m.applyTheme()
}

// Theme is the current theme.
func (m *Model) Theme() *themes.Theme { return m.ctx.Theme }

func (m *Model) applyTheme() {
	s := m.ctx.Styles
	m.help.Styles = help.Styles{
		ShortKey: s.HelpKey, ShortDesc: s.HelpDesc, ShortSeparator: s.Muted, Ellipsis: s.Muted,
		FullKey: s.HelpKey, FullDesc: s.HelpDesc, FullSeparator: s.Muted,
	}
}

// Update handles a message. A batch from the source marks the panes it
// changes for drawing; any other message (a key, a resize, a launch) may
// change anything, so it marks every pane.
func (m *Model) Update(msg tea.Msg) (tea.Model, tea.Cmd) {
	start := time.Now()
	defer func() { m.debug.update(time.Since(start)) }()
	switch msg.(type) {
	case sourceMsg, sourceDoneMsg, gateMsg:
	default:
		m.invalidateAll()
	}
	switch msg := msg.(type) {
	case tea.WindowSizeMsg:
		m.ctx.Width, m.ctx.Height = max(msg.Width, 20), max(msg.Height, 6)
		m.relayout()
		return m, nil
	case tea.KeyPressMsg:
		m.flash = ""
		return m, m.key(msg)
	case tea.PasteMsg:
		m.con.paste(msg.Content)
		return m, nil
	case tea.MouseMsg:
		return m, m.mouse(msg)
	case sourceMsg:
		if msg.gen != m.gen {
			return m, nil
		}
		m.apply(&msg.msg)
		return m, m.listen()
	case sourceDoneMsg:
		if msg.gen == m.gen {
			m.ended = true
			m.con.sourceEnded(m.status)
			m.st.sourceEnded()
			if m.quitting {
				return m, m.quit()
			}
		}
		return m, nil
	case quitAnywayMsg:
		return m, m.quit()
	case gateMsg:
		m.dbg.invalidate()
		return m, m.dbg.watch()
	case launchMsg:
		if m.launch == nil {
			m.lib.note = "launching is not available here"
			return m, nil
		}
		launch := m.launch
		return m, func() tea.Msg {
			src, err := launch(msg.req)
			return launchedMsg{src: src, err: err}
		}
	case launchedMsg:
		if msg.err != nil {
			if m.lib != nil {
				m.lib.note = "launch failed: " + msg.err.Error()
			}
			return m, nil
		}
		if m.lib != nil {
			m.lib.note = ""
		}
		m.attachSource(msg.src, true)
		return m, tea.Batch(m.listen(), m.bootTick())
	case bootTickMsg:
		if msg.gen == m.gen && m.booting() {
			return m, m.bootTick()
		}
		return m, nil
	}
	if m.traf.editing != editNone {
		var cmd tea.Cmd
		m.traf.input, cmd = m.traf.input.Update(msg)
		return m, cmd
	}
	return m, nil
}

// apply shows a batch from the source; the panes whose data it changes
// mark themselves for drawing.
func (m *Model) apply(b *SourceMsg) {
	m.debug.batch(b, time.Now())
	if b.Info != nil {
		m.info = *b.Info
	}
	if len(b.Console) > 0 {
		m.con.feed(b.Console)
	}
	if len(b.Events) > 0 {
		m.traf.add(b.Events)
		m.st.add(b.Events)
	}
	for _, ms := range b.Milestones {
		m.st.milestone(ms)
	}
	if n := len(b.Status); n > 0 {
		m.status = b.Status[n-1]
	}
	if b.Stats != nil {
		m.st.setSnapshot(b.Stats)
	}
	if b.Inodes != nil {
		m.ino.set(b.Inodes)
	}
	m.dropped, m.upstreamDropped, m.consoleDropped = b.Dropped, b.UpstreamDropped, b.ConsoleDropped
}

// key routes a key press: to a pane that captures the keyboard, else to
// the overlays and global keys, else to the focused pane.
func (m *Model) key(msg tea.KeyPressMsg) tea.Cmd {
	focused := m.panes[m.focus]
	if m.quitting {
		return nil
	}
	if m.confirmQuit {
		m.confirmQuit = false
		if msg.String() == "y" || msg.String() == "q" || msg.String() == "ctrl+c" {
			return m.stopAndQuit()
		}
		return nil
	}
	if focused.Capturing() {
		return focused.Update(msg)
	}
	if m.showHelp {
		switch msg.String() {
		case "up", "k":
			m.helpScroll = max(m.helpScroll-1, 0)
		case "down", "j":
			m.helpScroll++
		case "ctrl+c":
			return m.askQuit()
		default:
			m.showHelp = false
		}
		return nil
	}
	k := m.keys
	switch {
	case key.Matches(msg, k.Quit):
		return m.askQuit()
	case key.Matches(msg, k.Next):
		m.focus = (m.focus + 1) % len(m.panes)
	case key.Matches(msg, k.Prev):
		m.focus = (m.focus + len(m.panes) - 1) % len(m.panes)
	case key.Matches(msg, k.Jump):
		if i := int(msg.Code - '1'); i >= 0 && i < len(m.panes) {
			m.focus = i
		}
	case key.Matches(msg, k.Theme):
		m.SetTheme(themes.Next(m.ctx.Theme))
		m.flash = "theme " + m.ctx.Theme.Name
	case key.Matches(msg, k.Help):
		m.showHelp, m.helpScroll = true, 0
	case key.Matches(msg, k.Debug):
		m.showDebug = !m.showDebug
	default:
		return focused.Update(msg)
	}
	return nil
}

// mouse handles the mouse: a click focuses the pane under it (detaching
// the console when it leaves it), the wheel scrolls the pane under it; an
// attached console whose guest reports the mouse gets its events.
func (m *Model) mouse(msg tea.MouseMsg) tea.Cmd {
	if m.showHelp || m.confirmQuit || m.quitting {
		return nil
	}
	ev := msg.Mouse()
	p, r, ok := m.paneAt(ev.X, ev.Y)
	if !ok {
		return nil
	}
	focused := m.panes[m.focus]
	if p == m.con {
		if _, click := msg.(tea.MouseClickMsg); click && focused != m.con {
			m.focusPane(m.con)
			return nil
		}
		m.con.mouse(msg, ev.X-r.x-1, ev.Y-r.y-1)
		return nil
	}
	switch msg.(type) {
	case tea.MouseClickMsg:
		if focused.Capturing() && focused != m.con {
			return nil // a filter being typed keeps the focus
		}
		m.con.attached = false
		m.focusPane(p)
	case tea.MouseWheelMsg:
		if p.Capturing() {
			return nil
		}
		switch ev.Button {
		case tea.MouseWheelUp:
			return p.Update(tea.KeyPressMsg{Code: tea.KeyUp})
		case tea.MouseWheelDown:
			return p.Update(tea.KeyPressMsg{Code: tea.KeyDown})
		}
	}
	return nil
}

// GuestSource is a Source that runs a guest (not a replay): quitting
// while it runs asks first, then stops the guest.
type GuestSource interface {
	Source
	RunsGuest() bool
}

// guestRunning reports whether the current source is a guest that has not
// ended.
func (m *Model) guestRunning() bool {
	g, ok := m.src.(GuestSource)
	return ok && g.RunsGuest() && !m.ended
}

// askQuit quits, or asks first when a guest runs.
func (m *Model) askQuit() tea.Cmd {
	if m.guestRunning() {
		m.confirmQuit = true
		return nil
	}
	return m.quit()
}

// quitAnywayMsg ends the app when a stopped guest's source never closes.
type quitAnywayMsg struct{}

// stopLimit bounds the wait for a stopped guest's source to close.
const stopLimit = 20 * time.Second

// stopAndQuit stops the guest and quits once its source has closed (the
// session has then released its engine and runtime directory and written
// the end of its recording).
func (m *Model) stopAndQuit() tea.Cmd {
	m.quitting = true
	m.src.Stop()
	return tea.Tick(stopLimit, func(time.Time) tea.Msg { return quitAnywayMsg{} })
}

// Quitting reports whether the app is asking to quit or stopping a guest
// to quit.
func (m *Model) Quitting() (asking, stopping bool) { return m.confirmQuit, m.quitting }

func (m *Model) quit() tea.Cmd {
	m.Close()
	return tea.Quit
}

// View draws the app.
func (m *Model) View() tea.View {
	start := time.Now()
	lines := m.body()
	if m.showHelp {
		m.helpOverlay(lines)
	}
	if m.showDebug {
		m.debugOverlay(lines)
	}
	if m.confirmQuit || m.quitting {
		m.quitOverlay(lines)
	}
	lines = append(lines, m.statusBar())
	v := tea.NewView(strings.Join(lines, "\n"))
	v.AltScreen = true
	v.MouseMode = tea.MouseModeCellMotion
	if r, ok := m.lay.rects[m.con]; ok && m.panes[m.focus] == m.con && !m.showHelp {
		if x, y, show := m.con.cursor(); show {
			v.Cursor = tea.NewCursor(r.x+1+x, r.y+1+y)
		}
	}
	end := time.Now()
	m.debug.frame(end.Sub(start), end)
	return v
}
