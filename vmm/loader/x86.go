package loader

import (
	"encoding/binary"

	"github.com/krunbench/krunbench/vmm/kvm"
)

// GDT descriptor flags (access byte in bits 0-7, flags nibble in 12-15).
const (
	GDTCode64 = 0xa09b // present, ring 0, code exec/read accessed, L, G
	GDTData   = 0xc093 // present, ring 0, data read/write accessed, D/B, G
	GDTTSS    = 0x808b // present, 64-bit busy TSS, G
)

// GDTEntry encodes a segment descriptor.
func GDTEntry(flags uint16, base, limit uint32) uint64 {
	b, l, f := uint64(base), uint64(limit), uint64(flags)
	return (b&0xff000000)<<(56-24) | (f&0x0000f0ff)<<40 | (l&0x000f0000)<<(48-16) | (b&0x00ffffff)<<16 | l&0x0000ffff
}

// BootGDT is the boot GDT: null, 64-bit code (selector 0x08), data (0x10)
// and TSS (0x18), all flat.
func BootGDT() []uint64 {
	return []uint64{
		GDTEntry(0, 0, 0),
		GDTEntry(GDTCode64, 0, 0xfffff),
		GDTEntry(GDTData, 0, 0xfffff),
		GDTEntry(GDTTSS, 0, 0xfffff),
	}
}

// SegmentFromGDT decodes descriptor e at GDT index i into a kvm.Segment.
func SegmentFromGDT(e uint64, i int) kvm.Segment {
	base := (e>>16)&0xffffff | (e>>56&0xff)<<24
	limit := uint32(e&0xffff | (e>>48&0xf)<<16)
	g := uint8(e >> 55 & 1)
	if g == 1 {
		limit = limit<<12 | 0xfff
	}
	p := uint8(e >> 47 & 1)
	s := kvm.Segment{
		Base:     base,
		Limit:    limit,
		Selector: uint16(i * 8),
		Type:     uint8(e >> 40 & 0xf),
		Present:  p,
		DPL:      uint8(e >> 45 & 3),
		DB:       uint8(e >> 54 & 1),
		S:        uint8(e >> 44 & 1),
		L:        uint8(e >> 53 & 1),
		G:        g,
		AVL:      uint8(e >> 52 & 1),
	}
	if p == 0 {
		s.Unusable = 1
	}
	return s
}

// Page-table entry bits.
const (
	ptePresent  = 1 << 0
	pteWritable = 1 << 1
	ptePageSize = 1 << 7
)

// PageTables returns the PML4, PDPT and PD pages identity-mapping the
// first GiB with 2 MiB pages, for PML4Addr, PDPTAddr and PDAddr.
func PageTables() (pml4, pdpt, pd []byte) {
	pml4 = make([]byte, 4096)
	pdpt = make([]byte, 4096)
	pd = make([]byte, 4096)
	le := binary.LittleEndian
	le.PutUint64(pml4, PDPTAddr|ptePresent|pteWritable)
	le.PutUint64(pdpt, PDAddr|ptePresent|pteWritable)
	for i := range uint64(512) {
		le.PutUint64(pd[i*8:], i<<21|ptePresent|pteWritable|ptePageSize)
	}
	return pml4, pdpt, pd
}

// gdtBytes encodes the GDT little-endian.
func gdtBytes(gdt []uint64) []byte {
	b := make([]byte, 8*len(gdt))
	for i, e := range gdt {
		binary.LittleEndian.PutUint64(b[8*i:], e)
	}
	return b
}
