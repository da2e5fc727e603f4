package tui

import (
	"fmt"
	"strings"
	"testing"
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
