package session

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/creack/pty"

	"github.com/krunbench/krunbench/initlib"
	"github.com/krunbench/krunbench/session/qemu"
	"github.com/krunbench/krunbench/session/terminal"
	"github.com/krunbench/krunbench/virtiofs"
	"github.com/krunbench/krunbench/virtiofs/trace"
	"github.com/krunbench/krunbench/vmm/cmdline"
	"github.com/krunbench/krunbench/vmm/kvm"
)

// kvmBootTimeout bounds a KVM boot chosen automatically: on real hardware
// the guest reaches virtio-fs in well under a second, so a stall means KVM
// is present but unfit (nested setups), and TCG takes over.
const kvmBootTimeout = 10 * time.Second

// DefaultBootTimeout bounds the time until the guest's first FUSE request
// when Config.BootTimeout is 0: 30 s with KVM; 120 s under TCG, where a
// busy 2-core machine took over 30 s to reach the root (load 9) and a
// false "never reached its virtio-fs root" would stop a healthy boot.
func DefaultBootTimeout(accel string) time.Duration {
	if accel == qemu.AccelTCG {
		return 120 * time.Second
	}
	return 30 * time.Second
}

// Session is one running guest: the virtio-fs stack serving its root, the
// engine process, and its console. Console output goes to Config.Out as it
// arrives (the writer must not block for long: the TUI's drops and counts);
// input goes in through Input.
type Session struct {
	cfg     Config
	accel   string
	dir     string
	fs      *fsStack
	proc    engineProc
	console *os.File
	ports   *hostPorts
	tail    consoleTail
	qlog    bytes.Buffer
	drained chan struct{}
	pumped  atomic.Int64 // console bytes handed to Config.Out
	ended   chan struct{}
	stopped chan struct{}
	stop    sync.Once
	res     Result
	err     error

	t0         time.Time // Start was called
	vmCreated  time.Time
	exited     time.Time
	milestones milestoneWatch
}

// Start validates cfg, serves the root filesystem, and boots the guest on
// its engine: in-process KVM, or QEMU with the given accelerator ("" picks
// KVM where it works, else TCG; an automatic KVM that stalls falls back to
// TCG inside Run).
func Start(cfg Config) (*Session, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if cfg.HideMilestones {
		cfg.Out = newMilestoneFilter(cfg.Out)
	}
	accel := cfg.Accel
	switch {
	case cfg.Engine == EngineKVM:
		accel = qemu.AccelKVM
	case accel == "":
		accel = qemu.AccelTCG
		if kvm.KVMUsable() == nil {
			accel = qemu.AccelKVM
		}
	}
	s, err := start(cfg, accel)
	if err == nil && cfg.engineAuto && cfg.EngineNote != nil {
		fmt.Fprintln(cfg.EngineNote, engineLine(&cfg))
	}
	return s, err
}

func start(cfg Config, accel string) (*Session, error) {
	s := &Session{cfg: cfg, accel: accel, drained: make(chan struct{}), ended: make(chan struct{}), stopped: make(chan struct{}), t0: time.Now()}
	spec := cmdline.Spec{
		Program: cfg.Program, Args: cfg.Args, Env: cfg.Env, Workdir: cfg.Workdir, Verbose: cfg.Verbose,
		Init: cfg.Init.KernelParam(), NoInit: cfg.Init.Policy == initlib.NoInit,
	}
	if accel == qemu.AccelTCG {
		spec.Extra = append(spec.Extra, qemu.TCGParams()...)
		spec.Extra = append(spec.Extra, qemu.TCGDMAParams(cfg.MemMiB)...)
	}
	if cfg.BootTrace {
		spec.Extra = append(spec.Extra, "krunbench.trace=1")
	}
	if cfg.Verbose {
		// Time-stamped kernel messages, told apart from the guest's
		// output on the shared console (the TUI's kernel boot log).
		spec.Extra = append(spec.Extra, "printk.time=1")
	}
	s.ports = newHostPorts(&s.cfg)
	spec.Extra = append(spec.Extra, s.ports.kernelParam())
	line, err := cmdline.Build(spec)
	if err != nil {
		return nil, err
	}
	CleanStaleRunDirs()
	if s.dir, err = makeRunDir(); err != nil {
		return nil, err
	}
	if s.fs, err = startFS(&s.cfg, s.dir); err != nil {
		s.cleanup()
		return nil, err
	}
	master, slave, err := pty.Open()
	if err != nil {
		s.cleanup()
		return nil, fmt.Errorf("console pty: %w", err)
	}
	s.console = master
	if cfg.Engine == EngineKVM {
		err = s.startKVM(spec, slave)
	} else {
		err = s.startQEMU(line, slave)
	}
	if err != nil {
		s.cleanup()
		return nil, err
	}
	s.vmCreated = time.Now()
	go s.pumpOutput()
	go s.supervise()
	return s, nil
}

