package loader

import (
	"encoding/binary"
	"testing"

	"github.com/krunbench/krunbench/vmm/kvm"
)

func TestBootRegsAndSregs(t *testing.T) {
	r := BootRegs(0x1000000)
	if r.RIP != 0x1000000 || r.RSI != 0x7000 || r.RSP != 0x8ff0 || r.RBP != 0x8ff0 || r.RFLAGS != 2 {
		t.Errorf("regs %+v", r)
	}
	s := BootSregs(kvm.Sregs{CR0: 0x60000010})
	if s.CR0&(CR0PE|CR0PG) != CR0PE|CR0PG || s.CR3 != 0x9000 || s.CR4&CR4PAE == 0 || s.EFER&(EFERLME|EFERLMA) != EFERLME|EFERLMA {
		t.Errorf("control registers cr0 %#x cr3 %#x cr4 %#x efer %#x", s.CR0, s.CR3, s.CR4, s.EFER)
	}
	if s.GDT.Base != 0x500 || s.GDT.Limit != 31 || s.IDT.Base != 0x520 || s.IDT.Limit != 7 {
		t.Errorf("gdt %+v idt %+v", s.GDT, s.IDT)
	}
	if s.CS.Selector != 8 || s.DS.Selector != 0x10 || s.SS.Selector != 0x10 || s.TR.Selector != 0x18 {
		t.Errorf("selectors cs %#x ds %#x ss %#x tr %#x", s.CS.Selector, s.DS.Selector, s.SS.Selector, s.TR.Selector)
	}
	f := BootFPU()
	if f.FCW != 0x37f || f.MXCSR != 0x1f80 {
		t.Errorf("fpu %+v", f)
	}
	msrs := map[uint32]uint64{}
	for _, m := range BootMSRs() {
		msrs[m.Index] = m.Data
	}
	if len(msrs) != 11 || msrs[MSRMTRRDefType] != 0x806 || msrs[MSRIA32MiscEnable] != 1 || msrs[MSRLSTAR] != 0 {
		t.Errorf("msrs %#x", msrs)
	}
}

func TestSetLINTs(t *testing.T) {
	var l kvm.LAPICState
	binary.LittleEndian.PutUint32(l.Regs[0x350:], 0x10700) // masked, some mode
	binary.LittleEndian.PutUint32(l.Regs[0x360:], 0x10000)
	SetLINTs(&l)
	if v := binary.LittleEndian.Uint32(l.Regs[0x350:]); v != 0x10700 {
		t.Errorf("LINT0 = %#x, want ExtINT (0x700) with other bits kept", v)
	}
	if v := binary.LittleEndian.Uint32(l.Regs[0x360:]); v != 0x10400 {
		t.Errorf("LINT1 = %#x, want NMI (0x400)", v)
	}
}

