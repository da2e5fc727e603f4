package kvm

import (
	"golang.org/x/sys/unix"
)

// KickSignal is the signal Kick sends to a vCPU thread. SIGURG is the
// signal the Go runtime already uses for asynchronous preemption: its
// handler is always installed (SA_RESTART does not matter, KVM_RUN returns
// EINTR regardless), spurious deliveries are harmless to the runtime, and
// it is not used for anything else by this program.
const KickSignal = unix.SIGURG

// Kick makes the vCPU leave KVM_RUN soon: it sets immediate_exit (so a
// thread about to enter KVM_RUN returns EINTR at once) and, when tid > 0,
// signals that OS thread (so one already inside KVM_RUN returns EINTR).
// tid is the thread id (unix.Gettid) of the thread locked to the vCPU.
// Safe to call from any goroutine; the caller clears immediate_exit with
// SetImmediateExit(false) before running the vCPU again.
func (v *VCPU) Kick(tid int) error {
	v.SetImmediateExit(true)
	if tid <= 0 {
		return nil
	}
	if err := unix.Tgkill(unix.Getpid(), tid, KickSignal); err != nil && err != unix.ESRCH {
		return err
	}
	return nil
}
