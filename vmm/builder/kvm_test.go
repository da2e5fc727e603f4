package builder_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/krunbench/krunbench/initlib"
	"github.com/krunbench/krunbench/virtiofs/fuse"
	"github.com/krunbench/krunbench/virtiofs/overlay"
	"github.com/krunbench/krunbench/virtiofs/passthrough"
	"github.com/krunbench/krunbench/vmm/builder"
	"github.com/krunbench/krunbench/vmm/cmdline"
	"github.com/krunbench/krunbench/vmm/kvm"
	"github.com/krunbench/krunbench/vmm/kvm/kvmtest"
	"github.com/krunbench/krunbench/vmm/vcpu"
)

const (
	bannerTimeout = 10 * time.Second
	bootTimeout   = 60 * time.Second
)

func requireKVM(t *testing.T) { t.Helper(); kvmtest.Require(t) }

func guestVmlinux(t *testing.T) string { t.Helper(); return kvmtest.Vmlinux(t) }

// watch collects output and signals when a marker appears.
type watch struct {
	mu     sync.Mutex
	buf    bytes.Buffer
	marker string
	seen   chan struct{}
	once   sync.Once
}

func newWatch(marker string) *watch { return &watch{marker: marker, seen: make(chan struct{})} }

func (w *watch) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.buf.Write(p)
	if bytes.Contains(w.buf.Bytes(), []byte(w.marker)) {
		w.once.Do(func() { close(w.seen) })
	}
	return len(p), nil
}

func (w *watch) String() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.buf.String()
}

// pipeConsole is the host side of hvc0 on two pipes.
type pipeConsole struct {
	io.Reader
	io.Writer
	closers []io.Closer
}

func newPipeConsole(t *testing.T, out io.Writer) *pipeConsole {
	t.Helper()
	inR, inW, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	outR, outW, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	go io.Copy(out, outR)
	return &pipeConsole{Reader: inR, Writer: outW, closers: []io.Closer{inW, inR, outW, outR}}
}

func (p *pipeConsole) close() {
	for _, c := range p.closers {
		c.Close()
	}
}

// testInit is cmd/krunbench/testdata/testinit (see kvmtest.TestInit).
func testInit(t *testing.T) []byte { t.Helper(); return kvmtest.TestInit(t) }

// TestBootFixture boots the fixture kernel with the virtio-fs root, the
// console on a pipe and the serial port: the banner must reach the serial
// port quickly. On hardware KVM the test init then reports exit code 42
// through the overlay and reboots, which ends Run with nil.
func TestBootFixture(t *testing.T) {
	requireKVM(t)
	kernel := guestVmlinux(t)
	pvm := kvm.HostBackend() == kvm.BackendPVM
	init := initlib.Payload{Name: "exit-at-once", Bytes: initlib.ExitAtOnce.Bytes}
	if !pvm {
		init = initlib.Payload{Name: "testinit", Bytes: testInit(t)}
	}
	root := t.TempDir()
	if err := os.WriteFile(filepath.Join(root, "to-guest.txt"), []byte("from the host"), 0o644); err != nil {
		t.Fatal(err)
	}
	pt, err := passthrough.New(root, passthrough.Options{})
	if err != nil {
		t.Fatal(err)
	}
	ov := overlay.New(pt)
	serial, hvc := newWatch("Linux version"), newWatch("KRUNBENCH-E2E-MARKER")
	con := newPipeConsole(t, hvc)
	defer con.close()
	b := builder.New(builder.Config{
		Kernel: kernel, VCPUs: 1, MemMiB: 256,
		Cmdline: cmdline.Spec{Verbose: true},
		Console: con, Serial: serial,
	})
	b.SetPayload(init).AddFS(builder.FSDevice{Tag: initlib.RootTag, Server: fuse.NewServer(ov, fuse.Options{})})
	vm, err := b.Build(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	defer vm.Close()
	t.Logf("command line: %s", vm.Cmdline())
	if got := ov.Payload(); len(got) != len(init.Bytes) || &got[0] != &init.Bytes[0] {
		t.Fatal("the root overlay serves a copy of the payload, not the caller's bytes")
	}

	ctx, cancel := context.WithTimeout(context.Background(), bootTimeout)
	defer cancel()
	start := time.Now()
	ran := make(chan error, 1)
	go func() { ran <- vm.Run(ctx) }()
	var runErr error
	select {
	case <-serial.seen:
		t.Logf("banner on the serial port after %v", time.Since(start).Round(time.Millisecond))
	case runErr = <-ran:
		t.Fatalf("Run returned %v before the banner; serial:\n%s", runErr, serial)
	case <-time.After(bannerTimeout):
		t.Fatalf("no %q on the serial port within %v; serial:\n%s", serial.marker, bannerTimeout, serial)
	}
	runErr = <-ran
	t.Logf("Run returned after %v", time.Since(start).Round(time.Millisecond))
	if pvm && errors.Is(runErr, vcpu.ErrInternal) {
		kvmtest.Skip(t, "host /dev/kvm is kvm_pvm: the stock guest kernel printed its banner, then hit an instruction PVM's emulator cannot run: %v", runErr)
	}
	if runErr != nil {
		t.Fatalf("Run: %v; serial tail:\n%s", runErr, tail(serial.String(), 30))
	}
	if vm.Resets() == 0 {
		t.Errorf("Run ended without an i8042 reset")
	}
	if code, ok := ov.ExitCode(); !ok || code != 42 {
		t.Errorf("exit code %d (reported %v), want 42; serial tail:\n%s", code, ok, tail(serial.String(), 30))
	}
	if got, err := os.ReadFile(filepath.Join(root, "from-guest.txt")); err != nil || string(got) != "written by the guest\n" {
		t.Errorf("from-guest.txt: %q %v", got, err)
	}
}

func tail(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	return strings.Join(lines[max(0, len(lines)-n):], "\n")
}

func openFDs(t *testing.T) int {
	t.Helper()
	ents, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Skipf("no /proc/self/fd: %v", err)
	}
	return len(ents)
}

