package tui

import (
	"bytes"
	"strings"
	"testing"
	"time"

	tea "charm.land/bubbletea/v2"
	"github.com/charmbracelet/colorprofile"
	"github.com/charmbracelet/x/exp/teatest/v2"

	"github.com/krunbench/krunbench/session/recording"
	"github.com/krunbench/krunbench/virtiofs/trace"
)

func TestReplayFixture(t *testing.T) {
	src, err := OpenReplay(fixturePath, 0)
	if err != nil {
		t.Fatal(err)
	}
	m := New(Options{Source: src, Title: "replay"})
	defer m.Close()
	resize(m, 160, 50)
	run(t, m, m.Init(), 10*time.Second)
	if !m.ended {
		t.Fatal("the replay did not end")
	}
	s := screen(m)
	if !strings.Contains(s, fixtureText) || !strings.Contains(m.con.Text(), "milestone exit") {
		t.Fatalf("console lacks the fixture's text:\n%s", s)
	}
	var initReads []string
	for _, l := range trafficLines(m) {
		if strings.Contains(l, "READ") && strings.Contains(l, "/init.krun") {
			initReads = append(initReads, l)
		}
	}
	if len(initReads) != 3 || !strings.Contains(initReads[2], EOFMarker) || strings.Contains(initReads[0], EOFMarker) {
		t.Fatalf("init.krun reads:\n%s", strings.Join(initReads, "\n"))
	}
	for _, want := range []string{"exited code 0", "qemu", "kvm", "2 vCPU", "512 MiB",
		"/bin/sh", "64.0K", // the inode table
		"LOOKUP init.krun", "EOF read", "exit (code 0)"} { // the timeline
		if !strings.Contains(s, want) {
			t.Errorf("view lacks %q", want)
		}
	}
	if m.st.snap == nil || m.st.snap.Total.Count != 14 || m.st.snap.Total.Errors != 1 {
		t.Errorf("stats snapshot = %+v", m.st.snap)
	}
}

// TestReplayProgram runs the replay in a real bubbletea program.
func TestReplayProgram(t *testing.T) {
	src, err := OpenReplay(fixturePath, 0)
	if err != nil {
		t.Fatal(err)
	}
	m := New(Options{Source: src})
	tm := teatest.NewTestModel(t, m, teatest.WithInitialTermSize(160, 50),
		teatest.WithProgramOptions(tea.WithColorProfile(colorprofile.Ascii)))
	teatest.WaitFor(t, tm.Output(), func(b []byte) bool {
		return bytes.Contains(b, []byte(fixtureText)) && bytes.Contains(b, []byte("code 0"))
	}, teatest.WithDuration(10*time.Second))
	tm.Send(tea.KeyPressMsg{Code: 'q', Text: "q"})
	final := tm.FinalModel(t, teatest.WithFinalTimeout(5*time.Second)).(*Model)
	if got := final.traf.next; got != 14 {
		t.Fatalf("the program saw %d events, want 14", got)
	}
}

func TestReplayTiming(t *testing.T) {
	recs := []recording.Record{
		{T: 0, Kind: recording.KindConsole, Data: []byte("a")},
		{T: 80 * time.Millisecond, Kind: recording.KindConsole, Data: []byte("b")},
	}
	src := NewReplaySource(recording.Header{}, recs, 1)
	start := time.Now()
	var got []byte
	for b := range src.Events() {
		got = append(got, b.Console...)
	}
	if string(got) != "ab" || time.Since(start) < 70*time.Millisecond {
		t.Fatalf("got %q after %v", got, time.Since(start))
	}

	stopped := NewReplaySource(recording.Header{}, []recording.Record{{T: time.Hour, Kind: recording.KindConsole}}, 1)
	ch := stopped.Events()
	stopped.Stop()
	select {
	case _, ok := <-ch:
		for ok {
			_, ok = <-ch
		}
	case <-time.After(2 * time.Second):
		t.Fatal("Stop did not end the replay")
	}
}

func TestPumpCoalescesAndDrops(t *testing.T) {
	p := NewPump(4, 8)
	// Nobody reads yet: the producer never blocks.
	done := make(chan struct{})
	go func() {
		for i := range 100 {
			p.Event(trace.Event{Seq: uint64(i + 1)})
			p.Console([]byte("0123456789"))
		}
		p.Status(recording.Status{State: recording.StateRunning})
		p.Stats(trace.Snapshot{Uptime: 1})
		p.Stats(trace.Snapshot{Uptime: 2})
		p.AddDropped(5)
		p.Close()
		close(done)
	}()
	select {
	case <-done:
	case <-time.After(2 * time.Second):
		t.Fatal("the producer blocked")
	}
	var evs []trace.Event
	var console []byte
	var last SourceMsg
	var status int
	for b := range p.C() {
		evs = append(evs, b.Events...)
		console = append(console, b.Console...)
		status += len(b.Status)
		last = b
	}
	if len(evs)+int(last.Dropped)-5 != 100 || len(evs) > 4+4 {
		t.Fatalf("%d events delivered, %d dropped", len(evs), last.Dropped)
	}
	if evs[len(evs)-1].Seq != 100 {
		t.Fatalf("the newest event was dropped: last seq %d", evs[len(evs)-1].Seq)
	}
	if uint64(len(console))+last.ConsoleDropped != 1000 {
		t.Fatalf("%d console bytes delivered, %d dropped", len(console), last.ConsoleDropped)
	}
	if status != 1 || last.Stats == nil || last.Stats.Uptime != 2 {
		t.Fatalf("status %d, stats %+v", status, last.Stats)
	}
}

func TestPumpAbort(t *testing.T) {
	p := NewPump(0, 0)
	p.Console([]byte("x"))
	p.Abort()
	deadline := time.After(2 * time.Second)
	for {
		select {
		case _, ok := <-p.C():
			if !ok {
				return
			}
		case <-deadline:
			t.Fatal("Abort did not close the channel")
		}
	}
}

func TestSparkline(t *testing.T) {
	if got := Sparkline([]uint64{0, 1, 2, 4, 8}, 5); got != " ▁▂▄█" {
		t.Errorf("Sparkline = %q", got)
	}
	if got := Sparkline([]uint64{8, 8}, 4); got != "  ██" {
		t.Errorf("short input = %q", got)
	}
	r := newSecondRing(4)
	for _, at := range []time.Duration{0, 500 * time.Millisecond, time.Second, 3 * time.Second, 3 * time.Second} {
		r.add(at)
	}
	if got := r.values(); got[0] != 2 || got[1] != 1 || got[2] != 0 || got[3] != 2 {
		t.Errorf("ring = %v", got)
	}
	r.advance(10 * time.Second)
	for _, v := range r.values() {
		if v != 0 {
			t.Fatalf("ring after a quiet stretch = %v", r.values())
		}
	}
}
