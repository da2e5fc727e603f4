package tui

import (
	"regexp"
	"strings"
	"testing"
	"time"

	tea "charm.land/bubbletea/v2"
	"github.com/charmbracelet/x/ansi"

	"github.com/krunbench/krunbench/session/recording"
	"github.com/krunbench/krunbench/themes"
	"github.com/krunbench/krunbench/virtiofs/fuse"
	"github.com/krunbench/krunbench/virtiofs/trace"
)

func isQuit(cmd tea.Cmd) bool {
	if cmd == nil {
		return false
	}
	_, ok := cmd().(tea.QuitMsg)
	return ok
}

func TestKeysReachGuestOnlyWhenAttached(t *testing.T) {
	src := newFakeSource()
	m := New(Options{Source: src})
	defer m.Close()
	resize(m, 80, 24)

	// The console is focused but not attached: keys are the app's.
	if m.panes[m.focus] != m.con {
		t.Fatalf("focused pane is %s, want console", m.panes[m.focus].Title())
	}
	press(m, "k", "j")
	press(m, "tab") // to traffic
	typeText(m, "ab")
	press(m, "shift+tab")
	if got := src.typed(); got != "" {
		t.Fatalf("guest got %q before the console was attached", got)
	}

	// Attached: everything goes to the guest, q and ctrl+c included.
	press(m, "enter")
	if !m.con.attached || !strings.Contains(screen(m), "attached") {
		t.Fatal("enter did not attach the console")
	}
	typeText(m, "ls")
	for _, k := range []string{"enter", "ctrl+c", "q", "tab", "?", "t", "backspace", "up"} {
		if cmd := press(m, k); isQuit(cmd) {
			t.Fatalf("%s quit the app while the console was attached", k)
		}
	}
	waitTyped(t, src, "ls\r\x03q\t?t\x7f\x1b[A")
	if m.showHelp || m.panes[m.focus] != m.con || m.Theme().Name != themes.Default {
		t.Fatal("a global key acted while the console was attached")
	}

	// ctrl+] gives the keyboard back and is not sent.
	press(m, DetachKey)
	if m.con.attached {
		t.Fatal(DetachKey + " did not detach")
	}
	typeText(m, "x")
	if strings.Contains(src.typed(), "x") || strings.Contains(src.typed(), "\x1d") {
		t.Fatalf("guest got %q after detaching", src.typed())
	}
	if !isQuit(press(m, "q")) {
		t.Fatal("q does not quit once detached")
	}
	if !src.stopped {
		t.Fatal("quitting did not stop the source")
	}
}

func TestAttachOnLaunch(t *testing.T) {
	src := newFakeSource()
	lib := StaticLibrary{
		{Kind: KindRootFS, Name: "alpine", Path: "/srv/alpine", Verdict: VerdictOK},
		{Kind: KindInit, Name: "broken", Verdict: VerdictError, Detail: "not static"},
		{Kind: KindInit, Name: "kruninit", Verdict: VerdictOK},
	}
	var got LaunchRequest
	m := New(Options{Library: lib, Launch: func(r LaunchRequest) (Source, error) { got = r; return src, nil }})
	defer m.Close()
	resize(m, 80, 24)
	if m.panes[m.focus] != m.lib {
		t.Fatal("the library is not focused at start")
	}
	press(m, "down", "space") // the broken init cannot be picked
	if !strings.Contains(screen(m), "cannot be used") {
		t.Fatalf("no refusal for an item in error:\n%s", screen(m))
	}
	press(m, "down", "space")
	// The launch, run by hand: the source stays open (its end detaches).
	_, launching := m.Update(press(m, "enter")())
	m.Update(launching())
	if got.RootFS.Name != "alpine" || got.Init.Name != "kruninit" {
		t.Fatalf("launched %+v", got)
	}
	if m.src != src || !m.con.attached || m.panes[m.focus] != m.con {
		t.Fatal("a launched session is not attached to the console")
	}
	if src.lastResize() != [2]int{78, 10} {
		t.Fatalf("launch resized the guest to %v", src.lastResize())
	}
}