// settle waits for the goroutine count to drop to want.
func settle(want int) int {
	deadline := time.Now().Add(3 * time.Second)
	for {
		n := runtime.NumGoroutine()
		if n <= want || time.Now().After(deadline) {
			return n
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// TestStopAndClose runs a guest that halts forever on two vCPUs (the second
// waits for a SIPI that never comes): Stop must end Run within a bound, and
// Close must leave no goroutine and no file descriptor behind.
func TestStopAndClose(t *testing.T) {
	requireKVM(t)
	srv := server(t)
	kernel := fakeKernel(t, 4<<20, "")
	warm, w, _ := os.Pipe() // start the runtime's poller before counting
	warm.Close()
	w.Close()
	fds, goroutines := openFDs(t), runtime.NumGoroutine()

	out := newWatch("never")
	con := newPipeConsole(t, out)
	vm, err := builder.New(builder.Config{
		Kernel: kernel, VCPUs: 2, MemMiB: 64,
		Init: initlib.InitSpec{Policy: initlib.NoInit}, Console: con, Serial: io.Discard,
		FS: []builder.FSDevice{{Tag: initlib.RootTag, Server: srv}},
	}).Build(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	ran := make(chan error, 1)
	go func() { ran <- vm.Run(context.Background()) }()
	select {
	case err := <-ran:
		t.Fatalf("Run returned %v before Stop", err)
	case <-time.After(300 * time.Millisecond):
	}
	start := time.Now()
	vm.Stop()
	select {
	case err := <-ran:
		if !errors.Is(err, builder.ErrStopped) {
			t.Fatalf("Run after Stop = %v, want ErrStopped", err)
		}
		t.Logf("Run returned %v after Stop", time.Since(start).Round(time.Microsecond))
	case <-time.After(2 * time.Second):
		t.Fatal("Run still running 2s after Stop")
	}
	if err := vm.Run(context.Background()); !errors.Is(err, builder.ErrRunning) {
		t.Fatalf("second Run = %v, want ErrRunning", err)
	}
	if err := vm.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	if err := vm.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	vm.Stop() // after Close: no effect, no crash
	vm.Resize(80, 24)
	con.close()
	if n := settle(goroutines); n > goroutines {
		buf := make([]byte, 1<<16)
		t.Fatalf("%d goroutines after Close, %d before:\n%s", n, goroutines, buf[:runtime.Stack(buf, true)])
	}
	if n := openFDs(t); n != fds {
		t.Fatalf("%d open fds after Close, %d before", n, fds)
	}
}

// TestContextEndsRun: cancelling Run's context ends it with the context's
// error, and Close right after Build (never run) releases everything.
func TestContextEndsRun(t *testing.T) {
	requireKVM(t)
	cfg := builder.Config{
		Kernel: fakeKernel(t, 4<<20, ""), VCPUs: 1, MemMiB: 64,
		Init: initlib.InitSpec{Policy: initlib.NoInit},
		FS:   []builder.FSDevice{{Tag: initlib.RootTag, Server: server(t)}},
	}
	vm, err := builder.New(cfg).Build(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	start := time.Now()
	if err := vm.Run(ctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Run = %v, want DeadlineExceeded", err)
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Fatalf("Run took %v to notice the deadline", d)
	}
	vm.Close()

	unused, err := builder.New(cfg).Build(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if err := unused.Close(); err != nil {
		t.Fatal(err)
	}
	if err := unused.Run(context.Background()); !errors.Is(err, builder.ErrRunning) {
		t.Fatalf("Run after Close = %v, want ErrRunning", err)
	}
}
