// Package vcpu runs KVM vCPUs: one goroutine locked to its OS thread per
// vCPU, looping on KVM_RUN and dispatching port I/O exits to a port bus and
// MMIO exits to an MMIO bus. Guest-fatal exits (triple-fault shutdown,
// entry failure, KVM internal error) end the loop with an error that says
// what happened and where.
//
// Stopping: Stop (or cancelling Run's context) sets kvm_run.immediate_exit
// and sends kvm.KickSignal (SIGURG, which the Go runtime already handles)
// to the vCPU thread with tgkill. immediate_exit covers a thread that is
// about to enter KVM_RUN, the signal one that is inside it; either way
// KVM_RUN returns EINTR and the loop, seeing the stop flag, returns.
package vcpu

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/sys/unix"

	"github.com/krunbench/krunbench/vmm/bus"
	"github.com/krunbench/krunbench/vmm/kvm"
)

// Sentinel errors; Run's errors wrap them.
var (
	// ErrShutdown reports KVM_EXIT_SHUTDOWN: the guest triple-faulted.
	ErrShutdown = errors.New("vcpu: guest shut down (triple fault)")
	// ErrFailEntry reports KVM_EXIT_FAIL_ENTRY: the CPU refused the state.
	ErrFailEntry = errors.New("vcpu: VM entry failed")
	// ErrInternal reports KVM_EXIT_INTERNAL_ERROR (e.g. emulation failure).
	ErrInternal = errors.New("vcpu: KVM internal error")
	// ErrHalted reports a HLT exit, which only happens without the
	// in-kernel irqchip: nothing could wake the vCPU.
	ErrHalted = errors.New("vcpu: guest halted")
	// ErrSystemEvent reports KVM_EXIT_SYSTEM_EVENT (reset, shutdown, crash).
	ErrSystemEvent = errors.New("vcpu: guest system event")
	// ErrUnhandledExit reports an exit reason this loop does not handle.
	ErrUnhandledExit = errors.New("vcpu: unhandled exit")
	// ErrAlreadyRunning reports a second concurrent Run.
	ErrAlreadyRunning = errors.New("vcpu: already running")
)

// Runner drives one vCPU.
type Runner struct {
	v    *kvm.VCPU
	pio  *bus.Bus
	mmio *bus.Bus

	running atomic.Bool
	stop    atomic.Bool
	tid     atomic.Int32
	kickMu  sync.Mutex
	samples chan chan sample
	exits   [64]atomic.Uint64
	entered atomic.Int64 // unix nanoseconds of the first KVM_RUN
}

type sample struct {
	regs kvm.Regs
	err  error
}

// New returns a Runner for v that sends port I/O to pio and MMIO to mmio.
func New(v *kvm.VCPU, pio, mmio *bus.Bus) *Runner {
	return &Runner{v: v, pio: pio, mmio: mmio, samples: make(chan chan sample, 1)}
}

// Entered is when the loop first entered the guest (KVM_RUN), zero before.
func (r *Runner) Entered() time.Time {
	if ns := r.entered.Load(); ns != 0 {
		return time.Unix(0, ns)
	}
	return time.Time{}
}

// VCPU returns the vCPU this Runner drives.
func (r *Runner) VCPU() *kvm.VCPU { return r.v }

// Exits returns how many exits of the given reason the loop has seen.
func (r *Runner) Exits(reason kvm.ExitReason) uint64 {
	if int(reason) >= len(r.exits) {
		return 0
	}
	return r.exits[reason].Load()
}

// Stop makes Run return nil soon. It may be called from any goroutine,
// before, during or after Run; a stopped Runner stays stopped.
func (r *Runner) Stop() {
	r.stop.Store(true)
	r.kick()
}

func (r *Runner) kick() {
	r.kickMu.Lock()
	defer r.kickMu.Unlock()
	r.v.Kick(int(r.tid.Load()))
}

// Regs interrupts the running vCPU, reads its registers on the vCPU thread
// and resumes it. A vCPU's state can only be read between KVM_RUN calls,
// which is why GetRegs from another thread would block. Useful to see
// where a guest is stuck.
func (r *Runner) Regs(ctx context.Context) (kvm.Regs, error) {
	if !r.running.Load() {
		return r.v.GetRegs()
	}
	reply := make(chan sample, 1)
	select {
	case r.samples <- reply:
	case <-ctx.Done():
		return kvm.Regs{}, ctx.Err()
	}
	r.kick()
	select {
	case s := <-reply:
		return s.regs, s.err
	case <-ctx.Done():
		return kvm.Regs{}, ctx.Err()
	}
}