func readEv(seq uint64, off uint64, n int, eof bool) trace.Event {
	return trace.Event{Seq: seq, Time: time.Duration(seq) * time.Millisecond, Op: fuse.OpRead, OpName: "READ",
		Nodeid: 2, Path: "/init.krun", Offset: off, Size: 4096, Bytes: n, Synthetic: true, EOF: eof}
}

func trafficModel(t *testing.T, evs ...trace.Event) *Model {
	t.Helper()
	m := New(Options{Source: newFakeSource()})
	t.Cleanup(m.Close)
	resize(m, 100, 30)
	m.apply(&SourceMsg{Events: evs})
	press(m, "tab") // console -> traffic
	if m.panes[m.focus] != m.traf {
		t.Fatal("traffic not focused")
	}
	return m
}

// trafficLines are the traffic pane's event lines as plain text.
func trafficLines(m *Model) []string {
	var out []string
	re := regexp.MustCompile(`│.\+\d+\.\d{6} `)
	for _, l := range strings.Split(screen(m), "\n") {
		if loc := re.FindStringIndex(l); loc != nil {
			out = append(out, l[loc[0]:])
		}
	}
	return out
}

func sampleEvents() []trace.Event {
	return []trace.Event{
		{Seq: 1, Op: fuse.OpInit, OpName: "INIT"},
		{Seq: 2, Op: fuse.OpLookup, OpName: "LOOKUP", Nodeid: 1, Path: "/", Name: "init.krun", NewNodeid: 2, Synthetic: true},
		readEv(3, 0, 4096, false),
		readEv(4, 4096, 0, true),
		{Seq: 5, Op: fuse.OpLookup, OpName: "LOOKUP", Nodeid: 1, Path: "/", Name: "etc", Errno: 2},
		{Seq: 6, Op: fuse.OpRead, OpName: "READ", Nodeid: 7, Path: "/bin/sh", Size: 100, Bytes: 100},
		{Seq: 7, Op: fuse.OpGetattr, OpName: "GETATTR", Nodeid: 7, Path: "/bin/sh"},
	}
}

func TestTrafficFilters(t *testing.T) {
	m := trafficModel(t, sampleEvents()...)
	if n := len(trafficLines(m)); n != 7 {
		t.Fatalf("%d lines unfiltered, want 7:\n%s", n, screen(m))
	}

	press(m, "o")
	typeText(m, "read,getattr")
	if m.con.attached || m.panes[m.focus] != m.traf {
		t.Fatal("typing a filter moved the focus")
	}
	press(m, "enter")
	lines := trafficLines(m)
	if len(lines) != 4 {
		t.Fatalf("op filter kept %d lines, want 4:\n%s", len(lines), strings.Join(lines, "\n"))
	}
	for _, l := range lines {
		if !strings.Contains(l, "READ") && !strings.Contains(l, "GETATTR") {
			t.Errorf("op filter kept %q", l)
		}
	}

	press(m, "/")
	typeText(m, "init")
	press(m, "enter")
	if lines := trafficLines(m); len(lines) != 2 || !strings.Contains(screen(m), "path~init") {
		t.Fatalf("op+path filter kept %d lines, want 2:\n%s", len(lines), screen(m))
	}

	press(m, "c", "e")
	lines = trafficLines(m)
	if len(lines) != 1 || !strings.Contains(lines[0], "ENOENT") {
		t.Fatalf("errors-only kept:\n%s", strings.Join(lines, "\n"))
	}

	// Esc cancels an edit without applying it, and q typed into a filter
	// does not quit.
	press(m, "c", "/")
	if cmd := press(m, "q"); isQuit(cmd) {
		t.Fatal("q quit while typing a filter")
	}
	press(m, "esc")
	if m.traf.Filter().active() || len(trafficLines(m)) != 7 {
		t.Fatalf("cancelled edit applied: %+v", m.traf.Filter())
	}
}

