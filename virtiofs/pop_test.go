package virtiofs_test

import (
	"runtime"
	"testing"
	"time"

	"github.com/krunbench/krunbench/virtiofs/fuse"
	"github.com/krunbench/krunbench/virtiofs/fuse/fusetest"
	"github.com/krunbench/krunbench/vmm/virtio"
	"github.com/krunbench/krunbench/vmm/virtio/virtiotest"
)

// TestEmptyKickAllocatesNothing checks that looking at an empty ring costs
// no allocation: a kick is served with ServeKick, which pops until the
// ring is empty, so every request ends with one or two pops that find
// nothing. Before the chain pool each of them allocated a Chain
// and the errors.As variable, and the test failed with "2 allocations".
func TestEmptyKickAllocatesNothing(t *testing.T) {
	r := newRig(t, nil)
	if h, _ := r.call(fusetest.Request(fuse.OpInit, 1, 0, fuse.InitIn{Major: 7, Minor: 37}, [44]byte{}), nil, 256); h.Error != 0 {
		t.Fatalf("INIT: error %d", h.Error)
	}
	r.dev.ServeKick(1) // the first may fill the chain pool
	if n := testing.AllocsPerRun(100, func() { r.dev.ServeKick(1) }); n != 0 {
		t.Fatalf("ServeKick on an empty ring: %v allocations, want 0", n)
	}
	if h, _ := r.call(fusetest.Request(fuse.OpGetattr, 2, 1, fuse.GetAttrIn{}), nil, 256); h.Error != 0 {
		t.Fatalf("GETATTR after the empty kicks: error %d", h.Error)
	}
}

// TestServedChainReused checks that the chain the poller served inline is
// filled again by the next pop: serving a GETATTR with ServeKick allocates
// only what the server allocates for the request itself (one allocation
// today), not a Chain and its two buffer lists per request. Before the
// served chain was reused the test failed with about 4 allocations per
// request; the bound leaves the server room for one more of its own.
func TestServedChainReused(t *testing.T) {
	r := newRig(t, nil)
	if h, _ := r.call(fusetest.Request(fuse.OpInit, 1, 0, fuse.InitIn{Major: 7, Minor: 37}, [44]byte{}), nil, 256); h.Error != 0 {
		t.Fatalf("INIT: error %d", h.Error)
	}
	getattr := fusetest.Request(fuse.OpGetattr, 2, 1, fuse.GetAttrIn{})
	const n = 50
	var mallocs uint64
	for i := range n {
		placed, err := r.drv.AddChain(virtiotest.R(getattr), virtiotest.W(256))
		if err != nil {
			t.Fatal(err)
		}
		r.drv.Publish()
		var before, after runtime.MemStats
		runtime.ReadMemStats(&before)
		r.dev.ServeKick(1)
		runtime.ReadMemStats(&after)
		if i > 0 { // the first fills the chain pool
			mallocs += after.Mallocs - before.Mallocs
		}
		used := r.drv.TakeUsed()
		if len(used) != 1 || used[0].ID != uint32(placed.Head) || used[0].Len < uint32(fuse.OutHeaderSize) {
			t.Fatalf("request %d: used %+v for head %d", i, used, placed.Head)
		}
	}
	if per := float64(mallocs) / (n - 1); per >= 3 {
		t.Fatalf("%.1f allocations per request served inline, want under 3", per)
	}
}

// TestServeKickReadsAvailIdxTwice: a kick that brings one request, as in
// a guest's find (one request in flight), costs two reads of avail->idx:
// the pop that finds the chain and the look after serving it; that the
// chain was the last one published is known from the first read. Two
// chains published together cost the same two reads. Before, the drain
// popped 4 times for one chain, each pop a read (the chain, an empty pop,
// the same again after marking the lane serving, the look after serving),
// and the test failed with 4 reads.
func TestServeKickReadsAvailIdxTwice(t *testing.T) {
	var mem *virtiotest.AvailIdxCounter
	r := newRigMem(t, nil, func(d *virtiotest.Driver) virtio.GuestMemory {
		mem = d.CountAvailIdx()
		return mem
	})
	// The queue's poller drains once when it starts (one read of an empty
	// ring) and then only on QueueNotify, which this test never calls:
	// every read after that one is ServeKick's.
	deadline := time.Now().Add(30 * time.Second)
	for mem.Loads() == 0 {
		if time.Now().After(deadline) {
			t.Fatal("the poller did not look at the ring in 30 s")
		}
		time.Sleep(time.Millisecond)
	}
	serve := func(reqs ...[]byte) int64 {
		t.Helper()
		for _, req := range reqs {
			if _, err := r.drv.AddChain(virtiotest.R(req), virtiotest.W(256)); err != nil {
				t.Fatal(err)
			}
		}
		r.drv.Publish()
		before := mem.Loads()
		r.dev.ServeKick(1)
		n := mem.Loads() - before
		for done := 0; done < len(reqs); { // all but the last chain go to a worker
			done += len(r.drv.TakeUsed())
			if time.Now().After(deadline) {
				t.Fatalf("%d of %d requests answered in 30 s", done, len(reqs))
			}
			time.Sleep(time.Millisecond)
		}
		return n
	}
	serve(fusetest.Request(fuse.OpInit, 1, 0, fuse.InitIn{Major: 7, Minor: 37}, [44]byte{}))
	getattr := func(unique uint64) []byte { return fusetest.Request(fuse.OpGetattr, unique, 1, fuse.GetAttrIn{}) }
	for i, reqs := range [][][]byte{{getattr(2)}, {getattr(3)}, {getattr(4), getattr(5)}} {
		if n := serve(reqs...); n != 2 {
			t.Errorf("kick %d: ServeKick of %d chains read avail->idx %d times, want 2", i, len(reqs), n)
		}
	}
	if n := mem.Loads(); n != 1+2*4 {
		t.Errorf("%d reads of avail->idx in all, want 9 (the poller's first, then 2 a kick)", n)
	}
}
