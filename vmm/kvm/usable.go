package kvm

import (
	"errors"
	"fmt"
	"runtime"
	"sync/atomic"
	"time"

	"golang.org/x/sys/unix"
)

// Fixed addresses KVM needs outside guest RAM on Intel (libkrun/Firecracker
// values, just below the 4 GiB boundary and the BIOS area).
const (
	DefaultTSSAddr         = 0xfffbd000
	DefaultIdentityMapAddr = 0xfffbc000
)

// usableTimeout bounds KVMUsable's test guest.
const usableTimeout = 2 * time.Second

// KVMUsable reports whether this machine can run KVM guests: it opens
// /dev/kvm, checks the API version and RequiredCaps, creates a VM and a
// vCPU and runs a tiny real-mode guest (out 0x10, al=0x42; hlt) with a
// two-second bound. Tests that need KVM skip when it returns an error.
func KVMUsable() error {
	sys, err := Open()
	if err != nil {
		return err
	}
	defer sys.Close()
	if err := sys.RequireCaps(RequiredCaps...); err != nil {
		return err
	}
	vm, err := sys.CreateVM()
	if err != nil {
		return fmt.Errorf("%w: %w", ErrUnavailable, err)
	}
	defer vm.Close()
	mem, err := unix.Mmap(-1, 0, 0x1000, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_PRIVATE|unix.MAP_ANONYMOUS)
	if err != nil {
		return fmt.Errorf("%w: mmap: %w", ErrUnavailable, err)
	}
	defer unix.Munmap(mem)
	copy(mem, []byte{0xb0, 0x42, 0xe6, 0x10, 0xf4}) // mov al,0x42; out 0x10,al; hlt
	if err := vm.SetTSSAddr(DefaultTSSAddr); err != nil {
		return fmt.Errorf("%w: %w", ErrUnavailable, err)
	}
	if err := vm.SetUserMemoryRegion(0, 0, mem); err != nil {
		return fmt.Errorf("%w: %w", ErrUnavailable, err)
	}
	v, err := vm.CreateVCPU(0)
	if err != nil {
		return fmt.Errorf("%w: %w", ErrUnavailable, err)
	}
	defer v.Close()
	s, err := v.GetSregs()
	if err != nil {
		return fmt.Errorf("%w: %w", ErrUnavailable, err)
	}
	s.CS.Base, s.CS.Selector = 0, 0
	if err := v.SetSregs(s); err != nil {
		return fmt.Errorf("%w: %w", ErrUnavailable, err)
	}
	if err := v.SetRegs(Regs{RIP: 0, RFLAGS: 2}); err != nil {
		return fmt.Errorf("%w: %w", ErrUnavailable, err)
	}
	return runProbe(v)
}

// runProbe runs the probe guest on a locked thread, kicking it out of
// KVM_RUN when usableTimeout passes.
func runProbe(v *VCPU) error {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	var timedOut atomic.Bool
	tid := unix.Gettid()
	t := time.AfterFunc(usableTimeout, func() {
		timedOut.Store(true)
		v.Kick(tid)
	})
	defer t.Stop()
	sawOut := false
	for {
		reason, err := v.Run()
		if errors.Is(err, ErrInterrupted) {
			if timedOut.Load() {
				return fmt.Errorf("%w: test guest did not halt within %v", ErrUnavailable, usableTimeout)
			}
			continue
		}
		if err != nil {
			return fmt.Errorf("%w: %w", ErrUnavailable, err)
		}
		switch reason {
		case ExitIO:
			io, err := v.IO()
			if err != nil || !io.Out || io.Port != 0x10 || len(io.Data) != 1 || io.Data[0] != 0x42 {
				return fmt.Errorf("%w: test guest: unexpected I/O exit %+v", ErrUnavailable, io)
			}
			sawOut = true
		case ExitHLT:
			if !sawOut {
				return fmt.Errorf("%w: test guest halted before its out instruction", ErrUnavailable)
			}
			return nil
		default:
			return fmt.Errorf("%w: test guest: unexpected exit %v", ErrUnavailable, reason)
		}
	}
}
