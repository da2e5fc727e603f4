package tui

import (
	"bytes"
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"

	"charm.land/bubbles/v2/key"
	tea "charm.land/bubbletea/v2"
	"github.com/charmbracelet/x/ansi"
	"github.com/charmbracelet/x/vt"

	"github.com/krunbench/krunbench/session/recording"
)

// consoleKeys are the console pane's keys. Detach is the only one read
// while the console is attached; the others only while it is not.
type consoleKeys struct {
	Attach, Detach, Up, Down, PageUp, PageDown, Top, Bottom, BootLog key.Binding
}

func newConsoleKeys() consoleKeys {
	return consoleKeys{
		Attach:   key.NewBinding(key.WithKeys("enter", "i"), key.WithHelp("enter/i", "attach: type into the guest")),
		Detach:   key.NewBinding(key.WithKeys(DetachKey), key.WithHelp(DetachKey, "detach from the guest")),
		Up:       key.NewBinding(key.WithKeys("up", "k"), key.WithHelp("↑/k", "scroll back")),
		Down:     key.NewBinding(key.WithKeys("down", "j"), key.WithHelp("↓/j", "scroll forward")),
		PageUp:   key.NewBinding(key.WithKeys("pgup", "b"), key.WithHelp("pgup", "page back")),
		PageDown: key.NewBinding(key.WithKeys("pgdown", "f"), key.WithHelp("pgdn", "page forward")),
		Top:      key.NewBinding(key.WithKeys("home", "g"), key.WithHelp("home/g", "oldest line")),
		Bottom:   key.NewBinding(key.WithKeys("end", "G"), key.WithHelp("end/G", "live screen")),
		BootLog:  key.NewBinding(key.WithKeys("l"), key.WithHelp("l", "kernel boot log / guest screen")),
	}
}

// inputSink is where the console's bytes go: the current source.
type inputSink struct{ src Source }

// console is the guest console pane: a terminal emulator fed with the
// guest's output, with scrollback. While attached it sends every key press
// to the guest, except DetachKey.
type console struct {
	ctx  *Context
	keys consoleKeys
	emu  *vt.SafeEmulator
	sink atomic.Pointer[inputSink]

	w, h       int
	cols, rows int
	attached   bool
	scroll     int
	src        Source
	// sent counts the key presses sent to the guest.
	sent int
	// ended says how the guest ended, once its source has closed.
	ended string
	// mouseModes are the mouse reporting modes the guest has on.
	mouseModes map[ansi.Mode]bool
	// history is the console output since the source started (its last
	// historyLimit bytes), replayed to lay the text out again on resize.
	history []byte
	// bootLog shows the kernel's messages (see kernelLog) instead of the
	// guest's screen.
	bootLog bool
	klog    kernelLog
	viewCache
}

const scrollbackLines = 5000

// historyLimit bounds the console output kept for re-laying out the
// screen and scrollback on resize (more than scrollbackLines of text);
// when it is exceeded the oldest part is dropped at a line start.
const historyLimit = 2 << 20

func newConsole(ctx *Context) *console {
	c := &console{ctx: ctx, keys: newConsoleKeys(), cols: 80, rows: 24}
	c.emu = vt.NewSafeEmulator(c.cols, c.rows)
	c.emu.SetScrollbackSize(scrollbackLines)
	c.watchModes()
	c.sink.Store(&inputSink{})
	go c.replies(c.emu)
	return c
}

// replies copies the emulator's answers to terminal queries (DSR, DA...)
// to the guest. Without it, the emulator's Write blocks on the first
// query, since the answers go through a pipe.
func (c *console) replies(emu *vt.SafeEmulator) {
	buf := make([]byte, 256)
	for {
		n, err := emu.Read(buf)
		if n > 0 {
			if s := c.sink.Load().src; s != nil {
				s.Input(append([]byte(nil), buf[:n]...))
			}
		}
		if err != nil {
			return
		}
	}
}

// setSource connects the console to src (nil: none) with a fresh screen
// and tells src the console's size.
func (c *console) setSource(src Source) {
	c.invalidate()
	c.src = src
	c.sink.Store(&inputSink{src: src})
	c.scroll = 0
	c.attached = false
	c.ended = ""
	c.bootLog = false
	c.klog.reset()
	c.history = nil
	c.emu.Write([]byte("\x1b[2J\x1b[3J\x1b[H"))
	clear(c.mouseModes)
	c.emu.ClearScrollback()
	if src != nil {
		src.Resize(c.cols, c.rows)
	}
}

// close ends the reply goroutine.
func (c *console) close() {
	if cl, ok := c.emu.InputPipe().(io.Closer); ok {
		cl.Close()
	}
}

// feed writes guest output into the emulator.
func (c *console) feed(b []byte) {
	c.invalidate()
	c.remember(b)
	c.klog.write(b)
	c.emu.Write(b)
}

