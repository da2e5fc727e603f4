package tui

import (
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/krunbench/krunbench/session/recording"
	"github.com/krunbench/krunbench/virtiofs/fuse"
	"github.com/krunbench/krunbench/virtiofs/trace"
)

// guestSource is a fakeSource that says it runs a guest, as the live
// source does. (The real session is driven by cmd/krunbench's tmux test.)
type guestSource struct{ *fakeSource }

func (guestSource) RunsGuest() bool { return true }

// TestQuitAsksWhileAGuestRuns: q with a guest running asks; another key
// stays; y stops the guest and quits only once its source has closed.
func TestQuitAsksWhileAGuestRuns(t *testing.T) {
	src := guestSource{newFakeSource()}
	m := New(Options{Source: src})
	defer m.Close()
	resize(m, 80, 24)
	if isQuit(press(m, "q")) {
		t.Fatal("q quit at once with a guest running")
	}
	if !strings.Contains(screen(m), "A guest is running") {
		t.Fatalf("no question:\n%s", screen(m))
	}
	press(m, "n")
	if asking, _ := m.Quitting(); asking || src.stopped {
		t.Fatal("another key did not cancel the quit")
	}
	press(m, "q")
	press(m, "y") // its command is the stop's time limit: not run here
	if _, stopping := m.Quitting(); !stopping || !src.stopped {
		t.Fatalf("y: stopped=%v, stopping=%v; want the guest stopped first", src.stopped, stopping)
	}
	if !strings.Contains(screen(m), "Stopping the guest") {
		t.Fatalf("no word while stopping:\n%s", screen(m))
	}
	src.ch <- SourceMsg{Status: []recording.Status{{State: recording.StateFailed, Reason: "the guest was stopped"}}}
	close(src.ch)
	quit := make(chan bool, 1)
	go func() { run(t, m, m.listen(), 5*time.Second); quit <- true }()
	select {
	case <-quit:
	case <-time.After(10 * time.Second):
		t.Fatal("the app did not quit after the stopped guest's source closed")
	}
}

// TestQuitWithoutGuestIsImmediate: a replay (no guest) or an ended guest
// quits on q without asking.
func TestQuitWithoutGuestIsImmediate(t *testing.T) {
	src := guestSource{newFakeSource()}
	m := New(Options{Source: src})
	defer m.Close()
	resize(m, 80, 24)
	close(src.ch)
	run(t, m, m.listen(), 5*time.Second)
	if !isQuit(press(m, "q")) {
		t.Fatal("q after the guest ended did not quit")
	}
	r := New(Options{Source: newFakeSource()})
	defer r.Close()
	if !isQuit(press(r, "q")) {
		t.Fatal("q on a source without a guest did not quit")
	}
}

// TestGuestEndDetachesConsole: when the source closes, the console gives
// the keyboard back and says how the guest ended.
func TestGuestEndDetachesConsole(t *testing.T) {
	src := guestSource{newFakeSource()}
	m := New(Options{Source: src, Attach: true})
	defer m.Close()
	resize(m, 80, 24)
	if !m.con.attached {
		t.Fatal("not attached at start")
	}
	src.ch <- SourceMsg{Console: []byte("/ # exit\r\n"), Status: []recording.Status{{State: recording.StateExited, Code: 3}}}
	close(src.ch)
	run(t, m, m.listen(), 5*time.Second)
	if m.con.attached {
		t.Fatal("console still attached after the guest ended")
	}
	if s := screen(m); !strings.Contains(s, "the guest exited with code 3") {
		t.Fatalf("console does not say how the guest ended:\n%s", s)
	}
	typeText(m, "x")
	if strings.Contains(src.typed(), "x") {
		t.Fatal("keys still sent to an ended guest")
	}
}

// TestRatesFallToZeroWhenTheSourceEnds: after the last event of a
// playback the request rate reads 0/s, not the last second's count.
func TestRatesFallToZeroWhenTheSourceEnds(t *testing.T) {
	src := newFakeSource()
	m := New(Options{Source: src})
	defer m.Close()
	resize(m, 160, 50)
	var evs []trace.Event
	for i := range 300 {
		evs = append(evs, trace.Event{Seq: uint64(i + 1), Time: time.Duration(i) * 5 * time.Millisecond, Op: fuse.OpGetattr, OpName: "GETATTR", Nodeid: 1})
	}
	m.apply(&SourceMsg{Events: evs})
	if s := screen(m); strings.Contains(s, "  0/s") {
		t.Fatalf("rate 0 while events flow:\n%s", s)
	}
	close(src.ch)
	run(t, m, m.listen(), 5*time.Second)
	s := screen(m)
	if !strings.Contains(s, "  0/s") {
		t.Fatalf("total rate not 0 after the end:\n%s", s)
	}
	if m.st.total.rate() != 0 || m.st.ops[fuse.OpGetattr].ring.rate() != 0 {
		t.Fatalf("rates %d, %d after the end", m.st.total.rate(), m.st.ops[fuse.OpGetattr].ring.rate())
	}
}

// TestBootTimer: while the guest boots (no FUSE request yet) the status
// bar shows the time since launch and keeps redrawing; once the guest
// runs, the timer stops.
func TestBootTimer(t *testing.T) {
	src := newFakeSource()
	m := New(Options{Source: src})
	defer m.Close()
	resize(m, 80, 24)
	if !regexp.MustCompile(`booting \d+\.\ds`).MatchString(screen(m)) {
		t.Fatalf("no boot timer:\n%s", screen(m))
	}
	if _, cmd := m.Update(bootTickMsg{gen: m.gen}); cmd == nil {
		t.Fatal("the boot timer stopped while booting")
	}
	m.apply(&SourceMsg{Status: []recording.Status{{State: recording.StateRunning}}})
	if _, cmd := m.Update(bootTickMsg{gen: m.gen}); cmd != nil {
		t.Fatal("the boot timer runs on after the boot")
	}
	if s := screen(m); strings.Contains(s, "booting") || !strings.Contains(s, "running") {
		t.Fatalf("status after the boot:\n%s", s)
	}
}
