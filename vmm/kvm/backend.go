package kvm

import "os"

// Backend names the kernel module implementing /dev/kvm on this host.
type Backend string

// Known backends.
const (
	BackendIntel   Backend = "kvm_intel" // hardware VMX
	BackendAMD     Backend = "kvm_amd"   // hardware SVM
	BackendPVM     Backend = "kvm_pvm"   // PVM: pagetable-based, no VMX/SVM
	BackendUnknown Backend = "unknown"
)

// HostBackend reports which module backs /dev/kvm, from /sys/module.
//
// It matters because PVM (Ant Group's pagetable-based KVM, used on cloud
// VMs without nested virtualization) runs an unmodified guest kernel's
// supervisor code largely through KVM's instruction emulator, which lacks
// instructions Linux uses while booting (XRSTOR, INT3): such a guest dies
// with KVM_EXIT_INTERNAL_ERROR (emulation failure). Only PVM-enlightened
// guest kernels boot fully there.
func HostBackend() Backend {
	for _, b := range []Backend{BackendPVM, BackendIntel, BackendAMD} {
		if _, err := os.Stat("/sys/module/" + string(b)); err == nil {
			return b
		}
	}
	return BackendUnknown
}
