// Package virtio implements the device side of virtio: bounds-checked
// access to guest memory, the split virtqueue (descriptor chains, used ring,
// notification suppression) and the interfaces a device presents to its
// transport (virtio-mmio or vhost-user).
//
// Everything the guest writes is treated as hostile: malformed input is
// reported as an error, never as a panic or an out-of-bounds access.
package virtio

import (
	"errors"
	"fmt"
	"math"
	"math/bits"
	"sort"
	"sync/atomic"
	"unsafe"
)

// PageSize is the alignment required of memory region addresses and sizes.
const PageSize = 4096

// Sentinel errors for guest memory access. Errors returned by this package
// wrap them; test with errors.Is.
var (
	// ErrOutOfBounds reports a guest-physical range that is not backed by
	// guest memory or that overflows the 64-bit address space.
	ErrOutOfBounds = errors.New("virtio: guest memory access out of bounds")
	// ErrMisaligned reports an access that is not naturally aligned.
	ErrMisaligned = errors.New("virtio: misaligned guest memory access")
	// ErrBadRegion reports an invalid region passed to NewMemory.
	ErrBadRegion = errors.New("virtio: invalid guest memory region")
)

// GuestMemory gives the device bounds-checked access to guest RAM by
// guest-physical address (GPA). Implementations must be safe for concurrent
// use.
//
// The integer helpers use little-endian byte order (the virtio 1.x wire
// order) and require natural alignment. They are atomic and sequentially
// consistent, which is stronger than the acquire/release ordering the
// virtio spec asks for around ring indices, and also provides the full
// barrier needed between publishing the used index and reading the
// driver's event index.
type GuestMemory interface {
	// Slice returns a host slice of length n aliasing guest memory at
	// [gpa, gpa+n). The range must lie inside a single region. A zero
	// length succeeds only when gpa lies inside a region. It is for the
	// device's own small accesses (ring entries, descriptors).
	Slice(gpa, n uint64) ([]byte, error)
	// AppendSlices appends to dst host slices covering [gpa, gpa+n),
	// splitting only where the range crosses from one region into a
	// GPA-contiguous neighbour. A zero length appends nothing and succeeds.
	// It is how chains' buffers and indirect tables are resolved: Memory
	// runs a region's FirstUse here.
	AppendSlices(dst [][]byte, gpa, n uint64) ([][]byte, error)

	LoadU16(gpa uint64) (uint16, error)
	LoadU32(gpa uint64) (uint32, error)
	LoadU64(gpa uint64) (uint64, error)
	StoreU16(gpa uint64, v uint16) error
	StoreU32(gpa uint64, v uint32) error
	StoreU64(gpa uint64, v uint64) error
}

// Region is one contiguous piece of guest RAM: Data (typically mmap'ed by
// the caller) backs guest-physical addresses [GPA, GPA+len(Data)).
type Region struct {
	GPA  uint64
	Data []byte
	// FirstUse, when not nil, runs once per block of Data the first time
	// AppendSlices resolves a range in that block. It must have been made
	// for len(Data) bytes.
	FirstUse *FirstUse
}

// End returns the first guest-physical address after the region.
func (r Region) End() uint64 { return r.GPA + uint64(len(r.Data)) }

// Memory is the standard GuestMemory: a set of non-overlapping regions.
// Lookups binary-search the sorted regions and cache the last hit. A Memory
// is immutable after construction and safe for concurrent use; the caller
// keeps the backing mappings alive for as long as it is in use.
type Memory struct {
	regions []Region
	last    atomic.Uint32
}

var _ GuestMemory = (*Memory)(nil)

// NewMemory builds a Memory from regions given in any order. Each region
// must be non-empty, have a page-aligned GPA and size, not wrap the address
// space, be 8-byte aligned in host memory, and not overlap another region.
func NewMemory(regions ...Region) (*Memory, error) {
	rs := make([]Region, len(regions))
	copy(rs, regions)
	sort.Slice(rs, func(i, j int) bool { return rs[i].GPA < rs[j].GPA })
	for i, r := range rs {
		n := uint64(len(r.Data))
		switch {
		case n == 0:
			return nil, fmt.Errorf("%w: region at %#x is empty", ErrBadRegion, r.GPA)
		case r.GPA%PageSize != 0 || n%PageSize != 0:
			return nil, fmt.Errorf("%w: region %#x+%#x is not page aligned", ErrBadRegion, r.GPA, n)
		case r.GPA > math.MaxUint64-n:
			return nil, fmt.Errorf("%w: region %#x+%#x wraps the address space", ErrBadRegion, r.GPA, n)
		case uintptr(unsafe.Pointer(&r.Data[0]))%8 != 0:
			return nil, fmt.Errorf("%w: region %#x is not 8-byte aligned in host memory", ErrBadRegion, r.GPA)
		case i > 0 && rs[i-1].End() > r.GPA:
			return nil, fmt.Errorf("%w: regions at %#x and %#x overlap", ErrBadRegion, rs[i-1].GPA, r.GPA)
		case r.FirstUse != nil && r.FirstUse.size != n:
			return nil, fmt.Errorf("%w: region %#x+%#x has a first use made for %#x bytes", ErrBadRegion, r.GPA, n, r.FirstUse.size)
		}
		rs[i].Data = r.Data[:n:n]
	}
	return &Memory{regions: rs}, nil
}

// Regions returns the regions sorted by GPA. The slice must not be modified.
func (m *Memory) Regions() []Region { return m.regions }

