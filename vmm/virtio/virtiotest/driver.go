// Package virtiotest is a driver-side mock of a split virtqueue for tests:
// it owns a fake guest memory, lays out the rings, adds descriptor chains
// (direct or indirect, split wherever the test likes), publishes them and
// reads back used elements. Raw accessors let hostile tests write arbitrary
// values into the rings.
//
// A Driver is not safe for concurrent use and panics on misuse (it is a test
// helper); errors are only returned for conditions a test may provoke on
// purpose, such as running out of descriptors.
package virtiotest

import (
	"encoding/binary"
	"errors"
	"fmt"

	"github.com/krunbench/krunbench/vmm/virtio"
)

// Config describes the fake guest and its queue. Zero fields take defaults.
type Config struct {
	// QueueSize is the queue size (default 16).
	QueueSize uint16
	// MemSize is the guest RAM size in bytes (default 1 MiB, rounded up to
	// a page).
	MemSize uint64
	// Base is the guest-physical address of RAM (default 0x100000; must be
	// page aligned).
	Base uint64
	// SplitAt, when non-zero, backs RAM with two GPA-contiguous regions
	// split at Base+SplitAt (page aligned, inside RAM).
	SplitAt uint64
	// EventIdx enables VIRTIO_RING_F_EVENT_IDX on queues from Queue.
	EventIdx bool
}

// ErrNoDescriptors is returned when the descriptor table is full.
var ErrNoDescriptors = errors.New("virtiotest: no free descriptors")

// Buf is one buffer of a chain: readable buffers carry their contents in
// Data, writable ones are allocated with len(Data) bytes initialised from
// Data.
type Buf struct {
	Data  []byte
	Write bool
}

// R returns a device-readable buffer holding data.
func R(data []byte) Buf { return Buf{Data: data} }

// W returns a device-writable buffer of n bytes, filled with 0xEE.
func W(n int) Buf {
	b := make([]byte, n)
	for i := range b {
		b[i] = 0xEE
	}
	return Buf{Data: b, Write: true}
}

// Placed describes a chain added to the ring.
type Placed struct {
	Head uint16
	// Addrs are the guest-physical addresses of the buffers, in the order
	// given to AddChain.
	Addrs []uint64
	Bufs  []Buf
}

// UsedElem is one entry read from the used ring.
type UsedElem struct {
	ID  uint32
	Len uint32
}

// Driver is the mock driver.
type Driver struct {
	// Mem is the guest memory handed to the device.
	Mem *virtio.Memory
	// RAM backs guest memory: RAM[i] is at GPA Base+i.
	RAM []byte
	// Base is the GPA of RAM[0].
	Base uint64
	// Size is the queue size.
	Size uint16
	// Desc, Avail and Used are the ring addresses.
	Desc, Avail, Used uint64
	// EventIdx is Config.EventIdx.
	EventIdx bool

	availIdx  uint16
	lastUsed  uint16
	free      []uint16
	inflight  map[uint16][]uint16
	dataStart uint64
	next      uint64
}

// New builds a driver with rings laid out at the start of RAM: descriptor
// table, then the available ring, then (page aligned) the used ring; the
// rest of RAM is a circular buffer allocator.
func New(cfg Config) *Driver {
	if cfg.QueueSize == 0 {
		cfg.QueueSize = 16
	}
	if cfg.MemSize == 0 {
		cfg.MemSize = 1 << 20
	}
	if cfg.Base == 0 {
		cfg.Base = 0x100000
	}
	cfg.MemSize = (cfg.MemSize + virtio.PageSize - 1) &^ (virtio.PageSize - 1)
	d := &Driver{
		RAM:      make([]byte, cfg.MemSize),
		Base:     cfg.Base,
		Size:     cfg.QueueSize,
		EventIdx: cfg.EventIdx,
		inflight: map[uint16][]uint16{},
	}
	regions := []virtio.Region{{GPA: cfg.Base, Data: d.RAM}}
	if cfg.SplitAt != 0 {
		regions = []virtio.Region{
			{GPA: cfg.Base, Data: d.RAM[:cfg.SplitAt]},
			{GPA: cfg.Base + cfg.SplitAt, Data: d.RAM[cfg.SplitAt:]},
		}
	}
	mem, err := virtio.NewMemory(regions...)
	if err != nil {
		panic(err)
	}
	d.Mem = mem
	n := uint64(cfg.QueueSize)
	d.Desc = cfg.Base
	d.Avail = d.Desc + 16*n
	d.Used = alignUp(d.Avail+6+2*n, virtio.PageSize)
	d.dataStart = alignUp(d.Used+6+8*n, virtio.PageSize)
	if d.dataStart >= cfg.Base+cfg.MemSize {
		panic("virtiotest: MemSize too small for the rings")
	}
	d.next = d.dataStart
	for i := range cfg.QueueSize {
		d.free = append(d.free, i)
	}
	return d
}