func TestEOFHighlight(t *testing.T) {
	th := themes.MustGet("dark")
	m := trafficModel(t, sampleEvents()...)
	m.SetTheme(th)
	eofStyled := th.Styles.EOF.Render(EOFMarker)
	var eofLines, plainReads int
	for _, l := range strings.Split(m.View().Content, "\n") {
		text := ansi.Strip(l)
		switch {
		case strings.Contains(text, "off=4096"):
			eofLines++
			if !strings.Contains(text, EOFMarker) || !strings.Contains(l, eofStyled) {
				t.Errorf("EOF read not highlighted: %q", l)
			}
		case strings.Contains(text, "READ"):
			plainReads++
			if strings.Contains(text, "EOF") || strings.Contains(l, eofStyled) {
				t.Errorf("a read that is not at EOF is highlighted: %q", text)
			}
		}
	}
	if eofLines != 1 || plainReads != 2 {
		t.Fatalf("%d EOF lines, %d other reads", eofLines, plainReads)
	}
	// The init.krun reads are marked; the /bin/sh read is not.
	for _, l := range trafficLines(m) {
		init := strings.Contains(l, "/init.krun") && strings.Contains(l, "READ")
		if marked := strings.HasPrefix(l, "│▌"); marked != init {
			t.Errorf("init-read mark %v on %q", marked, l)
		}
	}
}

func TestTrafficPauseCountsNew(t *testing.T) {
	m := trafficModel(t, sampleEvents()...)
	press(m, "space")
	m.apply(&SourceMsg{Events: []trace.Event{readEv(8, 0, 10, false), readEv(9, 10, 10, false), readEv(10, 20, 0, true)}})
	s := screen(m)
	if !strings.Contains(s, "paused · 3 new") {
		t.Fatalf("paused pane does not count new events:\n%s", s)
	}
	if strings.Contains(s, "+0.010000") {
		t.Fatal("a paused pane shows new events")
	}
	press(m, "space")
	if s := screen(m); !strings.Contains(s, "+0.010000") || !strings.Contains(s, "● live") {
		t.Fatalf("resume does not show the new events:\n%s", s)
	}

	// Scrolling up leaves the live view; end follows again.
	for i := range 40 {
		m.apply(&SourceMsg{Events: []trace.Event{readEv(uint64(100+i), 0, 1, false)}})
	}
	press(m, "up")
	m.apply(&SourceMsg{Events: []trace.Event{readEv(11, 30, 10, false)}})
	if !strings.Contains(screen(m), "scrolled · 1 new") {
		t.Fatalf("scrolled pane:\n%s", screen(m))
	}
	press(m, "end")
	if s := screen(m); !strings.Contains(s, "+0.011000") || !strings.Contains(s, "● live") {
		t.Fatal("end does not follow the newest events")
	}
}

func TestTrafficBounded(t *testing.T) {
	m := New(Options{Source: newFakeSource(), TrafficLimit: 50})
	defer m.Close()
	for i := range 500 {
		m.apply(&SourceMsg{Events: []trace.Event{readEv(uint64(i+1), 0, 1, false)}})
	}
	if n := len(m.traf.entries); n > 50+50/4 {
		t.Fatalf("traffic keeps %d events with a limit of 50", n)
	}
}

func checkFrame(t *testing.T, m *Model, w, h int) string {
	t.Helper()
	s := screen(m)
	lines := strings.Split(s, "\n")
	if len(lines) != h {
		t.Errorf("%dx%d: %d lines", w, h, len(lines))
	}
	for i, l := range lines {
		if lw := ansi.StringWidth(l); lw > w {
			t.Errorf("%dx%d: line %d is %d wide: %q", w, h, i, lw, l)
		}
	}
	return s
}

