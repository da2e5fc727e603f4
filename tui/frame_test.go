package tui

import (
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/charmbracelet/x/ansi"

	"github.com/krunbench/krunbench/session/recording"
	"github.com/krunbench/krunbench/themes"
	"github.com/krunbench/krunbench/virtiofs/trace"
)

// TestPumpPaces: a flood of single events becomes a few batches, the
// first delivered alone, nothing lost. The pacing is checked against the
// time the flood actually took (a busy machine stretches it), not against
// a fixed schedule: no more batches than intervals elapsed, plus the first
// and the last.
func TestPumpPaces(t *testing.T) {
	const interval = 50 * time.Millisecond
	p := NewPumpInterval(0, 0, interval)
	start := time.Now()
	p.Event(trace.Event{Seq: 1})
	first := <-p.C()
	if len(first.Events) != 1 {
		t.Fatalf("first batch has %d events: not delivered at once", len(first.Events))
	}
	if first.Queued.IsZero() || first.Queued.Before(start) {
		t.Fatalf("Queued = %v, want the time the event was queued", first.Queued)
	}
	go func() {
		for i := range 400 {
			p.Event(trace.Event{Seq: uint64(i + 2)})
			time.Sleep(time.Millisecond)
		}
		p.AddDropped(3)
		p.Close()
	}()
	batches := 0
	n := 1
	var last SourceMsg
	for b := range p.C() {
		batches++
		n += len(b.Events)
		last = b
	}
	elapsed := time.Since(start)
	if n != 401 || last.Dropped != 3 || last.UpstreamDropped != 3 {
		t.Fatalf("%d events delivered, dropped %d (%d upstream); want 401, 3, 3", n, last.Dropped, last.UpstreamDropped)
	}
	if limit := int(elapsed/interval) + 2; batches > limit || batches < 2 {
		t.Fatalf("%d batches for 400 events over %v; want 2..%d", batches, elapsed, limit)
	}
}

// TestCachedFramesMatch: whatever happens, a frame drawn from the panes'
// caches is the frame drawn from scratch, and a batch of events redraws
// only the panes it changes.
func TestCachedFramesMatch(t *testing.T) {
	m := New(Options{Source: newFakeSource(), Library: StaticLibrary{{Kind: KindRootFS, Name: "alpine", Verdict: VerdictOK}}})
	defer m.Close()
	resize(m, 120, 40)
	check := func(step string) {
		t.Helper()
		// The debug overlay changes with every frame; it is drawn over
		// the panes, never cached.
		debug := m.showDebug
		m.showDebug = false
		defer func() { m.showDebug = debug; m.View() }()
		cached := m.View().Content
		m.invalidateAll()
		if fresh := m.View().Content; cached != fresh {
			t.Fatalf("%s: the cached frame differs from a fresh one:\n%s\n---\n%s", step, ansi.Strip(cached), ansi.Strip(fresh))
		}
	}
	f := &floodLoad{}
	m.apply(&SourceMsg{Console: []byte("/ # find /data\r\n"), Events: f.events(30), Stats: f.snapshot(), Inodes: f.inodes(100)})
	check("first batch")
	m.View()
	m.apply(&SourceMsg{Events: f.events(5)})
	m.View()
	// The traffic and stats panes changed; the library, console and
	// inodes did not.
	if m.debug.lastDrawn != 2 || m.debug.lastReused != 3 {
		t.Fatalf("an events-only batch drew %d panes and reused %d; want 2 and 3", m.debug.lastDrawn, m.debug.lastReused)
	}
	check("events")
	steps := []struct {
		name string
		do   func()
	}{
		{"console", func() { m.apply(&SourceMsg{Console: []byte("more output\r\n")}) }},
		{"inodes", func() { m.apply(&SourceMsg{Inodes: f.inodes(200)}) }},
		{"status", func() { m.apply(&SourceMsg{Status: []recording.Status{{State: recording.StateRunning}}, Dropped: 4}) }},
		{"focus", func() { press(m, "tab") }},
		{"pause", func() { press(m, "3", "space"); m.apply(&SourceMsg{Events: f.events(3)}) }},
		{"scroll", func() { press(m, "up", "up") }},
		{"filter", func() { m.traf.SetFilter(Filter{Ops: []string{"LOOKUP"}}) }},
		{"theme", func() { m.SetTheme(themes.MustGet("light")) }},
		{"debug", func() { press(m, "`") }},
		{"help", func() { press(m, "?") }},
		{"resize", func() { press(m, "esc"); resize(m, 80, 24) }},
		{"tabs", func() { m.apply(&SourceMsg{Events: f.events(3)}) }},
	}
	for _, s := range steps {
		s.do()
		check(s.name)
	}
}

