// Package loader prepares an x86_64 guest for a direct 64-bit Linux boot,
// the way libkrun and Firecracker do it: it loads an uncompressed vmlinux
// ELF (or the protected-mode part of a bzImage with a 64-bit entry point),
// writes the zero page (boot_params) with the command line and e820 map,
// the GDT/IDT, identity-mapped page tables and an Intel MP table, and
// computes the boot vCPU state (registers, segments, FPU, MSRs, CPUID,
// local APIC LINT pins).
//
// Everything that turns parameters into bytes or register values is a
// pure function, testable without KVM. Guest input files are treated as
// untrusted: malformed kernels give errors wrapping ErrBadKernel, never a
// panic.
package loader

import (
	"errors"
	"fmt"

	"github.com/krunbench/krunbench/vmm/virtio"
)

// Guest-physical addresses of the boot structures (libkrun's x86_64 layout).
const (
	GDTAddr        = 0x500
	IDTAddr        = 0x520
	ZeroPageAddr   = 0x7000
	BootStackAddr  = 0x8ff0
	PML4Addr       = 0x9000
	PDPTAddr       = 0xa000
	PDAddr         = 0xb000
	CmdlineAddr    = 0x20000
	CmdlineMaxSize = 0x10000
	EBDAStart      = 0x9fc00 // MP table; end of conventional RAM in e820
	HighMemStart   = 0x100000
	BzImageLoad    = HighMemStart
	IOAPICAddr     = 0xfec00000
	LAPICAddr      = 0xfee00000
)

// Sentinel errors; errors returned by this package wrap them.
var (
	// ErrBadKernel reports a kernel image that is malformed or unsupported.
	ErrBadKernel = errors.New("loader: bad kernel image")
	// ErrNoRoom reports something that does not fit in guest RAM.
	ErrNoRoom = errors.New("loader: does not fit in guest memory")
	// ErrBadConfig reports invalid boot parameters.
	ErrBadConfig = errors.New("loader: invalid boot configuration")
)

// Memory is the guest RAM the loader writes into.
type Memory interface {
	// Slice returns host memory aliasing [gpa, gpa+n), inside one region.
	Slice(gpa, n uint64) ([]byte, error)
	// Regions returns the RAM regions sorted by GPA.
	Regions() []virtio.Region
}

// write copies b to guest memory at gpa.
func write(mem Memory, gpa uint64, b []byte) error {
	dst, err := mem.Slice(gpa, uint64(len(b)))
	if err != nil {
		return fmt.Errorf("%w: %#x+%#x: %w", ErrNoRoom, gpa, len(b), err)
	}
	copy(dst, b)
	return nil
}

// zero clears n bytes of guest memory at gpa.
func zero(mem Memory, gpa, n uint64) error {
	dst, err := mem.Slice(gpa, n)
	if err != nil {
		return fmt.Errorf("%w: %#x+%#x: %w", ErrNoRoom, gpa, n, err)
	}
	clear(dst)
	return nil
}