func TestResizeLayouts(t *testing.T) {
	src := newFakeSource()
	m := New(Options{Source: src, Library: StaticLibrary{{Kind: KindRootFS, Name: "alpine", Verdict: VerdictOK}}})
	defer m.Close()
	m.apply(&SourceMsg{Events: sampleEvents(), Console: []byte("guest says hi\r\n"),
		Info: &recording.Config{Engine: "qemu", Accel: "tcg", CPUs: 4, MemMiB: 1024}})

	resize(m, 80, 24)
	s := checkFrame(t, m, 80, 24)
	if m.Grid() || !m.Split() || !strings.Contains(s, "1 library") || !strings.Contains(s, "2 console") {
		t.Fatalf("80x24 is not tabbed with console and traffic split:\n%s", s)
	}
	if cols, rows := m.con.Size(); cols != 78 || rows != 10 || src.lastResize() != [2]int{78, 10} {
		t.Fatalf("80x24: emulator %dx%d, guest told %v", cols, rows, src.lastResize())
	}
	for _, want := range []string{"qemu", "tcg", "4 vCPU", "1024 MiB"} {
		if !strings.Contains(s, want) {
			t.Errorf("status bar lacks %q", want)
		}
	}
	// Each tab shows its pane.
	press(m, "4")
	if s := checkFrame(t, m, 80, 24); !strings.Contains(s, "─ inodes ") || strings.Contains(s, "─ console ") {
		t.Fatalf("tab 4:\n%s", s)
	}

	resize(m, 160, 50)
	s = checkFrame(t, m, 160, 50)
	if !m.Grid() {
		t.Fatal("160x50 is not a grid")
	}
	for _, title := range []string{"library", "console", "traffic", "inodes", "stats"} {
		if !strings.Contains(s, "─ "+title+" ") {
			t.Errorf("160x50 lacks the %s pane", title)
		}
	}
	cols, rows := m.con.Size()
	if cols <= 78 || rows <= 20 || src.lastResize() != [2]int{cols, rows} {
		t.Fatalf("160x50: emulator %dx%d, guest told %v", cols, rows, src.lastResize())
	}
	if !strings.Contains(s, "guest says hi") || !strings.Contains(s, EOFMarker) {
		t.Fatalf("160x50 lacks the console or the traffic:\n%s", s)
	}

	resize(m, 80, 24)
	if cols, rows := m.con.Size(); cols != 78 || rows != 10 {
		t.Fatalf("back to 80x24: emulator %dx%d", cols, rows)
	}

	// Odd sizes neither panic nor overflow, in every pane and overlay.
	for _, sz := range [][2]int{{20, 6}, {40, 12}, {59, 20}, {60, 20}, {119, 35}, {120, 36}, {220, 70}} {
		resize(m, sz[0], sz[1])
		for range m.panes {
			press(m, "tab")
			checkFrame(t, m, sz[0], sz[1])
		}
		press(m, "?")
		checkFrame(t, m, sz[0], sz[1])
		press(m, "esc", "`")
		checkFrame(t, m, sz[0], sz[1])
		press(m, "`")
	}
}

func TestOverlays(t *testing.T) {
	m := New(Options{Source: newFakeSource(), Library: StaticLibrary{}})
	defer m.Close()
	resize(m, 80, 24)
	press(m, "?")
	s := checkFrame(t, m, 80, 24)
	for _, want := range []string{"global", "next pane", "any"} {
		if !strings.Contains(s, want) {
			t.Errorf("help lacks %q:\n%s", want, s)
		}
	}
	press(m, "esc")
	if m.showHelp {
		t.Fatal("help did not close")
	}
	resize(m, 160, 50)
	press(m, "?")
	s = screen(m)
	for _, want := range []string{DetachKey, "errors only", "sort by next column", "launch the picks", "scroll opcodes", "debug overlay"} {
		if !strings.Contains(s, want) {
			t.Errorf("help at 160x50 lacks %q", want)
		}
	}
	press(m, "esc", "`")
	if s := checkFrame(t, m, 160, 50); !strings.Contains(s, "frame") || !strings.Contains(s, "dropped") {
		t.Fatalf("no debug overlay:\n%s", s)
	}
}

