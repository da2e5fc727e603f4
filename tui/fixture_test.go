package tui

import (
	"bytes"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/krunbench/krunbench/session/recording"
	"github.com/krunbench/krunbench/virtiofs/fuse"
	"github.com/krunbench/krunbench/virtiofs/trace"
)

var update = flag.Bool("update-fixture", false, "rewrite testdata/boot.rec.jsonl")

const fixturePath = "testdata/boot.rec.jsonl"

// fixtureText is printed by the fixture's guest.
const fixtureText = "hello from the guest"

// writeFixture generates a small synthetic recording of a boot: the FUSE
// requests that load /init.krun (three reads, the last at EOF), a failed
// lookup, the init's milestones, console output with a DSR query in it,
// and the exit.
func writeFixture(t *testing.T) []byte {
	t.Helper()
	start := time.Date(2026, 11, 2, 10, 0, 0, 0, time.UTC)
	var buf bytes.Buffer
	w, err := recording.NewWriter(&buf, recording.Header{
		Created: start,
		Config:  recording.Config{Engine: "qemu", Accel: "kvm", CPUs: 2, MemMiB: 512, RootFS: "/srv/alpine", Init: "kruninit"},
	})
	if err != nil {
		t.Fatal(err)
	}
	ms := func(n int) time.Duration { return time.Duration(n) * time.Millisecond }
	var seq uint64
	ev := func(at int, e trace.Event) {
		seq++
		e.Seq, e.Time, e.OpName = seq, ms(at), fuse.OpName(e.Op)
		if e.Latency == 0 {
			e.Latency = 12 * time.Microsecond
		}
		if err := w.WriteRecord(recording.Record{T: ms(at), Kind: recording.KindEvent, Event: &e}); err != nil {
			t.Fatal(err)
		}
	}
	rec := func(at int, r recording.Record) {
		r.T = ms(at)
		if err := w.WriteRecord(r); err != nil {
			t.Fatal(err)
		}
	}
	console := func(at int, s string) { rec(at, recording.Record{Kind: recording.KindConsole, Data: []byte(s)}) }
	milestone := func(at int, name string, boot int, code *int) {
		m := recording.Milestone{Name: name, Boot: ms(boot)}
		if code != nil {
			m.Code, m.HasCode = *code, true
		}
		rec(at, recording.Record{Kind: recording.KindMilestone, Milestone: &m})
		line := fmt.Sprintf("krun-init: milestone %s t=%d.%06d", m.Name, boot/1000, boot%1000*1000)
		if m.HasCode {
			line += fmt.Sprintf(" code=%d", m.Code)
		}
		console(at, line+"\r\n")
	}

	rec(0, recording.Record{Kind: recording.KindStatus, Status: &recording.Status{State: recording.StateBooting}})
	console(5, "[    0.000000] Linux version 6.12.0-krunbench\r\n")
	ev(100, trace.Event{Op: fuse.OpInit, Unique: 1})
	rec(101, recording.Record{Kind: recording.KindStatus, Status: &recording.Status{State: recording.StateRunning}})
	ev(110, trace.Event{Op: fuse.OpLookup, Nodeid: 1, Path: "/", Name: "init.krun", NewNodeid: 2, Synthetic: true})
	ev(111, trace.Event{Op: fuse.OpGetattr, Nodeid: 2, Path: "/init.krun", Synthetic: true})
	ev(112, trace.Event{Op: fuse.OpOpen, Nodeid: 2, Path: "/init.krun", Fh: 1, Synthetic: true})
	ev(113, trace.Event{Op: fuse.OpRead, Nodeid: 2, Path: "/init.krun", Fh: 1, Size: 4096, Bytes: 4096, Synthetic: true})
	ev(114, trace.Event{Op: fuse.OpRead, Nodeid: 2, Path: "/init.krun", Fh: 1, Offset: 4096, Size: 4096, Bytes: 1200, Synthetic: true})
	ev(115, trace.Event{Op: fuse.OpRead, Nodeid: 2, Path: "/init.krun", Fh: 1, Offset: 5296, Size: 4096, Synthetic: true, EOF: true})
	ev(116, trace.Event{Op: fuse.OpRelease, Nodeid: 2, Path: "/init.krun", Fh: 1, Synthetic: true})
	milestone(150, "mounted", 412, nil)
	ev(160, trace.Event{Op: fuse.OpLookup, Nodeid: 1, Path: "/", Name: "etc", NewNodeid: 3})
	ev(161, trace.Event{Op: fuse.OpLookup, Nodeid: 3, Path: "/etc", Name: "krun.conf", Errno: 2})
	milestone(170, "config", 430, nil)
	console(180, "\x1b[6n")
	milestone(190, "exec", 440, nil)
	ev(200, trace.Event{Op: fuse.OpLookup, Nodeid: 1, Path: "/", Name: "bin", NewNodeid: 4})
	ev(201, trace.Event{Op: fuse.OpLookup, Nodeid: 4, Path: "/bin", Name: "sh", NewNodeid: 5})
	ev(202, trace.Event{Op: fuse.OpOpen, Nodeid: 5, Path: "/bin/sh", Fh: 2})
	ev(203, trace.Event{Op: fuse.OpRead, Nodeid: 5, Path: "/bin/sh", Fh: 2, Size: 65536, Bytes: 65536})
	console(250, "\x1b[1;32m"+fixtureText+"\x1b[0m\r\n")
	code := 0
	milestone(300, "exit", 520, &code)
	rec(310, recording.Record{Kind: recording.KindStatus, Status: &recording.Status{State: recording.StateExited}})
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// TestFixtureUpToDate keeps testdata/boot.rec.jsonl in step with
// writeFixture; run with -update-fixture to rewrite it.
func TestFixtureUpToDate(t *testing.T) {
	want := writeFixture(t)
	if *update {
		if err := os.MkdirAll(filepath.Dir(fixturePath), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(fixturePath, want, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	got, err := os.ReadFile(fixturePath)
	if err != nil {
		t.Fatalf("%v (run go test ./tui -run TestFixtureUpToDate -update-fixture)", err)
	}
	if !bytes.Equal(got, want) {
		t.Fatalf("%s is stale: run go test ./tui -run TestFixtureUpToDate -update-fixture", fixturePath)
	}
}
