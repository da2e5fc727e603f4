package trace

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"reflect"
	"strings"
	"syscall"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/krunbench/krunbench/virtiofs/fuse"
)

func fullEvent() Event {
	return Event{
		Seq: 7, Time: 4512 * time.Microsecond, Wall: time.Date(2025, 3, 1, 12, 0, 0, 123456789, time.UTC),
		Op: fuse.OpRename, OpName: "RENAME", Unique: 99, Nodeid: 1, Path: "/", Name: "a b\"c",
		NewName: "d\n", Offset: 1 << 40, Size: 4096, Flags: 0x8001, Mode: 0o100644, Fh: 12,
		Errno: int(syscall.EXDEV), Bytes: 17, Latency: 12 * time.Microsecond, Synthetic: true, EOF: true,
		NewNodeid: 8, Dropped: "short", Uid: 1000, Gid: 100, Pid: 4242,
	}
}

func TestJSONRoundTrip(t *testing.T) {
	for _, ev := range []Event{fullEvent(), {Seq: 1, Op: fuse.OpInit, OpName: "INIT"}} {
		var buf bytes.Buffer
		fw := NewFileWriter(&buf)
		if err := fw.WriteEvent(&ev); err != nil {
			t.Fatal(err)
		}
		if err := fw.Close(); err != nil {
			t.Fatal(err)
		}
		if n := strings.Count(buf.String(), "\n"); n != 1 {
			t.Fatalf("%d lines for one event: %q", n, buf.String())
		}
		got, err := ReadFile(&buf)
		if err != nil || len(got) != 1 {
			t.Fatalf("ReadFile = %d events, %v", len(got), err)
		}
		if !got[0].Wall.Equal(ev.Wall) {
			t.Fatalf("wall %v, want %v", got[0].Wall, ev.Wall)
		}
		got[0].Wall = ev.Wall
		if !reflect.DeepEqual(got[0], ev) {
			t.Fatalf("round trip\n got %+v\nwant %+v", got[0], ev)
		}
	}
}

func TestJSONKeys(t *testing.T) {
	b, err := json.Marshal(fullEvent())
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatal(err)
	}
	want := []string{"seq", "t", "wall", "op", "opname", "unique", "nodeid", "path", "name", "newname",
		"off", "size", "flags", "mode", "fh", "errno", "bytes", "lat", "syn", "eof", "newnodeid",
		"drop", "uid", "gid", "pid"}
	for _, k := range want {
		if _, ok := m[k]; !ok {
			t.Errorf("key %q missing from %s", k, b)
		}
	}
	if len(m) != len(want) {
		t.Errorf("%d keys, want %d: %s", len(m), len(want), b)
	}
	b, _ = json.Marshal(Event{Seq: 3, Op: fuse.OpStatfs, OpName: "STATFS"})
	if got := string(b); got != `{"seq":3,"t":0,"op":17,"opname":"STATFS"}` {
		t.Fatalf("minimal event encodes as %s", got)
	}
}

func TestReadFileTruncatedLastLine(t *testing.T) {
	var buf bytes.Buffer
	fw := NewFileWriter(&buf)
	for i := range 3 {
		ev := fullEvent()
		ev.Seq = uint64(i + 1)
		if err := fw.WriteEvent(&ev); err != nil {
			t.Fatal(err)
		}
	}
	fw.Close()
	data := buf.Bytes()
	lastStart := bytes.LastIndexByte(data[:len(data)-1], '\n') + 1
	cut := data[:lastStart+(len(data)-lastStart)/2]

	got, err := ReadFile(bytes.NewReader(cut))
	if err != nil {
		t.Fatalf("ReadFile on a truncated trace: %v", err)
	}
	if len(got) != 2 || got[0].Seq != 1 || got[1].Seq != 2 {
		t.Fatalf("got %d events", len(got))
	}
	rd := NewReader(bytes.NewReader(cut))
	for {
		if _, err := rd.Next(); err != nil {
			if !errors.Is(err, io.EOF) {
				t.Fatal(err)
			}
			break
		}
	}
	if !rd.Truncated() {
		t.Fatal("Truncated() = false for a cut line")
	}

	noNewline := bytes.TrimSuffix(data, []byte("\n"))
	got, err = ReadFile(bytes.NewReader(noNewline))
	if err != nil || len(got) != 3 {
		t.Fatalf("complete last line without newline: %d events, %v", len(got), err)
	}

	bad := append([]byte("\n"), data[:lastStart]...)
	bad = append(bad, []byte("{not json\n")...)
	bad = append(bad, data[lastStart:]...)
	_, err = ReadFile(bytes.NewReader(bad))
	if err == nil || !strings.Contains(err.Error(), "line 4") {
		t.Fatalf("malformed middle line: err = %v", err)
	}
}

