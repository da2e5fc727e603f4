package loader

import (
	"encoding/binary"
	"fmt"
)

// bzImage setup header offsets (Documentation/arch/x86/boot.rst).
const (
	hdrStart         = 0x1f1
	hdrSetupSects    = 0x1f1
	hdrBootFlag      = 0x1fe
	hdrJump          = 0x200
	hdrMagic         = 0x202
	hdrVersion       = 0x206
	hdrTypeOfLoader  = 0x210
	hdrLoadFlags     = 0x211
	hdrRamdiskImage  = 0x218
	hdrRamdiskSize   = 0x21c
	hdrCmdLinePtr    = 0x228
	hdrKernelAlign   = 0x230
	hdrXLoadFlags    = 0x236
	hdrCmdlineSize   = 0x238
	hdrEnd           = 0x290 // end of the header area inside boot_params
	hdrMagicValue    = 0x53726448
	bootFlagValue    = 0xaa55
	minProtocol      = 0x0206
	xlfKernel64      = 0x1
	loadFlagHigh     = 0x1
	bzEntry64Offset  = 0x200
	defaultSetupSect = 4
)

// ParseBzImage parses a bzImage: the setup header ("HdrS", boot protocol
// >= 2.06) and the protected-mode kernel after the setup sectors, which
// is loaded at 1 MiB and entered through its 64-bit entry point (1 MiB +
// 0x200), which requires XLF_KERNEL_64 in xloadflags. The returned slices
// alias data. Prefer a vmlinux: it skips the in-guest decompression.
func ParseBzImage(data []byte) (*Image, error) {
	if len(data) < hdrEnd {
		return nil, fmt.Errorf("%w: %d bytes is too short for a bzImage setup header", ErrBadKernel, len(data))
	}
	le := binary.LittleEndian
	if le.Uint32(data[hdrMagic:]) != hdrMagicValue {
		return nil, fmt.Errorf("%w: no \"HdrS\" magic at %#x: neither a vmlinux ELF nor a bzImage", ErrBadKernel, hdrMagic)
	}
	if le.Uint16(data[hdrBootFlag:]) != bootFlagValue {
		return nil, fmt.Errorf("%w: bzImage boot flag %#x, want 0xaa55", ErrBadKernel, le.Uint16(data[hdrBootFlag:]))
	}
	if v := le.Uint16(data[hdrVersion:]); v < minProtocol {
		return nil, fmt.Errorf("%w: boot protocol %d.%02d, want >= 2.06", ErrBadKernel, v>>8, v&0xff)
	}
	if le.Uint16(data[hdrXLoadFlags:])&xlfKernel64 == 0 {
		return nil, fmt.Errorf("%w: bzImage has no 64-bit entry point (XLF_KERNEL_64 unset); use a vmlinux", ErrBadKernel)
	}
	sects := int(data[hdrSetupSects])
	if sects == 0 {
		sects = defaultSetupSect
	}
	off := (sects + 1) * 512
	if off >= len(data) {
		return nil, fmt.Errorf("%w: %d setup sectors leave no kernel in the %d-byte file", ErrBadKernel, sects, len(data))
	}
	end := min(hdrJump+2+int(data[hdrJump+1]), hdrEnd)
	hdr := data[hdrStart:end:end]
	kernel := data[off:]
	return &Image{
		Entry:       BzImageLoad + bzEntry64Offset,
		Segments:    []Segment{{Addr: BzImageLoad, File: kernel, MemSize: uint64(len(kernel))}},
		SetupHeader: hdr,
	}, nil
}