func TestCPUID(t *testing.T) {
	in := []kvm.CPUIDEntry{
		{Function: 0, EAX: 0xd},
		{Function: 1, EBX: 0xff0f0800, ECX: 0x1, EDX: 1 << 28},
		{Function: 4, Index: 0, EAX: 0x121}, // L1 data
		{Function: 4, Index: 3, EAX: 0x163}, // L3 unified
		{Function: 6, ECX: 0x9},
		{Function: 7, Index: 0, EDX: 1<<29 | 1<<26},
		{Function: 0xb, Index: 0, EDX: 99},
		{Function: 0xb, Index: 1, EDX: 99},
		{Function: 0x80000001, ECX: 1<<22 | 1},
		{Function: 0x80000008, ECX: 0x3007},
		{Function: 0x8000001e, EAX: 7},
	}
	orig := append([]kvm.CPUIDEntry(nil), in...)
	out := CPUID(in, 3, 4)
	for i := range in {
		if in[i] != orig[i] {
			t.Fatal("CPUID modified its input")
		}
	}
	get := func(fn, idx uint32) *kvm.CPUIDEntry {
		for i := range out {
			if out[i].Function == fn && out[i].Index == idx {
				return &out[i]
			}
		}
		return nil
	}
	l1 := get(1, 0)
	if l1.EBX != 0x03040800 || l1.ECX&(1<<31) == 0 || l1.EDX&(1<<28) == 0 {
		t.Errorf("leaf 1 ebx %#x ecx %#x edx %#x", l1.EBX, l1.ECX, l1.EDX)
	}
	if e := get(4, 0); e.EAX>>26 != 3 || e.EAX>>14&0xfff != 0 || e.EAX&0x3fff != 0x121 {
		t.Errorf("leaf 4 L1 eax %#x", e.EAX)
	}
	if e := get(4, 3); e.EAX>>14&0xfff != 3 {
		t.Errorf("leaf 4 L3 eax %#x", e.EAX)
	}
	if get(6, 0).ECX != 0x1 {
		t.Errorf("leaf 6 ecx %#x", get(6, 0).ECX)
	}
	if get(7, 0).EDX != 1<<26 {
		t.Errorf("leaf 7 edx %#x: ARCH_CAPABILITIES must be cleared, others kept", get(7, 0).EDX)
	}
	for idx, want := range []kvm.CPUIDEntry{
		{Function: 0xb, Index: 0, Flags: 1, EAX: 0, EBX: 1, ECX: 0x100, EDX: 3},
		{Function: 0xb, Index: 1, Flags: 1, EAX: 2, EBX: 4, ECX: 0x201, EDX: 3},
		{Function: 0xb, Index: 2, Flags: 1, EAX: 0, EBX: 0, ECX: 2, EDX: 3},
	} {
		if e := get(0xb, uint32(idx)); e == nil || *e != want {
			t.Errorf("leaf 0xb.%d = %+v, want %+v", idx, e, want)
		}
	}
	if get(0x80000001, 0).ECX != 1 {
		t.Errorf("TOPOEXT not cleared")
	}
	if e := get(0x80000008, 0); e.ECX != 0x2003 {
		t.Errorf("leaf 0x80000008 ecx %#x, want 0x2003", e.ECX)
	}
	if get(0x8000001e, 0) != nil {
		t.Error("leaf 0x8000001e kept")
	}
	if e := get(1, 0); CPUID(in, 0, 1)[1].EDX&(1<<28) != 0 || e == nil {
		t.Error("HTT set for one vCPU")
	}
}

// fakeVCPU records what SetupVCPU applies.
type fakeVCPU struct {
	id    int
	regs  *kvm.Regs
	sregs *kvm.Sregs
	lapic kvm.LAPICState
	cpuid []kvm.CPUIDEntry
	msrs  []kvm.MSREntry
}

func (f *fakeVCPU) ID() int                            { return f.id }
func (f *fakeVCPU) SetCPUID2(e []kvm.CPUIDEntry) error { f.cpuid = e; return nil }
func (f *fakeVCPU) SetMSRs(m []kvm.MSREntry) error     { f.msrs = m; return nil }
func (f *fakeVCPU) GetSregs() (kvm.Sregs, error)       { return kvm.Sregs{}, nil }
func (f *fakeVCPU) SetSregs(s kvm.Sregs) error         { f.sregs = &s; return nil }
func (f *fakeVCPU) SetRegs(r kvm.Regs) error           { f.regs = &r; return nil }
func (f *fakeVCPU) SetFPU(kvm.FPU) error               { return nil }
func (f *fakeVCPU) GetLAPIC() (kvm.LAPICState, error)  { return f.lapic, nil }
func (f *fakeVCPU) SetLAPIC(l kvm.LAPICState) error    { f.lapic = l; return nil }

func TestSetupVCPU(t *testing.T) {
	sup := []kvm.CPUIDEntry{{Function: 1}}
	bsp, ap := &fakeVCPU{id: 0}, &fakeVCPU{id: 1}
	for _, v := range []*fakeVCPU{bsp, ap} {
		if err := SetupVCPU(v, sup, 2, 0x1000000); err != nil {
			t.Fatal(err)
		}
		if len(v.msrs) == 0 || len(v.cpuid) != 1 || v.cpuid[0].EBX>>24 != uint32(v.id) {
			t.Errorf("vCPU %d: msrs %d cpuid %+v", v.id, len(v.msrs), v.cpuid)
		}
	}
	if bsp.regs == nil || bsp.regs.RIP != 0x1000000 || bsp.sregs == nil {
		t.Error("BSP entry state not set")
	}
	if ap.regs != nil || ap.sregs != nil {
		t.Error("AP registers set; APs must wait for INIT/SIPI")
	}
}

func TestCPUIDKeepsTSCDeadline(t *testing.T) {
	table := []kvm.CPUIDEntry{{Function: 0, EAX: 0xd}, {Function: 1, ECX: 1 | kvm.CPUID1ECXTSCDeadline}, {Function: 7}}
	if got := CPUID(table, 0, 1); got[1].ECX&kvm.CPUID1ECXTSCDeadline == 0 {
		t.Fatal("CPUID dropped the TSC-deadline bit")
	}
}