func TestFormat(t *testing.T) {
	var buf bytes.Buffer
	eof := Event{Seq: 31, Time: 4512 * time.Microsecond, Op: fuse.OpRead, OpName: "READ", Nodeid: 2,
		Path: "/init.krun", Offset: 4096, Size: 4096, Synthetic: true, EOF: true, Latency: 3 * time.Microsecond}
	if err := Format(&buf, eof); err != nil {
		t.Fatal(err)
	}
	line := buf.String()
	for _, want := range []string{"#31", "+0.004512s", "READ", "nodeid=2 /init.krun", "off=4096 size=4096",
		"-> 0 bytes", "3µs", "[init EOF]"} {
		if !strings.Contains(line, want) {
			t.Errorf("Format = %q, missing %q", line, want)
		}
	}
	if strings.Count(line, "\n") != 1 || !strings.HasSuffix(line, "\n") {
		t.Errorf("Format is not one line: %q", line)
	}

	lookup := Line(&Event{Seq: 12, Op: fuse.OpLookup, Nodeid: 1, Path: "/", Name: "init.krun",
		NewNodeid: 2, Latency: 12 * time.Microsecond, Synthetic: true})
	for _, want := range []string{"LOOKUP", "nodeid=1 /", "name=init.krun", "-> nodeid=2  ok", "12µs", "[init]"} {
		if !strings.Contains(lookup, want) {
			t.Errorf("Line = %q, missing %q", lookup, want)
		}
	}
	miss := Line(&Event{Op: fuse.OpLookup, OpName: "LOOKUP", Nodeid: 1, Name: "nope", Errno: int(syscall.ENOENT)})
	if !strings.Contains(miss, "-> ENOENT") || strings.Contains(miss, " ok") {
		t.Errorf("failed lookup = %q", miss)
	}
	drop := Line(&Event{Op: 0, Dropped: "short request"})
	if !strings.Contains(drop, "DROPPED: short request") {
		t.Errorf("dropped = %q", drop)
	}
	cfg := Line(&Event{Op: fuse.OpRead, Nodeid: 3, Path: "/.krun_config.json", Synthetic: true, Bytes: 10})
	if !strings.Contains(cfg, "[synthetic]") || !strings.Contains(cfg, "-> 10 bytes") {
		t.Errorf("config read = %q", cfg)
	}
	if got := ErrnoName(9999); got != "errno 9999" {
		t.Errorf("ErrnoName(9999) = %q", got)
	}
	for d, want := range map[time.Duration]string{
		850: "850ns", 12 * time.Microsecond: "12µs", 3250 * time.Microsecond: "3.25ms", 1200 * time.Millisecond: "1.200s",
	} {
		if got := FormatLatency(d); got != want {
			t.Errorf("FormatLatency(%v) = %q, want %q", d, got, want)
		}
	}
}

func TestSummary(t *testing.T) {
	evs := []Event{
		{Seq: 1, Op: fuse.OpLookup, OpName: "LOOKUP", Nodeid: 1, Name: "init.krun", NewNodeid: 2, Synthetic: true, Latency: 5 * time.Microsecond},
		{Seq: 2, Time: time.Millisecond, Op: fuse.OpRead, OpName: "READ", Nodeid: 2, Synthetic: true, Size: 4096, Bytes: 4096},
		{Seq: 3, Time: 2 * time.Millisecond, Op: fuse.OpRead, OpName: "READ", Nodeid: 2, Synthetic: true, Offset: 4096, Size: 4096, EOF: true},
		{Seq: 4, Time: 3 * time.Millisecond, Op: fuse.OpRead, OpName: "READ", Nodeid: 5, Path: "/a", Size: 10, Bytes: 10},
		{Seq: 5, Time: 4 * time.Millisecond, Op: fuse.OpLookup, OpName: "LOOKUP", Nodeid: 1, Name: "x", Errno: 2},
		{Seq: 6, Time: 5 * time.Millisecond, Op: fuse.OpRead, Dropped: "lying length"},
	}
	var buf bytes.Buffer
	if err := Summary(&buf, evs); err != nil {
		t.Fatal(err)
	}
	out := buf.String()
	for _, want := range []string{"events: 6", "span: 5.00ms", "errors: 2", "malformed: 1",
		"init.krun reads: 2 (1 at EOF), 4096 bytes", "[init EOF]"} {
		if !strings.Contains(out, want) {
			t.Errorf("summary missing %q:\n%s", want, out)
		}
	}
	s := Summarize(evs)
	if r := s.Op(fuse.OpRead); r.Count != 4 || r.Bytes != 4106 || r.Errors != 1 {
		t.Errorf("READ summary %+v", r)
	}
	if l := s.Op(fuse.OpLookup); l.Count != 2 || l.Errors != 1 {
		t.Errorf("LOOKUP summary %+v", l)
	}
	if !strings.Contains(out, "LOOKUP") || !strings.Contains(out, "TOTAL") {
		t.Errorf("summary table:\n%s", out)
	}
}

