// Package kvm is a thin, typed wrapper over the Linux KVM ioctl API for
// x86_64: a *System (the /dev/kvm handle), a *VM and its *VCPU objects.
// Struct layouts match linux/kvm.h exactly; nothing here knows about
// guest kernels, devices or run loops.
package kvm

import (
	"errors"
	"fmt"
	"unsafe"

	"golang.org/x/sys/unix"
)

// Sentinel errors; errors returned by this package wrap them.
var (
	// ErrUnavailable reports that /dev/kvm cannot be opened or used.
	ErrUnavailable = errors.New("kvm: unavailable")
	// ErrAPIVersion reports a KVM API version other than APIVersion.
	ErrAPIVersion = errors.New("kvm: unsupported API version")
	// ErrMissingCapability reports a required capability KVM lacks.
	ErrMissingCapability = errors.New("kvm: missing capability")
	// ErrClosed reports use of a closed handle.
	ErrClosed = errors.New("kvm: handle closed")
)

// APIVersion is the only KVM API version there has ever been (KVM_API_VERSION).
const APIVersion = 12

// DevicePath is the KVM device node.
const DevicePath = "/dev/kvm"

// Cap is a KVM capability number (KVM_CAP_*).
type Cap uintptr

// Capabilities used by the VMM.
const (
	CapIRQChip            Cap = 0
	CapHLT                Cap = 1
	CapUserMemory         Cap = 3
	CapSetTSSAddr         Cap = 4
	CapExtCPUID           Cap = 7
	CapNRVCPUs            Cap = 9
	CapNRMemslots         Cap = 10
	CapMPState            Cap = 14
	CapUserNMI            Cap = 22
	CapIRQFD              Cap = 32
	CapPIT2               Cap = 33
	CapIOEventFD          Cap = 36
	CapSetIdentityMapAddr Cap = 37
	CapAdjustClock        Cap = 39
	CapMaxVCPUs           Cap = 66
	CapTSCDeadlineTimer   Cap = 72
	CapImmediateExit      Cap = 136
)

var capNames = map[Cap]string{
	CapIRQChip: "IRQCHIP", CapHLT: "HLT", CapUserMemory: "USER_MEMORY",
	CapSetTSSAddr: "SET_TSS_ADDR", CapExtCPUID: "EXT_CPUID", CapNRVCPUs: "NR_VCPUS",
	CapNRMemslots: "NR_MEMSLOTS", CapMPState: "MP_STATE", CapUserNMI: "USER_NMI",
	CapIRQFD: "IRQFD", CapPIT2: "PIT2", CapIOEventFD: "IOEVENTFD",
	CapSetIdentityMapAddr: "SET_IDENTITY_MAP_ADDR", CapAdjustClock: "ADJUST_CLOCK",
	CapMaxVCPUs: "MAX_VCPUS", CapTSCDeadlineTimer: "TSC_DEADLINE_TIMER",
	CapImmediateExit: "IMMEDIATE_EXIT",
}

// String returns the capability's KVM_CAP_ name without the prefix.
func (c Cap) String() string {
	if n, ok := capNames[c]; ok {
		return n
	}
	return fmt.Sprintf("CAP(%d)", uintptr(c))
}

// RequiredCaps are the capabilities the x86_64 VMM cannot run without.
var RequiredCaps = []Cap{
	CapIRQChip, CapHLT, CapUserMemory, CapSetTSSAddr, CapExtCPUID,
	CapMPState, CapIRQFD, CapPIT2, CapIOEventFD, CapSetIdentityMapAddr,
	CapImmediateExit,
}

// System is an open /dev/kvm.
type System struct {
	fd       int
	mmapSize int
}

// Open opens /dev/kvm and checks the API version.
func Open() (*System, error) {
	fd, err := unix.Open(DevicePath, unix.O_RDWR|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("%w: open %s: %w", ErrUnavailable, DevicePath, err)
	}
	s := &System{fd: fd}
	v, err := ioctl(fd, ioctlGetAPIVersion, 0)
	if err != nil {
		s.Close()
		return nil, fmt.Errorf("%w: KVM_GET_API_VERSION: %w", ErrUnavailable, err)
	}
	if v != APIVersion {
		s.Close()
		return nil, fmt.Errorf("%w: %d (want %d)", ErrAPIVersion, v, APIVersion)
	}
	n, err := ioctl(fd, ioctlGetVCPUMmapSize, 0)
	if err != nil || n == 0 {
		s.Close()
		return nil, fmt.Errorf("%w: KVM_GET_VCPU_MMAP_SIZE: %v", ErrUnavailable, err)
	}
	s.mmapSize = int(n)
	return s, nil
}