// Run runs the vCPU on the calling goroutine, locked to its OS thread,
// until Stop is called or ctx is done (then it returns nil), or the guest
// does something that ends it (then it returns an error wrapping one of
// the sentinels).
func (r *Runner) Run(ctx context.Context) error {
	if !r.running.CompareAndSwap(false, true) {
		return ErrAlreadyRunning
	}
	defer r.running.Store(false)
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	r.tid.Store(int32(unix.Gettid()))
	defer func() {
		r.kickMu.Lock()
		r.tid.Store(0)
		r.kickMu.Unlock()
	}()
	watch := context.AfterFunc(ctx, r.Stop)
	defer watch()
	for {
		if r.stop.Load() {
			return nil
		}
		if r.entered.Load() == 0 {
			r.entered.Store(time.Now().UnixNano())
		}
		reason, err := r.v.Run()
		if errors.Is(err, kvm.ErrInterrupted) {
			r.exits[kvm.ExitIntr].Add(1)
			if r.stop.Load() {
				return nil
			}
			r.serveSamples()
			r.v.SetImmediateExit(false)
			continue // the stop flag is re-checked after clearing immediate_exit
		}
		if errors.Is(err, unix.EAGAIN) {
			continue
		}
		if err != nil {
			return fmt.Errorf("vcpu %d: %w", r.v.ID(), err)
		}
		if int(reason) < len(r.exits) {
			r.exits[reason].Add(1)
		}
		if err := r.handle(reason); err != nil {
			return err
		}
	}
}

func (r *Runner) serveSamples() {
	for {
		select {
		case reply := <-r.samples:
			regs, err := r.v.GetRegs()
			reply <- sample{regs, err}
		default:
			return
		}
	}
}

func (r *Runner) handle(reason kvm.ExitReason) error {
	id := r.v.ID()
	switch reason {
	case kvm.ExitIO:
		io, err := r.v.IO()
		if err != nil {
			return fmt.Errorf("vcpu %d: %w", id, err)
		}
		for i := range io.Count {
			d := io.Data[i*io.Size : (i+1)*io.Size]
			if io.Out {
				r.pio.Write(uint64(io.Port), d)
			} else {
				r.pio.Read(uint64(io.Port), d)
			}
		}
	case kvm.ExitMMIO:
		m := r.v.MMIO()
		if m.Write {
			r.mmio.Write(m.Addr, m.Data)
		} else {
			r.mmio.Read(m.Addr, m.Data)
		}
	case kvm.ExitIntr, kvm.ExitIRQWindowOpen:
	case kvm.ExitHLT:
		return fmt.Errorf("vcpu %d: %w%s", id, ErrHalted, r.where())
	case kvm.ExitShutdown:
		return fmt.Errorf("vcpu %d: %w%s", id, ErrShutdown, r.where())
	case kvm.ExitFailEntry:
		reason, cpu := r.v.FailEntryReason()
		return fmt.Errorf("vcpu %d: %w: hardware reason %#x on host CPU %d", id, ErrFailEntry, reason, cpu)
	case kvm.ExitInternalError:
		sub, data := r.v.InternalError()
		return fmt.Errorf("vcpu %d: %w: suberror %d, data %#x%s", id, ErrInternal, sub, data, r.where())
	case kvm.ExitSystemEvent:
		e := r.v.SystemEvent()
		kind := map[uint32]string{kvm.SystemEventShutdown: "shutdown", kvm.SystemEventReset: "reset", kvm.SystemEventCrash: "crash"}[e.Type]
		return fmt.Errorf("vcpu %d: %w: %s (type %d)", id, ErrSystemEvent, kind, e.Type)
	default:
		return fmt.Errorf("vcpu %d: %w: %v%s", id, ErrUnhandledExit, reason, r.where())
	}
	return nil
}

// where describes the guest position for error messages.
func (r *Runner) where() string {
	regs, err := r.v.GetRegs()
	if err != nil {
		return ""
	}
	return fmt.Sprintf(" at rip %#x rsp %#x", regs.RIP, regs.RSP)
}

// RunAll runs every Runner on its own goroutine and returns when all have
// returned. The first one to return (error or not) stops the others; the
// result is the first non-nil error. Cancelling ctx stops them all.
func RunAll(ctx context.Context, runners ...*Runner) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	errs := make(chan error, len(runners))
	for _, r := range runners {
		go func() {
			err := r.Run(ctx)
			cancel()
			errs <- err
		}()
	}
	var first error
	for range runners {
		if err := <-errs; err != nil && first == nil {
			first = err
		}
	}
	return first
}
