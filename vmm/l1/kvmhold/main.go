// Command kvmhold keeps one empty KVM VM open until it is killed. The L1
// harness (vmm/l1/run.sh) starts it before the tests: Linux enables
// virtualisation on every CPU (EFER.SVME, by cross-CPU calls) when the
// first VM is created and disables it when the last one goes, and the
// emulated L1 froze now and then exactly at such moments (a test creating
// its VM); with a VM held open that happens once, at startup.
package main

import (
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"golang.org/x/sys/unix"
)

// kvmCreateVM is KVM_CREATE_VM, _IO(0xAE, 0x01).
const kvmCreateVM = 0xae01

func main() {
	kvm, err := unix.Open("/dev/kvm", unix.O_RDWR|unix.O_CLOEXEC, 0)
	if err != nil {
		fmt.Fprintln(os.Stderr, "kvmhold:", err)
		os.Exit(1)
	}
	vm, _, errno := unix.Syscall(unix.SYS_IOCTL, uintptr(kvm), kvmCreateVM, 0)
	if errno != 0 {
		fmt.Fprintln(os.Stderr, "kvmhold: KVM_CREATE_VM:", errno)
		os.Exit(1)
	}
	fmt.Printf("kvmhold: holding VM fd %d\n", vm)
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGTERM, syscall.SIGINT)
	<-sig
}