// startKVM runs the guest in-process; the VM owns slave.
func (s *Session) startKVM(spec cmdline.Spec, slave *os.File) error {
	e, err := startKVM(&s.cfg, spec, s.fs, s.ports, slave)
	if err == nil {
		s.proc = e
	}
	return err
}

// startQEMU runs the guest in QEMU, which gets its own copy of slave.
func (s *Session) startQEMU(line string, slave *os.File) error {
	ports, err := s.ports.connect()
	if err != nil {
		slave.Close()
		return err
	}
	p, err := qemu.Start(qemu.Config{
		Kernel: s.cfg.Kernel, Cmdline: line, CPUs: s.cfg.CPUs, MemMiB: s.cfg.MemMiB,
		Socket: s.fs.socket, Tag: virtiofs.RootTag, Accel: s.accel, Console: slave, Stderr: &s.qlog,
		Ports: ports,
	})
	slave.Close()
	if err == nil {
		s.proc = p
	}
	return err
}

// pumpOutput copies console output to Config.Out and the panic detector.
// Once Config.Out fails, the rest is read and discarded: the engines wait
// for the console to be read (backpressure), and a dead reader must not
// stall the guest.
func (s *Session) pumpOutput() {
	defer close(s.drained)
	out := s.cfg.Out
	if !s.cfg.Verbose {
		out = &panicCut{w: out}
	}
	_, _ = io.Copy(&outputWriter{w: io.MultiWriter(out, &s.tail, &s.milestones), n: &s.pumped}, s.console)
}

// outputWriter counts the bytes its writer took, and discards everything
// after the writer's first error.
type outputWriter struct {
	w      io.Writer
	n      *atomic.Int64
	failed bool
}

func (o *outputWriter) Write(b []byte) (int, error) {
	if !o.failed {
		_, err := o.w.Write(b)
		o.failed = err != nil
	}
	o.n.Add(int64(len(b)))
	return len(b), nil
}

// drainIdleLimit bounds the wait for the console's last bytes after the
// engine ended, counted from the last byte Config.Out took: a reader that
// keeps taking output gets all of it, however slowly; one that took
// nothing for this long (stuck) loses the rest. Both engines close their
// side of the console when they end, so the wait normally ends with the
// output (drained).
const drainIdleLimit = 10 * time.Second

// waitDrained waits until the console's output has all reached
// Config.Out, the session is stopped, or the reader is stuck.
func (s *Session) waitDrained() {
	const step = 250 * time.Millisecond
	tick := time.NewTicker(step)
	defer tick.Stop()
	last, idle := s.pumped.Load(), time.Duration(0)
	for {
		select {
		case <-s.drained:
			return
		case <-s.stopped:
			return
		case <-tick.C:
		}
		if n := s.pumped.Load(); n != last {
			last, idle = n, 0
			continue
		}
		if idle += step; idle >= drainIdleLimit {
			return
		}
	}
}

// supervise waits for the engine to end, enforcing the boot timeout.
func (s *Session) supervise() {
	defer close(s.ended)
	timeout := s.cfg.BootTimeout
	if timeout == 0 {
		timeout = DefaultBootTimeout(s.accel)
	}
	if s.cfg.Accel == "" && s.accel == qemu.AccelKVM && (s.cfg.Engine == EngineQEMU || s.cfg.engineAuto) {
		timeout = min(timeout, kvmBootTimeout)
	}
	stall := time.NewTimer(timeout)
	defer stall.Stop()
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	for {
		select {
		case <-s.proc.Done():
			s.exited = time.Now()
			s.finish()
			return
		case <-s.stopped:
			s.proc.Stop(2 * time.Second)
			s.err = ErrStopped
			return
		case <-tick.C:
			if s.fs.server.Initialized() {
				stall.Stop()
			}
		case <-stall.C:
			if !s.fs.server.Initialized() {
				where := ""
				if w, ok := s.proc.(interface{ Where() string }); ok {
					where = "; " + w.Where()
				}
				s.proc.Stop(2 * time.Second)
				s.err = fmt.Errorf("%w within %s (accel %s; does the kernel have virtio-fs, virtio-mmio and hvc?%s)", ErrBootStall, timeout, s.accel, where)
				return
			}
		}
	}
}

