package kvm

import (
	"testing"
	"unsafe"
)

func TestStructSizes(t *testing.T) {
	cases := []struct {
		name string
		got  uintptr
		want uintptr
	}{
		{"kvm_regs", unsafe.Sizeof(Regs{}), 144},
		{"kvm_segment", unsafe.Sizeof(Segment{}), 24},
		{"kvm_dtable", unsafe.Sizeof(DTable{}), 16},
		{"kvm_sregs", unsafe.Sizeof(Sregs{}), 312},
		{"kvm_fpu", unsafe.Sizeof(FPU{}), 416},
		{"kvm_msr_entry", unsafe.Sizeof(MSREntry{}), 16},
		{"kvm_msrs", unsafe.Sizeof(msrsHeader{}), 8},
		{"kvm_cpuid_entry2", unsafe.Sizeof(CPUIDEntry{}), 40},
		{"kvm_cpuid2", unsafe.Sizeof(cpuid2Header{}), 8},
		{"kvm_lapic_state", unsafe.Sizeof(LAPICState{}), 1024},
		{"kvm_mp_state", unsafe.Sizeof(MPState{}), 4},
		{"kvm_userspace_memory_region", unsafe.Sizeof(userspaceMemoryRegion{}), 32},
		{"kvm_irq_level", unsafe.Sizeof(irqLevel{}), 8},
		{"kvm_irqfd", unsafe.Sizeof(irqfd{}), 32},
		{"kvm_pit_config", unsafe.Sizeof(pitConfig{}), 64},
		{"kvm_ioeventfd", unsafe.Sizeof(ioeventfd{}), 64},
		{"kvm_run head+union", unsafe.Sizeof(runHeader{}), 304},
		{"kvm_run.io", unsafe.Sizeof(runIO{}), 16},
		{"kvm_run.mmio", unsafe.Sizeof(runMMIO{}), 24},
	}
	for _, c := range cases {
		if c.got != c.want {
			t.Errorf("sizeof(%s) = %d, want %d", c.name, c.got, c.want)
		}
	}
}

func TestOffsets(t *testing.T) {
	var r runHeader
	var s Sregs
	var f FPU
	var e ioeventfd
	cases := []struct {
		name string
		got  uintptr
		want uintptr
	}{
		{"kvm_run.immediate_exit", unsafe.Offsetof(r.ImmediateExit), 1},
		{"kvm_run.exit_reason", unsafe.Offsetof(r.ExitReason), 8},
		{"kvm_run.ready_for_interrupt_injection", unsafe.Offsetof(r.ReadyForInterruptInjection), 12},
		{"kvm_run.if_flag", unsafe.Offsetof(r.IFFlag), 13},
		{"kvm_run.flags", unsafe.Offsetof(r.Flags), 14},
		{"kvm_run.cr8", unsafe.Offsetof(r.CR8), 16},
		{"kvm_run.apic_base", unsafe.Offsetof(r.APICBase), 24},
		{"kvm_run union", unsafe.Offsetof(r.Exit), runExitOffset},
		{"kvm_run.kvm_valid_regs", unsafe.Offsetof(r.ValidRegs), 288},
		{"kvm_run.kvm_dirty_regs", unsafe.Offsetof(r.DirtyRegs), 296},
		{"kvm_sregs.tr", unsafe.Offsetof(s.TR), 144},
		{"kvm_sregs.gdt", unsafe.Offsetof(s.GDT), 192},
		{"kvm_sregs.cr0", unsafe.Offsetof(s.CR0), 224},
		{"kvm_sregs.efer", unsafe.Offsetof(s.EFER), 264},
		{"kvm_sregs.apic_base", unsafe.Offsetof(s.APICBase), 272},
		{"kvm_sregs.interrupt_bitmap", unsafe.Offsetof(s.InterruptBitmap), 280},
		{"kvm_fpu.fcw", unsafe.Offsetof(f.FCW), 128},
		{"kvm_fpu.last_ip", unsafe.Offsetof(f.LastIP), 136},
		{"kvm_fpu.xmm", unsafe.Offsetof(f.XMM), 152},
		{"kvm_fpu.mxcsr", unsafe.Offsetof(f.MXCSR), 408},
		{"kvm_ioeventfd.fd", unsafe.Offsetof(e.FD), 20},
		{"kvm_ioeventfd.flags", unsafe.Offsetof(e.Flags), 24},
		{"kvm_run.mmio.len", unsafe.Offsetof(runMMIO{}.Len), 16},
		{"kvm_run.mmio.is_write", unsafe.Offsetof(runMMIO{}.IsWrite), 20},
	}
	for _, c := range cases {
		if c.got != c.want {
			t.Errorf("offsetof(%s) = %d, want %d", c.name, c.got, c.want)
		}
	}
}