// Close closes /dev/kvm. VMs created from it stay valid.
func (s *System) Close() error {
	if s.fd < 0 {
		return ErrClosed
	}
	err := unix.Close(s.fd)
	s.fd = -1
	return err
}

// CheckExtension returns KVM_CHECK_EXTENSION for c: 0 when unsupported, a
// positive (sometimes meaningful) value when supported.
func (s *System) CheckExtension(c Cap) (int, error) {
	r, err := ioctl(s.fd, ioctlCheckExtension, uintptr(c))
	if err != nil {
		return 0, fmt.Errorf("kvm: KVM_CHECK_EXTENSION %v: %w", c, err)
	}
	return int(r), nil
}

// RequireCaps checks that every capability in caps is supported and names
// all missing ones in the error.
func (s *System) RequireCaps(caps ...Cap) error {
	var missing []error
	for _, c := range caps {
		n, err := s.CheckExtension(c)
		if err != nil {
			return err
		}
		if n <= 0 {
			missing = append(missing, fmt.Errorf("%w: KVM_CAP_%v", ErrMissingCapability, c))
		}
	}
	return errors.Join(missing...)
}

// CPUID1ECXTSCDeadline is the TSC-deadline timer bit of CPUID leaf 1.
const CPUID1ECXTSCDeadline = 1 << 24

// SupportedCPUID returns KVM_GET_SUPPORTED_CPUID: every CPUID leaf KVM can
// expose to a guest, with the feature bits it can virtualize. The
// TSC-deadline timer bit, which that ioctl never reports, is added where
// KVM_CAP_TSC_DEADLINE_TIMER says KVM emulates the timer (as QEMU and
// Firecracker do). It matters for boot: with it Linux skips calibrating the
// local APIC timer, a loop that waits with interrupts on for 25 PIT ticks;
// under nested virtualisation those ticks now and then stopped arriving and
// the guest spun there forever (about one boot in four in make e2e-kvm).
func (s *System) SupportedCPUID() ([]CPUIDEntry, error) {
	ents, err := s.getSupportedCPUID()
	if err != nil {
		return nil, err
	}
	if n, err := s.CheckExtension(CapTSCDeadlineTimer); err == nil && n > 0 {
		for i := range ents {
			if ents[i].Function == 1 {
				ents[i].ECX |= CPUID1ECXTSCDeadline
			}
		}
	}
	return ents, nil
}

func (s *System) getSupportedCPUID() ([]CPUIDEntry, error) {
	for n := 64; n <= 4096; n *= 2 {
		buf := make([]byte, unsafe.Sizeof(cpuid2Header{})+uintptr(n)*unsafe.Sizeof(CPUIDEntry{}))
		hdr := (*cpuid2Header)(unsafe.Pointer(&buf[0]))
		hdr.NEnt = uint32(n)
		_, err := ioctlPtr(s.fd, ioctlGetSupportedCPUID, unsafe.Pointer(&buf[0]))
		if errors.Is(err, unix.E2BIG) {
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("kvm: KVM_GET_SUPPORTED_CPUID: %w", err)
		}
		out := make([]CPUIDEntry, hdr.NEnt)
		copy(out, unsafe.Slice((*CPUIDEntry)(unsafe.Pointer(&buf[unsafe.Sizeof(cpuid2Header{})])), hdr.NEnt))
		return out, nil
	}
	return nil, fmt.Errorf("kvm: KVM_GET_SUPPORTED_CPUID: %w", unix.E2BIG)
}

// CreateVM creates a VM (machine type 0).
func (s *System) CreateVM() (*VM, error) {
	fd, err := ioctl(s.fd, ioctlCreateVM, 0)
	if err != nil {
		return nil, fmt.Errorf("kvm: KVM_CREATE_VM: %w", err)
	}
	return &VM{fd: int(fd), mmapSize: s.mmapSize}, nil
}