// remember appends output to the history, dropping its oldest lines past
// historyLimit.
func (c *console) remember(b []byte) {
	c.history = append(c.history, b...)
	if len(c.history) <= historyLimit {
		return
	}
	cut := len(c.history) - historyLimit*3/4
	if i := bytes.IndexByte(c.history[cut:], '\n'); i >= 0 {
		cut += i + 1
	}
	c.history = append([]byte(nil), c.history[cut:]...)
}

// relayout resizes the emulator and lays the output out again at the new
// size, as a terminal that reflows would: the text is replayed into a
// scratch emulator of the new size, whose screen and scrollback replace
// the live emulator's. The live emulator keeps its terminal modes
// (cursor keys, mouse, bracketed paste) and its link to the guest; the
// scratch one's answers to terminal queries are dropped, since the guest
// had its answers when the text first came. (A plain resize would cut
// every line at the new width and lose what no longer fits.)
func (c *console) relayout(cols, rows int) {
	c.emu.Resize(cols, rows)
	if len(c.history) == 0 {
		return
	}
	scratch := vt.NewEmulator(cols, rows)
	scratch.SetScrollbackSize(scrollbackLines)
	drained := make(chan struct{})
	go func() { _, _ = io.Copy(io.Discard, scratch); close(drained) }()
	_, _ = scratch.Write(c.history)
	c.emu.ClearScrollback()
	if sb := c.emu.Scrollback(); sb != nil && scratch.Scrollback() != nil {
		for _, l := range scratch.Scrollback().Lines() {
			sb.Push(l)
		}
	}
	for y := range rows {
		for x := range cols {
			c.emu.SetCell(x, y, scratch.CellAt(x, y))
		}
	}
	p := scratch.CursorPosition()
	_, _ = fmt.Fprintf(c.emu, "\x1b[%d;%dH", p.Y+1, p.X+1)
	_ = scratch.Close()
	<-drained
}

// sourceEnded detaches the console (there is no guest left to type into)
// and says how the guest ended, on the screen and in the pane's title.
func (c *console) sourceEnded(st recording.Status) {
	c.invalidate()
	c.attached = false
	c.ended = endedWords(st)
	c.feed([]byte("\r\n\x1b[0m[krunbench: " + c.ended + "]\r\n"))
}

// endedWords says in a few words how a session ended.
func endedWords(st recording.Status) string {
	switch st.State {
	case recording.StateExited:
		return "the guest exited with code " + strconv.Itoa(st.Code)
	case recording.StateFailed:
		if st.Reason != "" {
			return "the guest ended: " + st.Reason
		}
		return "the guest failed"
	}
	return "the session ended"
}

func (c *console) Title() string {
	if c.bootLog {
		return "console: kernel boot log"
	}
	return "console"
}

func (c *console) SetSize(w, h int) {
	c.w, c.h = w, h
	cols, rows := max(w-2, 1), max(h-2, 1)
	if cols == c.cols && rows == c.rows {
		return
	}
	c.cols, c.rows = cols, rows
	c.invalidate()
	c.relayout(cols, rows)
	if c.src != nil {
		c.src.Resize(cols, rows)
	}
}

// Size is the emulator's size in cells.
func (c *console) Size() (cols, rows int) { return c.emu.Width(), c.emu.Height() }

func (c *console) Capturing() bool { return c.attached }

func (c *console) Bindings() []key.Binding {
	k := c.keys
	return []key.Binding{k.Attach, k.Detach, k.Up, k.Down, k.PageUp, k.PageDown, k.Top, k.Bottom, k.BootLog}
}

// attach gives the console the keyboard.
func (c *console) attach() {
	c.invalidate()
	c.attached = true
	c.bootLog = false
	c.scroll = 0
}

// sendKey sends a key press to the guest, encoded by the emulator the way
// the guest's terminal modes ask (application cursor keys, say); the bytes
// reach the guest through the emulator's input pipe (see replies).
func (c *console) sendKey(k tea.KeyPressMsg) {
	if c.src == nil {
		return
	}
	c.sent++
	c.emu.SendKey(vt.KeyPressEvent(k))
}

func (c *console) Update(msg tea.KeyPressMsg) tea.Cmd {
	c.invalidate()
	if c.attached {
		if key.Matches(msg, c.keys.Detach) {
			c.attached = false
			return nil
		}
		c.scroll = 0
		c.sendKey(msg)
		return nil
	}
	back := c.emu.ScrollbackLen()
	if c.bootLog {
		back = max(len(c.klog.lines)-c.rows, 0)
	}
	switch {
	case key.Matches(msg, c.keys.BootLog):
		c.bootLog = !c.bootLog
		c.scroll = 0
	case key.Matches(msg, c.keys.Attach):
		c.attach()
	case key.Matches(msg, c.keys.Up):
		c.scroll = min(c.scroll+1, back)
	case key.Matches(msg, c.keys.Down):
		c.scroll = max(c.scroll-1, 0)
	case key.Matches(msg, c.keys.PageUp):
		c.scroll = min(c.scroll+c.rows, back)
	case key.Matches(msg, c.keys.PageDown):
		c.scroll = max(c.scroll-c.rows, 0)
	case key.Matches(msg, c.keys.Top):
		c.scroll = back
	case key.Matches(msg, c.keys.Bottom):
		c.scroll = 0
	}
	return nil
}