// TestIoctlNumbers pins request numbers to the values linux/kvm.h yields.
func TestIoctlNumbers(t *testing.T) {
	cases := []struct {
		name      string
		got, want uintptr
	}{
		{"KVM_GET_API_VERSION", ioctlGetAPIVersion, 0xae00},
		{"KVM_CREATE_VM", ioctlCreateVM, 0xae01},
		{"KVM_CHECK_EXTENSION", ioctlCheckExtension, 0xae03},
		{"KVM_GET_VCPU_MMAP_SIZE", ioctlGetVCPUMmapSize, 0xae04},
		{"KVM_GET_SUPPORTED_CPUID", ioctlGetSupportedCPUID, 0xc008ae05},
		{"KVM_CREATE_VCPU", ioctlCreateVCPU, 0xae41},
		{"KVM_SET_USER_MEMORY_REGION", ioctlSetUserMemoryRegion, 0x4020ae46},
		{"KVM_SET_TSS_ADDR", ioctlSetTSSAddr, 0xae47},
		{"KVM_SET_IDENTITY_MAP_ADDR", ioctlSetIdentityMapAddr, 0x4008ae48},
		{"KVM_CREATE_IRQCHIP", ioctlCreateIRQChip, 0xae60},
		{"KVM_IRQ_LINE", ioctlIRQLine, 0x4008ae61},
		{"KVM_IRQFD", ioctlIRQFD, 0x4020ae76},
		{"KVM_CREATE_PIT2", ioctlCreatePIT2, 0x4040ae77},
		{"KVM_IOEVENTFD", ioctlIOEventFD, 0x4040ae79},
		{"KVM_RUN", ioctlRun, 0xae80},
		{"KVM_GET_REGS", ioctlGetRegs, 0x8090ae81},
		{"KVM_SET_REGS", ioctlSetRegs, 0x4090ae82},
		{"KVM_GET_SREGS", ioctlGetSregs, 0x8138ae83},
		{"KVM_SET_SREGS", ioctlSetSregs, 0x4138ae84},
		{"KVM_GET_MSRS", ioctlGetMSRs, 0xc008ae88},
		{"KVM_SET_MSRS", ioctlSetMSRs, 0x4008ae89},
		{"KVM_GET_FPU", ioctlGetFPU, 0x81a0ae8c},
		{"KVM_SET_FPU", ioctlSetFPU, 0x41a0ae8d},
		{"KVM_GET_LAPIC", ioctlGetLAPIC, 0x8400ae8e},
		{"KVM_SET_LAPIC", ioctlSetLAPIC, 0x4400ae8f},
		{"KVM_SET_CPUID2", ioctlSetCPUID2, 0x4008ae90},
		{"KVM_GET_MP_STATE", ioctlGetMPState, 0x8004ae98},
		{"KVM_SET_MP_STATE", ioctlSetMPState, 0x4004ae99},
	}
	for _, c := range cases {
		if c.got != c.want {
			t.Errorf("%s = %#x, want %#x", c.name, c.got, c.want)
		}
	}
}
