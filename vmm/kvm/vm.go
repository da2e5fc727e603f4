package kvm

import (
	"fmt"
	"unsafe"

	"golang.org/x/sys/unix"
)

// VM is a KVM virtual machine file descriptor.
type VM struct {
	fd       int
	mmapSize int
}

// Close closes the VM descriptor. The kernel frees the VM once its vCPUs
// are closed too.
func (vm *VM) Close() error {
	if vm.fd < 0 {
		return ErrClosed
	}
	err := unix.Close(vm.fd)
	vm.fd = -1
	return err
}

// CheckExtension is KVM_CHECK_EXTENSION on the VM (answers may differ from
// the system-wide ones, e.g. for CapMaxVCPUs).
func (vm *VM) CheckExtension(c Cap) (int, error) {
	r, err := ioctl(vm.fd, ioctlCheckExtension, uintptr(c))
	if err != nil {
		return 0, fmt.Errorf("kvm: KVM_CHECK_EXTENSION %v: %w", c, err)
	}
	return int(r), nil
}

// SetUserMemoryRegion maps host memory mem at guest-physical address gpa in
// memory slot slot. mem must be page aligned and stay mapped while the VM
// uses it. A nil or empty mem deletes the slot.
func (vm *VM) SetUserMemoryRegion(slot uint32, gpa uint64, mem []byte) error {
	r := userspaceMemoryRegion{Slot: slot, GuestPhysAddr: gpa, MemorySize: uint64(len(mem))}
	if len(mem) > 0 {
		r.UserspaceAddr = uint64(uintptr(unsafe.Pointer(&mem[0])))
	}
	if _, err := ioctlPtr(vm.fd, ioctlSetUserMemoryRegion, unsafe.Pointer(&r)); err != nil {
		return fmt.Errorf("kvm: KVM_SET_USER_MEMORY_REGION slot %d gpa %#x size %#x: %w", slot, gpa, len(mem), err)
	}
	return nil
}

// SetTSSAddr places the three-page region KVM needs for the real-mode TSS
// (Intel VMX) at gpa; it must not overlap guest RAM or MMIO.
func (vm *VM) SetTSSAddr(gpa uint64) error {
	if _, err := ioctl(vm.fd, ioctlSetTSSAddr, uintptr(gpa)); err != nil {
		return fmt.Errorf("kvm: KVM_SET_TSS_ADDR %#x: %w", gpa, err)
	}
	return nil
}

// SetIdentityMapAddr places the one-page identity-map page table KVM needs
// on Intel VMX without unrestricted guest. Call it before creating vCPUs.
func (vm *VM) SetIdentityMapAddr(gpa uint64) error {
	if _, err := ioctlPtr(vm.fd, ioctlSetIdentityMapAddr, unsafe.Pointer(&gpa)); err != nil {
		return fmt.Errorf("kvm: KVM_SET_IDENTITY_MAP_ADDR %#x: %w", gpa, err)
	}
	return nil
}

// CreateIRQChip creates the in-kernel interrupt controllers: two 8259 PICs,
// an IOAPIC and per-vCPU local APICs. Call it before creating vCPUs.
func (vm *VM) CreateIRQChip() error {
	if _, err := ioctl(vm.fd, ioctlCreateIRQChip, 0); err != nil {
		return fmt.Errorf("kvm: KVM_CREATE_IRQCHIP: %w", err)
	}
	return nil
}

// CreatePIT2 creates the in-kernel i8254 PIT (ports 0x40-0x43) with a dummy
// speaker port 0x61. It needs the in-kernel irqchip.
func (vm *VM) CreatePIT2() error {
	c := pitConfig{Flags: pitSpeakerDummy}
	if _, err := ioctlPtr(vm.fd, ioctlCreatePIT2, unsafe.Pointer(&c)); err != nil {
		return fmt.Errorf("kvm: KVM_CREATE_PIT2: %w", err)
	}
	return nil
}

