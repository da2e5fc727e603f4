package session

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"sync"
	"time"

	"github.com/creack/pty"

	"github.com/krunbench/krunbench/initlib"
	"github.com/krunbench/krunbench/session/qemu"
	"github.com/krunbench/krunbench/session/terminal"
	"github.com/krunbench/krunbench/virtiofs"
	"github.com/krunbench/krunbench/virtiofs/fuse"
	"github.com/krunbench/krunbench/virtiofs/overlay"
	"github.com/krunbench/krunbench/virtiofs/passthrough"
	"github.com/krunbench/krunbench/virtiofs/trace"
	"github.com/krunbench/krunbench/virtiofs/vhostuser"
	"github.com/krunbench/krunbench/vmm/cmdline"
)

// Run errors.
var (
	ErrNoExitCode = errors.New("the guest stopped without reporting an exit code")
	ErrBootStall  = errors.New("the guest never reached its virtio-fs root")
)

// Result is how a run ended.
type Result struct {
	// ExitCode is the workload's exit code, reported by the guest init
	// through ioctl 0x7602; valid when Reported.
	ExitCode int
	Reported bool
	// Engine and Accel say what actually ran.
	Engine, Accel string
	// Panic is the guest kernel's panic message, if it panicked.
	Panic string
}

// fsStack is the virtio-fs server for the guest's root.
type fsStack struct {
	overlay *overlay.FS
	tap     *trace.Tap
	server  *fuse.Server
	backend *vhostuser.Backend
	socket  string
	rec     *trace.Recorder
	file    *os.File
}

func startFS(cfg *Config, dir string) (*fsStack, error) {
	pt, err := passthrough.New(cfg.RootFS, passthrough.Options{Log: cfg.Log})
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrRootFS, err)
	}
	s := &fsStack{overlay: overlay.New(pt), socket: filepath.Join(dir, "virtiofs.sock")}
	if cfg.Init.Policy == initlib.InitKrun {
		s.overlay.SetPayload(cfg.Payload.Bytes)
		s.overlay.SetOneShot(!initlib.IsScript(cfg.Payload.Bytes))
	}
	s.tap = trace.NewTap(trace.Options{Resolver: s.overlay, Inodes: s.overlay})
	if cfg.TraceFile != "" {
		if s.file, err = os.Create(cfg.TraceFile); err != nil {
			return nil, fmt.Errorf("trace: %w", err)
		}
		s.rec = s.tap.Record(s.file, 0)
	}
	s.server = fuse.NewServer(s.overlay, fuse.Options{Observer: s.tap, Log: cfg.Log})
	dev, err := virtiofs.NewDevice(s.server, virtiofs.DeviceOptions{Tag: virtiofs.RootTag, Log: cfg.Log})
	if err != nil {
		return nil, err
	}
	ln, err := net.ListenUnix("unix", &net.UnixAddr{Name: s.socket, Net: "unix"})
	if err != nil {
		return nil, fmt.Errorf("vhost-user socket: %w", err)
	}
	s.backend = vhostuser.NewBackend(dev, vhostuser.Options{Log: cfg.Log})
	go s.backend.Serve(ln)
	return s, nil
}

func (s *fsStack) close() {
	s.backend.Close()
	if s.rec != nil {
		s.rec.Close()
		s.file.Close()
	}
}

// panicLine finds the kernel's panic message in console output.
var panicLine = regexp.MustCompile(`Kernel panic - not syncing: [^\r\n]*`)

// consoleTail keeps the last bytes of console output to explain failures.
type consoleTail struct {
	mu  sync.Mutex
	buf []byte
}

func (t *consoleTail) Write(p []byte) (int, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.buf = append(t.buf, p...)
	if len(t.buf) > 16<<10 {
		t.buf = append([]byte(nil), t.buf[len(t.buf)-8<<10:]...)
	}
	return len(p), nil
}

func (t *consoleTail) panicMessage() string {
	t.mu.Lock()
	defer t.mu.Unlock()
	return string(panicLine.Find(t.buf))
}

// kvmBootTimeout bounds a KVM boot chosen automatically: on real hardware
// the guest reaches virtio-fs in well under a second, so a stall means KVM
// is present but unfit (nested setups), and TCG takes over.
const kvmBootTimeout = 10 * time.Second