var colourSGR = regexp.MustCompile(`\x1b\[[0-9;]*(38|48);[25];`)

func TestThemes(t *testing.T) {
	m := trafficModel(t, sampleEvents()...)
	views := map[string]string{}
	for _, name := range []string{"dark", "light", "high-contrast"} {
		m.SetTheme(themes.MustGet(name))
		v := m.View().Content
		if !colourSGR.MatchString(v) {
			t.Errorf("%s: no colours", name)
		}
		views[name] = v
	}
	if views["dark"] == views["light"] || views["light"] == views["high-contrast"] {
		t.Error("themes render alike")
	}
	if ansi.Strip(views["dark"]) != ansi.Strip(views["light"]) {
		t.Error("the text changes with the theme")
	}
	before := m.Theme().Name
	press(m, "t")
	if m.Theme().Name == before {
		t.Error("t does not switch the theme")
	}
	if !strings.Contains(screen(m), "theme "+m.Theme().Name) {
		t.Errorf("t does not say which theme it switched to:\n%s", screen(m))
	}

	mono, err := themes.Resolve("dark", []string{"NO_COLOR=1"})
	if err != nil {
		t.Fatal(err)
	}
	m.SetTheme(mono)
	v := m.View().Content
	if colourSGR.MatchString(v) {
		t.Errorf("NO_COLOR view has colours")
	}
	if !strings.Contains(v, "\x1b[7m") && !strings.Contains(v, ";7m") && !strings.Contains(v, "[1;7m") {
		t.Errorf("NO_COLOR view has no reverse video")
	}
	if !strings.Contains(ansi.Strip(v), EOFMarker) {
		t.Error("NO_COLOR view lacks the EOF marker")
	}
}

func TestConsoleScrollback(t *testing.T) {
	src := newFakeSource()
	m := New(Options{Source: src})
	defer m.Close()
	resize(m, 80, 24)
	var b strings.Builder
	for i := range 60 {
		b.WriteString("line " + strings.Repeat("x", i%5) + " #" + itoa3(i) + "\r\n")
	}
	m.apply(&SourceMsg{Console: []byte(b.String())})
	if s := screen(m); strings.Contains(s, "#000") || !strings.Contains(s, "#059") {
		t.Fatalf("live screen:\n%s", s)
	}
	press(m, "g")
	if s := screen(m); !strings.Contains(s, "#000") || strings.Contains(s, "#059") {
		t.Fatalf("scrolled to the top:\n%s", s)
	}
	press(m, "G")
	if !strings.Contains(screen(m), "#059") {
		t.Fatal("end does not go back to the live screen")
	}
}

func itoa3(i int) string {
	s := "00" + string(rune('0'+i/10)) + string(rune('0'+i%10))
	return s[len(s)-3:]
}

// TestEmulatorRepliesReachGuest: a DSR query from the guest does not
// block the console; the emulator's reply is sent to the guest.
func TestEmulatorRepliesReachGuest(t *testing.T) {
	src := newFakeSource()
	m := New(Options{Source: src})
	defer m.Close()
	resize(m, 80, 24)
	done := make(chan struct{})
	go func() {
		m.con.feed([]byte("ab\x1b[6n"))
		m.con.feed([]byte("\x1b[6n"))
		close(done)
	}()
	select {
	case <-done:
	case <-time.After(2 * time.Second):
		t.Fatal("the emulator blocked on a DSR query")
	}
	deadline := time.Now().Add(2 * time.Second)
	for !strings.Contains(src.typed(), "\x1b[1;3R") && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	if !strings.Contains(src.typed(), "\x1b[1;3R") {
		t.Fatalf("guest got %q, want a cursor position report", src.typed())
	}
}