// TestTrafficRing: the ring keeps the newest events in order, however
// the batches fall, and a paused pane shows no newer events.
func TestTrafficRing(t *testing.T) {
	m := New(Options{Source: newFakeSource(), TrafficLimit: 10})
	defer m.Close()
	resize(m, 80, 24)
	for _, n := range []int{3, 9, 1, 25, 4} {
		evs := make([]trace.Event, n)
		for i := range evs {
			evs[i] = readEv(m.traf.next+uint64(i)+1, 0, 1, false)
		}
		m.apply(&SourceMsg{Events: evs})
		kept := len(m.traf.entries)
		if kept > 10 {
			t.Fatalf("%d kept with a limit of 10", kept)
		}
		for i := range kept {
			if want := m.traf.next - uint64(kept-1-i); m.traf.at(i).idx != want || m.traf.at(i).ev.Seq != want {
				t.Fatalf("entry %d: idx %d seq %d, want %d", i, m.traf.at(i).idx, m.traf.at(i).ev.Seq, want)
			}
		}
	}
	press(m, "2", "space")
	rows := func(s string) string {
		return strings.Join(regexp.MustCompile(`\+\S+ READ.*`).FindAllString(s, -1), "\n")
	}
	before := screen(m)
	m.apply(&SourceMsg{Events: []trace.Event{readEv(m.traf.next+1, 0, 1, false)}})
	after := screen(m)
	// The ring is full: the oldest row may go, no new one comes.
	if !strings.Contains(after, "paused · 1 new") || !strings.HasSuffix(rows(before), rows(after)) || rows(after) == "" {
		t.Fatalf("a paused pane moved:\n%s\n---\n%s", before, after)
	}
}

// TestDebugOverlay: the overlay shows frame time percentiles, the frame
// and event rates, the backlog and the drops of the subscription.
func TestDebugOverlay(t *testing.T) {
	m := New(Options{Source: newFakeSource()})
	defer m.Close()
	resize(m, 120, 40)
	press(m, "`")
	f := &floodLoad{}
	for range 5 {
		m.Update(sourceMsg{gen: m.gen, msg: SourceMsg{Events: f.events(20), Queued: time.Now().Add(-30 * time.Millisecond), Dropped: 9, UpstreamDropped: 7}})
		m.View()
	}
	s := screen(m)
	for _, re := range []string{
		`frame\s+\S+ \(p50 \S+, p99 \S+, avg \S+, max \S+\)`,
		`frames\s+5 · [1-9]\d*/s · panes \d+ drawn, \d+ reused`,
		`events\s+100 seen, 100 kept · 100/s`,
		`backlog\s+(3\d|[4-9]\d)(\.\d+)?ms \(max \S+ in 1s\)`,
		`dropped\s+9 events, 0 console bytes`,
		`7 by the subscription, 2 by the buffer`,
	} {
		if !regexp.MustCompile(re).MatchString(s) {
			t.Errorf("overlay lacks %q:\n%s", re, s)
		}
	}
}

// TestWidth: the fast width agrees with ansi.StringWidth on every line
// the app draws, and on what it cannot tell by itself.
func TestWidth(t *testing.T) {
	m := New(Options{Source: newFakeSource(), Library: StaticLibrary{{Kind: KindRootFS, Name: "alpine", Verdict: VerdictOK}}})
	defer m.Close()
	f := &floodLoad{}
	m.apply(&SourceMsg{Console: []byte("é 日本 ✓ e\u0301 👍🏽\r\n"), Events: append(sampleEvents(), f.events(20)...), Stats: f.snapshot(), Inodes: f.inodes(50)})
	press(m, "`")
	var lines []string
	for _, sz := range [][2]int{{120, 40}, {80, 24}} {
		resize(m, sz[0], sz[1])
		lines = append(lines, strings.Split(m.View().Content, "\n")...)
	}
	lines = append(lines, "日本", "e\u0301", "👍🏽", "x\x1b]8;;http://x\x07y\x1b]8;;\x07", "\x1b[1;31m…→✗\x1b[m", "a\tb", "\u00ad")
	for _, l := range lines {
		if got, want := width(l), ansi.StringWidth(l); got != want {
			t.Errorf("width(%q) = %d, ansi.StringWidth = %d", l, got, want)
		}
	}
}
