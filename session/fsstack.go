package session

import (
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"sync"

	"github.com/krunbench/krunbench/initlib"
	"github.com/krunbench/krunbench/virtiofs"
	"github.com/krunbench/krunbench/virtiofs/fuse"
	"github.com/krunbench/krunbench/virtiofs/overlay"
	"github.com/krunbench/krunbench/virtiofs/passthrough"
	"github.com/krunbench/krunbench/virtiofs/trace"
	"github.com/krunbench/krunbench/virtiofs/vhostuser"
)

// Run errors.
var (
	ErrStopped    = errors.New("the guest was stopped")
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
	// Boot says when the run's moments happened.
	Boot BootTimes
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
	s.server = fuse.NewServer(s.overlay, fuse.Options{Observer: s.tap, Log: cfg.Log, Hook: cfg.Hook})
	if cfg.Engine != EngineQEMU {
		return s, nil // the in-process engine puts the server behind its own device
	}
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
	if s.backend != nil {
		s.backend.Close()
	}
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
