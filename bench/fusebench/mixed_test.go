package main

import (
	"testing"
	"time"
)

// The calls under the writer split at the writer's last write(): one
// that starts before it is in the write() phase, the rest in the fsync
// phase; the row's own p99 still covers both.
func TestMixedLatencySplitsThePhases(t *testing.T) {
	idle := []time.Duration{100 * time.Microsecond}
	var busy []probe
	for i := range 200 {
		took := 100 * time.Microsecond
		if i < 100 {
			took = time.Duration(1000+i) * time.Microsecond
		}
		busy = append(busy, probe{at: time.Duration(i) * time.Millisecond, took: took, runq: took / 4})
	}
	l := mixedLatency(idle, busy, 100*time.Millisecond, true)
	if l.WritePhaseCalls != 100 || l.FsyncPhaseCalls != 100 || l.BusyCalls != 200 {
		t.Fatalf("calls: write %d fsync %d all %d, want 100, 100, 200", l.WritePhaseCalls, l.FsyncPhaseCalls, l.BusyCalls)
	}
	if l.WritePhaseP99Us != 1098 || l.FsyncPhaseP99Us != 100 || l.BusyP99Us != 1097 || l.WritePhaseSeconds != 0.1 {
		t.Errorf("p99s: write %v fsync %v all %v, write() %v s; want 1098, 100, 1097, 0.1", l.WritePhaseP99Us, l.FsyncPhaseP99Us, l.BusyP99Us, l.WritePhaseSeconds)
	}
	if l.SlowRunqPct == nil || *l.SlowRunqPct != 25 {
		t.Errorf("slow calls' runqueue share %v, want 25%%", l.SlowRunqPct)
	}
	if l := mixedLatency(idle, busy, 0, false); l.WritePhaseCalls != 0 || l.WritePhaseP99Us != 0 || l.FsyncPhaseP99Us != 1097 || l.SlowRunqPct != nil {
		t.Errorf("no write() phase, no runq: %+v", l)
	}
}

func TestParseSchedstat(t *testing.T) {
	if d, err := parseSchedstat("123 4567 8\n"); err != nil || d != 4567 {
		t.Errorf("got %v, %v; want 4567 ns", d, err)
	}
	for _, bad := range []string{"", "123", "1 x 2", "1 -5 2"} {
		if _, err := parseSchedstat(bad); err == nil {
			t.Errorf("%q: no error", bad)
		}
	}
}

// The runqueue reader reads this thread's real schedstat, and the
// counter never runs backwards.
func TestRunqReaderReadsThisThread(t *testing.T) {
	if err := mixedUsesRunq(); err != nil {
		t.Skipf("SKIP: %v", err)
	}
	r, err := openRunq()
	if err != nil {
		t.Fatal(err)
	}
	defer r.close()
	a, err := r.wait()
	if err != nil {
		t.Fatal(err)
	}
	b, err := r.wait()
	if err != nil || b < a {
		t.Errorf("second read %v, %v after %v", b, err, a)
	}
}