// IRQLine sets the level of an in-kernel irqchip input (GSI). Edge
// interrupts are a pulse: IRQLine(n, true) then IRQLine(n, false).
func (vm *VM) IRQLine(gsi uint32, high bool) error {
	l := irqLevel{IRQ: gsi}
	if high {
		l.Level = 1
	}
	if _, err := ioctlPtr(vm.fd, ioctlIRQLine, unsafe.Pointer(&l)); err != nil {
		return fmt.Errorf("kvm: KVM_IRQ_LINE gsi %d: %w", gsi, err)
	}
	return nil
}

// IOEventFD describes an ioeventfd registration: a guest write of Len bytes
// to Addr (MMIO, or a port when PIO) signals the eventfd FD instead of
// exiting to userspace. With Datamatch set, only writes of that value do.
type IOEventFD struct {
	FD        int
	Addr      uint64
	Len       uint32 // 0 (any length), 1, 2, 4 or 8
	PIO       bool
	Datamatch *uint64
}

func (e IOEventFD) raw(deassign bool) ioeventfd {
	r := ioeventfd{Addr: e.Addr, Len: e.Len, FD: int32(e.FD)}
	if e.PIO {
		r.Flags |= ioeventfdFlagPIO
	}
	if e.Datamatch != nil {
		r.Flags |= ioeventfdFlagDatamatch
		r.Datamatch = *e.Datamatch
	}
	if deassign {
		r.Flags |= ioeventfdFlagDeassign
	}
	return r
}

// RegisterIOEventFD registers e with KVM_IOEVENTFD.
func (vm *VM) RegisterIOEventFD(e IOEventFD) error {
	r := e.raw(false)
	if _, err := ioctlPtr(vm.fd, ioctlIOEventFD, unsafe.Pointer(&r)); err != nil {
		return fmt.Errorf("kvm: KVM_IOEVENTFD addr %#x: %w", e.Addr, err)
	}
	return nil
}

// UnregisterIOEventFD removes a registration made with the same e.
func (vm *VM) UnregisterIOEventFD(e IOEventFD) error {
	r := e.raw(true)
	if _, err := ioctlPtr(vm.fd, ioctlIOEventFD, unsafe.Pointer(&r)); err != nil {
		return fmt.Errorf("kvm: KVM_IOEVENTFD deassign addr %#x: %w", e.Addr, err)
	}
	return nil
}

// RegisterIRQFD makes a write to eventfd fd raise (pulse) GSI gsi of the
// in-kernel irqchip.
func (vm *VM) RegisterIRQFD(fd int, gsi uint32) error {
	r := irqfd{FD: uint32(fd), GSI: gsi}
	if _, err := ioctlPtr(vm.fd, ioctlIRQFD, unsafe.Pointer(&r)); err != nil {
		return fmt.Errorf("kvm: KVM_IRQFD gsi %d: %w", gsi, err)
	}
	return nil
}

// UnregisterIRQFD removes an irqfd registration.
func (vm *VM) UnregisterIRQFD(fd int, gsi uint32) error {
	r := irqfd{FD: uint32(fd), GSI: gsi, Flags: irqfdFlagDeassign}
	if _, err := ioctlPtr(vm.fd, ioctlIRQFD, unsafe.Pointer(&r)); err != nil {
		return fmt.Errorf("kvm: KVM_IRQFD deassign gsi %d: %w", gsi, err)
	}
	return nil
}

// CreateVCPU creates vCPU id (the initial APIC id on x86) and maps its
// shared kvm_run structure.
func (vm *VM) CreateVCPU(id int) (*VCPU, error) {
	fd, err := ioctl(vm.fd, ioctlCreateVCPU, uintptr(id))
	if err != nil {
		return nil, fmt.Errorf("kvm: KVM_CREATE_VCPU %d: %w", id, err)
	}
	mem, err := unix.Mmap(int(fd), 0, vm.mmapSize, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_SHARED)
	if err != nil {
		unix.Close(int(fd))
		return nil, fmt.Errorf("kvm: mmap kvm_run of vCPU %d: %w", id, err)
	}
	return &VCPU{fd: int(fd), id: id, mem: mem, run: (*runHeader)(unsafe.Pointer(&mem[0]))}, nil
}
