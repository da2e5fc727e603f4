package tui

import (
	"fmt"
	"strings"
	"testing"

	tea "charm.land/bubbletea/v2"
)

// TestConsoleKeepsContentAcrossResizes: 200x50 -> 40x10 -> 200x50 gives
// back the same screen (banner, long lines, prompt) and the scrollback,
// with nothing cut at the narrow width; at 40x10 the prompt is on screen.
func TestConsoleKeepsContentAcrossResizes(t *testing.T) {
	m := New(Options{Source: newFakeSource()})
	defer m.Close()
	resize(m, 200, 50)
	banner := "BusyBox v1.35.0 (Debian 1:1.35.0-4+deb12u1+b1) built-in shell (ash) " + strings.Repeat("=", 20) + " END-OF-BANNER"
	var out strings.Builder
	out.WriteString("\x1b[1m" + banner + "\x1b[0m\r\n")
	for i := range 120 {
		fmt.Fprintf(&out, "line %03d %s\r\n", i, strings.Repeat("x", 70))
	}
	out.WriteString("/ # ")
	m.con.feed([]byte(out.String()))
	wide := m.con.Text()
	wideBack := m.con.emu.ScrollbackLen()
	if !strings.Contains(wide, "\n/ #") || !strings.Contains(wide, "line 119 "+strings.Repeat("x", 70)) {
		t.Fatalf("unexpected wide screen:\n%s", wide)
	}

	resize(m, 40, 10)
	if narrow := m.con.Text(); !strings.Contains(narrow, "\n/ #") {
		t.Fatalf("prompt lost at 40x10:\n%s", narrow)
	}
	resize(m, 200, 50)
	if back := m.con.Text(); back != wide {
		t.Fatalf("screen changed across resizes:\nbefore:\n%s\nafter:\n%s", wide, back)
	}
	if got := m.con.emu.ScrollbackLen(); got != wideBack {
		t.Fatalf("scrollback has %d lines after the resizes, %d before", got, wideBack)
	}
	var sb strings.Builder
	for _, l := range m.con.emu.Scrollback().Lines() {
		sb.WriteString(l.Render() + "\n")
	}
	if !strings.Contains(sb.String(), "END-OF-BANNER") {
		t.Fatalf("the banner is cut in the scrollback:\n%s", sb.String())
	}
	// The cursor is back after the prompt.
	if x, y, _ := m.con.cursor(); x != 4 || !strings.HasPrefix(strings.Split(m.con.Text(), "\n")[y], "/ #") {
		t.Fatalf("cursor at %d,%d, not after the prompt", x, y)
	}
}

// TestConsoleAndTrafficTogether: at 80x24 and 120x30 (below the grid)
// the console and the traffic are on screen together while either has
// the focus; the other panes are a key away.
func TestConsoleAndTrafficTogether(t *testing.T) {
	for _, sz := range [][2]int{{80, 24}, {120, 30}} {
		m := New(Options{Source: newFakeSource(), Library: StaticLibrary{{Kind: KindRootFS, Name: "alpine", Verdict: VerdictOK}}})
		resize(m, sz[0], sz[1])
		m.apply(&SourceMsg{Events: sampleEvents(), Console: []byte("guest says hi\r\n")})
		for _, key := range []string{"2", "3"} {
			press(m, key)
			s := checkFrame(t, m, sz[0], sz[1])
			if !strings.Contains(s, "guest says hi") || !strings.Contains(s, EOFMarker) || !strings.Contains(s, "─ console ") || !strings.Contains(s, "─ traffic ") {
				t.Fatalf("%dx%d, pane %s: console and traffic not both shown:\n%s", sz[0], sz[1], key, s)
			}
		}
		press(m, "5")
		if s := checkFrame(t, m, sz[0], sz[1]); !strings.Contains(s, "─ stats ") {
			t.Fatalf("%dx%d: stats not a key away:\n%s", sz[0], sz[1], s)
		}
		m.Close()
	}
}

// TestMouseFocusesAndScrolls: a click focuses the pane under it, the
// wheel scrolls the console's scrollback; with the guest's mouse
// reporting on, an attached console sends the click to the guest, encoded
// by the emulator (SGR).
func TestMouseFocusesAndScrolls(t *testing.T) {
	src := newFakeSource()
	m := New(Options{Source: src})
	defer m.Close()
	resize(m, 80, 24)
	var out strings.Builder
	for i := range 40 {
		fmt.Fprintf(&out, "line %d\r\n", i)
	}
	m.con.feed([]byte(out.String()))
	traf := m.lay.rects[m.traf]
	m.Update(tea.MouseClickMsg{X: traf.x + 3, Y: traf.y + 2, Button: tea.MouseLeft})
	if m.panes[m.focus] != m.traf {
		t.Fatalf("click on the traffic focused %s", m.panes[m.focus].Title())
	}
	con := m.lay.rects[m.con]
	m.Update(tea.MouseClickMsg{X: con.x + 3, Y: con.y + 2, Button: tea.MouseLeft})
	if m.panes[m.focus] != m.con {
		t.Fatalf("click on the console focused %s", m.panes[m.focus].Title())
	}
	m.Update(tea.MouseWheelMsg{X: con.x + 3, Y: con.y + 2, Button: tea.MouseWheelUp})
	if m.con.scroll == 0 {
		t.Fatal("the wheel did not scroll the console back")
	}
	m.Update(tea.MouseWheelMsg{X: con.x + 3, Y: con.y + 2, Button: tea.MouseWheelDown})
	if m.con.scroll != 0 {
		t.Fatalf("the wheel did not scroll forward: %d", m.con.scroll)
	}
	// A guest that asks for mouse reports (SGR encoding) gets them.
	m.con.feed([]byte("\x1b[?1000h\x1b[?1006h"))
	press(m, "enter")
	m.Update(tea.MouseClickMsg{X: con.x + 1 + 4, Y: con.y + 1 + 2, Button: tea.MouseLeft})
	waitTyped(t, src, "\x1b[<0;5;3M")
}

// TestKeysFollowTheGuestsModes: the emulator encodes keys as the guest's
// terminal modes ask: cursor keys change in application mode, paste is
// bracketed when asked.
func TestKeysFollowTheGuestsModes(t *testing.T) {
	src := newFakeSource()
	m := New(Options{Source: src, Attach: true})
	defer m.Close()
	resize(m, 80, 24)
	press(m, "up")
	waitTyped(t, src, "\x1b[A")
	m.con.feed([]byte("\x1b[?1h\x1b[?2004h")) // DECCKM, bracketed paste
	press(m, "up")
	waitTyped(t, src, "\x1b[A\x1bOA")
	m.Update(tea.PasteMsg{Content: "hi"})
	waitTyped(t, src, "\x1b[A\x1bOA\x1b[200~hi\x1b[201~")
}
