package kvm

import (
	"errors"
	"fmt"
	"unsafe"

	"golang.org/x/sys/unix"
)

// ErrInterrupted reports a KVM_RUN that returned EINTR: a signal arrived
// or immediate_exit was set. It wraps unix.EINTR.
var ErrInterrupted = fmt.Errorf("kvm: KVM_RUN interrupted: %w", unix.EINTR)

// VCPU is a KVM virtual CPU with its mapped kvm_run structure. Run must be
// called from one goroutine at a time; the state accessors may be called
// whenever the vCPU is not inside Run.
type VCPU struct {
	fd  int
	id  int
	mem []byte
	run *runHeader
}

// ID returns the vCPU id given to CreateVCPU.
func (v *VCPU) ID() int { return v.id }

// Close unmaps kvm_run and closes the vCPU descriptor.
func (v *VCPU) Close() error {
	if v.fd < 0 {
		return ErrClosed
	}
	v.run = nil
	err := unix.Munmap(v.mem)
	if cerr := unix.Close(v.fd); err == nil {
		err = cerr
	}
	v.fd = -1
	return err
}

// Run enters the guest until the next exit that needs userspace and returns
// its reason. It returns ErrInterrupted (wrapping EINTR) when a signal or
// immediate_exit cut it short; other errors (EAGAIN included) wrap the
// errno.
func (v *VCPU) Run() (ExitReason, error) {
	_, _, errno := unix.Syscall(unix.SYS_IOCTL, uintptr(v.fd), ioctlRun, 0)
	switch errno {
	case 0:
		return v.ExitReason(), nil
	case unix.EINTR:
		return ExitIntr, ErrInterrupted
	default:
		return v.ExitReason(), fmt.Errorf("kvm: KVM_RUN vCPU %d: %w", v.id, errno)
	}
}

// GetRegs returns the general-purpose registers.
func (v *VCPU) GetRegs() (Regs, error) {
	var r Regs
	_, err := ioctlPtr(v.fd, ioctlGetRegs, unsafe.Pointer(&r))
	return r, v.wrap("KVM_GET_REGS", err)
}

// SetRegs sets the general-purpose registers.
func (v *VCPU) SetRegs(r Regs) error {
	_, err := ioctlPtr(v.fd, ioctlSetRegs, unsafe.Pointer(&r))
	return v.wrap("KVM_SET_REGS", err)
}

// GetSregs returns the segment and control registers.
func (v *VCPU) GetSregs() (Sregs, error) {
	var s Sregs
	_, err := ioctlPtr(v.fd, ioctlGetSregs, unsafe.Pointer(&s))
	return s, v.wrap("KVM_GET_SREGS", err)
}

// SetSregs sets the segment and control registers.
func (v *VCPU) SetSregs(s Sregs) error {
	_, err := ioctlPtr(v.fd, ioctlSetSregs, unsafe.Pointer(&s))
	return v.wrap("KVM_SET_SREGS", err)
}

// GetFPU returns the FPU/SSE state.
func (v *VCPU) GetFPU() (FPU, error) {
	var f FPU
	_, err := ioctlPtr(v.fd, ioctlGetFPU, unsafe.Pointer(&f))
	return f, v.wrap("KVM_GET_FPU", err)
}

// SetFPU sets the FPU/SSE state.
func (v *VCPU) SetFPU(f FPU) error {
	_, err := ioctlPtr(v.fd, ioctlSetFPU, unsafe.Pointer(&f))
	return v.wrap("KVM_SET_FPU", err)
}

// SetMSRs writes model-specific registers. KVM stops at the first MSR it
// rejects; the error names it.
func (v *VCPU) SetMSRs(entries []MSREntry) error {
	if len(entries) == 0 {
		return nil
	}
	buf := msrBuffer(entries)
	n, err := ioctlPtr(v.fd, ioctlSetMSRs, unsafe.Pointer(&buf[0]))
	if err != nil {
		return v.wrap("KVM_SET_MSRS", err)
	}
	if int(n) != len(entries) {
		return fmt.Errorf("kvm: KVM_SET_MSRS vCPU %d: MSR %#x rejected (%d of %d set)", v.id, entries[n].Index, n, len(entries))
	}
	return nil
}

