package virtiotest

import "github.com/krunbench/krunbench/vmm/virtio"

// Multi is a fake guest with several queues in one guest memory, as a
// device with more than one queue sees it. RAM is cut into one equal,
// page-aligned slice per queue; each Driver lays out its rings at the start
// of its slice and allocates buffers from the rest, exactly as a driver
// from New does over its whole RAM.
type Multi struct {
	// Mem is the guest memory shared by all queues.
	Mem *virtio.Memory
	// RAM backs Mem: RAM[i] is at GPA Base+i.
	RAM []byte
	// Base is the GPA of RAM[0].
	Base uint64
	// Drivers holds one driver per queue. Their Mem is the shared memory;
	// their RAM and Base describe their own slice.
	Drivers []*Driver
}

// NewMulti builds n queues over one memory. cfg applies to every queue;
// MemSize is the total RAM (default n MiB) and SplitAt, if set, splits the
// whole RAM into two regions as in New.
func NewMulti(cfg Config, n int) *Multi {
	if n <= 0 {
		panic("virtiotest: NewMulti needs at least one queue")
	}
	if cfg.QueueSize == 0 {
		cfg.QueueSize = 16
	}
	if cfg.MemSize == 0 {
		cfg.MemSize = uint64(n) << 20
	}
	if cfg.Base == 0 {
		cfg.Base = 0x100000
	}
	part := cfg.MemSize / uint64(n) &^ (virtio.PageSize - 1)
	if part == 0 {
		panic("virtiotest: MemSize too small for NewMulti")
	}
	total := part * uint64(n)
	m := &Multi{RAM: make([]byte, total), Base: cfg.Base}
	regions := []virtio.Region{{GPA: cfg.Base, Data: m.RAM}}
	if cfg.SplitAt != 0 {
		regions = []virtio.Region{
			{GPA: cfg.Base, Data: m.RAM[:cfg.SplitAt]},
			{GPA: cfg.Base + cfg.SplitAt, Data: m.RAM[cfg.SplitAt:]},
		}
	}
	mem, err := virtio.NewMemory(regions...)
	if err != nil {
		panic(err)
	}
	m.Mem = mem
	for i := range n {
		off := uint64(i) * part
		m.Drivers = append(m.Drivers, newOn(mem, m.RAM[off:off+part:off+part], cfg.Base+off, cfg.QueueSize, cfg.EventIdx))
	}
	return m
}

// newOn lays out one queue over ram, which sits at GPA base inside mem:
// the same layout as New.
func newOn(mem *virtio.Memory, ram []byte, base uint64, size uint16, eventIdx bool) *Driver {
	d := &Driver{
		Mem:      mem,
		RAM:      ram,
		Base:     base,
		Size:     size,
		EventIdx: eventIdx,
		inflight: map[uint16][]uint16{},
	}
	n := uint64(size)
	d.Desc = base
	d.Avail = d.Desc + 16*n
	d.Used = alignUp(d.Avail+6+2*n, virtio.PageSize)
	d.dataStart = alignUp(d.Used+6+8*n, virtio.PageSize)
	if d.dataStart >= base+uint64(len(ram)) {
		panic("virtiotest: MemSize too small for the rings")
	}
	d.next = d.dataStart
	for i := range size {
		d.free = append(d.free, i)
	}
	return d
}

// Queues returns one new ready device queue per driver (see
// Driver.Queue).
func (m *Multi) Queues() []*virtio.Queue {
	qs := make([]*virtio.Queue, len(m.Drivers))
	for i, d := range m.Drivers {
		qs[i] = d.Queue()
	}
	return qs
}
