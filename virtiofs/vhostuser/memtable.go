package vhostuser

import (
	"math"

	"golang.org/x/sys/unix"

	"github.com/krunbench/krunbench/vmm/virtio"
)

// memRegion is one mapped guest RAM region.
type memRegion memRegionMsg

// mapped is a memRegion with its mapping.
type mapped struct {
	memRegion
	mapping []byte // the whole mmap, page aligned
	data    []byte // the region's bytes inside it
	// prefault maps a block's resident pages at its first use (nil if
	// data is not page aligned); kept across table rebuilds.
	prefault *virtio.FirstUse
}

// memTable is the set of guest RAM regions shared by the front-end. It is
// used only by the connection's goroutine; the virtio.Memory built from it
// is what the device sees.
type memTable struct {
	regions []*mapped
	mem     *virtio.Memory // nil when there are no regions
}

// check validates a region description against itself and the table.
func (t *memTable) check(r memRegionMsg) error {
	switch {
	case r.size == 0:
		return protoErr("memory region at %#x is empty", r.gpa)
	case r.gpa%virtio.PageSize != 0 || r.size%virtio.PageSize != 0:
		return protoErr("memory region %#x+%#x is not page aligned", r.gpa, r.size)
	case r.size > math.MaxInt-pageSize:
		return protoErr("memory region %#x+%#x is too large", r.gpa, r.size)
	case r.gpa > math.MaxUint64-r.size, r.userAddr > math.MaxUint64-r.size,
		r.mmapOffset > math.MaxInt64-r.size-pageSize:
		return protoErr("memory region %#x+%#x (user %#x, offset %#x) wraps around", r.gpa, r.size, r.userAddr, r.mmapOffset)
	}
	for _, o := range t.regions {
		if r.gpa < o.gpa+o.size && o.gpa < r.gpa+r.size {
			return protoErr("memory region %#x+%#x overlaps %#x+%#x", r.gpa, r.size, o.gpa, o.size)
		}
		if r.userAddr < o.userAddr+o.size && o.userAddr < r.userAddr+r.size {
			return protoErr("memory region %#x+%#x: user range %#x+%#x overlaps that of %#x", r.gpa, r.size, r.userAddr, r.size, o.gpa)
		}
	}
	return nil
}

// mapRegion maps r from fd (which the caller still owns) after checking
// that the file is large enough: touching a mapping beyond the end of its
// file would raise SIGBUS.
func mapRegion(r memRegionMsg, fd int) (*mapped, error) {
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		return nil, protoErr("memory region %#x: fstat on its fd: %v", r.gpa, err)
	}
	if st.Mode&unix.S_IFMT != unix.S_IFREG {
		return nil, protoErr("memory region %#x: fd is not a regular file (mode %#o)", r.gpa, st.Mode)
	}
	if uint64(st.Size) < r.mmapOffset+r.size {
		return nil, protoErr("memory region %#x+%#x: file of %d bytes is shorter than offset %#x + size", r.gpa, r.size, st.Size, r.mmapOffset)
	}
	start := r.mmapOffset &^ (pageSize - 1)
	delta := r.mmapOffset - start
	b, err := unix.Mmap(fd, int64(start), int(delta+r.size), unix.PROT_READ|unix.PROT_WRITE, unix.MAP_SHARED)
	if err != nil {
		return nil, protoErr("memory region %#x+%#x: mmap at offset %#x: %v", r.gpa, r.size, r.mmapOffset, err)
	}
	data := b[delta : delta+r.size : delta+r.size]
	return &mapped{memRegion: memRegion(r), mapping: b, data: data, prefault: newPrefault(data)}, nil
}

func (m *mapped) unmap() { _ = unix.Munmap(m.mapping) }

// rebuild recomputes the virtio.Memory after a change.
func (t *memTable) rebuild() error {
	if len(t.regions) == 0 {
		t.mem = nil
		return nil
	}
	rs := make([]virtio.Region, len(t.regions))
	for i, r := range t.regions {
		rs[i] = virtio.Region{GPA: r.gpa, Data: r.data, FirstUse: r.prefault}
	}
	mem, err := virtio.NewMemory(rs...)
	if err != nil {
		return protoErr("guest memory: %v", err)
	}
	t.mem = mem
	return nil
}

// add maps and adds one region; fd stays the caller's.
func (t *memTable) add(r memRegionMsg, fd int, maxSlots int) error {
	if len(t.regions) >= maxSlots {
		return protoErr("ADD_MEM_REG: all %d memory slots in use", maxSlots)
	}
	if err := t.check(r); err != nil {
		return err
	}
	m, err := mapRegion(r, fd)
	if err != nil {
		return err
	}
	t.regions = append(t.regions, m)
	if err := t.rebuild(); err != nil {
		t.regions = t.regions[:len(t.regions)-1]
		m.unmap()
		_ = t.rebuild()
		return err
	}
	return nil
}

// remove unmaps the region matching r's guest address, size and user
// address (the mmap offset is not compared, as the spec allows).
func (t *memTable) remove(r memRegionMsg) error {
	for i, o := range t.regions {
		if o.gpa == r.gpa && o.size == r.size && o.userAddr == r.userAddr {
			t.regions = append(t.regions[:i], t.regions[i+1:]...)
			o.unmap()
			return t.rebuild()
		}
	}
	return protoErr("REM_MEM_REG: no region %#x+%#x at user address %#x", r.gpa, r.size, r.userAddr)
}

// replace maps a whole new table (SET_MEM_TABLE); on error the old table is
// kept.
func (t *memTable) replace(rs []memRegionMsg, fds []int) error {
	var n memTable
	for i, r := range rs {
		if err := n.check(r); err != nil {
			n.clear()
			return err
		}
		m, err := mapRegion(r, fds[i])
		if err != nil {
			n.clear()
			return err
		}
		n.regions = append(n.regions, m)
	}
	if err := n.rebuild(); err != nil {
		n.clear()
		return err
	}
	t.clear()
	*t = n
	return nil
}

// clear unmaps every region.
func (t *memTable) clear() {
	for _, r := range t.regions {
		r.unmap()
	}
	t.regions, t.mem = nil, nil
}

// translate converts a front-end user address to a guest-physical one.
func (t *memTable) translate(uaddr uint64) (uint64, bool) {
	for _, r := range t.regions {
		if uaddr >= r.userAddr && uaddr-r.userAddr < r.size {
			return r.gpa + (uaddr - r.userAddr), true
		}
	}
	return 0, false
}
