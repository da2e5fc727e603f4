package virtio

import (
	"errors"
	"fmt"
	"runtime/debug"
)

// ErrMemoryFault reports an access to guest memory that faulted: memory
// shared by a vhost-user front-end whose backing file shrank under the
// mapping (SIGBUS), or a mapping gone (SIGSEGV). Without the guards below
// such a fault kills the whole process.
var ErrMemoryFault = errors.New("virtio: guest memory fault (its backing file shrank?)")

// GuardFaults runs fn with faults on memory turned into an error wrapping
// ErrMemoryFault instead of a crash (runtime/debug.SetPanicOnFault on the
// calling goroutine, recovered here). Devices wrap the code that touches
// the buffers of a chain with it; Queue guards its own ring accesses and
// marks itself broken on a fault. A nil dereference or any other panic in
// fn is not caught.
//
// fn is abandoned at the faulting access: locks it took without defer stay
// taken, so fn should touch guest memory only where that is harmless.
func GuardFaults(fn func()) (err error) {
	defer catchFault(&err, debug.SetPanicOnFault(true))
	fn()
	return nil
}

// catchFault is deferred by GuardFaults: it restores the goroutine's
// panic-on-fault setting and turns a memory fault panic into *err. It must
// be deferred directly, so that its recover() applies.
func catchFault(err *error, restore bool) {
	debug.SetPanicOnFault(restore)
	if r := recover(); r != nil {
		*err = faultError(r)
	}
}

// faultError returns the error for a recovered memory fault, and panics
// again with r if r is anything else.
func faultError(r any) error {
	f, ok := r.(interface{ Addr() uintptr })
	if !ok {
		panic(r)
	}
	return fmt.Errorf("%w: at host address %#x", ErrMemoryFault, f.Addr())
}
