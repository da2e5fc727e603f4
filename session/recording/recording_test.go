package recording

import (
	"bytes"
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/krunbench/krunbench/virtiofs/trace"
)

func fakeClock(start time.Time, step time.Duration) func() time.Time {
	var mu sync.Mutex
	t := start
	return func() time.Time {
		mu.Lock()
		defer mu.Unlock()
		now := t
		t = t.Add(step)
		return now
	}
}

func TestRoundTrip(t *testing.T) {
	start := time.Date(2026, 11, 2, 10, 0, 0, 0, time.UTC)
	var buf bytes.Buffer
	h := Header{Config: Config{Engine: "qemu", Accel: "kvm", CPUs: 2, MemMiB: 512, RootFS: "/srv/root", Init: "kruninit"}}
	w, err := NewWriter(&buf, h, WithClock(fakeClock(start, time.Millisecond)))
	if err != nil {
		t.Fatal(err)
	}
	ev := trace.Event{Seq: 7, Op: 15, OpName: "READ", Nodeid: 2, Path: "/init.krun", Bytes: 0, Synthetic: true, EOF: true}
	steps := []error{
		w.Status(Status{State: StateBooting}),
		w.Console([]byte("hello\r\n")),
		w.Console([]byte{0xff, 0x1b, '[', '6', 'n'}),
		w.Input([]byte("ls\r")),
		w.Event(ev),
		w.Milestone(Milestone{Name: "exit", Boot: 1500 * time.Millisecond, Code: 3, HasCode: true}),
		w.Resize(120, 40),
		w.Status(Status{State: StateExited, Code: 3}),
	}
	for i, err := range steps {
		if err != nil {
			t.Fatalf("step %d: %v", i, err)
		}
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(buf.String(), `"b64":"/xtbNm4="`) || !strings.Contains(buf.String(), `"text":"hello\r\n"`) {
		t.Fatalf("console encodings not as expected:\n%s", buf.String())
	}

	hdr, recs, err := ReadAll(bytes.NewReader(buf.Bytes()))
	if err != nil {
		t.Fatal(err)
	}
	if hdr.Version != Version || !hdr.Created.Equal(start) || hdr.Config != h.Config {
		t.Fatalf("header = %+v", hdr)
	}
	if len(recs) != len(steps) {
		t.Fatalf("%d records, want %d", len(recs), len(steps))
	}
	for i, r := range recs {
		if want := time.Duration(i+1) * time.Millisecond; r.T != want {
			t.Errorf("record %d: T = %v, want %v", i, r.T, want)
		}
	}
	if got := string(recs[1].Data); got != "hello\r\n" {
		t.Errorf("console text = %q", got)
	}
	if !bytes.Equal(recs[2].Data, []byte{0xff, 0x1b, '[', '6', 'n'}) {
		t.Errorf("binary console = %q", recs[2].Data)
	}
	if recs[3].Kind != KindInput || string(recs[3].Data) != "ls\r" {
		t.Errorf("input = %+v", recs[3])
	}
	if got := *recs[4].Event; got.Seq != 7 || !got.EOF || !got.Synthetic || got.Path != "/init.krun" {
		t.Errorf("event = %+v", got)
	}
	if m := recs[5].Milestone; m.Name != "exit" || m.Boot != 1500*time.Millisecond || !m.HasCode || m.Code != 3 || m.At != recs[5].T {
		t.Errorf("milestone = %+v", m)
	}
	if r := recs[6].Resize; r.Cols != 120 || r.Rows != 40 {
		t.Errorf("resize = %+v", r)
	}
	if s := recs[7].Status; s.State != StateExited || s.Code != 3 || s.String() != "exited 3" {
		t.Errorf("status = %+v", s)
	}
}

func TestTruncatedLastLine(t *testing.T) {
	var buf bytes.Buffer
	w, _ := NewWriter(&buf, Header{})
	w.Console([]byte("one"))
	w.Console([]byte("two"))
	w.Close()
	full := buf.String()
	cut := full[:len(full)-7] // inside the last record
	rd, err := NewReader(strings.NewReader(cut))
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for {
		rec, err := rd.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, string(rec.Data))
	}
	if len(got) != 1 || got[0] != "one" || !rd.Truncated() {
		t.Fatalf("got %q truncated=%v", got, rd.Truncated())
	}

	// A malformed line that is not the last one is an error.
	lines := strings.SplitAfter(full, "\n")
	bad := lines[0] + "{not json\n" + lines[1]
	if _, _, err := ReadAll(strings.NewReader(bad)); err == nil || !strings.Contains(err.Error(), "line 2") {
		t.Fatalf("malformed middle line: err = %v", err)
	}
}

