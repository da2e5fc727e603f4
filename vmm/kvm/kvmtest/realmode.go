package kvmtest

import (
	"testing"

	"golang.org/x/sys/unix"

	"github.com/krunbench/krunbench/vmm/kvm"
)

// RealModeVM makes a VM with one vCPU that runs code from guest physical
// address 0 in real mode (64 KiB of RAM, CS base 0), with the in-kernel
// interrupt controllers and PIT when irqchip is set. Everything is
// closed when the test ends. The caller checks for KVM first (Require).
func RealModeVM(t testing.TB, code []byte, irqchip bool) (*kvm.VM, *kvm.VCPU) {
	t.Helper()
	sys, err := kvm.Open()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { sys.Close() })
	vm, err := sys.CreateVM()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { vm.Close() })
	if err := vm.SetTSSAddr(kvm.DefaultTSSAddr); err != nil {
		t.Fatal(err)
	}
	if err := vm.SetIdentityMapAddr(kvm.DefaultIdentityMapAddr); err != nil {
		t.Fatal(err)
	}
	if irqchip {
		if err := vm.CreateIRQChip(); err != nil {
			t.Fatal(err)
		}
		if err := vm.CreatePIT2(); err != nil {
			t.Fatal(err)
		}
	}
	mem, err := unix.Mmap(-1, 0, 0x10000, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_PRIVATE|unix.MAP_ANONYMOUS)
	if err != nil {
		t.Fatal(err)
	}
	copy(mem, code)
	if err := vm.SetUserMemoryRegion(0, 0, mem); err != nil {
		t.Fatal(err)
	}
	v, err := vm.CreateVCPU(0)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { v.Close(); unix.Munmap(mem) })
	s, err := v.GetSregs()
	if err != nil {
		t.Fatal(err)
	}
	s.CS.Base, s.CS.Selector = 0, 0
	if err := v.SetSregs(s); err != nil {
		t.Fatal(err)
	}
	if err := v.SetRegs(kvm.Regs{RFLAGS: 2}); err != nil {
		t.Fatal(err)
	}
	return vm, v
}
