package fusedev

import "testing"

// TestSpareReusesBuffers: a stopping worker's buffers go to the next
// worker, up to keptBufs pairs; past that new ones are made.
func TestSpareReusesBuffers(t *testing.T) {
	m := &Mount{freeBufs: make(chan workerBufs, keptBufs)}
	var held []workerBufs
	for range keptBufs + 1 {
		held = append(held, m.takeBufs())
	}
	for _, b := range held {
		m.keepBufs(b)
	}
	for i := range keptBufs {
		b := m.takeBufs()
		if &b.in[0] != &held[i].in[0] || &b.out[0] != &held[i].out[0] {
			t.Fatalf("take %d: got new buffers, want the ones worker %d left", i, i)
		}
	}
	b := m.takeBufs()
	if &b.in[0] == &held[keptBufs].in[0] {
		t.Fatalf("a mount kept more than %d pairs of buffers", keptBufs)
	}
	if len(b.in) != bufSize || len(b.out) != bufSize {
		t.Fatalf("new buffers of %d and %d bytes, want %d", len(b.in), len(b.out), bufSize)
	}
}