func alignUp(v, a uint64) uint64 { return (v + a - 1) &^ (a - 1) }

// Queue returns a new device queue configured for this driver and ready.
func (d *Driver) Queue() *virtio.Queue {
	q, err := virtio.NewQueue(d.Size)
	if err != nil {
		panic(err)
	}
	d.Configure(q)
	return q
}

// Configure programs q with the driver's size, ring addresses and
// EVENT_IDX setting and sets it ready.
func (d *Driver) Configure(q *virtio.Queue) {
	q.SetSize(d.Size)
	q.SetDescTable(d.Desc)
	q.SetAvailRing(d.Avail)
	q.SetUsedRing(d.Used)
	q.SetEventIdx(d.EventIdx)
	q.SetReady(true)
}

// Bytes returns the RAM slice at [gpa, gpa+n), panicking if out of range.
func (d *Driver) Bytes(gpa, n uint64) []byte {
	if gpa < d.Base || gpa-d.Base > uint64(len(d.RAM)) || n > uint64(len(d.RAM))-(gpa-d.Base) {
		panic(fmt.Sprintf("virtiotest: %#x+%#x outside RAM", gpa, n))
	}
	o := gpa - d.Base
	return d.RAM[o : o+n : o+n]
}

// Read returns a copy of guest memory at [gpa, gpa+n).
func (d *Driver) Read(gpa, n uint64) []byte { return append([]byte(nil), d.Bytes(gpa, n)...) }

// Write copies b into guest memory at gpa.
func (d *Driver) Write(gpa uint64, b []byte) { copy(d.Bytes(gpa, uint64(len(b))), b) }

// Alloc returns the GPA of n bytes of RAM aligned to align (a power of two,
// 0 meaning 1). Allocation is circular: old buffers are reused once the end
// of RAM is reached, so tests must not keep many chains in flight.
func (d *Driver) Alloc(n, align uint64) uint64 {
	if align == 0 {
		align = 1
	}
	end := d.Base + uint64(len(d.RAM))
	if n > end-d.dataStart {
		panic("virtiotest: allocation larger than RAM")
	}
	p := alignUp(d.next, align)
	if p+n > end {
		p = alignUp(d.dataStart, align)
	}
	d.next = p + n
	return p
}

// AddChain places a chain of direct descriptors and adds its head to the
// available ring (unpublished until Publish).
func (d *Driver) AddChain(bufs ...Buf) (Placed, error) { return d.AddMixed(len(bufs), bufs...) }

// AddIndirect places a chain consisting of one indirect descriptor whose
// table holds all of bufs.
func (d *Driver) AddIndirect(bufs ...Buf) (Placed, error) { return d.AddMixed(0, bufs...) }

// AddMixed places a chain whose first direct buffers use direct
// descriptors and whose remaining buffers (if any) sit in an indirect table
// referenced by a final indirect descriptor.
func (d *Driver) AddMixed(direct int, bufs ...Buf) (Placed, error) {
	direct = min(direct, len(bufs))
	ind := len(bufs) - direct
	ndesc := direct
	if ind > 0 {
		ndesc++
	}
	if ndesc == 0 {
		return Placed{}, errors.New("virtiotest: empty chain")
	}
	if ndesc > len(d.free) {
		return Placed{}, ErrNoDescriptors
	}
	p := Placed{Bufs: bufs}
	for _, b := range bufs {
		a := d.Alloc(uint64(len(b.Data)), 1)
		d.Write(a, b.Data)
		p.Addrs = append(p.Addrs, a)
	}
	ids := append([]uint16(nil), d.free[:ndesc]...)
	d.free = d.free[ndesc:]
	for i := range direct {
		flags := uint16(0)
		if bufs[i].Write {
			flags |= virtio.DescFWrite
		}
		next := uint16(0)
		if i+1 < ndesc {
			flags |= virtio.DescFNext
			next = ids[i+1]
		}
		d.SetDesc(ids[i], p.Addrs[i], uint32(len(bufs[i].Data)), flags, next)
	}
	if ind > 0 {
		table := d.Alloc(16*uint64(ind), 16)
		for i := range ind {
			b := bufs[direct+i]
			flags := uint16(0)
			if b.Write {
				flags |= virtio.DescFWrite
			}
			next := uint16(0)
			if i+1 < ind {
				flags |= virtio.DescFNext
				next = uint16(i + 1)
			}
			d.WriteDescAt(table+16*uint64(i), p.Addrs[direct+i], uint32(len(b.Data)), flags, next)
		}
		d.SetDesc(ids[direct], table, uint32(16*ind), virtio.DescFIndirect, 0)
	}
	p.Head = ids[0]
	d.inflight[p.Head] = ids
	d.PushHead(p.Head)
	return p, nil
}

