package loader

import (
	"bytes"
	"encoding/binary"
	"fmt"
)

// Segment is a loadable piece of a kernel image: File bytes copied to
// guest-physical Addr, followed by MemSize-len(File) zero bytes.
type Segment struct {
	Addr    uint64
	File    []byte
	MemSize uint64
}

// Image is a parsed kernel ready to be copied into guest memory.
type Image struct {
	// Entry is the guest-physical 64-bit entry point.
	Entry uint64
	// Segments are the pieces to load.
	Segments []Segment
	// SetupHeader is the bzImage setup header (boot_params offset 0x1f1
	// onward), nil for a vmlinux.
	SetupHeader []byte
}

// ELF constants.
const (
	elfHeaderSize  = 64
	elfPhdrSize    = 56
	elfClass64     = 2
	elfDataLSB     = 1
	elfTypeExec    = 2
	elfMachineX86  = 62
	elfPTLoad      = 1
	elfMaxSegments = 64
)

// ParseELF parses an x86_64 ELF executable (an uncompressed vmlinux) and
// returns its PT_LOAD segments at their physical addresses. The returned
// slices alias data.
func ParseELF(data []byte) (*Image, error) {
	if len(data) < elfHeaderSize {
		return nil, fmt.Errorf("%w: %d bytes is too short for an ELF header", ErrBadKernel, len(data))
	}
	if !bytes.Equal(data[:4], []byte{0x7f, 'E', 'L', 'F'}) {
		return nil, fmt.Errorf("%w: not an ELF file (no \\x7fELF magic)", ErrBadKernel)
	}
	if data[4] != elfClass64 {
		return nil, fmt.Errorf("%w: ELF class %d, want 64-bit", ErrBadKernel, data[4])
	}
	if data[5] != elfDataLSB {
		return nil, fmt.Errorf("%w: big-endian ELF", ErrBadKernel)
	}
	le := binary.LittleEndian
	if t := le.Uint16(data[16:]); t != elfTypeExec {
		return nil, fmt.Errorf("%w: ELF type %d, want an executable (2)", ErrBadKernel, t)
	}
	if m := le.Uint16(data[18:]); m != elfMachineX86 {
		return nil, fmt.Errorf("%w: ELF machine %d, want x86-64 (62)", ErrBadKernel, m)
	}
	entry := le.Uint64(data[24:])
	phoff := le.Uint64(data[32:])
	phentsize := uint64(le.Uint16(data[54:]))
	phnum := uint64(le.Uint16(data[56:]))
	if phentsize != elfPhdrSize {
		return nil, fmt.Errorf("%w: program header size %d, want %d", ErrBadKernel, phentsize, elfPhdrSize)
	}
	if phnum == 0 || phnum > elfMaxSegments {
		return nil, fmt.Errorf("%w: %d program headers", ErrBadKernel, phnum)
	}
	if phoff > uint64(len(data)) || phnum*phentsize > uint64(len(data))-phoff {
		return nil, fmt.Errorf("%w: program headers at %#x+%#x beyond the %#x-byte file", ErrBadKernel, phoff, phnum*phentsize, len(data))
	}
	img := &Image{Entry: entry}
	for i := range phnum {
		ph := data[phoff+i*phentsize:]
		if le.Uint32(ph[0:]) != elfPTLoad {
			continue
		}
		off := le.Uint64(ph[8:])
		paddr := le.Uint64(ph[24:])
		filesz := le.Uint64(ph[32:])
		memsz := le.Uint64(ph[40:])
		if off > uint64(len(data)) || filesz > uint64(len(data))-off {
			return nil, fmt.Errorf("%w: segment %d file range %#x+%#x beyond the %#x-byte file", ErrBadKernel, i, off, filesz, len(data))
		}
		if memsz < filesz {
			return nil, fmt.Errorf("%w: segment %d memsz %#x < filesz %#x", ErrBadKernel, i, memsz, filesz)
		}
		if paddr+memsz < paddr {
			return nil, fmt.Errorf("%w: segment %d at %#x+%#x wraps", ErrBadKernel, i, paddr, memsz)
		}
		img.Segments = append(img.Segments, Segment{Addr: paddr, File: data[off : off+filesz], MemSize: memsz})
	}
	if len(img.Segments) == 0 {
		return nil, fmt.Errorf("%w: no loadable segments", ErrBadKernel)
	}
	inSeg := false
	for _, s := range img.Segments {
		if entry >= s.Addr && entry-s.Addr < s.MemSize {
			inSeg = true
		}
	}
	if !inSeg {
		return nil, fmt.Errorf("%w: entry point %#x is outside every loadable segment (is this a vmlinux with physical load addresses?)", ErrBadKernel, entry)
	}
	return img, nil
}

// Load copies the image's segments into guest memory. Each segment must
// lie inside one RAM region and above the boot structures (1 MiB).
func (img *Image) Load(mem Memory) error {
	for i, s := range img.Segments {
		if s.Addr < HighMemStart {
			return fmt.Errorf("%w: segment %d at %#x overlaps the boot area below 1 MiB", ErrBadKernel, i, s.Addr)
		}
		dst, err := mem.Slice(s.Addr, s.MemSize)
		if err != nil {
			return fmt.Errorf("%w: kernel segment %d at %#x+%#x: %w", ErrNoRoom, i, s.Addr, s.MemSize, err)
		}
		n := copy(dst, s.File)
		clear(dst[n:])
	}
	return nil
}

// LoadKernel parses data as a vmlinux ELF or, failing that, a bzImage, and
// loads it. It returns the parsed image (its Entry and SetupHeader).
func LoadKernel(mem Memory, data []byte) (*Image, error) {
	var img *Image
	var err error
	if len(data) >= 4 && bytes.Equal(data[:4], []byte{0x7f, 'E', 'L', 'F'}) {
		img, err = ParseELF(data)
	} else {
		img, err = ParseBzImage(data)
	}
	if err != nil {
		return nil, err
	}
	if err := img.Load(mem); err != nil {
		return nil, err
	}
	return img, nil
}
