package loader

import (
	"math/bits"

	"github.com/krunbench/krunbench/vmm/kvm"
)

// CPUID feature bits edited for the guest.
const (
	cpuid1ECXHypervisor   = 1 << 31
	cpuid1EDXHTT          = 1 << 28
	cpuid6ECXEPB          = 1 << 3
	cpuid7EDXArchCaps     = 1 << 29
	cpuidExt1ECXTopoExt   = 1 << 22
	topoLevelSMT          = 1
	topoLevelCore         = 2
	leafExtendedTopology  = 0xb
	leafExtendedTopology2 = 0x1f
)

// CPUID returns the CPUID table for vCPU apicID of nCPUs, derived from
// KVM_GET_SUPPORTED_CPUID:
//
//   - leaf 1: initial APIC id in EBX[31:24], logical processor count in
//     EBX[23:16], HTT when nCPUs > 1, the hypervisor bit set;
//   - leaf 4: cores per package (EAX[31:26]) and threads sharing each
//     cache (EAX[25:14]: 1 for L1/L2, all for L3);
//   - leaf 6: no energy-performance bias (its MSR is not emulated);
//   - leaf 7: ARCH_CAPABILITIES cleared: its MSR is what made QEMU fail
//     ("failed to set MSR 0x10a") on the nested hosts this project uses;
//   - leaves 0xb and 0x1f: one thread per core, nCPUs cores per package,
//     x2APIC id = apicID;
//   - AMD 0x80000001: TOPOEXT cleared (no 0x8000001e topology to fake);
//     0x80000008 ECX: NC = nCPUs-1 and the APIC-id core bits.
//
// The input is not modified.
func CPUID(supported []kvm.CPUIDEntry, apicID, nCPUs int) []kvm.CPUIDEntry {
	coreBits := uint32(bits.Len(uint(max(nCPUs, 1) - 1)))
	out := make([]kvm.CPUIDEntry, 0, len(supported)+4)
	topoDone := map[uint32]bool{}
	for _, e := range supported {
		switch e.Function {
		case 1:
			e.EBX = e.EBX&0x0000ffff | uint32(apicID)<<24 | uint32(nCPUs)<<16
			e.ECX |= cpuid1ECXHypervisor
			if nCPUs > 1 {
				e.EDX |= cpuid1EDXHTT
			} else {
				e.EDX &^= cpuid1EDXHTT
			}
		case 4:
			if e.EAX&0x1f != 0 { // a cache is described
				level := e.EAX >> 5 & 7
				sharing := uint32(0)
				if level >= 3 {
					sharing = uint32(nCPUs - 1)
				}
				e.EAX = e.EAX&0x3fff | (sharing&0xfff)<<14 | (uint32(nCPUs-1)&0x3f)<<26
			}
		case 6:
			e.ECX &^= cpuid6ECXEPB
		case 7:
			if e.Index == 0 {
				e.EDX &^= cpuid7EDXArchCaps
			}
		case leafExtendedTopology, leafExtendedTopology2:
			if !topoDone[e.Function] {
				topoDone[e.Function] = true
				out = append(out, topology(e.Function, uint32(apicID), uint32(nCPUs), coreBits)...)
			}
			continue
		case 0x80000001:
			e.ECX &^= cpuidExt1ECXTopoExt
		case 0x80000008:
			e.ECX = e.ECX&^0xf0ff | coreBits<<12 | uint32(nCPUs-1)&0xff
		case 0x8000001e:
			continue
		}
		out = append(out, e)
	}
	return out
}

// topology returns the sub-leaves of leaf 0xb or 0x1f.
func topology(fn, apicID, nCPUs, coreBits uint32) []kvm.CPUIDEntry {
	f := uint32(kvm.CPUIDFlagSignificantIndex)
	return []kvm.CPUIDEntry{
		{Function: fn, Index: 0, Flags: f, EAX: 0, EBX: 1, ECX: 0 | topoLevelSMT<<8, EDX: apicID},
		{Function: fn, Index: 1, Flags: f, EAX: coreBits, EBX: nCPUs, ECX: 1 | topoLevelCore<<8, EDX: apicID},
		{Function: fn, Index: 2, Flags: f, EAX: 0, EBX: 0, ECX: 2, EDX: apicID},
	}
}
