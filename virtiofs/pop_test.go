package virtiofs_test

import (
	"runtime"
	"testing"

	"github.com/krunbench/krunbench/virtiofs/fuse"
	"github.com/krunbench/krunbench/virtiofs/fuse/fusetest"
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