// paste sends pasted text to the guest while attached, bracketed when
// the guest asked for bracketed paste.
func (c *console) paste(s string) {
	if c.attached && c.src != nil {
		c.emu.Paste(s)
	}
}

// mouse handles a mouse event at x, y inside the pane's content: while
// attached to a guest that asked for mouse reporting it goes to the guest
// (encoded by the emulator); otherwise the wheel scrolls the scrollback.
func (c *console) mouse(ev tea.MouseMsg, x, y int) {
	c.invalidate()
	m := ev.Mouse()
	m.X, m.Y = x, y
	if c.attached && c.src != nil && c.reportsMouse() {
		switch ev.(type) {
		case tea.MouseClickMsg:
			c.emu.SendMouse(vt.MouseClick(m))
		case tea.MouseReleaseMsg:
			c.emu.SendMouse(vt.MouseRelease(m))
		case tea.MouseWheelMsg:
			c.emu.SendMouse(vt.MouseWheel(m))
		case tea.MouseMotionMsg:
			c.emu.SendMouse(vt.MouseMotion(m))
		}
		return
	}
	if _, ok := ev.(tea.MouseWheelMsg); !ok {
		return
	}
	switch m.Button {
	case tea.MouseWheelUp:
		c.scroll = min(c.scroll+3, c.emu.ScrollbackLen())
	case tea.MouseWheelDown:
		c.scroll = max(c.scroll-3, 0)
	}
}

// reportsMouse reports whether the guest turned mouse reporting on.
func (c *console) reportsMouse() bool { return len(c.mouseModes) > 0 }

// mouseReporting are the modes in which a terminal reports the mouse.
var mouseReporting = []ansi.Mode{
	ansi.ModeMouseX10, ansi.ModeMouseNormal, ansi.ModeMouseHighlight,
	ansi.ModeMouseButtonEvent, ansi.ModeMouseAnyEvent,
}

// watchModes follows the guest's mouse reporting modes (the emulator
// encodes the reports; the console needs to know whether to send them or
// scroll).
func (c *console) watchModes() {
	c.mouseModes = map[ansi.Mode]bool{}
	set := func(on bool) func(ansi.Mode) {
		return func(m ansi.Mode) {
			if !slices.Contains(mouseReporting, m) {
				return
			}
			if on {
				c.mouseModes[m] = true
			} else {
				delete(c.mouseModes, m)
			}
		}
	}
	c.emu.SetCallbacks(vt.Callbacks{EnableMode: set(true), DisableMode: set(false)})
}

// screenLines renders the emulator's screen, one string per row.
func (c *console) screenLines() []string {
	return strings.Split(c.emu.Render(), "\n")
}

// lines is what the pane shows: the screen, or a window into the
// scrollback followed by the screen.
func (c *console) lines() []string {
	if c.bootLog {
		all := c.klog.lines
		end := max(len(all)-c.scroll, 0)
		return all[max(end-c.rows, 0):end]
	}
	screen := c.screenLines()
	if c.scroll == 0 {
		return screen
	}
	sb := c.emu.Scrollback()
	var all []string
	if sb != nil {
		for _, l := range sb.Lines() {
			all = append(all, l.Render())
		}
	}
	all = append(all, screen...)
	end := max(len(all)-c.scroll, 0)
	start := max(end-c.rows, 0)
	return all[start:end]
}

// Text is the screen's plain text, trailing blanks trimmed.
func (c *console) Text() string { return c.emu.String() }

// cursor is where the guest's cursor is inside the pane's content area,
// and whether the real cursor should be shown there.
func (c *console) cursor() (x, y int, show bool) {
	p := c.emu.CursorPosition()
	return p.X, p.Y, c.attached && c.scroll == 0 && !c.emu.CursorHidden()
}

func (c *console) View(focused bool) string {
	style, title := styleFor(c.ctx, focused)
	var badge string
	switch {
	case c.bootLog:
		badge = c.ctx.Styles.Muted.Render(strconv.Itoa(len(c.klog.lines)) + " kernel lines · l: guest screen")
	case c.attached:
		style = c.ctx.Styles.Attached
		badge = c.ctx.Styles.Accent.Render("● attached · " + DetachKey + " detaches")
	case c.ended != "" && c.scroll == 0:
		badge = c.ctx.Styles.Muted.Render("■ " + c.ended)
	case c.scroll > 0:
		badge = c.ctx.Styles.Muted.Render("↑ " + strconv.Itoa(c.scroll) + " lines · end: live")
	case focused && c.src != nil:
		badge = c.ctx.Styles.Muted.Render("enter: attach")
	}
	return box(c.ctx, style, title, c.Title(), badge, c.lines(), c.w, c.h)
}
