package virtiotest

import (
	"sync/atomic"

	"github.com/krunbench/krunbench/vmm/virtio"
)

// AvailIdxCounter is the driver's guest memory, as the device sees it,
// counting the device's loads of avail->idx (a test of how often a device
// reads the index passes it where the device takes a virtio.GuestMemory).
type AvailIdxCounter struct {
	*virtio.Memory
	at    uint64
	loads atomic.Int64
}

// CountAvailIdx returns d's memory wrapped to count loads of avail->idx.
func (d *Driver) CountAvailIdx() *AvailIdxCounter {
	return &AvailIdxCounter{Memory: d.Mem, at: d.Avail + 2}
}

// LoadU16 is the memory's, counted when it reads avail->idx.
func (m *AvailIdxCounter) LoadU16(gpa uint64) (uint16, error) {
	if gpa == m.at {
		m.loads.Add(1)
	}
	return m.Memory.LoadU16(gpa)
}

// Loads returns how many times avail->idx was loaded so far.
func (m *AvailIdxCounter) Loads() int64 { return m.loads.Load() }
