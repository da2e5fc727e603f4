package session

import (
	"context"
	"fmt"
	"os"
	"sync"
	"time"

	"golang.org/x/sys/unix"

	"github.com/krunbench/krunbench/initlib"
	"github.com/krunbench/krunbench/session/qemu"
	"github.com/krunbench/krunbench/session/terminal"
	"github.com/krunbench/krunbench/vmm/builder"
	"github.com/krunbench/krunbench/vmm/cmdline"
	"github.com/krunbench/krunbench/vmm/kvm"
)

// engineProc is a running guest as the session supervises it: a QEMU
// process or an in-process KVM VM.
type engineProc interface {
	// Done is closed when the guest has ended.
	Done() <-chan struct{}
	// Err says why it ended, valid after Done.
	Err() error
	// Stop ends the guest, waiting up to grace for it to go.
	Stop(grace time.Duration)
}

// pickEngine resolves EngineAuto: the in-process KVM engine where KVM
// runs guests on hardware virtualization, else QEMU with TCG. It returns
// the engine, the QEMU accelerator to use, and why QEMU was chosen.
func pickEngine(accel string) (engine, qemuAccel, why string) {
	if accel != "" {
		return EngineQEMU, accel, "--accel " + accel + " selects the QEMU engine"
	}
	if err := kvm.KVMUsable(); err != nil {
		return EngineQEMU, qemu.AccelTCG, err.Error()
	}
	if b := kvm.HostBackend(); b == kvm.BackendPVM {
		return EngineQEMU, qemu.AccelTCG, "/dev/kvm is " + string(b) + ", whose instruction emulator cannot boot a stock guest kernel"
	}
	return EngineKVM, "", ""
}

// engineLine is the one line that says which engine runs the guest.
func engineLine(c *Config) string {
	if c.Engine == EngineKVM {
		return "krunbench: engine kvm"
	}
	return fmt.Sprintf("krunbench: engine qemu (%s): %s", c.Accel, c.engineWhy)
}

// kvmEngine runs the guest in this process on KVM (vmm/builder), with the
// pty slave as the host side of hvc0.
type kvmEngine struct {
	vm      *builder.VM
	slave   *os.File
	done    chan struct{}
	abandon chan struct{} // closed by Stop: the console's backlog need not be written
	stop    sync.Once
	err     error
}

// startKVM builds the VM and starts it. It owns slave from now on.
func startKVM(cfg *Config, spec cmdline.Spec, fs *fsStack, ports *hostPorts, slave *os.File) (*kvmEngine, error) {
	// Like QEMU's stdio chardev, the console passes bytes unchanged: the
	// guest's own tty does the line discipline.
	if _, err := terminal.MakeRaw(int(slave.Fd())); err != nil {
		slave.Close()
		return nil, fmt.Errorf("console pty: %w", err)
	}
	slave, err := pollable(slave)
	if err != nil {
		return nil, fmt.Errorf("console pty: %w", err)
	}
	b := builder.New(builder.Config{
		Kernel: cfg.Kernel, Cmdline: spec, VCPUs: cfg.CPUs, MemMiB: cfg.MemMiB, Init: cfg.Init,
		Console: slave, Log: cfg.Log, SkipPayloadCheck: cfg.SkipPayloadCheck,
		Ports: ports.consolePorts(),
	})
	b.AddFS(builder.FSDevice{Tag: initlib.RootTag, Server: fs.server})
	if cfg.Payload != nil {
		b.SetPayload(*cfg.Payload)
	}
	vm, err := b.Build(context.Background())
	if err != nil {
		slave.Close()
		return nil, err
	}
	e := &kvmEngine{vm: vm, slave: slave, done: make(chan struct{}), abandon: make(chan struct{})}
	if con := vm.Ports(); con != nil {
		ports.flush = func() {
			select {
			case <-con.Flushed():
			case <-e.abandon:
			}
		}
	}
	ports.sendSize()
	go e.run()
	return e, nil
}

// pollable returns slave as a non-blocking file on Go's poller, so that
// closing it ends the console's reader and writer at once (a blocking
// file's close waits for a pending read, which keeps the pty's slave side
// open and the session from ever seeing the end of output). Writes still
// wait for the session to read: the poller parks the writer instead of
// the thread.
func pollable(slave *os.File) (*os.File, error) {
	defer slave.Close()
	fd, err := unix.Dup(int(slave.Fd()))
	if err != nil {
		return nil, err
	}
	if err := unix.SetNonblock(fd, true); err != nil {
		unix.Close(fd)
		return nil, err
	}
	return os.NewFile(uintptr(fd), slave.Name()), nil
}

// run runs the VM and releases it as soon as it ends; once the console
// has written the guest's last output (or Stop abandoned it) it closes the
// pty's slave side, so the session's reader sees the end of output.
func (e *kvmEngine) run() {
	defer close(e.done)
	e.err = e.vm.Run(context.Background())
	e.vm.Close()
	if con := e.vm.Console(); con != nil {
		select {
		case <-con.Flushed():
		case <-e.abandon:
		}
	}
	e.slave.Close()
}

func (e *kvmEngine) Done() <-chan struct{} { return e.done }

func (e *kvmEngine) Err() error { return e.err }

// Where says where the vCPUs are, for a stalled boot's error.
func (e *kvmEngine) Where() string {
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	return e.vm.Where(ctx)
}

// Entered is when vCPU 0 first entered the guest.
func (e *kvmEngine) Entered() time.Time { return e.vm.Entered() }

func (e *kvmEngine) Stop(grace time.Duration) {
	e.stop.Do(func() { close(e.abandon) })
	e.vm.Stop()
	select {
	case <-e.done:
	case <-time.After(grace):
	}
}

// Resize tells the guest the console's size.
func (e *kvmEngine) Resize(cols, rows uint16) { e.vm.Resize(cols, rows) }
