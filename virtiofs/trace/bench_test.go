package trace

import (
	"sync/atomic"
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