// GetMSRs reads the MSRs with the given indices.
func (v *VCPU) GetMSRs(indices ...uint32) ([]MSREntry, error) {
	if len(indices) == 0 {
		return nil, nil
	}
	entries := make([]MSREntry, len(indices))
	for i, idx := range indices {
		entries[i].Index = idx
	}
	buf := msrBuffer(entries)
	n, err := ioctlPtr(v.fd, ioctlGetMSRs, unsafe.Pointer(&buf[0]))
	if err != nil {
		return nil, v.wrap("KVM_GET_MSRS", err)
	}
	copy(entries, unsafe.Slice((*MSREntry)(unsafe.Pointer(&buf[unsafe.Sizeof(msrsHeader{})/8])), len(entries)))
	if int(n) != len(entries) {
		return entries[:n], fmt.Errorf("kvm: KVM_GET_MSRS vCPU %d: MSR %#x unreadable", v.id, indices[n])
	}
	return entries, nil
}

// msrBuffer lays out struct kvm_msrs with its entries in a buffer whose
// backing array is 8-byte aligned.
func msrBuffer(entries []MSREntry) []uint64 {
	hdr := unsafe.Sizeof(msrsHeader{})
	words := (hdr + uintptr(len(entries))*unsafe.Sizeof(MSREntry{})) / 8
	buf := make([]uint64, words)
	(*msrsHeader)(unsafe.Pointer(&buf[0])).NMSRs = uint32(len(entries))
	copy(unsafe.Slice((*MSREntry)(unsafe.Pointer(&buf[hdr/8])), len(entries)), entries)
	return buf
}

// SetCPUID2 sets the CPUID leaves the guest sees.
func (v *VCPU) SetCPUID2(entries []CPUIDEntry) error {
	hdr := unsafe.Sizeof(cpuid2Header{})
	buf := make([]uint32, (hdr+uintptr(len(entries))*unsafe.Sizeof(CPUIDEntry{}))/4)
	(*cpuid2Header)(unsafe.Pointer(&buf[0])).NEnt = uint32(len(entries))
	if len(entries) > 0 {
		copy(unsafe.Slice((*CPUIDEntry)(unsafe.Pointer(&buf[hdr/4])), len(entries)), entries)
	}
	_, err := ioctlPtr(v.fd, ioctlSetCPUID2, unsafe.Pointer(&buf[0]))
	return v.wrap("KVM_SET_CPUID2", err)
}

// GetLAPIC returns the local APIC register page (needs the in-kernel irqchip).
func (v *VCPU) GetLAPIC() (LAPICState, error) {
	var l LAPICState
	_, err := ioctlPtr(v.fd, ioctlGetLAPIC, unsafe.Pointer(&l))
	return l, v.wrap("KVM_GET_LAPIC", err)
}

// SetLAPIC sets the local APIC register page.
func (v *VCPU) SetLAPIC(l LAPICState) error {
	_, err := ioctlPtr(v.fd, ioctlSetLAPIC, unsafe.Pointer(&l))
	return v.wrap("KVM_SET_LAPIC", err)
}

// GetMPState returns the multiprocessing state (MPState*).
func (v *VCPU) GetMPState() (uint32, error) {
	var s MPState
	_, err := ioctlPtr(v.fd, ioctlGetMPState, unsafe.Pointer(&s))
	return s.State, v.wrap("KVM_GET_MP_STATE", err)
}

// SetMPState sets the multiprocessing state (MPState*).
func (v *VCPU) SetMPState(state uint32) error {
	s := MPState{State: state}
	_, err := ioctlPtr(v.fd, ioctlSetMPState, unsafe.Pointer(&s))
	return v.wrap("KVM_SET_MP_STATE", err)
}

func (v *VCPU) wrap(op string, err error) error {
	if err == nil {
		return nil
	}
	if errors.Is(err, unix.EBADF) && v.fd < 0 {
		err = ErrClosed
	}
	return fmt.Errorf("kvm: %s vCPU %d: %w", op, v.id, err)
}
