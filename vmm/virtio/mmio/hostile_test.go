package mmio_test

import (
	"math/rand/v2"
	"testing"

	"github.com/krunbench/krunbench/vmm/virtio/mmio"
	"github.com/krunbench/krunbench/vmm/virtio/virtiotest"
)

// TestRandomAccessesNeverPanic throws random reads and writes of random
// widths at the window, biased towards the registers and towards status
// values that make progress, and checks that the transport never panics
// and that its invariants hold.
func TestRandomAccessesNeverPanic(t *testing.T) {
	m := virtiotest.NewMulti(virtiotest.Config{QueueSize: 8}, 2)
	dev := newEcho(2)
	r := newRig(t, dev, m.Mem)
	rng := rand.New(rand.NewPCG(7, 8))
	widths := []int{0, 1, 2, 3, 4, 4, 4, 4, 8, 16}
	statuses := []uint32{0, 1, 3, 11, 15, 128, 0xff, 64}
	for range 50000 {
		off := uint64(rng.IntN(0x40)) * 4
		if rng.IntN(8) == 0 {
			off = uint64(rng.IntN(mmio.WindowSize + 16))
		}
		b := make([]byte, widths[rng.IntN(len(widths))])
		if rng.IntN(2) == 0 {
			r.tr.Read(off, b)
			continue
		}
		v := rng.Uint32()
		switch rng.IntN(4) {
		case 0:
			v = statuses[rng.IntN(len(statuses))]
			off, b = mmio.RegStatus, make([]byte, 4)
		case 1:
			v = uint32(rng.IntN(3))
		case 2:
			v = uint32(m.Base) + uint32(rng.IntN(1<<20))&^15
		}
		for i := range b {
			b[i] = byte(v >> (8 * (i % 4)))
		}
		r.tr.Write(off, b)
		st := r.r32(mmio.RegStatus)
		if st&^0xcf != 0 {
			t.Fatalf("status %#x has bits no one may set", st)
		}
		if r.tr.Active() != (st&0x4 != 0 && st&0x40 == 0) {
			t.Fatalf("active %v with status %#x", r.tr.Active(), st)
		}
		if r.r32(mmio.RegMagicValue) != mmio.MagicValue {
			t.Fatal("magic changed")
		}
	}
}
