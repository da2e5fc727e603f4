// Package memory allocates guest RAM for an x86_64 microVM as anonymous
// host mappings laid out like libkrun and Firecracker: RAM from guest
// physical address 0 up to the 32-bit MMIO gap, and whatever does not fit
// below the gap from 4 GiB upward. It registers the regions as KVM memory
// slots and exposes them as a virtio.GuestMemory for devices.
package memory

import (
	"errors"
	"fmt"

	"golang.org/x/sys/unix"

	"github.com/krunbench/krunbench/vmm/virtio"
)

// Guest-physical layout constants.
const (
	// MMIOGapStart is the start of the 768 MiB hole below 4 GiB reserved
	// for MMIO (virtio-mmio devices at 0xD0000000, the IOAPIC at
	// 0xFEC00000, the local APIC at 0xFEE00000).
	MMIOGapStart uint64 = 0xD000_0000
	// MMIOGapEnd is the end of the MMIO gap: 4 GiB, where high RAM starts.
	MMIOGapEnd uint64 = 1 << 32
	// MinSize is the smallest guest RAM accepted (the boot structures and
	// a kernel need more than this, but it keeps the layout sane).
	MinSize uint64 = 2 << 20
)

// ErrBadSize reports a RAM size that is too small or not page aligned.
var ErrBadSize = errors.New("memory: invalid guest RAM size")

// SlotSetter is the part of *kvm.VM that Register needs.
type SlotSetter interface {
	SetUserMemoryRegion(slot uint32, gpa uint64, mem []byte) error
}

// Memory is guest RAM. It embeds *virtio.Memory, so it is a
// virtio.GuestMemory; Close unmaps it.
type Memory struct {
	*virtio.Memory
	size uint64
	maps [][]byte
}

// Layout returns the RAM regions (GPA, size) for size bytes of guest RAM.
func Layout(size uint64) [][2]uint64 {
	low := min(size, MMIOGapStart)
	out := [][2]uint64{{0, low}}
	if size > low {
		out = append(out, [2]uint64{MMIOGapEnd, size - low})
	}
	return out
}

// New maps size bytes of guest RAM (a multiple of the page size, at least
// MinSize) following Layout. Pages are allocated lazily by the host.
func New(size uint64) (*Memory, error) {
	if size < MinSize || size%virtio.PageSize != 0 {
		return nil, fmt.Errorf("%w: %#x (want a multiple of %#x, at least %#x)", ErrBadSize, size, virtio.PageSize, MinSize)
	}
	m := &Memory{size: size}
	var regions []virtio.Region
	for _, r := range Layout(size) {
		if r[1] > uint64(^uint(0)>>1) {
			m.Close()
			return nil, fmt.Errorf("%w: %#x", ErrBadSize, size)
		}
		b, err := unix.Mmap(-1, 0, int(r[1]), unix.PROT_READ|unix.PROT_WRITE,
			unix.MAP_PRIVATE|unix.MAP_ANONYMOUS|unix.MAP_NORESERVE)
		if err != nil {
			m.Close()
			return nil, fmt.Errorf("memory: mmap %#x bytes for GPA %#x: %w", r[1], r[0], err)
		}
		m.maps = append(m.maps, b)
		regions = append(regions, virtio.Region{GPA: r[0], Data: b})
	}
	vm, err := virtio.NewMemory(regions...)
	if err != nil {
		m.Close()
		return nil, fmt.Errorf("memory: %w", err)
	}
	m.Memory = vm
	return m, nil
}

// Size returns the total RAM size in bytes.
func (m *Memory) Size() uint64 { return m.size }

// Register installs every region as a KVM memory slot, numbered from 0.
func (m *Memory) Register(vm SlotSetter) error {
	for i, r := range m.Regions() {
		if err := vm.SetUserMemoryRegion(uint32(i), r.GPA, r.Data); err != nil {
			return fmt.Errorf("memory: register region %d: %w", i, err)
		}
	}
	return nil
}

// Close unmaps guest RAM. The caller must make sure neither KVM (close the
// VM first) nor any device still uses it.
func (m *Memory) Close() error {
	var errs []error
	for _, b := range m.maps {
		if err := unix.Munmap(b); err != nil {
			errs = append(errs, err)
		}
	}
	m.maps = nil
	return errors.Join(errs...)
}