func TestHeaderRequired(t *testing.T) {
	for _, in := range []string{"", `{"seq":1,"t":0,"op":26}` + "\n"} {
		if _, err := NewReader(strings.NewReader(in)); !errors.Is(err, ErrHeader) {
			t.Errorf("%q: err = %v, want ErrHeader", in, err)
		}
	}
	if _, err := NewReader(strings.NewReader(`{"version":99,"created":"2026-01-01T00:00:00Z"}` + "\n")); err == nil {
		t.Error("a newer version was accepted")
	}
}

func TestRecordValidate(t *testing.T) {
	var buf bytes.Buffer
	w, _ := NewWriter(&buf, Header{})
	if err := w.WriteRecord(Record{Kind: KindEvent}); !errors.Is(err, ErrRecord) {
		t.Errorf("event without event: %v", err)
	}
	if err := w.WriteRecord(Record{Kind: "bogus"}); !errors.Is(err, ErrRecord) {
		t.Errorf("unknown kind: %v", err)
	}
}

func consoleRecs(ts ...time.Duration) []Record {
	var recs []Record
	for i, t := range ts {
		recs = append(recs, Record{T: t, Kind: KindConsole, Data: []byte{byte('a' + i)}})
	}
	return recs
}

func TestPlayerTiming(t *testing.T) {
	recs := consoleRecs(0, 40*time.Millisecond, 80*time.Millisecond)
	p := NewPlayer(recs, 2)
	start := time.Now()
	var at []time.Duration
	if err := p.Play(context.Background(), func(Record) { at = append(at, time.Since(start)) }); err != nil {
		t.Fatal(err)
	}
	if at[2] < 35*time.Millisecond || at[2] > 400*time.Millisecond {
		t.Fatalf("last record after %v at speed 2, want about 40ms", at[2])
	}
	if at[1] < 15*time.Millisecond {
		t.Fatalf("second record after %v, want about 20ms", at[1])
	}

	fast := NewPlayer(consoleRecs(0, time.Hour), 0)
	var n int
	for range fast.Records(context.Background()) {
		n++
	}
	if n != 2 || fast.Position() != time.Hour {
		t.Fatalf("speed 0: %d records, position %v", n, fast.Position())
	}
}

func TestPlayerPauseAndCancel(t *testing.T) {
	p := NewPlayer(consoleRecs(0, 30*time.Millisecond), 1)
	p.Pause()
	ch := p.Records(context.Background())
	select {
	case <-ch:
		t.Fatal("a record was played while paused")
	case <-time.After(60 * time.Millisecond):
	}
	p.Resume()
	for range 2 {
		select {
		case <-ch:
		case <-time.After(2 * time.Second):
			t.Fatal("playback did not resume")
		}
	}

	ctx, cancel := context.WithCancel(context.Background())
	slow := NewPlayer(consoleRecs(0, time.Hour), 1)
	done := make(chan error)
	go func() { done <- slow.Play(ctx, func(Record) {}) }()
	cancel()
	if err := <-done; !errors.Is(err, context.Canceled) {
		t.Fatalf("Play after cancel = %v", err)
	}
}

// TestStreamingWriterReachesTheFile: with WithFlushAfter, records are on
// disk without Close, so a writer killed mid-session (nothing flushed at
// exit) leaves a file that reads; a write after Close is refused.
func TestStreamingWriterReachesTheFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "rec.jsonl")
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	w, err := NewWriter(f, Header{}, WithFlushAfter(20*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := readFile(path); err != nil {
		t.Fatalf("header not on disk at once: %v", err)
	}
	for _, s := range []string{"one", "two", "three"} {
		if err := w.Console([]byte(s)); err != nil {
			t.Fatal(err)
		}
	}
	// Bounded wait for the background flush, no timing asserted.
	deadline := time.Now().Add(10 * time.Second)
	for {
		_, recs, err := readFile(path)
		if err == nil && len(recs) == 3 && string(recs[2].Data) == "three" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("records never streamed to the file: %d records, %v", len(recs), err)
		}
		time.Sleep(10 * time.Millisecond)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	if err := w.Console([]byte("late")); !errors.Is(err, ErrClosed) {
		t.Fatalf("write after Close: %v, want ErrClosed", err)
	}
}

func readFile(path string) (Header, []Record, error) {
	f, err := os.Open(path)
	if err != nil {
		return Header{}, nil, err
	}
	defer f.Close()
	return ReadAll(f)
}
