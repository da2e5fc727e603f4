package builder

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/krunbench/krunbench/vmm/bus"
	"github.com/krunbench/krunbench/vmm/console"
	"github.com/krunbench/krunbench/vmm/kvm"
	"github.com/krunbench/krunbench/vmm/legacy"
	"github.com/krunbench/krunbench/vmm/memory"
	"github.com/krunbench/krunbench/vmm/vcpu"
	"github.com/krunbench/krunbench/vmm/virtio"
	"github.com/krunbench/krunbench/vmm/virtio/mmio"
)

// Run errors.
var (
	// ErrStopped is returned by Run when Stop (or Close) ended the VM.
	ErrStopped = errors.New("vm: stopped")
	// ErrRunning is returned by a second Run, or a Run after Close.
	ErrRunning = errors.New("vm: already run or closed")
)

// VM is a built microVM. Run it once; Close releases it.
type VM struct {
	cmdline string
	log     *slog.Logger
	entry   uint64

	sys     *kvm.System
	vm      *kvm.VM
	cpuid   []kvm.CPUIDEntry
	mem     *memory.Memory
	pio     *bus.Bus
	mmio    *bus.Bus
	i8042   *legacy.I8042
	serial  *legacy.Serial
	console *console.Console
	ports   *console.Console // Config.Ports' device, or nil
	devices []*device
	vcpus   []*kvm.VCPU
	runners []*vcpu.Runner

	mu       sync.Mutex
	started  bool
	closed   bool
	released bool
	done     chan struct{}
	reset    atomic.Bool
	stopped  atomic.Bool
	once     sync.Once
	err      error
}

// device is one virtio device with its transport and event fds.
type device struct {
	dev      virtio.Device
	base     uint64
	irq      uint32
	tr       *mmio.Transport
	irqfd    *mmio.EventfdInterrupt
	irqfdOn  bool
	fds      []int
	ioevents []kvm.IOEventFD
	server   *mmio.IoeventfdServer
}

// Cmdline returns the kernel command line the guest boots with.
func (v *VM) Cmdline() string { return v.cmdline }

// Console returns the virtio console (hvc0 is its port 0).
func (v *VM) Console() *console.Console { return v.console }

// Ports returns the device of Config.Ports (nil without ports).
func (v *VM) Ports() *console.Console { return v.ports }

// Resize tells the guest the console's size; after Close it does nothing.
func (v *VM) Resize(cols, rows uint16) {
	v.mu.Lock()
	defer v.mu.Unlock()
	if !v.released {
		v.console.Resize(cols, rows)
	}
}

// Entered is when vCPU 0 first entered the guest (the kernel's entry),
// zero before Run.
func (v *VM) Entered() time.Time {
	if len(v.runners) == 0 {
		return time.Time{}
	}
	return v.runners[0].Entered()
}

// Where says where each vCPU is (its RIP), read on the vCPU threads within
// ctx: a clue when a guest is stuck.
func (v *VM) Where(ctx context.Context) string {
	var parts []string
	for i, r := range v.runners {
		regs, err := r.Regs(ctx)
		if err != nil {
			parts = append(parts, fmt.Sprintf("vCPU%d: %v", i, err))
			continue
		}
		parts = append(parts, fmt.Sprintf("vCPU%d rip %#x", i, regs.RIP))
	}
	return strings.Join(parts, ", ")
}

// Resets returns how many times the guest pulsed the i8042 reset line.
func (v *VM) Resets() int { return v.i8042.Resets() }

// guestReset ends the VM when the guest reboots (reboot=k). It runs on a
// vCPU thread and must not block.
func (v *VM) guestReset() {
	v.reset.Store(true)
	v.stopRunners()
}

func (v *VM) stopRunners() {
	for _, r := range v.runners {
		r.Stop()
	}
}

// Run runs every vCPU, each on its own locked OS thread, until the guest
// resets through the i8042 (then it returns nil), a vCPU hits a fatal exit
// (its error: triple fault, KVM internal error...), Stop is called
// (ErrStopped) or ctx is done (ctx.Err()). A VM runs once.
func (v *VM) Run(ctx context.Context) error {
	v.mu.Lock()
	if v.started || v.closed {
		v.mu.Unlock()
		return ErrRunning
	}
	v.started = true
	v.mu.Unlock()
	defer close(v.done)
	err := vcpu.RunAll(ctx, v.runners...)
	switch {
	case err != nil:
		return err
	case v.reset.Load():
		return nil
	case v.stopped.Load():
		return ErrStopped
	case ctx.Err() != nil:
		return ctx.Err()
	}
	return ErrStopped
}

// Stop makes Run return soon (with ErrStopped). It may be called from any
// goroutine, before, during or after Run.
func (v *VM) Stop() {
	v.stopped.Store(true)
	v.mu.Lock()
	defer v.mu.Unlock()
	if !v.released {
		v.stopRunners()
	}
}

// Close stops the VM, waits for Run to return and releases everything:
// the event fds and their goroutines, the devices (the console's included),
// the vCPUs, the VM, guest memory and /dev/kvm. It is idempotent.
func (v *VM) Close() error {
	v.once.Do(func() {
		v.mu.Lock()
		v.closed = true
		started := v.started
		v.mu.Unlock()
		v.Stop()
		if started {
			<-v.done
		}
		v.mu.Lock()
		v.released = true
		v.mu.Unlock()
		v.err = v.release()
	})
	return v.err
}

// release frees the resources in the reverse order of the build.
func (v *VM) release() error {
	var errs []error
	keep := func(err error) {
		if err != nil {
			errs = append(errs, err)
		}
	}
	for i := len(v.devices) - 1; i >= 0; i-- {
		d := v.devices[i]
		if d.server != nil {
			keep(d.server.Close())
		}
		for _, e := range d.ioevents {
			keep(v.vm.UnregisterIOEventFD(e))
		}
		mmio.CloseEventfds(d.fds)
		if d.irqfdOn {
			keep(v.vm.UnregisterIRQFD(d.irqfd.FD(), d.irq))
		}
		d.dev.Reset()
		if d.irqfd != nil {
			keep(d.irqfd.Close())
		}
	}
	if v.console != nil {
		keep(v.console.Close())
	}
	if v.ports != nil {
		keep(v.ports.Close())
	}
	for _, c := range v.vcpus {
		keep(c.Close())
	}
	if v.vm != nil {
		keep(v.vm.Close())
	}
	if v.mem != nil {
		keep(v.mem.Close())
	}
	if v.sys != nil {
		keep(v.sys.Close())
	}
	return errors.Join(errs...)
}
