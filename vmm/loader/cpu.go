package loader

import (
	"encoding/binary"
	"fmt"

	"github.com/krunbench/krunbench/vmm/kvm"
)

// Control register and EFER bits.
const (
	CR0PE   = 1 << 0
	CR0ET   = 1 << 4
	CR0NE   = 1 << 5
	CR0PG   = 1 << 31
	CR4PAE  = 1 << 5
	EFERLME = 1 << 8
	EFERLMA = 1 << 10
)

// MSR indices.
const (
	MSRIA32TSC          = 0x10
	MSRIA32SysenterCS   = 0x174
	MSRIA32SysenterESP  = 0x175
	MSRIA32SysenterEIP  = 0x176
	MSRIA32MiscEnable   = 0x1a0
	MSRMTRRDefType      = 0x2ff
	MSRSTAR             = 0xc0000081
	MSRLSTAR            = 0xc0000082
	MSRCSTAR            = 0xc0000083
	MSRSyscallMask      = 0xc0000084
	MSRKernelGSBase     = 0xc0000102
	miscEnableFastStr   = 1 << 0
	mtrrEnable          = 1 << 11
	mtrrTypeWriteBack   = 6
	lapicLVT0           = 0x350
	lapicLVT1           = 0x360
	lapicDeliveryExtINT = 7
	lapicDeliveryNMI    = 4
)

// BootRegs returns the boot vCPU's general registers for a 64-bit Linux
// entry: rip = entry, rsi = zero page, rsp = rbp = boot stack.
func BootRegs(entry uint64) kvm.Regs {
	return kvm.Regs{
		RIP:    entry,
		RSI:    ZeroPageAddr,
		RSP:    BootStackAddr,
		RBP:    BootStackAddr,
		RFLAGS: 2,
	}
}

// BootSregs returns s (as read from the vCPU) set up for 64-bit mode with
// the boot GDT/IDT and page tables.
func BootSregs(s kvm.Sregs) kvm.Sregs {
	gdt := BootGDT()
	code := SegmentFromGDT(gdt[1], 1)
	data := SegmentFromGDT(gdt[2], 2)
	tss := SegmentFromGDT(gdt[3], 3)
	s.GDT = kvm.DTable{Base: GDTAddr, Limit: uint16(8*len(gdt) - 1)}
	s.IDT = kvm.DTable{Base: IDTAddr, Limit: 7}
	s.CS = code
	s.DS, s.ES, s.FS, s.GS, s.SS = data, data, data, data, data
	s.TR = tss
	s.CR0 |= CR0PE | CR0PG | CR0ET | CR0NE
	s.CR3 = PML4Addr
	s.CR4 |= CR4PAE
	s.EFER |= EFERLME | EFERLMA
	return s
}

// BootFPU returns the FPU state Linux expects at entry.
func BootFPU() kvm.FPU {
	return kvm.FPU{FCW: 0x37f, MXCSR: 0x1f80}
}

// BootMSRs returns the MSRs set on every vCPU: SYSENTER/SYSCALL MSRs and
// the TSC zeroed, fast strings enabled, MTRRs enabled with write-back as
// the default memory type.
func BootMSRs() []kvm.MSREntry {
	return []kvm.MSREntry{
		{Index: MSRIA32SysenterCS},
		{Index: MSRIA32SysenterESP},
		{Index: MSRIA32SysenterEIP},
		{Index: MSRSTAR},
		{Index: MSRCSTAR},
		{Index: MSRKernelGSBase},
		{Index: MSRSyscallMask},
		{Index: MSRLSTAR},
		{Index: MSRIA32TSC},
		{Index: MSRIA32MiscEnable, Data: miscEnableFastStr},
		{Index: MSRMTRRDefType, Data: mtrrEnable | mtrrTypeWriteBack},
	}
}

// SetLINTs programs LVT LINT0 as ExtINT and LINT1 as NMI in a local APIC
// register page, as the MP table describes them.
func SetLINTs(l *kvm.LAPICState) {
	set := func(off int, mode uint32) {
		v := binary.LittleEndian.Uint32(l.Regs[off:])
		binary.LittleEndian.PutUint32(l.Regs[off:], v&^0x700|mode<<8)
	}
	set(lapicLVT0, lapicDeliveryExtINT)
	set(lapicLVT1, lapicDeliveryNMI)
}

// VCPU is the part of *kvm.VCPU that SetupVCPU needs.
type VCPU interface {
	ID() int
	SetCPUID2([]kvm.CPUIDEntry) error
	SetMSRs([]kvm.MSREntry) error
	GetSregs() (kvm.Sregs, error)
	SetSregs(kvm.Sregs) error
	SetRegs(kvm.Regs) error
	SetFPU(kvm.FPU) error
	GetLAPIC() (kvm.LAPICState, error)
	SetLAPIC(kvm.LAPICState) error
}

// SetupVCPU configures vCPU v of nCPUs: CPUID (from supported, see CPUID),
// boot MSRs, FPU, local APIC LINTs and, for vCPU 0 (the BSP), the 64-bit
// entry state at entry. Application processors keep their reset state:
// with the in-kernel irqchip they wait for INIT/SIPI from the BSP.
func SetupVCPU(v VCPU, supported []kvm.CPUIDEntry, nCPUs int, entry uint64) error {
	id := v.ID()
	if err := v.SetCPUID2(CPUID(supported, id, nCPUs)); err != nil {
		return fmt.Errorf("loader: vCPU %d: %w", id, err)
	}
	if err := v.SetMSRs(BootMSRs()); err != nil {
		return fmt.Errorf("loader: vCPU %d: %w", id, err)
	}
	if err := v.SetFPU(BootFPU()); err != nil {
		return fmt.Errorf("loader: vCPU %d: %w", id, err)
	}
	l, err := v.GetLAPIC()
	if err != nil {
		return fmt.Errorf("loader: vCPU %d: %w", id, err)
	}
	SetLINTs(&l)
	if err := v.SetLAPIC(l); err != nil {
		return fmt.Errorf("loader: vCPU %d: %w", id, err)
	}
	if id != 0 {
		return nil
	}
	s, err := v.GetSregs()
	if err != nil {
		return fmt.Errorf("loader: vCPU %d: %w", id, err)
	}
	if err := v.SetSregs(BootSregs(s)); err != nil {
		return fmt.Errorf("loader: vCPU %d: %w", id, err)
	}
	if err := v.SetRegs(BootRegs(entry)); err != nil {
		return fmt.Errorf("loader: vCPU %d: %w", id, err)
	}
	return nil
}