// Run boots the guest, bridges its console to cfg.In/cfg.Out until it
// stops, and returns how it ended. Cancelling ctx stops the guest.
func Run(ctx context.Context, cfg Config) (Result, error) {
	if err := cfg.Validate(); err != nil {
		return Result{}, err
	}
	if cfg.Accel != "" {
		return boot(ctx, cfg, cfg.Accel, cfg.BootTimeout)
	}
	if err := KVMUsable(); err != nil {
		return boot(ctx, cfg, qemu.AccelTCG, cfg.BootTimeout)
	}
	res, err := boot(ctx, cfg, qemu.AccelKVM, min(kvmBootTimeout, cfg.BootTimeout))
	if errors.Is(err, ErrBootStall) {
		fmt.Fprintf(cfg.Out, "krunbench: KVM did not boot the guest within %s; retrying with TCG\r\n", kvmBootTimeout)
		return boot(ctx, cfg, qemu.AccelTCG, cfg.BootTimeout)
	}
	return res, err
}

func boot(ctx context.Context, cfg Config, accel string, bootTimeout time.Duration) (Result, error) {
	res := Result{Engine: EngineQEMU, Accel: accel}
	spec := cmdline.Spec{
		Program: cfg.Program, Args: cfg.Args, Env: cfg.Env, Workdir: cfg.Workdir, Verbose: cfg.Verbose,
		Init: cfg.Init.KernelParam(), NoInit: cfg.Init.Policy == initlib.NoInit,
	}
	if accel == qemu.AccelTCG {
		spec.Extra = append(spec.Extra, qemu.TCGParams...)
	}
	if cfg.BootTrace {
		spec.Extra = append(spec.Extra, "krunbench.trace=1")
	}
	line, err := cmdline.Build(spec)
	if err != nil {
		return res, err
	}
	dir, err := os.MkdirTemp("", "krunbench-run-")
	if err != nil {
		return res, err
	}
	defer os.RemoveAll(dir)
	fs, err := startFS(&cfg, dir)
	if err != nil {
		return res, err
	}
	defer fs.close()

	master, slave, err := pty.Open()
	if err != nil {
		return res, fmt.Errorf("console pty: %w", err)
	}
	defer master.Close()
	var qlog bytes.Buffer
	proc, err := qemu.Start(qemu.Config{
		Kernel: cfg.Kernel, Cmdline: line, CPUs: cfg.CPUs, MemMiB: cfg.MemMiB,
		Socket: fs.socket, Tag: virtiofs.RootTag, Accel: accel, Console: slave, Stderr: &qlog,
	})
	slave.Close()
	if err != nil {
		return res, err
	}
	defer proc.Stop(2 * time.Second)

	tail := &consoleTail{}
	bridge, err := terminal.NewBridge(master, cfg.In, io.MultiWriter(cfg.Out, tail))
	if err != nil {
		return res, err
	}
	defer bridge.Stop()

	stall := time.NewTimer(bootTimeout)
	defer stall.Stop()
	booted := time.NewTicker(50 * time.Millisecond)
	defer booted.Stop()
	for waiting := true; waiting; {
		select {
		case <-proc.Done():
			waiting = false
		case <-ctx.Done():
			proc.Stop(2 * time.Second)
			return res, ctx.Err()
		case <-booted.C:
			if fs.server.Initialized() {
				stall.Stop()
				booted.Stop()
			}
		case <-stall.C:
			if !fs.server.Initialized() {
				proc.Stop(2 * time.Second)
				return res, fmt.Errorf("%w within %s (accel %s; does the kernel have virtio-fs, virtio-mmio and hvc?)", ErrBootStall, bootTimeout, accel)
			}
		}
	}
	select { // let the last console bytes through
	case <-bridge.Drained():
	case <-time.After(time.Second):
	}
	res.Panic = tail.panicMessage()
	if code, ok := fs.overlay.ExitCode(); ok {
		res.ExitCode, res.Reported = code, true
		return res, nil
	}
	if res.Panic != "" {
		return res, fmt.Errorf("%w: guest %s", ErrNoExitCode, res.Panic)
	}
	if qerr := proc.Err(); qerr != nil {
		return res, fmt.Errorf("%w: qemu: %v: %s", ErrNoExitCode, qerr, bytes.TrimSpace(qlog.Bytes()))
	}
	return res, ErrNoExitCode
}
