package loader

import (
	"encoding/binary"
	"fmt"
	"strings"
)

// boot_params layout.
const (
	ZeroPageSize      = 4096
	bpE820Entries     = 0x1e8
	bpE820Table       = 0x2d0
	e820EntrySize     = 20
	e820MaxEntries    = 128
	typeOfLoaderOther = 0xff
	kernelAlignment   = 0x01000000
)

// E820 memory types.
const (
	E820RAM      = 1
	E820Reserved = 2
)

// E820Entry is one entry of the BIOS memory map.
type E820Entry struct {
	Addr, Size uint64
	Type       uint32
}

// E820 returns the guest memory map for the given RAM regions: RAM
// [0, 0x9fc00), RAM from 1 MiB to the end of the first region, and every
// further region (RAM above 4 GiB) as RAM.
func E820(regions [][2]uint64) ([]E820Entry, error) {
	if len(regions) == 0 || regions[0][0] != 0 || regions[0][1] <= HighMemStart {
		return nil, fmt.Errorf("%w: guest RAM must start at 0 and extend past 1 MiB", ErrBadConfig)
	}
	out := []E820Entry{
		{0, EBDAStart, E820RAM},
		{HighMemStart, regions[0][1] - HighMemStart, E820RAM},
	}
	for _, r := range regions[1:] {
		out = append(out, E820Entry{r[0], r[1], E820RAM})
	}
	if len(out) > e820MaxEntries {
		return nil, fmt.Errorf("%w: %d e820 entries", ErrBadConfig, len(out))
	}
	return out, nil
}

// BootParams are the inputs of the zero page.
type BootParams struct {
	// SetupHeader is the bzImage setup header to copy in (nil for vmlinux).
	SetupHeader []byte
	// CmdlineAddr and CmdlineSize (including the NUL) locate the command line.
	CmdlineAddr uint32
	CmdlineSize uint32
	// InitrdAddr and InitrdSize locate an initial ramdisk (0 for none).
	InitrdAddr uint32
	InitrdSize uint32
	// E820 is the memory map.
	E820 []E820Entry
}

// ZeroPage builds the 4 KiB boot_params structure.
func ZeroPage(p BootParams) ([]byte, error) {
	if len(p.E820) > e820MaxEntries {
		return nil, fmt.Errorf("%w: %d e820 entries (max %d)", ErrBadConfig, len(p.E820), e820MaxEntries)
	}
	if len(p.SetupHeader) > hdrEnd-hdrStart {
		return nil, fmt.Errorf("%w: setup header of %d bytes", ErrBadConfig, len(p.SetupHeader))
	}
	zp := make([]byte, ZeroPageSize)
	le := binary.LittleEndian
	if p.SetupHeader != nil {
		copy(zp[hdrStart:], p.SetupHeader)
		zp[hdrLoadFlags] |= loadFlagHigh
	} else {
		le.PutUint16(zp[hdrBootFlag:], bootFlagValue)
		le.PutUint32(zp[hdrMagic:], hdrMagicValue)
		le.PutUint32(zp[hdrKernelAlign:], kernelAlignment)
		le.PutUint32(zp[hdrCmdlineSize:], p.CmdlineSize)
	}
	zp[hdrTypeOfLoader] = typeOfLoaderOther
	le.PutUint32(zp[hdrCmdLinePtr:], p.CmdlineAddr)
	le.PutUint32(zp[hdrRamdiskImage:], p.InitrdAddr)
	le.PutUint32(zp[hdrRamdiskSize:], p.InitrdSize)
	zp[bpE820Entries] = byte(len(p.E820))
	for i, e := range p.E820 {
		b := zp[bpE820Table+i*e820EntrySize:]
		le.PutUint64(b[0:], e.Addr)
		le.PutUint64(b[8:], e.Size)
		le.PutUint32(b[16:], e.Type)
	}
	return zp, nil
}

// Cmdline validates a kernel command line and returns it NUL-terminated.
// max is the kernel's limit (the bzImage cmdline_size field; 0 means
// CmdlineMaxSize).
func Cmdline(s string, max uint32) ([]byte, error) {
	if max == 0 || max > CmdlineMaxSize {
		max = CmdlineMaxSize
	}
	if strings.IndexByte(s, 0) >= 0 {
		return nil, fmt.Errorf("%w: command line contains a NUL byte", ErrBadConfig)
	}
	if uint64(len(s))+1 > uint64(max) {
		return nil, fmt.Errorf("%w: command line of %d bytes exceeds %d", ErrBadConfig, len(s), max-1)
	}
	return append([]byte(s), 0), nil
}
