// Package bus routes guest port I/O and MMIO accesses to devices by
// address range. A VMM has one Bus for the x86 I/O port space and one for
// MMIO; vCPU run loops call Read and Write on every such exit.
package bus

import (
	"errors"
	"fmt"
	"sort"
	"sync"
	"sync/atomic"
)

// Device handles accesses to the address range it was inserted at. offset
// is relative to the start of that range; len(data) is the access width.
// Read fills data; Write consumes it. Handlers may be called from several
// vCPU threads at once and must do their own locking.
type Device interface {
	Read(offset uint64, data []byte)
	Write(offset uint64, data []byte)
}

// Sentinel errors.
var (
	// ErrOverlap reports an Insert whose range overlaps an existing one.
	ErrOverlap = errors.New("bus: range overlaps an existing device")
	// ErrBadRange reports an empty or wrapping range.
	ErrBadRange = errors.New("bus: invalid range")
)

type entry struct {
	base, size uint64
	dev        Device
}

func (e entry) end() uint64 { return e.base + e.size }

// maxMissAddrs bounds how many distinct unhandled addresses are tracked.
const maxMissAddrs = 256

// Bus maps address ranges to devices. Lookups are lock-free; Insert may
// run concurrently with them.
type Bus struct {
	name    string
	mu      sync.Mutex // serializes writers of entries and misses
	entries atomic.Pointer[[]entry]
	nMiss   atomic.Uint64
	misses  map[uint64]uint64
}

// New returns an empty bus; name ("pio", "mmio") appears in errors.
func New(name string) *Bus {
	b := &Bus{name: name, misses: make(map[uint64]uint64)}
	b.entries.Store(&[]entry{})
	return b
}

// Insert attaches dev to [base, base+size).
func (b *Bus) Insert(base, size uint64, dev Device) error {
	if size == 0 || base+size < base {
		return fmt.Errorf("%w: %s %#x+%#x", ErrBadRange, b.name, base, size)
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	old := *b.entries.Load()
	for _, e := range old {
		if base < e.end() && e.base < base+size {
			return fmt.Errorf("%w: %s %#x+%#x and %#x+%#x", ErrOverlap, b.name, base, size, e.base, e.size)
		}
	}
	n := append(append(make([]entry, 0, len(old)+1), old...), entry{base, size, dev})
	sort.Slice(n, func(i, j int) bool { return n[i].base < n[j].base })
	b.entries.Store(&n)
	return nil
}

// Remove detaches the device inserted at base and reports whether there
// was one.
func (b *Bus) Remove(base uint64) bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	old := *b.entries.Load()
	for i, e := range old {
		if e.base == base {
			n := append(append(make([]entry, 0, len(old)-1), old[:i]...), old[i+1:]...)
			b.entries.Store(&n)
			return true
		}
	}
	return false
}

func (b *Bus) find(addr uint64) (entry, bool) {
	es := *b.entries.Load()
	i := sort.Search(len(es), func(i int) bool { return es[i].end() > addr })
	if i == len(es) || addr < es[i].base {
		return entry{}, false
	}
	return es[i], true
}

// Read dispatches a read of len(data) bytes at addr. When no device claims
// addr it fills data with all-ones (what an empty ISA/PCI bus returns),
// counts the miss and returns false.
func (b *Bus) Read(addr uint64, data []byte) bool {
	if e, ok := b.find(addr); ok {
		e.dev.Read(addr-e.base, data)
		return true
	}
	for i := range data {
		data[i] = 0xff
	}
	b.miss(addr)
	return false
}

// Write dispatches a write at addr. Unclaimed writes are dropped, counted
// and reported with false.
func (b *Bus) Write(addr uint64, data []byte) bool {
	if e, ok := b.find(addr); ok {
		e.dev.Write(addr-e.base, data)
		return true
	}
	b.miss(addr)
	return false
}

func (b *Bus) miss(addr uint64) {
	b.nMiss.Add(1)
	b.mu.Lock()
	if _, ok := b.misses[addr]; ok || len(b.misses) < maxMissAddrs {
		b.misses[addr]++
	}
	b.mu.Unlock()
}

// Unhandled returns the number of accesses no device claimed and, for up
// to 256 distinct addresses, how often each was hit.
func (b *Bus) Unhandled() (total uint64, byAddr map[uint64]uint64) {
	b.mu.Lock()
	defer b.mu.Unlock()
	byAddr = make(map[uint64]uint64, len(b.misses))
	for a, n := range b.misses {
		byAddr[a] = n
	}
	return b.nMiss.Load(), byAddr
}
