package virtiofs_test

import (
	"testing"

	"github.com/krunbench/krunbench/virtiofs/fuse"
)

// TestEmptyKickAllocatesNothing checks that looking at an empty ring costs
// no allocation: a kick is served with ServeKick, which pops until the
// ring is empty, so every request ends with one or two pops that find
// nothing. Before the lane's spare chain each of them allocated a Chain
// and the errors.As variable, and the test failed with "2 allocations".
func TestEmptyKickAllocatesNothing(t *testing.T) {
	r := newRig(t, nil)
	if h, _ := r.call(req(fuse.OpInit, 1, 0, fuse.InitIn{Major: 7, Minor: 37}, [44]byte{}), nil, 256); h.Error != 0 {
		t.Fatalf("INIT: error %d", h.Error)
	}
	r.dev.ServeKick(1) // the first may allocate the lane's spare chain
	if n := testing.AllocsPerRun(100, func() { r.dev.ServeKick(1) }); n != 0 {
		t.Fatalf("ServeKick on an empty ring: %v allocations, want 0", n)
	}
	if h, _ := r.call(req(fuse.OpGetattr, 2, 1, fuse.GetAttrIn{}), nil, 256); h.Error != 0 {
		t.Fatalf("GETATTR after the empty kicks: error %d", h.Error)
	}
}