func TestRecorder(t *testing.T) {
	fs := newFakeFS()
	tap := NewTap(Options{Resolver: fs})
	var buf bytes.Buffer
	rec := tap.Record(&buf, time.Millisecond)
	for i := range 500 {
		s := served(fuse.OpRead, 2)
		s.Offset = uint64(i) * 4096
		tap.Observe(s)
	}
	if err := rec.Close(); err != nil {
		t.Fatal(err)
	}
	evs, err := ReadFile(&buf)
	if err != nil {
		t.Fatal(err)
	}
	if uint64(len(evs))+rec.Dropped() != 500 || rec.Written() != uint64(len(evs)) {
		t.Fatalf("recorded %d written %d dropped %d of 500", len(evs), rec.Written(), rec.Dropped())
	}
	for i, ev := range evs {
		if ev.Path != "/init.krun" || (i > 0 && ev.Seq <= evs[i-1].Seq) {
			t.Fatalf("event %d: %+v", i, ev)
		}
	}
	if tap.Stats().Subscribers != 0 {
		t.Fatal("recorder still subscribed after Close")
	}
}

type failWriter struct{}

func (failWriter) Write([]byte) (int, error) { return 0, errors.New("disk full") }

func TestRecorderWriteError(t *testing.T) {
	tap := NewTap(Options{})
	rec := tap.Record(failWriter{}, time.Millisecond)
	tap.Observe(served(fuse.OpGetattr, 1))
	deadline := time.Now().Add(5 * time.Second)
	for tap.Stats().Subscribers != 0 && time.Now().Before(deadline) {
		time.Sleep(time.Millisecond)
	}
	if err := rec.Close(); err == nil || !strings.Contains(err.Error(), "disk full") {
		t.Fatalf("Close = %v, want the write error", err)
	}
}

// TestAppendJSONMatchesEncodingJSON holds the hand-written encoder to
// encoding/json's output, byte for byte, and decodes what it writes.
func TestAppendJSONMatchesEncodingJSON(t *testing.T) {
	names := []string{"", "plain", "a b\"c", "d\n", "back\\slash", "tab\there", "\x00\x1f", "<html>&amp;",
		"héllo", "日本", "bad\xffutf8", "\u2028\u2029", "emoji 😀", strings.Repeat("x", 300)}
	walls := []time.Time{{}, time.Date(2025, 3, 1, 12, 0, 0, 123456789, time.UTC), time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC),
		time.Date(2024, 7, 8, 9, 10, 11, 100, time.FixedZone("X", 5*3600+1800)), time.Now().Round(0)}
	events := []Event{fullEvent(), {}, {Seq: 1, Op: fuse.OpInit, OpName: "INIT"}}
	for i, n := range names {
		ev := fullEvent()
		ev.Path, ev.Name, ev.NewName, ev.Dropped, ev.OpName = n, n, n, n, n
		ev.Wall = walls[i%len(walls)]
		ev.Errno, ev.Bytes, ev.Latency, ev.Time = -i, i*1000, time.Duration(i)*time.Hour, -time.Duration(i)
		ev.Synthetic, ev.EOF = i%2 == 0, i%3 == 0
		ev.Offset, ev.Fh, ev.Seq = ^uint64(0)-uint64(i), uint64(i), uint64(i)<<40
		events = append(events, ev)
	}
	for i := range events {
		ev := &events[i]
		var want bytes.Buffer
		enc := json.NewEncoder(&want)
		enc.SetEscapeHTML(false)
		if err := enc.Encode(ev); err != nil {
			t.Fatal(err)
		}
		got := appendJSON(nil, ev)
		if string(got)+"\n" != want.String() {
			t.Fatalf("event %d\n got %s\nwant %s", i, got, want.String())
		}
		var back Event
		if err := json.Unmarshal(got, &back); err != nil {
			t.Fatalf("event %d: %v", i, err)
		}
		if !back.Wall.Equal(ev.Wall) {
			t.Fatalf("event %d wall %v, want %v", i, back.Wall, ev.Wall)
		}
		back.Wall = ev.Wall
		if !reflect.DeepEqual(back, *ev) && utf8.ValidString(ev.Name) {
			t.Fatalf("event %d round trip\n got %+v\nwant %+v", i, back, *ev)
		}
	}
}

func BenchmarkAppendJSON(b *testing.B) {
	ev := fullEvent()
	ev.Name, ev.NewName, ev.Dropped = "f00001", "", ""
	buf := make([]byte, 0, 512)
	var e encoder
	b.ReportAllocs()
	for b.Loop() {
		buf = e.appendJSON(buf[:0], &ev)
	}
}
