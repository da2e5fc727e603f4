package kvm

import (
	"unsafe"

	"golang.org/x/sys/unix"
)

// Linux _IOC encoding (asm-generic/ioctl.h, used by x86).
const (
	iocNone  = 0
	iocWrite = 1
	iocRead  = 2

	iocNRShift   = 0
	iocTypeShift = 8
	iocSizeShift = 16
	iocDirShift  = 30

	kvmio = 0xAE
)

func ioc(dir, nr, size uintptr) uintptr {
	return dir<<iocDirShift | kvmio<<iocTypeShift | nr<<iocNRShift | size<<iocSizeShift
}

func io(nr uintptr) uintptr           { return ioc(iocNone, nr, 0) }
func iow(nr, size uintptr) uintptr    { return ioc(iocWrite, nr, size) }
func ior(nr, size uintptr) uintptr    { return ioc(iocRead, nr, size) }
func iowr(nr, size uintptr) uintptr   { return ioc(iocRead|iocWrite, nr, size) }
func sizeOf[T any]() uintptr          { var v T; return unsafe.Sizeof(v) }
func iowT[T any](nr uintptr) uintptr  { return iow(nr, sizeOf[T]()) }
func iorT[T any](nr uintptr) uintptr  { return ior(nr, sizeOf[T]()) }
func iowrT[T any](nr uintptr) uintptr { return iowr(nr, sizeOf[T]()) }

// ioctl request numbers from linux/kvm.h.
var (
	ioctlGetAPIVersion       = io(0x00)
	ioctlCreateVM            = io(0x01)
	ioctlCheckExtension      = io(0x03)
	ioctlGetVCPUMmapSize     = io(0x04)
	ioctlGetSupportedCPUID   = iowrT[cpuid2Header](0x05)
	ioctlCreateVCPU          = io(0x41)
	ioctlSetUserMemoryRegion = iowT[userspaceMemoryRegion](0x46)
	ioctlSetTSSAddr          = io(0x47)
	ioctlSetIdentityMapAddr  = iowT[uint64](0x48)
	ioctlCreateIRQChip       = io(0x60)
	ioctlIRQLine             = iowT[irqLevel](0x61)
	ioctlIRQFD               = iowT[irqfd](0x76)
	ioctlCreatePIT2          = iowT[pitConfig](0x77)
	ioctlIOEventFD           = iowT[ioeventfd](0x79)
	ioctlRun                 = io(0x80)
	ioctlGetRegs             = iorT[Regs](0x81)
	ioctlSetRegs             = iowT[Regs](0x82)
	ioctlGetSregs            = iorT[Sregs](0x83)
	ioctlSetSregs            = iowT[Sregs](0x84)
	ioctlGetMSRs             = iowrT[msrsHeader](0x88)
	ioctlSetMSRs             = iowT[msrsHeader](0x89)
	ioctlGetFPU              = iorT[FPU](0x8c)
	ioctlSetFPU              = iowT[FPU](0x8d)
	ioctlGetLAPIC            = iorT[LAPICState](0x8e)
	ioctlSetLAPIC            = iowT[LAPICState](0x8f)
	ioctlSetCPUID2           = iowT[cpuid2Header](0x90)
	ioctlGetMPState          = iorT[MPState](0x98)
	ioctlSetMPState          = iowT[MPState](0x99)
)

// ioctl issues one ioctl, retrying on EINTR (KVM_RUN is issued separately
// because EINTR is meaningful there).
func ioctl(fd int, req, arg uintptr) (uintptr, error) {
	for {
		r, _, errno := unix.Syscall(unix.SYS_IOCTL, uintptr(fd), req, arg)
		switch errno {
		case 0:
			return r, nil
		case unix.EINTR:
			continue
		default:
			return r, errno
		}
	}
}

// ioctlPtr is ioctl with a pointer argument. The pointer is converted in the
// call expression, as unsafe.Pointer rules require.
func ioctlPtr(fd int, req uintptr, arg unsafe.Pointer) (uintptr, error) {
	for {
		r, _, errno := unix.Syscall(unix.SYS_IOCTL, uintptr(fd), req, uintptr(arg))
		switch errno {
		case 0:
			return r, nil
		case unix.EINTR:
			continue
		default:
			return r, errno
		}
	}
}
