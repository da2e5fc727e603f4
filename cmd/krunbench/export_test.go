package main

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/krunbench/krunbench/session/recording"
	"github.com/krunbench/krunbench/virtiofs/trace"
)

func exportFixture(t *testing.T) []byte {
	t.Helper()
	var buf bytes.Buffer
	w, err := recording.NewWriter(&buf, recording.Header{Config: recording.Config{Engine: "qemu", Accel: "tcg"}})
	if err != nil {
		t.Fatal(err)
	}
	ms := time.Millisecond
	w.WriteRecord(recording.Record{T: 0, Kind: recording.KindStatus, Status: &recording.Status{State: recording.StateBooting}})
	for _, ev := range []trace.Event{
		{Seq: 1, Time: 10 * ms, Op: 26, OpName: "INIT", Latency: 5 * time.Microsecond},
		{Seq: 2, Time: 11 * ms, Op: 1, OpName: "LOOKUP", Nodeid: 1, Path: "/", Name: "init.krun", NewNodeid: 2, Synthetic: true, Latency: 7 * time.Microsecond},
		{Seq: 3, Time: 12 * ms, Op: 15, OpName: "READ", Nodeid: 2, Path: "/init.krun", Size: 4096, Bytes: 4096, Synthetic: true, Latency: 20 * time.Microsecond},
		{Seq: 4, Time: 13 * ms, Op: 15, OpName: "READ", Nodeid: 2, Path: "/init.krun", Offset: 4096, Size: 4096, Synthetic: true, EOF: true, Latency: 3 * time.Microsecond},
	} {
		w.WriteRecord(recording.Record{T: ev.Time, Kind: recording.KindEvent, Event: &ev})
	}
	w.WriteRecord(recording.Record{T: 20 * ms, Kind: recording.KindMilestone, Milestone: &recording.Milestone{Name: "mounted", Boot: 400 * ms}})
	w.WriteRecord(recording.Record{T: 21 * ms, Kind: recording.KindConsole, Data: []byte("hi\r\n")})
	w.WriteRecord(recording.Record{T: 30 * ms, Kind: recording.KindMilestone, Milestone: &recording.Milestone{Name: "exit", Boot: 500 * ms, HasCode: true, Code: 3}})
	w.Close()
	return buf.Bytes()
}

func decodeTrace(t *testing.T, b []byte) chromeTrace {
	t.Helper()
	var ct chromeTrace
	if err := json.Unmarshal(b, &ct); err != nil {
		t.Fatalf("not JSON: %v\n%s", err, b)
	}
	return ct
}

func TestExportPerfettoRecording(t *testing.T) {
	var out bytes.Buffer
	if err := exportPerfetto(&out, bytes.NewReader(exportFixture(t)), exportOptions{track: "op", console: true}); err != nil {
		t.Fatal(err)
	}
	ct := decodeTrace(t, out.Bytes())
	var reqs, milestones, consoles int
	threads := map[uint64]string{}
	for _, e := range ct.TraceEvents {
		switch {
		case e.Ph == "X":
			reqs++
			if e.Pid != pidFUSE || e.Tid != uint64(map[string]int{"INIT": 26, "LOOKUP": 1, "READ": 15}[e.Name]) {
				t.Errorf("%s on track %d/%d", e.Name, e.Pid, e.Tid)
			}
			if e.Args["seq"] == 4.0 && (e.Ts != 13000 || *e.Dur != 3 || e.Args["eof"] != true) {
				t.Errorf("EOF read: ts %v dur %v args %v", e.Ts, *e.Dur, e.Args)
			}
		case e.Ph == "i" && strings.HasPrefix(e.Name, "milestone "):
			milestones++
			if e.Name == "milestone exit" && (e.Ts != 30000 || e.Args["code"] != 3.0 || e.Scope != "g") {
				t.Errorf("exit milestone = %+v", e)
			}
		case e.Ph == "i" && e.Name == "console":
			consoles++
		case e.Ph == "M" && e.Name == "thread_name" && e.Pid == pidFUSE:
			threads[e.Tid] = e.Args["name"].(string)
		}
	}
	if reqs != 4 || milestones != 2 || consoles != 1 {
		t.Fatalf("%d requests, %d milestones, %d console events", reqs, milestones, consoles)
	}
	if threads[15] != "READ" || threads[26] != "INIT" || len(threads) != 3 {
		t.Fatalf("tracks = %v", threads)
	}
	if ct.OtherData["accel"] != "tcg" {
		t.Errorf("otherData = %v", ct.OtherData)
	}
}

