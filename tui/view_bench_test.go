package tui

import (
	"fmt"
	"testing"
	"time"

	"github.com/krunbench/krunbench/virtiofs/fuse"
	"github.com/krunbench/krunbench/virtiofs/trace"
)

// floodLoad is what the UI holds and receives while the guest runs
// `find /data` over 50 directories of 1,000 files (tuibench's workload):
// a console with a shell prompt, READDIRPLUS/LOOKUP/GETATTR traffic, a
// snapshot with a handful of opcodes, and an inode table that grows to
// 50,000 rows.
type floodLoad struct {
	seq  uint64
	now  time.Duration
	rows []trace.InodeRow
}

func (f *floodLoad) events(n int) []trace.Event {
	evs := make([]trace.Event, n)
	for i := range evs {
		f.seq++
		f.now += 12 * time.Millisecond
		dir := fmt.Sprintf("/data/d%03d", f.seq/40%50)
		ev := trace.Event{Seq: f.seq, Time: f.now, Nodeid: 100 + f.seq/40, Path: dir, Latency: 40 * time.Microsecond}
		switch f.seq % 4 {
		case 0:
			ev.Op, ev.OpName, ev.Offset, ev.Size, ev.Bytes = fuse.OpReaddirplus, "READDIRPLUS", f.seq*26, 4096, 3952
		case 1:
			ev.Op, ev.OpName, ev.Name, ev.NewNodeid = fuse.OpLookup, "LOOKUP", fmt.Sprintf("f%05d", f.seq%1000), 1000+f.seq
		case 2:
			ev.Op, ev.OpName = fuse.OpGetattr, "GETATTR"
		default:
			ev.Op, ev.OpName, ev.Errno = fuse.OpLookup, "LOOKUP", 2
			ev.Name = "missing"
		}
		evs[i] = ev
	}
	return evs
}

func (f *floodLoad) snapshot() *trace.Snapshot {
	s := &trace.Snapshot{Uptime: f.now}
	for i, op := range []uint32{fuse.OpLookup, fuse.OpGetattr, fuse.OpReaddirplus, fuse.OpOpendir, fuse.OpReleasedir, fuse.OpRead, fuse.OpOpen, fuse.OpRelease, fuse.OpInit} {
		o := trace.OpStats{Op: op, Name: fuse.OpName(op), Count: f.seq/uint64(i+1) + 1}
		o.Latency.P50, o.Latency.P99 = 30*time.Microsecond, 900*time.Microsecond
		s.Ops = append(s.Ops, o)
		s.Total.Count += o.Count
	}
	return s
}

// inodes is the table after the walk reached n inodes, ordered by nodeid
// as Tap.Inodes returns it.
func (f *floodLoad) inodes(n int) []trace.InodeRow {
	for len(f.rows) < n {
		i := len(f.rows)
		f.rows = append(f.rows, trace.InodeRow{Nodeid: uint64(i + 1), Path: fmt.Sprintf("/data/d%03d/f%05d", i/1000, i%1000), Nlookup: 1})
	}
	return append([]trace.InodeRow(nil), f.rows[:n]...)
}

// floodModel is the app at tuibench's size (120x40, the grid) with the
// debug overlay open, after the boot and part of the walk.
func floodModel(b *testing.B, f *floodLoad) *Model {
	m := New(Options{Source: newFakeSource()})
	b.Cleanup(m.Close)
	resize(m, 120, 40)
	press(m, "`")
	m.apply(&SourceMsg{Console: []byte("krun-init: ready\r\n/ # /tuibench.sh\r\nTUIBENCH start\r\n"), Events: f.events(DefaultTrafficLimit), Stats: f.snapshot(), Inodes: f.inodes(25000)})
	m.View()
	return m
}

// BenchmarkView measures the UI under tuibench's flood. batch: a few
// events (what one delivery carries), then a frame; snapshot: a batch with
// a statistics snapshot and a 50,000-row inode table (the live source
// sends them periodically); idle: a frame with nothing new.
func BenchmarkView(b *testing.B) {
	b.Run("batch", func(b *testing.B) {
		f := &floodLoad{}
		m := floodModel(b, f)
		b.ResetTimer()
		for b.Loop() {
			m.Update(sourceMsg{gen: m.gen, msg: SourceMsg{Events: f.events(8)}})
			m.View()
		}
	})
	b.Run("snapshot", func(b *testing.B) {
		f := &floodLoad{}
		m := floodModel(b, f)
		rows := f.inodes(50000)
		b.ResetTimer()
		for b.Loop() {
			// The source hands over a fresh table each time (Tap.Inodes
			// builds one); making it is not the UI's work.
			b.StopTimer()
			msg := SourceMsg{Events: f.events(8), Stats: f.snapshot(), Inodes: append([]trace.InodeRow(nil), rows...)}
			b.StartTimer()
			m.Update(sourceMsg{gen: m.gen, msg: msg})
			m.View()
		}
	})
	b.Run("idle", func(b *testing.B) {
		f := &floodLoad{}
		m := floodModel(b, f)
		b.ResetTimer()
		for b.Loop() {
			m.View()
		}
	})
}
