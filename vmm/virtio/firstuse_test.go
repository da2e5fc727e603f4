package virtio_test

import (
	"errors"
	"slices"
	"sync"
	"testing"
	"unsafe"

	"github.com/krunbench/krunbench/vmm/virtio"
	"github.com/krunbench/krunbench/vmm/virtio/virtiotest"
)

// blockLog records the blocks a FirstUse ran for, as offsets in its region.
type blockLog struct {
	mu    sync.Mutex
	base  uintptr
	calls []uint64
	lens  []int
}

func (l *blockLog) fn(block []byte) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.calls = append(l.calls, uint64(uintptr(unsafe.Pointer(&block[0]))-l.base))
	l.lens = append(l.lens, len(block))
}

func (l *blockLog) take() []uint64 {
	l.mu.Lock()
	defer l.mu.Unlock()
	c := l.calls
	l.calls, l.lens = nil, nil
	slices.Sort(c)
	return c
}

// firstUseDriver is a mock driver whose memory runs a FirstUse of block
// bytes on its one region.
func firstUseDriver(t *testing.T, block uint64) (*virtiotest.Driver, *blockLog) {
	t.Helper()
	d := virtiotest.New(virtiotest.Config{QueueSize: 16, MemSize: 256 << 10})
	log := &blockLog{base: uintptr(unsafe.Pointer(&d.RAM[0]))}
	fu, err := virtio.NewFirstUse(uint64(len(d.RAM)), block, log.fn)
	if err != nil {
		t.Fatal(err)
	}
	d.Mem = newMem(t, virtio.Region{GPA: d.Base, Data: d.RAM, FirstUse: fu})
	return d, log
}

// blocksOf returns the block offsets (in the driver's RAM) covering
// [gpa, gpa+n).
func blocksOf(d *virtiotest.Driver, block, gpa, n uint64) []uint64 {
	var out []uint64
	for b := (gpa - d.Base) / block; b <= (gpa-d.Base+n-1)/block; b++ {
		out = append(out, b*block)
	}
	return out
}

// TestFirstUseRunsOncePerBlockOfABuffer pops chains through a Memory with a
// FirstUse: it runs for the blocks of the chains' buffers and indirect
// tables, once each, and not for the rings (Validate, descriptor reads,
// AddUsed) nor for Slice.
func TestFirstUseRunsOncePerBlockOfABuffer(t *testing.T) {
	const block = virtio.PageSize
	d, log := firstUseDriver(t, block)
	q := d.Queue()
	if err := q.Validate(d.Mem); err != nil {
		t.Fatal(err)
	}
	if _, err := d.Mem.Slice(d.Base+0x10000, 0x3000); err != nil {
		t.Fatal(err)
	}
	if got := log.take(); len(got) != 0 {
		t.Fatalf("Validate and Slice ran the first use for blocks %#x; want none", got)
	}

	// A direct chain: a buffer inside one block, one across two.
	d.Alloc(block-100, 1) // so that the next buffers straddle
	p, err := d.AddChain(virtiotest.R(pattern(60, 1)), virtiotest.W(300))
	if err != nil {
		t.Fatal(err)
	}
	d.Publish()
	c := mustPop(t, q, d.Mem)
	want := append(blocksOf(d, block, p.Addrs[0], 60), blocksOf(d, block, p.Addrs[1], 300)...)
	slices.Sort(want)
	want = slices.Compact(want)
	if got := log.take(); !slices.Equal(got, want) {
		t.Fatalf("direct chain: first use ran for %#x, want %#x", got, want)
	}
	if err := q.AddUsed(d.Mem, c.Head, 0); err != nil {
		t.Fatal(err)
	}
	d.TakeUsed()

	// An indirect chain in a fresh block: its table is resolved like a
	// buffer.
	d.Alloc(0, block)
	p, err = d.AddIndirect(virtiotest.R(pattern(40, 2)), virtiotest.W(16))
	if err != nil {
		t.Fatal(err)
	}
	d.Publish()
	table := d.Read(d.Desc+16*uint64(p.Head), 8)
	tableGPA := uint64(table[0]) | uint64(table[1])<<8 | uint64(table[2])<<16 | uint64(table[3])<<24
	c = mustPop(t, q, d.Mem)
	want = append(blocksOf(d, block, p.Addrs[0], 40), blocksOf(d, block, p.Addrs[1], 16)...)
	want = append(want, blocksOf(d, block, tableGPA, 32)...)
	slices.Sort(want)
	want = slices.Compact(want)
	if got := log.take(); !slices.Equal(got, want) {
		t.Fatalf("indirect chain: first use ran for %#x, want %#x (table at %#x)", got, want, tableGPA)
	}
	if err := q.AddUsed(d.Mem, c.Head, 0); err != nil {
		t.Fatal(err)
	}
	d.TakeUsed()

	// The same buffers again: nothing more.
	for _, a := range p.Addrs {
		if _, err := d.Mem.AppendSlices(nil, a, 16); err != nil {
			t.Fatal(err)
		}
	}
	if got := log.take(); len(got) != 0 {
		t.Fatalf("second use ran the first use again for %#x", got)
	}
}

// TestFirstUseConcurrentAndClipped resolves the whole region from several
// goroutines at once: every block is handed to the function exactly once,
// the last one cut at the region's end.
func TestFirstUseConcurrentAndClipped(t *testing.T) {
	data := make([]byte, 10*virtio.PageSize)
	log := &blockLog{base: uintptr(unsafe.Pointer(&data[0]))}
	fu, err := virtio.NewFirstUse(uint64(len(data)), 4*virtio.PageSize, log.fn)
	if err != nil {
		t.Fatal(err)
	}
	m := newMem(t, virtio.Region{GPA: 0x100000, Data: data, FirstUse: fu})
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Go(func() {
			for i := range 200 {
				off := uint64((g*131+i*977)%len(data)) &^ 7
				if _, err := m.AppendSlices(nil, 0x100000+off, uint64(len(data))-off); err != nil {
					t.Error(err)
					return
				}
			}
		})
	}
	wg.Wait()
	lens := slices.Clone(log.lens)
	got := log.take()
	if want := []uint64{0, 4 * virtio.PageSize, 8 * virtio.PageSize}; !slices.Equal(got, want) {
		t.Fatalf("blocks %#x, want %#x once each", got, want)
	}
	slices.Sort(lens)
	if want := []int{2 * virtio.PageSize, 4 * virtio.PageSize, 4 * virtio.PageSize}; !slices.Equal(lens, want) {
		t.Fatalf("block lengths %d, want %d", lens, want)
	}
}

func TestFirstUseRejects(t *testing.T) {
	fn := func([]byte) {}
	for _, c := range []struct{ size, block uint64 }{{0, 4096}, {8192, 0}, {8192, 3000}} {
		if _, err := virtio.NewFirstUse(c.size, c.block, fn); !errors.Is(err, virtio.ErrBadRegion) {
			t.Errorf("NewFirstUse(%d, %d): %v, want ErrBadRegion", c.size, c.block, err)
		}
	}
	fu, err := virtio.NewFirstUse(2*virtio.PageSize, virtio.PageSize, fn)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := virtio.NewMemory(virtio.Region{GPA: 0, Data: make([]byte, virtio.PageSize), FirstUse: fu}); !errors.Is(err, virtio.ErrBadRegion) {
		t.Errorf("NewMemory with a first use of another size: %v, want ErrBadRegion", err)
	}
}
