package session

import (
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
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
	if cfg.Engine == EngineQEMU {
		// The kvm engine's builder installs the payload and checks the
		// policy itself; for QEMU the session does both here.
		if cfg.Init.Policy == initlib.InitKrun && cfg.Payload != nil {
			if err := s.overlay.SetPayload(cfg.Payload.Bytes); err != nil {
				return nil, err
			}
		}
		if err := cfg.Init.Check([]initlib.FSDevice{{Tag: initlib.RootTag, FS: s.overlay}}); err != nil {
			return nil, err
		}
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

// explainPanic says in a sentence what a guest kernel panic means and
// what to do, with the kernel's own line in it.
func explainPanic(msg string) string {
	if m := initExit.FindStringSubmatch(msg); m != nil {
		code, _ := strconv.ParseUint(m[1], 16, 32)
		return fmt.Sprintf("the init exited (status %d) without reporting the workload's exit code, so the guest kernel stopped (%s); an init must report the code (ioctl 0x7602 on /) and reboot, not return", code>>8&0xff, msg)
	}
	return fmt.Sprintf("the guest kernel panicked (%s); --verbose-boot shows its log", msg)
}

// initExit finds the wait status of an init that exited in a panic line.
var initExit = regexp.MustCompile(`Attempted to kill init! exitcode=0x([0-9a-fA-F]+)`)

// panicCut passes console output on to w until the kernel panics: its
// report (a dozen lines of registers and stack) stays off the user's
// output, explained in a sentence instead (the raw text is in the
// session's tail, and shown in full with --verbose-boot).
type panicCut struct {
	w   io.Writer
	cut bool
	// held is the stream's last bytes while they could begin the panic
	// line's marker (at most len(panicMarker)-1 bytes).
	held []byte
}

// Write forwards b up to the panic line's marker. The console arrives in
// chunks as small as a byte, so the stream's last bytes are held back
// while they could be the marker's start (only that long: a prompt is not
// delayed).
func (p *panicCut) Write(b []byte) (int, error) {
	if p.cut {
		return len(b), nil
	}
	out := make([]byte, 0, len(b)+len(p.held))
	for _, c := range b {
		p.held = append(p.held, c)
		if string(p.held) == panicMarker {
			p.cut, p.held = true, nil
			break
		}
		for len(p.held) > 0 && !strings.HasPrefix(panicMarker, string(p.held)) {
			out = append(out, p.held[0])
			p.held = p.held[1:]
		}
	}
	if len(out) > 0 {
		if _, err := p.w.Write(out); err != nil {
			return 0, err
		}
	}
	return len(b), nil // all of it is taken: the rest goes nowhere
}

// panicMarker starts the kernel's panic line.
const panicMarker = "Kernel panic - not syncing"

func (t *consoleTail) panicMessage() string {
	t.mu.Lock()
	defer t.mu.Unlock()
	return string(panicLine.Find(t.buf))
}
