package loader

import (
	"encoding/binary"
	"fmt"
	"math"
)

// Config describes a direct Linux boot.
type Config struct {
	// Cmdline is the kernel command line.
	Cmdline string
	// VCPUs is the number of vCPUs the MP table lists.
	VCPUs int
	// InitrdAddr and InitrdSize locate an initial ramdisk already in guest
	// memory (see LoadInitrd); zero for none.
	InitrdAddr, InitrdSize uint64
}

// Setup writes the boot structures for img into guest memory: command
// line, zero page, GDT, IDT, page tables and MP table. Load the kernel
// (img.Load or LoadKernel) separately.
func Setup(mem Memory, img *Image, cfg Config) error {
	maxCmd := uint32(0)
	if off := hdrCmdlineSize - hdrStart; len(img.SetupHeader) >= off+4 {
		// The bzImage's limit excludes the terminating NUL.
		maxCmd = binary.LittleEndian.Uint32(img.SetupHeader[off:]) + 1
	}
	cmd, err := Cmdline(cfg.Cmdline, maxCmd)
	if err != nil {
		return err
	}
	if err := zero(mem, CmdlineAddr, CmdlineMaxSize); err != nil {
		return err
	}
	if err := write(mem, CmdlineAddr, cmd); err != nil {
		return err
	}
	if cfg.InitrdAddr > math.MaxUint32 || cfg.InitrdSize > math.MaxUint32 || cfg.InitrdAddr+cfg.InitrdSize > math.MaxUint32 {
		return fmt.Errorf("%w: initrd %#x+%#x must lie below 4 GiB", ErrBadConfig, cfg.InitrdAddr, cfg.InitrdSize)
	}
	var ram [][2]uint64
	for _, r := range mem.Regions() {
		ram = append(ram, [2]uint64{r.GPA, uint64(len(r.Data))})
	}
	e820, err := E820(ram)
	if err != nil {
		return err
	}
	zp, err := ZeroPage(BootParams{
		SetupHeader: img.SetupHeader,
		CmdlineAddr: CmdlineAddr,
		CmdlineSize: uint32(len(cmd)),
		InitrdAddr:  uint32(cfg.InitrdAddr),
		InitrdSize:  uint32(cfg.InitrdSize),
		E820:        e820,
	})
	if err != nil {
		return err
	}
	if err := write(mem, ZeroPageAddr, zp); err != nil {
		return err
	}
	if err := write(mem, GDTAddr, gdtBytes(BootGDT())); err != nil {
		return err
	}
	if err := zero(mem, IDTAddr, 8); err != nil {
		return err
	}
	pml4, pdpt, pd := PageTables()
	for _, p := range []struct {
		addr uint64
		b    []byte
	}{{PML4Addr, pml4}, {PDPTAddr, pdpt}, {PDAddr, pd}} {
		if err := write(mem, p.addr, p.b); err != nil {
			return err
		}
	}
	mp, err := MPTable(EBDAStart, cfg.VCPUs)
	if err != nil {
		return err
	}
	return write(mem, EBDAStart, mp)
}

// LoadInitrd copies an initial ramdisk to the highest page-aligned address
// in the first RAM region (and below 2 GiB, the default initrd_addr_max)
// where it does not overlap the kernel, and returns its address for
// Config.InitrdAddr.
func LoadInitrd(mem Memory, img *Image, initrd []byte) (uint64, error) {
	regions := mem.Regions()
	if len(regions) == 0 {
		return 0, fmt.Errorf("%w: no RAM", ErrNoRoom)
	}
	top := min(uint64(len(regions[0].Data)), 0x7fffffff+1)
	kernelEnd := uint64(0)
	for _, s := range img.Segments {
		kernelEnd = max(kernelEnd, s.Addr+s.MemSize)
	}
	size := uint64(len(initrd))
	if size > top {
		return 0, fmt.Errorf("%w: initrd of %d bytes", ErrNoRoom, size)
	}
	addr := (top - size) &^ 0xfff
	if addr < kernelEnd {
		return 0, fmt.Errorf("%w: initrd of %d bytes would overlap the kernel (ends at %#x)", ErrNoRoom, size, kernelEnd)
	}
	return addr, write(mem, addr, initrd)
}
