package kvm_test

import (
	"errors"
	"runtime"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/krunbench/krunbench/vmm/kvm"
	"github.com/krunbench/krunbench/vmm/kvm/kvmtest"
)

func TestKVMUsable(t *testing.T) {
	start := time.Now()
	err := kvm.KVMUsable()
	if err != nil {
		if !errors.Is(err, kvm.ErrUnavailable) && !errors.Is(err, kvm.ErrMissingCapability) && !errors.Is(err, kvm.ErrAPIVersion) {
			t.Fatalf("KVMUsable error does not wrap a sentinel: %v", err)
		}
		kvmtest.Skip(t, "KVM not usable on this machine: %v", err)
	}
	t.Logf("KVMUsable ok in %v", time.Since(start))
}

func TestCapsAndCPUID(t *testing.T) {
	kvmtest.Require(t)
	sys, err := kvm.Open()
	if err != nil {
		t.Fatal(err)
	}
	defer sys.Close()
	if err := sys.RequireCaps(kvm.RequiredCaps...); err != nil {
		t.Fatal(err)
	}
	if err := sys.RequireCaps(kvm.Cap(100000)); !errors.Is(err, kvm.ErrMissingCapability) {
		t.Fatalf("bogus capability: got %v, want ErrMissingCapability", err)
	}
	ents, err := sys.SupportedCPUID()
	if err != nil {
		t.Fatal(err)
	}
	var has0, has1 bool
	deadline, _ := sys.CheckExtension(kvm.CapTSCDeadlineTimer)
	for _, e := range ents {
		has0 = has0 || e.Function == 0
		has1 = has1 || e.Function == 1
		if e.Function == 1 && (deadline > 0) != (e.ECX&kvm.CPUID1ECXTSCDeadline != 0) {
			t.Fatalf("leaf 1 ECX %#x: TSC-deadline bit does not follow KVM_CAP_TSC_DEADLINE_TIMER=%d", e.ECX, deadline)
		}
	}
	if !has0 || !has1 {
		t.Fatalf("supported CPUID lacks leaf 0 or 1 (%d entries)", len(ents))
	}
}

func TestKickInterruptsSpinningGuest(t *testing.T) {
	kvmtest.Require(t)
	_, v := kvmtest.RealModeVM(t, []byte{0xeb, 0xfe}, false) // jmp $
	done := make(chan error, 1)
	tidc := make(chan int, 1)
	go func() {
		runtime.LockOSThread()
		defer runtime.UnlockOSThread()
		tidc <- unix.Gettid()
		for {
			_, err := v.Run()
			if errors.Is(err, kvm.ErrInterrupted) {
				done <- nil
				return
			}
			if err != nil {
				done <- err
				return
			}
		}
	}()
	tid := <-tidc
	time.Sleep(100 * time.Millisecond)
	start := time.Now()
	if err := v.Kick(tid); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
		t.Logf("KVM_RUN left %v after Kick", time.Since(start))
	case <-time.After(5 * time.Second):
		t.Fatal("KVM_RUN did not return within 5s of Kick")
	}
	regs, err := v.GetRegs()
	if err != nil {
		t.Fatal(err)
	}
	if regs.RIP != 0 {
		t.Errorf("spinning guest RIP = %#x, want 0", regs.RIP)
	}
}

func TestIRQChipEventFDsAndState(t *testing.T) {
	kvmtest.Require(t)
	vm, v := kvmtest.RealModeVM(t, []byte{0xf4}, true)
	efd, err := unix.Eventfd(0, unix.EFD_CLOEXEC|unix.EFD_NONBLOCK)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(efd)
	if err := vm.RegisterIRQFD(efd, 5); err != nil {
		t.Fatal(err)
	}
	if err := vm.UnregisterIRQFD(efd, 5); err != nil {
		t.Fatal(err)
	}
	match := uint64(3)
	ev := kvm.IOEventFD{FD: efd, Addr: 0xd0000050, Len: 4, Datamatch: &match}
	if err := vm.RegisterIOEventFD(ev); err != nil {
		t.Fatal(err)
	}
	if err := vm.UnregisterIOEventFD(ev); err != nil {
		t.Fatal(err)
	}
	if err := vm.IRQLine(4, true); err != nil {
		t.Fatal(err)
	}
	if err := vm.IRQLine(4, false); err != nil {
		t.Fatal(err)
	}
	l, err := v.GetLAPIC()
	if err != nil {
		t.Fatal(err)
	}
	if err := v.SetLAPIC(l); err != nil {
		t.Fatal(err)
	}
	if err := v.SetMPState(kvm.MPStateRunnable); err != nil {
		t.Fatal(err)
	}
	if s, err := v.GetMPState(); err != nil || s != kvm.MPStateRunnable {
		t.Fatalf("GetMPState = %d, %v", s, err)
	}
	const msrStar = 0xc0000081
	if err := v.SetMSRs([]kvm.MSREntry{{Index: msrStar, Data: 0x1234}}); err != nil {
		t.Fatal(err)
	}
	got, err := v.GetMSRs(msrStar)
	if err != nil || got[0].Data != 0x1234 {
		t.Fatalf("GetMSRs(STAR) = %+v, %v", got, err)
	}
	f, err := v.GetFPU()
	if err != nil {
		t.Fatal(err)
	}
	f.FCW, f.MXCSR = 0x37f, 0x1f80
	if err := v.SetFPU(f); err != nil {
		t.Fatal(err)
	}
	if err := v.SetCPUID2(nil); err != nil {
		t.Fatal(err)
	}
	if err := v.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := v.GetRegs(); !errors.Is(err, kvm.ErrClosed) {
		t.Fatalf("GetRegs after Close: %v, want ErrClosed", err)
	}
}
