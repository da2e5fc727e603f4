package tui

import (
	"strings"
	"testing"
	"time"
)

// TestReplayRealRecording replays a session recorded from a real guest
// (`krunbench --record` on the QEMU engine: the default init, an
// interactive busybox shell, `echo hello-from-guest; ls /`, `exit 7`).
func TestReplayRealRecording(t *testing.T) {
	src, err := OpenReplay("testdata/qemu-boot.rec.jsonl", 0)
	if err != nil {
		t.Fatal(err)
	}
	m := New(Options{Source: src, Title: "replay"})
	defer m.Close()
	resize(m, 160, 50)
	run(t, m, m.Init(), 20*time.Second)
	if !m.ended {
		t.Fatal("the replay did not end")
	}
	if text := m.con.Text(); !strings.Contains(text, "\nhello-from-guest") || !strings.Contains(text, "milestone exit") {
		t.Fatalf("console lacks the guest's output:\n%s", text)
	}
	m.traf.SetFilter(Filter{Path: "init.krun", Ops: []string{"READ"}})
	var reads, eof int
	for _, l := range trafficLines(m) {
		if strings.Contains(l, "READ") && strings.Contains(l, "/init.krun") {
			reads++
			if strings.Contains(l, EOFMarker) {
				eof++
			}
		}
	}
	if reads == 0 || eof != 1 {
		t.Fatalf("traffic pane: %d init.krun reads, %d EOF-highlighted (want 1)", reads, eof)
	}
	s := screen(m)
	for _, want := range []string{"exited code 7", "qemu", "tcg", "LOOKUP init.krun", "EOF read", "exit (code 7)", "/init.krun"} {
		if !strings.Contains(s, want) {
			t.Errorf("view lacks %q:\n%s", want, s)
		}
	}
}