func TestExportCommandTraceByNodeid(t *testing.T) {
	dir := t.TempDir()
	var tr bytes.Buffer
	fw := trace.NewFileWriter(&tr)
	fw.WriteEvent(&trace.Event{Seq: 1, Time: time.Millisecond, Op: 1, Nodeid: 1, Path: "/", Name: "bin", NewNodeid: 5})
	fw.WriteEvent(&trace.Event{Seq: 2, Time: 2 * time.Millisecond, Op: 3, Nodeid: 5, Path: "/bin"})
	fw.Close()
	in, out := filepath.Join(dir, "t.jsonl"), filepath.Join(dir, "t.json")
	os.WriteFile(in, tr.Bytes(), 0o644)

	cmd := newTraceExportCmd()
	cmd.SetArgs([]string{"--format", "perfetto", "--track", "nodeid", in, "-o", out})
	if err := cmd.Execute(); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	ct := decodeTrace(t, b)
	tracks := map[uint64]string{}
	var reqs int
	for _, e := range ct.TraceEvents {
		if e.Ph == "M" && e.Name == "thread_name" && e.Pid == pidFUSE {
			tracks[e.Tid] = e.Args["name"].(string)
		}
		if e.Ph == "X" {
			reqs++
		}
	}
	if reqs != 2 || tracks[5] != "nodeid 5 /bin" || tracks[1] != "nodeid 1 /" {
		t.Fatalf("%d requests, tracks %v", reqs, tracks)
	}

	bad := newTraceExportCmd()
	bad.SetArgs([]string{"--format", "svg", in})
	bad.SetOut(&bytes.Buffer{})
	bad.SetErr(&bytes.Buffer{})
	if err := bad.Execute(); err == nil {
		t.Fatal("--format svg was accepted")
	}
}

func TestReplayCommandRejectsBadInput(t *testing.T) {
	for _, args := range [][]string{
		{"--theme", "neon", "../../tui/testdata/boot.rec.jsonl"},
		{"--speed", "-1", "../../tui/testdata/boot.rec.jsonl"},
		{"no-such-file.jsonl"},
	} {
		cmd := newReplayCmd()
		cmd.SetArgs(args)
		cmd.SetOut(&bytes.Buffer{})
		cmd.SetErr(&bytes.Buffer{})
		if err := cmd.Execute(); err == nil {
			t.Errorf("%v: accepted", args)
		}
	}
}

// TestInjectedReplyMarkedEverywhere follows a reply a fault rule made
// through every format: the trace file (written by the encoder, read
// back), its readable line, a recording, and the Perfetto export.
func TestInjectedReplyMarkedEverywhere(t *testing.T) {
	ev := trace.Event{Seq: 1, Time: time.Millisecond, Op: 14, OpName: "OPEN", Nodeid: 7, Path: "/etc/passwd", Errno: 2, Injected: "ENOENT (rule 1)"}
	var tr bytes.Buffer
	fw := trace.NewFileWriter(&tr)
	fw.WriteEvent(&ev)
	fw.Close()
	evs, err := trace.ReadFile(bytes.NewReader(tr.Bytes()))
	if err != nil || len(evs) != 1 || evs[0].Injected != ev.Injected {
		t.Fatalf("trace file round trip: %+v %v\n%s", evs, err, tr.Bytes())
	}
	if line := trace.Line(&evs[0]); !strings.Contains(line, "INJECTED ENOENT (rule 1)") {
		t.Errorf("readable line lacks the mark: %s", line)
	}

	var rec bytes.Buffer
	w, err := recording.NewWriter(&rec, recording.Header{})
	if err != nil {
		t.Fatal(err)
	}
	w.WriteRecord(recording.Record{T: ev.Time, Kind: recording.KindEvent, Event: &ev})
	w.Close()
	var out bytes.Buffer
	if err := exportPerfetto(&out, bytes.NewReader(rec.Bytes()), exportOptions{track: "op"}); err != nil {
		t.Fatal(err)
	}
	found := false
	for _, e := range decodeTrace(t, out.Bytes()).TraceEvents {
		if e.Ph == "X" && e.Name == "OPEN" {
			found = e.Args["injected"] == "ENOENT (rule 1)"
		}
	}
	if !found {
		t.Errorf("the Perfetto export does not mark the injected reply:\n%s", out.String())
	}
}
