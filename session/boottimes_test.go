package session

import (
	"bytes"
	"strings"
	"testing"
	"time"
)

// TestMilestoneWatch feeds console output split at odd places: only the
// default init's exec milestone line sets the moment, once.
func TestMilestoneWatch(t *testing.T) {
	var w milestoneWatch
	for _, chunk := range []string{"krun-init: milestone mounted t=0.1\r\n", "some output milestone exec\r\nkrun-init: mile", "stone ex"} {
		w.Write([]byte(chunk))
	}
	if !w.execAt().IsZero() {
		t.Fatal("exec seen before its line ended")
	}
	before := time.Now()
	w.Write([]byte("ec t=0.250000\r\n"))
	at := w.execAt()
	if at.Before(before) {
		t.Fatalf("exec moment %v, want after %v", at, before)
	}
	w.Write([]byte("krun-init: milestone exec t=9.000000\n"))
	if !w.execAt().Equal(at) {
		t.Fatal("a second exec line moved the moment")
	}
}

// TestMilestoneWatchBoundsTheLine: a flood without newlines keeps at most
// maxMilestoneLine bytes.
func TestMilestoneWatchBoundsTheLine(t *testing.T) {
	var w milestoneWatch
	w.Write(make([]byte, 1<<20))
	if len(w.line) > maxMilestoneLine {
		t.Fatalf("kept %d bytes", len(w.line))
	}
}

func TestSince(t *testing.T) {
	start := time.Now()
	if since(start, time.Time{}) != 0 || since(start, start.Add(-time.Second)) != 0 || since(start, start.Add(time.Second)) != time.Second {
		t.Fatal("since")
	}
}

// TestMilestoneFilter: milestone lines are dropped whatever the chunking,
// everything else passes, and a prompt without a newline is not held.
func TestMilestoneFilter(t *testing.T) {
	in := "hello\r\nkrun-init: milestone mounted t=1.000000\r\nkrun-init: other\r\nkrun-init: milestone exec t=1.200000\r\n/ # "
	want := "hello\r\nkrun-init: other\r\n/ # "
	for _, chunk := range []int{1, 2, 3, 7, len(in)} {
		var out bytes.Buffer
		f := newMilestoneFilter(&out)
		for i := 0; i < len(in); i += chunk {
			f.Write([]byte(in[i:min(i+chunk, len(in))]))
		}
		if out.String() != want {
			t.Fatalf("chunks of %d: %q, want %q", chunk, out.String(), want)
		}
	}
}

// TestPanicExplainedAndCut: an init that exits is told in a sentence with
// its status; the kernel's report after the panic line stays off the
// output, what came before it passes.
func TestPanicExplainedAndCut(t *testing.T) {
	msg := "Kernel panic - not syncing: Attempted to kill init! exitcode=0x00000300"
	if got := explainPanic(msg); !strings.Contains(got, "the init exited (status 3)") || !strings.Contains(got, msg) {
		t.Fatalf("explainPanic: %q", got)
	}
	if got := explainPanic("Kernel panic - not syncing: VFS: Unable to mount root fs"); !strings.Contains(got, "panicked") {
		t.Fatalf("explainPanic: %q", got)
	}
	// Byte by byte, as a console may deliver it.
	var slow bytes.Buffer
	sp := &panicCut{w: &slow}
	for _, c := range []byte("marker\r\nKernel pa-ss\r\n/ # " + msg + "\r\n" + msg + "\r\nCall Trace:\r\n") {
		sp.Write([]byte{c})
	}
	if slow.String() != "marker\r\nKernel pa-ss\r\n/ # " {
		t.Fatalf("byte by byte: %q", slow.String())
	}
	var out bytes.Buffer
	p := &panicCut{w: &out}
	p.Write([]byte("marker\r\n"))
	chunk := []byte(msg + "\r\nCPU: 0 PID: 1 Comm: init\r\n")
	if n, err := p.Write(chunk); n != len(chunk) || err != nil {
		t.Fatalf("Write took %d of %d bytes (%v): a MultiWriter would stop", n, len(chunk), err)
	}
	p.Write([]byte("Call Trace:\r\n"))
	if out.String() != "marker\r\n" {
		t.Fatalf("output %q", out.String())
	}
}