// finish works out how the guest ended, after the engine exited.
func (s *Session) finish() {
	s.waitDrained() // let the last console bytes through
	s.ports.finish()
	s.res = Result{Engine: s.cfg.Engine, Accel: s.accel, Panic: s.tail.panicMessage(), Boot: s.bootTimes()}
	if code, ok := s.fs.overlay.ExitCode(); ok {
		s.res.ExitCode, s.res.Reported = code, true
		return
	}
	switch qerr := s.proc.Err(); {
	case s.res.Panic != "":
		s.err = fmt.Errorf("%w: %s", ErrNoExitCode, explainPanic(s.res.Panic))
	case qerr != nil && s.qlog.Len() == 0:
		s.err = fmt.Errorf("%w: %s: %v", ErrNoExitCode, s.cfg.Engine, qerr)
	case qerr != nil:
		s.err = fmt.Errorf("%w: %s: %v: %s", ErrNoExitCode, s.cfg.Engine, qerr, bytes.TrimSpace(s.qlog.Bytes()))
	default:
		s.err = ErrNoExitCode
	}
}

// Engine is the engine the guest runs on (EngineKVM or EngineQEMU).
func (s *Session) Engine() string { return s.cfg.Engine }

// Accel is the accelerator the guest runs on.
func (s *Session) Accel() string { return s.accel }

// Tap is the trace tap of the guest's root filesystem.
func (s *Session) Tap() *trace.Tap { return s.fs.tap }

// Input sends bytes to the guest console.
func (s *Session) Input(b []byte) (int, error) { return s.console.Write(b) }

// Resize sets the console's window size: on the console pty, and for the
// guest on the krun-winsize port (QEMU's virtconsole cannot carry a size)
// and, in-process, as virtio-console's resize.
func (s *Session) Resize(size terminal.Size) {
	_ = terminal.SetSize(int(s.console.Fd()), size)
	s.ports.resize(size)
	if e, ok := s.proc.(*kvmEngine); ok {
		e.Resize(size.Cols, size.Rows)
	}
}

// Stop ends the guest; Wait then returns ErrStopped.
func (s *Session) Stop() { s.stop.Do(func() { close(s.stopped) }) }

// Done is closed when the guest has ended.
func (s *Session) Done() <-chan struct{} { return s.ended }

// Wait blocks until the guest ends and returns how it ended. It releases
// everything the session held.
func (s *Session) Wait() (Result, error) {
	<-s.ended
	s.cleanup()
	return s.res, s.err
}

func (s *Session) cleanup() {
	if s.proc != nil {
		s.proc.Stop(2 * time.Second)
	}
	if s.fs != nil {
		s.fs.close()
	}
	if s.console != nil {
		s.console.Close()
	}
	if s.ports != nil {
		s.ports.close()
	}
	os.RemoveAll(s.dir)
}

// Run boots the guest, bridges its console to the user's terminal (cfg.In
// and cfg.Out) until it stops, and returns how it ended. Cancelling ctx
// stops the guest.
func Run(ctx context.Context, cfg Config) (Result, error) {
	res, err := runOnce(ctx, cfg, cfg.Accel)
	if errors.Is(err, ErrBootStall) && cfg.Accel == "" && res.Accel == qemu.AccelKVM && cfg.Engine != EngineKVM {
		if cfg.Out != nil {
			fmt.Fprintf(cfg.Out, "krunbench: KVM did not boot the guest within %s; retrying with TCG\r\n", kvmBootTimeout)
		}
		return runOnce(ctx, cfg, qemu.AccelTCG)
	}
	return res, err
}

func runOnce(ctx context.Context, cfg Config, accel string) (Result, error) {
	cfg.Accel = accel
	s, err := Start(cfg)
	if err != nil {
		return Result{}, err
	}
	bridge, err := terminal.NewBridge(cfg.In, s.console, s.Resize)
	if err != nil {
		s.Stop()
		s.Wait()
		return Result{}, err
	}
	defer bridge.Stop()
	select {
	case <-s.Done():
	case <-ctx.Done():
		s.Stop()
		s.Wait()
		return Result{Accel: s.accel}, ctx.Err()
	}
	bridge.Stop()
	res, err := s.Wait()
	res.Accel = s.accel
	return res, err
}