// PushHead appends head to the available ring without publishing it.
func (d *Driver) PushHead(head uint16) {
	d.SetAvailEntry(d.availIdx, head)
	d.availIdx++
}

// Publish makes all pushed heads visible by storing the avail index.
func (d *Driver) Publish() { d.SetAvailIdx(d.availIdx) }

// AllocDesc takes a free descriptor index for hand-built chains; it is
// freed when the used ring returns it as a head.
func (d *Driver) AllocDesc() (uint16, error) {
	if len(d.free) == 0 {
		return 0, ErrNoDescriptors
	}
	i := d.free[0]
	d.free = d.free[1:]
	d.inflight[i] = append(d.inflight[i], i)
	return i, nil
}

// FreeDescs returns the number of free descriptors.
func (d *Driver) FreeDescs() int { return len(d.free) }

// SetDesc writes descriptor i of the main table (i is not range checked
// against the queue size beyond staying inside RAM).
func (d *Driver) SetDesc(i uint16, addr uint64, length uint32, flags, next uint16) {
	d.WriteDescAt(d.Desc+16*uint64(i), addr, length, flags, next)
}

// WriteDescAt writes a descriptor at an arbitrary GPA (an indirect table).
func (d *Driver) WriteDescAt(gpa, addr uint64, length uint32, flags, next uint16) {
	b := d.Bytes(gpa, 16)
	binary.LittleEndian.PutUint64(b[0:], addr)
	binary.LittleEndian.PutUint32(b[8:], length)
	binary.LittleEndian.PutUint16(b[12:], flags)
	binary.LittleEndian.PutUint16(b[14:], next)
}

// SetAvailEntry writes head into avail ring slot idx%Size.
func (d *Driver) SetAvailEntry(idx, head uint16) {
	d.store16(d.Avail+4+2*uint64(idx%d.Size), head)
}

// SetAvailIdx stores avail->idx (any value, for hostile tests) and makes it
// the shadow index for further PushHead calls.
func (d *Driver) SetAvailIdx(v uint16) {
	d.availIdx = v
	d.store16(d.Avail+2, v)
}

// AvailIdx returns the driver's shadow avail index.
func (d *Driver) AvailIdx() uint16 { return d.availIdx }

// SetAvailFlags stores avail->flags (e.g. virtio.AvailFNoInterrupt).
func (d *Driver) SetAvailFlags(v uint16) { d.store16(d.Avail, v) }

// SetUsedEvent stores used_event (avail->ring[Size]).
func (d *Driver) SetUsedEvent(v uint16) { d.store16(d.Avail+4+2*uint64(d.Size), v) }

// AvailEvent returns avail_event (used->ring[Size]) as written by the device.
func (d *Driver) AvailEvent() uint16 { return d.load16(d.Used + 4 + 8*uint64(d.Size)) }

// UsedFlags returns used->flags.
func (d *Driver) UsedFlags() uint16 { return d.load16(d.Used) }

// UsedIdx returns used->idx.
func (d *Driver) UsedIdx() uint16 { return d.load16(d.Used + 2) }

// UsedElemAt returns used ring slot idx%Size.
func (d *Driver) UsedElemAt(idx uint16) UsedElem {
	b := d.Bytes(d.Used+4+8*uint64(idx%d.Size), 8)
	return UsedElem{ID: binary.LittleEndian.Uint32(b), Len: binary.LittleEndian.Uint32(b[4:])}
}

// TakeUsed returns the used elements published since the previous call and
// frees the descriptors of their chains.
func (d *Driver) TakeUsed() []UsedElem {
	var out []UsedElem
	for end := d.UsedIdx(); d.lastUsed != end; d.lastUsed++ {
		e := d.UsedElemAt(d.lastUsed)
		out = append(out, e)
		if ids, ok := d.inflight[uint16(e.ID)]; ok {
			delete(d.inflight, uint16(e.ID))
			d.free = append(d.free, ids...)
		}
	}
	return out
}

func (d *Driver) store16(gpa uint64, v uint16) {
	if err := d.Mem.StoreU16(gpa, v); err != nil {
		panic(err)
	}
}

func (d *Driver) load16(gpa uint64) uint16 {
	v, err := d.Mem.LoadU16(gpa)
	if err != nil {
		panic(err)
	}
	return v
}
