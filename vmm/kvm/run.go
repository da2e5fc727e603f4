package kvm

import (
	"encoding/binary"
	"fmt"
	"sync/atomic"
	"unsafe"
)

// ExitReason is kvm_run.exit_reason (KVM_EXIT_*).
type ExitReason uint32

// Exit reasons an x86 VMM sees.
const (
	ExitUnknown       ExitReason = 0
	ExitException     ExitReason = 1
	ExitIO            ExitReason = 2
	ExitHypercall     ExitReason = 3
	ExitDebug         ExitReason = 4
	ExitHLT           ExitReason = 5
	ExitMMIO          ExitReason = 6
	ExitIRQWindowOpen ExitReason = 7
	ExitShutdown      ExitReason = 8
	ExitFailEntry     ExitReason = 9
	ExitIntr          ExitReason = 10
	ExitSetTPR        ExitReason = 11
	ExitTPRAccess     ExitReason = 12
	ExitNMI           ExitReason = 16
	ExitInternalError ExitReason = 17
	ExitSystemEvent   ExitReason = 24
	ExitIOAPICEOI     ExitReason = 26
	ExitX86RDMSR      ExitReason = 29
	ExitX86WRMSR      ExitReason = 30
	ExitX86BusLock    ExitReason = 33
	ExitNotify        ExitReason = 37
	ExitMemoryFault   ExitReason = 39
)

var exitNames = map[ExitReason]string{
	ExitUnknown: "UNKNOWN", ExitException: "EXCEPTION", ExitIO: "IO",
	ExitHypercall: "HYPERCALL", ExitDebug: "DEBUG", ExitHLT: "HLT", ExitMMIO: "MMIO",
	ExitIRQWindowOpen: "IRQ_WINDOW_OPEN", ExitShutdown: "SHUTDOWN",
	ExitFailEntry: "FAIL_ENTRY", ExitIntr: "INTR", ExitSetTPR: "SET_TPR",
	ExitTPRAccess: "TPR_ACCESS", ExitNMI: "NMI", ExitInternalError: "INTERNAL_ERROR",
	ExitSystemEvent: "SYSTEM_EVENT", ExitIOAPICEOI: "IOAPIC_EOI",
	ExitX86RDMSR: "X86_RDMSR", ExitX86WRMSR: "X86_WRMSR", ExitX86BusLock: "X86_BUS_LOCK",
	ExitNotify: "NOTIFY", ExitMemoryFault: "MEMORY_FAULT",
}

// String returns the KVM_EXIT_ name without the prefix.
func (r ExitReason) String() string {
	if n, ok := exitNames[r]; ok {
		return n
	}
	return fmt.Sprintf("EXIT(%d)", uint32(r))
}

// runHeader is the fixed head of struct kvm_run; the exit-specific union
// starts at offset 32 and is 256 bytes long.
type runHeader struct {
	RequestInterruptWindow     uint8
	ImmediateExit              uint8
	_                          [6]uint8
	ExitReason                 uint32
	ReadyForInterruptInjection uint8
	IFFlag                     uint8
	Flags                      uint16
	CR8                        uint64
	APICBase                   uint64
	Exit                       [256]byte
	ValidRegs                  uint64
	DirtyRegs                  uint64
}

// Offsets inside struct kvm_run.
const (
	runExitOffset = 32
)

// runIO is the io member of the kvm_run exit union.
type runIO struct {
	Direction  uint8
	Size       uint8
	Port       uint16
	Count      uint32
	DataOffset uint64
}

// runMMIO is the mmio member of the kvm_run exit union.
type runMMIO struct {
	PhysAddr uint64
	Data     [8]uint8
	Len      uint32
	IsWrite  uint8
	_        [3]uint8
}

// I/O directions (KVM_EXIT_IO_IN/OUT).
const (
	IODirIn  = 0
	IODirOut = 1
)

// IOExit describes a KVM_EXIT_IO: Count accesses of Size bytes to Port
// (Count > 1 for rep ins/outs). Data aliases kvm_run: for Out it holds the
// bytes written; for In the handler fills it before the next Run.
type IOExit struct {
	Port  uint16
	Size  int
	Count int
	Out   bool
	Data  []byte
}

