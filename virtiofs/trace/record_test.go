package trace

import (
	"bytes"
	"encoding/json"
	"testing"
	"time"

	"github.com/krunbench/krunbench/virtiofs/fuse"
)

// TestEncoderWallCache runs one encoder over wall times that share a
// second, change zone within it, carry trailing zeros or none, and leave
// the printable years, and holds each line to encoding/json.
func TestEncoderWallCache(t *testing.T) {
	ist := time.FixedZone("IST", 5*3600+1800)
	odd := time.FixedZone("LMT", 3600+17)
	base := time.Date(2026, 5, 6, 7, 8, 9, 0, time.UTC)
	walls := []time.Time{
		base, base.Add(1), base.Add(120), base.Add(999999999), base.Add(500 * time.Millisecond),
		base.In(ist), base.Add(7).In(ist), base.Add(time.Second), base.Add(time.Second).In(odd),
		base.Add(time.Second + 3), time.Date(10000, 1, 1, 0, 0, 0, 5, time.UTC), base.Add(2 * time.Second),
		time.Now(), time.Now().Round(0), base.Add(2*time.Second + 40),
	}
	var e encoder
	for i, w := range walls {
		ev := Event{Seq: uint64(i + 1), Op: fuse.OpGetattr, OpName: "GETATTR", Wall: w}
		var want bytes.Buffer
		enc := json.NewEncoder(&want)
		enc.SetEscapeHTML(false)
		if err := enc.Encode(&ev); err != nil {
			want.Reset()
			want.WriteString(string(appendJSON(nil, &ev)) + "\n")
		}
		if got := string(e.appendJSON(nil, &ev)) + "\n"; got != want.String() {
			t.Fatalf("wall %d (%v)\n got %s want %s", i, w, got, want.String())
		}
	}
}

// TestRecorderPathCache renames a directory mid-batch: events after the
// RENAME name the new path, and a gap in sequence numbers (events lost)
// empties the cache too.
func TestRecorderPathCache(t *testing.T) {
	fs := newFakeFS()
	fs.set(10, "/d")
	fs.set(11, "/d/f")
	tap := NewTap(Options{Resolver: fs})
	var c pathCache
	ev := func(seq uint64, op uint32, nodeid uint64) *Event {
		return &Event{Seq: seq, Op: op, Nodeid: nodeid}
	}
	check := func(e *Event, want string) {
		t.Helper()
		c.resolve(tap, e)
		if e.Path != want {
			t.Fatalf("seq %d: path %q, want %q", e.Seq, e.Path, want)
		}
	}
	check(ev(1, fuse.OpWrite, 11), "/d/f")
	calls := fs.calls
	check(ev(2, fuse.OpWrite, 11), "/d/f")
	if fs.calls != calls {
		t.Fatalf("second WRITE asked the resolver again")
	}
	fs.set(10, "/e")
	fs.set(11, "/e/f")
	check(ev(3, fuse.OpRename, 1), "/")
	check(ev(4, fuse.OpWrite, 11), "/e/f")
	fs.set(11, "/g")
	check(ev(6, fuse.OpWrite, 11), "/g")
	fs.set(11, "/h")
	cr := ev(7, fuse.OpCreate, 1)
	cr.NewNodeid = 11
	check(cr, "/")
	check(ev(8, fuse.OpFlush, 11), "/h")
	c.clear()
	check(ev(9, fuse.OpFlush, 11), "/h")
}
