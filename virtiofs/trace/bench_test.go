package trace

import (
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/krunbench/krunbench/virtiofs/fuse"
)

func BenchmarkObserve(b *testing.B) {
	run := func(b *testing.B, tap *Tap) {
		var ids atomic.Uint64
		ops := []uint32{fuse.OpGetattr, fuse.OpRead, fuse.OpLookup, fuse.OpRead, fuse.OpWrite, fuse.OpOpen, fuse.OpRelease}
		b.ReportAllocs()
		b.ResetTimer()
		b.RunParallel(func(pb *testing.PB) {
			id := ids.Add(1)
			s := &fuse.Served{Unique: id, Start: time.Now(), Latency: 20 * time.Microsecond, Bytes: 4096}
			i := 0
			for pb.Next() {
				s.Opcode = ops[i%len(ops)]
				s.Nodeid = id*1000 + uint64(i%64)
				tap.Observe(s)
				i++
			}
		})
	}
	b.Run("bare", func(b *testing.B) { run(b, NewTap(Options{})) })
	b.Run("stuck-subscriber", func(b *testing.B) {
		tap := NewTap(Options{})
		sub := tap.Subscribe(16)
		defer sub.Close()
		run(b, tap)
	})
	b.Run("disabled", func(b *testing.B) { run(b, NewTap(Options{Disabled: true})) })
}

// treeFS resolves paths the way passthrough does: one lock over a table of
// (parent, name) and a path built per call.
type treeFS struct {
	mu    sync.Mutex
	nodes map[uint64]treeNode
}

type treeNode struct {
	parent uint64
	name   string
}

func (f *treeFS) PathOf(nodeid uint64) string {
	f.mu.Lock()
	defer f.mu.Unlock()
	var parts []string
	for nodeid != fuse.RootID {
		n, ok := f.nodes[nodeid]
		if !ok {
			return ""
		}
		parts = append(parts, n.name)
		nodeid = n.parent
	}
	var b strings.Builder
	for i := len(parts) - 1; i >= 0; i-- {
		b.WriteByte('/')
		b.WriteString(parts[i])
	}
	if b.Len() == 0 {
		return "/"
	}
	return b.String()
}

// workload returns the requests one iteration serves: fusebench's create
// row (LOOKUP miss, CREATE, FLUSH, RELEASE, UNLINK, GETATTR of the
// directory) or its write row (1 MiB WRITEs to one file).
func workload(kind string, i int, fs *treeFS) []fuse.Served {
	const dir = 2
	now := time.Now()
	c := fuse.Caller{Uid: 1000, Gid: 1000, Pid: 4242}
	u := uint64(i) * 8
	if kind == "write" {
		return []fuse.Served{{Unique: u, Opcode: fuse.OpWrite, Nodeid: 77, Caller: c, Offset: uint64(i) << 20,
			Size: 1 << 20, Fh: 9, Bytes: 1 << 20, Start: now, Latency: 300 * time.Microsecond}}
	}
	name := "f" + strconv.Itoa(i)
	node := uint64(1000 + i)
	fs.mu.Lock()
	fs.nodes[node] = treeNode{dir, name}
	fs.mu.Unlock()
	return []fuse.Served{
		{Unique: u, Opcode: fuse.OpLookup, Nodeid: dir, Caller: c, Name: name, Errno: 2, Start: now, Latency: 9 * time.Microsecond},
		{Unique: u + 1, Opcode: fuse.OpCreate, Nodeid: dir, Caller: c, Name: name, Flags: 0o100301, Mode: 0o100644, NewNodeid: node, Fh: 5, Start: now, Latency: 30 * time.Microsecond},
		{Unique: u + 2, Opcode: fuse.OpFlush, Nodeid: node, Caller: c, Fh: 5, Start: now, Latency: 3 * time.Microsecond},
		{Unique: u + 3, Opcode: fuse.OpRelease, Nodeid: node, Caller: c, Fh: 5, Flags: 0o100301, Start: now, Latency: 4 * time.Microsecond},
		{Unique: u + 4, Opcode: fuse.OpUnlink, Nodeid: dir, Caller: c, Name: name, Start: now, Latency: 20 * time.Microsecond},
		{Unique: u + 5, Opcode: fuse.OpGetattr, Nodeid: dir, Caller: c, Start: now, Latency: 5 * time.Microsecond},
	}
}

// BenchmarkRecordFile observes fusebench-like requests with a Recorder
// writing JSON lines to a file, as `krunbench serve --trace FILE` does.
// The loop naps when the recorder's buffer is half full, as a server
// bounded by its kernel would, so nothing is dropped. ns/op is per event
// and includes draining the recorder at the end; cpu-ns/event is the process's CPU time (serving and recorder goroutines
// together) per event, the number that matters on a busy machine.
func BenchmarkRecordFile(b *testing.B) {
	for _, kind := range []string{"create", "write"} {
		b.Run(kind, func(b *testing.B) {
			fs := &treeFS{nodes: map[uint64]treeNode{2: {fuse.RootID, "dir"}, 77: {2, "big"}}}
			tap := NewTap(Options{Resolver: fs})
			f, err := os.Create(filepath.Join(b.TempDir(), "trace.jsonl"))
			if err != nil {
				b.Fatal(err)
			}
			defer f.Close()
			batches := make([][]fuse.Served, 4096)
			for i := range batches {
				batches[i] = workload(kind, i, fs)
			}
			per := len(batches[0])
			rec := tap.Record(f, 0)
			b.ReportAllocs()
			cpu0 := cpuTime()
			b.ResetTimer()
			for i := 0; i < b.N; {
				for j := range batches[(i/per)%len(batches)] {
					if i == b.N {
						break
					}
					tap.Observe(&batches[(i/per)%len(batches)][j])
					i++
					if len(rec.sub.ch) > cap(rec.sub.ch)/2 {
						time.Sleep(100 * time.Microsecond)
					}
				}
			}
			if err := rec.Close(); err != nil {
				b.Fatal(err)
			}
			b.StopTimer()
			b.ReportMetric(float64(cpuTime()-cpu0)/float64(b.N), "cpu-ns/event")
			if d := rec.Dropped(); d != 0 {
				b.ReportMetric(float64(d)/float64(b.N), "dropped/event")
			}
		})
	}
}

func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