// find returns the index of the region containing gpa.
func (m *Memory) find(gpa uint64) (int, bool) {
	rs := m.regions
	if i := int(m.last.Load()); i < len(rs) && gpa >= rs[i].GPA && gpa-rs[i].GPA < uint64(len(rs[i].Data)) {
		return i, true
	}
	i := sort.Search(len(rs), func(i int) bool { return rs[i].End() > gpa })
	if i == len(rs) || gpa < rs[i].GPA {
		return 0, false
	}
	m.last.Store(uint32(i))
	return i, true
}

// Slice implements GuestMemory.
func (m *Memory) Slice(gpa, n uint64) ([]byte, error) {
	i, ok := m.find(gpa)
	if !ok {
		return nil, fmt.Errorf("%w: %#x+%#x", ErrOutOfBounds, gpa, n)
	}
	d := m.regions[i].Data
	off := gpa - m.regions[i].GPA
	if n > uint64(len(d))-off {
		return nil, fmt.Errorf("%w: %#x+%#x", ErrOutOfBounds, gpa, n)
	}
	return d[off : off+n : off+n], nil
}

// AppendSlices implements GuestMemory.
func (m *Memory) AppendSlices(dst [][]byte, gpa, n uint64) ([][]byte, error) {
	if n == 0 {
		return dst, nil
	}
	if n-1 > math.MaxUint64-gpa {
		return dst, fmt.Errorf("%w: %#x+%#x overflows", ErrOutOfBounds, gpa, n)
	}
	for n > 0 {
		i, ok := m.find(gpa)
		if !ok {
			return dst, fmt.Errorf("%w: %#x+%#x", ErrOutOfBounds, gpa, n)
		}
		d := m.regions[i].Data
		off := gpa - m.regions[i].GPA
		take := min(n, uint64(len(d))-off)
		if fu := m.regions[i].FirstUse; fu != nil {
			fu.use(d, off, take)
		}
		dst = append(dst, d[off:off+take:off+take])
		gpa += take
		n -= take
	}
	return dst, nil
}

// ptr returns a host pointer to the naturally aligned size-byte object at
// gpa. Regions are page aligned, so such an object never straddles two.
func (m *Memory) ptr(gpa, size uint64) (unsafe.Pointer, error) {
	if gpa&(size-1) != 0 {
		return nil, fmt.Errorf("%w: %#x (%d bytes)", ErrMisaligned, gpa, size)
	}
	i, ok := m.find(gpa)
	if !ok {
		return nil, fmt.Errorf("%w: %#x+%#x", ErrOutOfBounds, gpa, size)
	}
	return unsafe.Pointer(&m.regions[i].Data[gpa-m.regions[i].GPA]), nil
}

// hostLE reports whether the host is little-endian.
var hostLE = func() bool {
	x := uint16(1)
	return *(*byte)(unsafe.Pointer(&x)) == 1
}()

func le32(v uint32) uint32 {
	if hostLE {
		return v
	}
	return bits.ReverseBytes32(v)
}

func le64(v uint64) uint64 {
	if hostLE {
		return v
	}
	return bits.ReverseBytes64(v)
}

// LoadU16 implements GuestMemory. Go has no 16-bit atomics, so it loads the
// aligned 32-bit word containing the value (same page, so same region).
func (m *Memory) LoadU16(gpa uint64) (uint16, error) {
	if gpa&1 != 0 {
		return 0, fmt.Errorf("%w: %#x (2 bytes)", ErrMisaligned, gpa)
	}
	p, err := m.ptr(gpa&^3, 4)
	if err != nil {
		return 0, err
	}
	w := le32(atomic.LoadUint32((*uint32)(p)))
	return uint16(w >> ((gpa & 3) * 8)), nil
}

// StoreU16 implements GuestMemory with a compare-and-swap on the containing
// aligned 32-bit word, which preserves the neighbouring two bytes even if
// the guest writes them concurrently.
func (m *Memory) StoreU16(gpa uint64, v uint16) error {
	if gpa&1 != 0 {
		return fmt.Errorf("%w: %#x (2 bytes)", ErrMisaligned, gpa)
	}
	p, err := m.ptr(gpa&^3, 4)
	if err != nil {
		return err
	}
	shift := (gpa & 3) * 8
	w := (*uint32)(p)
	for {
		old := atomic.LoadUint32(w)
		nv := le32(le32(old)&^(0xffff<<shift) | uint32(v)<<shift)
		if atomic.CompareAndSwapUint32(w, old, nv) {
			return nil
		}
	}
}

// LoadU32 implements GuestMemory.
func (m *Memory) LoadU32(gpa uint64) (uint32, error) {
	p, err := m.ptr(gpa, 4)
	if err != nil {
		return 0, err
	}
	return le32(atomic.LoadUint32((*uint32)(p))), nil
}

// StoreU32 implements GuestMemory.
func (m *Memory) StoreU32(gpa uint64, v uint32) error {
	p, err := m.ptr(gpa, 4)
	if err != nil {
		return err
	}
	atomic.StoreUint32((*uint32)(p), le32(v))
	return nil
}

// LoadU64 implements GuestMemory.
func (m *Memory) LoadU64(gpa uint64) (uint64, error) {
	p, err := m.ptr(gpa, 8)
	if err != nil {
		return 0, err
	}
	return le64(atomic.LoadUint64((*uint64)(p))), nil
}

// StoreU64 implements GuestMemory.
func (m *Memory) StoreU64(gpa uint64, v uint64) error {
	p, err := m.ptr(gpa, 8)
	if err != nil {
		return err
	}
	atomic.StoreUint64((*uint64)(p), le64(v))
	return nil
}
