package loader

import (
	"encoding/binary"
	"fmt"
)

// MP table constants (Intel MultiProcessor Specification 1.4).
const (
	mpFloatSize    = 16
	mpConfigSize   = 44
	mpCPUSize      = 20
	mpEntrySize    = 8
	mpSpecRev      = 4
	mpAPICVersion  = 0x14
	mpIOAPICVer    = 0x11
	mpCPUSignature = 0x600 // family 6
	mpCPUFeatures  = 0x201 // FPU | APIC
	mpCPUEnabled   = 1
	mpCPUBoot      = 2
	mpIRQs         = 16
	mpIntINT       = 0
	mpIntNMI       = 1
	mpIntExtINT    = 3
	mpTableMaxSize = 0xa0000 - EBDAStart
)

// MaxVCPUs is the most vCPUs the MP table (1 KiB below 640 KiB) describes.
const MaxVCPUs = (mpTableMaxSize - mpFloatSize - mpConfigSize - 8 - 8 - mpIRQs*8 - 2*8) / mpCPUSize

// MPTable builds the MP floating pointer and configuration table for
// nCPUs processors (APIC ids 0..n-1, the BSP is 0), an ISA bus, the IOAPIC
// at 0xfec00000 with id nCPUs, ISA IRQ i routed to IOAPIC pin i for
// i < 16, LINT0 as ExtINT and LINT1 as NMI. base is its guest address
// (EBDAStart); the result is at most 1 KiB.
func MPTable(base uint32, nCPUs int) ([]byte, error) {
	if nCPUs < 1 || nCPUs > MaxVCPUs {
		return nil, fmt.Errorf("%w: %d vCPUs (1..%d)", ErrBadConfig, nCPUs, MaxVCPUs)
	}
	le := binary.LittleEndian
	ioapicID := byte(nCPUs)
	var body []byte
	entries := 0
	for i := range nCPUs {
		e := make([]byte, mpCPUSize)
		e[0] = 0 // processor
		e[1] = byte(i)
		e[2] = mpAPICVersion
		e[3] = mpCPUEnabled
		if i == 0 {
			e[3] |= mpCPUBoot
		}
		le.PutUint32(e[4:], mpCPUSignature)
		le.PutUint32(e[8:], mpCPUFeatures)
		body = append(body, e...)
		entries++
	}
	body = append(body, 1, 0, 'I', 'S', 'A', ' ', ' ', ' ') // bus 0: ISA
	entries++
	ioapic := []byte{2, ioapicID, mpIOAPICVer, 1, 0, 0, 0, 0}
	le.PutUint32(ioapic[4:], IOAPICAddr)
	body = append(body, ioapic...)
	entries++
	for i := range mpIRQs {
		body = append(body, 3, mpIntINT, 0, 0, 0, byte(i), ioapicID, byte(i))
		entries++
	}
	body = append(body, 4, mpIntExtINT, 0, 0, 0, 0, 0x00, 0) // LINT0 of CPU 0: ExtINT
	body = append(body, 4, mpIntNMI, 0, 0, 0, 0, 0xff, 1)    // LINT1 of all CPUs: NMI
	entries += 2

	cfg := make([]byte, mpConfigSize, mpConfigSize+len(body))
	copy(cfg[0:], "PCMP")
	le.PutUint16(cfg[4:], uint16(mpConfigSize+len(body)))
	cfg[6] = mpSpecRev
	copy(cfg[8:], "KRUNBNCH")
	copy(cfg[16:], "MICROVM     ")
	le.PutUint16(cfg[34:], uint16(entries))
	le.PutUint32(cfg[36:], LAPICAddr)
	cfg = append(cfg, body...)
	cfg[7] = checksum(cfg)

	fp := make([]byte, mpFloatSize)
	copy(fp[0:], "_MP_")
	le.PutUint32(fp[4:], base+mpFloatSize)
	fp[8] = 1 // length in 16-byte units
	fp[9] = mpSpecRev
	fp[10] = checksum(fp)
	out := append(fp, cfg...)
	if len(out) > mpTableMaxSize {
		return nil, fmt.Errorf("%w: MP table of %d bytes", ErrBadConfig, len(out))
	}
	return out, nil
}

// checksum returns the byte that makes b sum to zero (b's own checksum
// byte must be zero when it is computed).
func checksum(b []byte) byte {
	var s byte
	for _, c := range b {
		s += c
	}
	return -s
}
