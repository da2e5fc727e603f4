package session

import (
	"errors"
	"fmt"

	"golang.org/x/sys/unix"
)

// ErrNoKVM reports that KVM cannot be used here.
var ErrNoKVM = errors.New("KVM is not usable")

const (
	kvmGetAPIVersion = 0xAE00
	kvmCreateVM      = 0xAE01
	kvmAPIVersion    = 12
)

// KVMUsable checks that /dev/kvm opens read-write, speaks API version 12
// and creates a VM.
func KVMUsable() error {
	fd, err := unix.Open("/dev/kvm", unix.O_RDWR|unix.O_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("%w: /dev/kvm: %w", ErrNoKVM, err)
	}
	defer unix.Close(fd)
	v, _, errno := unix.Syscall(unix.SYS_IOCTL, uintptr(fd), kvmGetAPIVersion, 0)
	if errno != 0 || v != kvmAPIVersion {
		return fmt.Errorf("%w: API version %d (%v), want %d", ErrNoKVM, v, errno, kvmAPIVersion)
	}
	vm, _, errno := unix.Syscall(unix.SYS_IOCTL, uintptr(fd), kvmCreateVM, 0)
	if errno != 0 {
		return fmt.Errorf("%w: KVM_CREATE_VM: %w", ErrNoKVM, errno)
	}
	unix.Close(int(vm))
	return nil
}
