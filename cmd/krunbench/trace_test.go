package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/krunbench/krunbench/session/recording"
	"github.com/krunbench/krunbench/virtiofs/fuse"
	"github.com/krunbench/krunbench/virtiofs/trace"
)

// TestTraceShowAndExportOnOddInput: trace show prints a recording's
// requests by name; a file that is neither a trace nor a recording is an
// error, not lines of OP_0; a failed export leaves no output file and an
// earlier one intact.
func TestTraceShowAndExportOnOddInput(t *testing.T) {
	dir := t.TempDir()
	rec := filepath.Join(dir, "session.rec")
	f, err := os.Create(rec)
	if err != nil {
		t.Fatal(err)
	}
	w, err := recording.NewWriter(f, recording.Header{})
	if err != nil {
		t.Fatal(err)
	}
	w.Console([]byte("hello\r\n"))
	w.Event(trace.Event{Seq: 1, Op: fuse.OpLookup, OpName: "LOOKUP", Nodeid: 1, Name: "init.krun", Path: "/init.krun"})
	w.Close()
	f.Close()
	garbage := filepath.Join(dir, "garbage.jsonl")
	if err := os.WriteFile(garbage, []byte("{\"a\":1}\n{\"b\":2}\n"), 0o644); err != nil {
		t.Fatal(err)
	}

	out, err := exec.Command(krunbenchBin(t), "trace", "show", rec).CombinedOutput()
	if err != nil || !strings.Contains(string(out), "LOOKUP") || strings.Contains(string(out), "OP_0") {
		t.Fatalf("trace show of a recording: %v\n%s", err, out)
	}
	out, err = exec.Command(krunbenchBin(t), "trace", "show", garbage).CombinedOutput()
	if err == nil || strings.Contains(string(out), "OP_0") || strings.Count(strings.TrimSpace(string(out)), "\n") != 0 {
		t.Fatalf("trace show of a non-trace: %v, want one line of error:\n%s", err, out)
	}

	target := filepath.Join(dir, "out.json")
	out, err = exec.Command(krunbenchBin(t), "trace", "export", "--format", "perfetto", filepath.Join(dir, "missing"), "-o", target).CombinedOutput()
	if err == nil {
		t.Fatalf("export of a missing file succeeded:\n%s", out)
	}
	bad := filepath.Join(dir, "bad.rec")
	if err := os.WriteFile(bad, []byte("{\"version\":1,\"created\":\"2026-01-01T00:00:00Z\"}\n{broken\n{\"t\":1,\"kind\":\"console\",\"text\":\"x\"}\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if out, err = exec.Command(krunbenchBin(t), "trace", "export", bad, "-o", target).CombinedOutput(); err == nil {
		t.Fatalf("export of a broken recording succeeded:\n%s", out)
	}
	if _, err := os.Stat(target); !os.IsNotExist(err) {
		t.Fatalf("a failed export left %s: %v", target, err)
	}
	if err := os.WriteFile(target, []byte("earlier"), 0o644); err != nil {
		t.Fatal(err)
	}
	exec.Command(krunbenchBin(t), "trace", "export", bad, "-o", target).Run()
	if b, _ := os.ReadFile(target); string(b) != "earlier" {
		t.Fatalf("a failed export replaced the earlier output: %q", b)
	}
	if entries, _ := os.ReadDir(dir); len(entries) != 4 {
		t.Fatalf("temporary files left: %v", entries)
	}
	if out, err = exec.Command(krunbenchBin(t), "trace", "export", rec, "-o", target).CombinedOutput(); err != nil {
		t.Fatalf("export: %v\n%s", err, out)
	}
	if b, _ := os.ReadFile(target); !strings.Contains(string(b), "traceEvents") {
		t.Fatalf("export output: %.200s", b)
	}
}