// MMIOExit describes a KVM_EXIT_MMIO. Data aliases kvm_run: for writes it
// holds the bytes written; for reads the handler fills it.
type MMIOExit struct {
	Addr  uint64
	Write bool
	Data  []byte
}

// SystemEvent is the system_event member of the kvm_run exit union.
type SystemEvent struct {
	Type uint32
	Data []uint64
}

// System event types (KVM_SYSTEM_EVENT_*).
const (
	SystemEventShutdown = 1
	SystemEventReset    = 2
	SystemEventCrash    = 3
)

// ExitReason returns the reason of the last KVM_RUN exit.
func (v *VCPU) ExitReason() ExitReason { return ExitReason(v.run.ExitReason) }

// IO returns the I/O exit data; valid only after an ExitIO.
func (v *VCPU) IO() (IOExit, error) {
	r := (*runIO)(unsafe.Pointer(&v.run.Exit[0]))
	n := uint64(r.Size) * uint64(r.Count)
	if r.DataOffset > uint64(len(v.mem)) || n > uint64(len(v.mem))-r.DataOffset {
		return IOExit{}, fmt.Errorf("kvm: io exit data %#x+%#x outside kvm_run", r.DataOffset, n)
	}
	return IOExit{
		Port:  r.Port,
		Size:  int(r.Size),
		Count: int(r.Count),
		Out:   r.Direction == IODirOut,
		Data:  v.mem[r.DataOffset : r.DataOffset+n : r.DataOffset+n],
	}, nil
}

// MMIO returns the MMIO exit data; valid only after an ExitMMIO.
func (v *VCPU) MMIO() MMIOExit {
	r := (*runMMIO)(unsafe.Pointer(&v.run.Exit[0]))
	n := min(int(r.Len), len(r.Data))
	return MMIOExit{Addr: r.PhysAddr, Write: r.IsWrite != 0, Data: r.Data[:n:n]}
}

// FailEntryReason returns hardware_entry_failure_reason and the host CPU
// of a KVM_EXIT_FAIL_ENTRY.
func (v *VCPU) FailEntryReason() (reason uint64, cpu uint32) {
	b := v.run.Exit[:]
	return binary.LittleEndian.Uint64(b[0:]), binary.LittleEndian.Uint32(b[8:])
}

// InternalError returns the suberror and data words of a
// KVM_EXIT_INTERNAL_ERROR.
func (v *VCPU) InternalError() (suberror uint32, data []uint64) {
	b := v.run.Exit[:]
	sub := binary.LittleEndian.Uint32(b[0:])
	n := min(binary.LittleEndian.Uint32(b[4:]), 16)
	for i := range n {
		data = append(data, binary.LittleEndian.Uint64(b[8+8*i:]))
	}
	return sub, data
}

// SystemEvent returns the event of a KVM_EXIT_SYSTEM_EVENT.
func (v *VCPU) SystemEvent() SystemEvent {
	b := v.run.Exit[:]
	e := SystemEvent{Type: binary.LittleEndian.Uint32(b[0:])}
	n := min(binary.LittleEndian.Uint32(b[4:]), 16)
	for i := range n {
		e.Data = append(e.Data, binary.LittleEndian.Uint64(b[8+8*i:]))
	}
	return e
}

// SetImmediateExit sets kvm_run.immediate_exit. While it is set, KVM_RUN
// returns EINTR at once instead of entering the guest. It is safe to call
// from any goroutine.
func (v *VCPU) SetImmediateExit(on bool) {
	// immediate_exit is byte 1 of the first 32-bit word; only userspace
	// writes that word, so a CAS loop on it is an atomic byte store.
	w := (*uint32)(unsafe.Pointer(v.run))
	for {
		old := atomic.LoadUint32(w)
		var b [4]byte
		*(*uint32)(unsafe.Pointer(&b)) = old
		if on {
			b[1] = 1
		} else {
			b[1] = 0
		}
		if atomic.CompareAndSwapUint32(w, old, *(*uint32)(unsafe.Pointer(&b))) {
			return
		}
	}
}
