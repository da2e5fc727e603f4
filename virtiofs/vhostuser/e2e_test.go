package vhostuser_test

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/krunbench/krunbench/virtiofs"
	"github.com/krunbench/krunbench/virtiofs/fuse"
	"github.com/krunbench/krunbench/virtiofs/overlay"
	"github.com/krunbench/krunbench/virtiofs/passthrough"
	"github.com/krunbench/krunbench/virtiofs/vhostuser"
)

// guestKernel returns the guest kernel: $KRUNBENCH_KERNEL, or the fixture
// in shared/guest next to the repository.
func guestKernel(t *testing.T) string {
	if k := os.Getenv("KRUNBENCH_KERNEL"); k != "" {
		return k
	}
	k, err := filepath.Abs(filepath.Join("..", "..", "..", "shared", "guest", "bzImage"))
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// buildGuestInit builds testdata/guestinit as a static binary.
func buildGuestInit(t *testing.T) []byte {
	goBin, err := exec.LookPath("go")
	if err != nil {
		t.Skip("no go command to build the guest init")
	}
	out := filepath.Join(t.TempDir(), "init")
	cmd := exec.Command(goBin, "build", "-trimpath", "-ldflags=-s -w", "-o", out, "./testdata/guestinit")
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOOS=linux", "GOARCH=amd64")
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("building the guest init: %v\n%s", err, b)
	}
	b, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// requestLog records the requests the backend logs at debug level.
type requestLog struct {
	mu   sync.Mutex
	reqs []string
}

func (l *requestLog) Enabled(context.Context, slog.Level) bool { return true }
func (l *requestLog) WithAttrs([]slog.Attr) slog.Handler       { return l }
func (l *requestLog) WithGroup(string) slog.Handler            { return l }
func (l *requestLog) Handle(_ context.Context, r slog.Record) error {
	var req string
	var line strings.Builder
	line.WriteString(r.Level.String() + " " + r.Message)
	r.Attrs(func(a slog.Attr) bool {
		if a.Key == "req" {
			req = a.Value.String()
		}
		fmt.Fprintf(&line, " %s=%v", a.Key, a.Value)
		return true
	})
	l.mu.Lock()
	defer l.mu.Unlock()
	if r.Message == "vhost-user: request" {
		l.reqs = append(l.reqs, req)
	} else {
		l.reqs = append(l.reqs, "["+line.String()+"]")
	}
	return nil
}

func (l *requestLog) take() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	r := l.reqs
	l.reqs = nil
	return r
}

// TestQEMUBoot boots the guest kernel twice under QEMU 7.2 (TCG) with its
// root on vhost-user-fs served by one Backend around the virtio-fs device:
// the guest's init (a static Go program served as /init.krun) prints a
// marker, copies a file through the filesystem and reboots; QEMU exits.
func TestQEMUBoot(t *testing.T) {
	if testing.Short() {
		t.Skip("boots a VM")
	}
	qemu, err := exec.LookPath("qemu-system-x86_64")
	if err != nil {
		t.Skip("qemu-system-x86_64 not installed")
	}
	kernel := guestKernel(t)
	if _, err := os.Stat(kernel); err != nil {
		t.Skipf("no guest kernel (set KRUNBENCH_KERNEL): %v", err)
	}
	timeoutBin, err := exec.LookPath("timeout")
	if err != nil {
		t.Skip("no timeout command to bound QEMU")
	}
	payload := buildGuestInit(t)

	root := t.TempDir()
	for _, d := range []string{"dev", "proc", "sys", "tmp", "bin"} {
		if err := os.Mkdir(filepath.Join(root, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	if bb, err := os.ReadFile("/bin/busybox"); err == nil {
		if err := os.WriteFile(filepath.Join(root, "bin", "busybox"), bb, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	pt, err := passthrough.New(root, passthrough.Options{})
	if err != nil {
		t.Fatal(err)
	}
	ov := overlay.New(pt)
	dev, err := virtiofs.NewDevice(fuse.NewServer(ov, fuse.Options{}), virtiofs.DeviceOptions{Tag: virtiofs.RootTag})
	if err != nil {
		t.Fatal(err)
	}
	logs := &requestLog{}
	b := vhostuser.NewBackend(dev, vhostuser.Options{Log: slog.New(logs)})
	sock := filepath.Join(t.TempDir(), "vfs.sock")
	ctx, cancel := context.WithCancel(context.Background())
	served := make(chan error, 1)
	go func() { served <- b.ListenAndServe(ctx, sock) }()
	defer func() {
		cancel()
		<-served
		b.Close()
	}()
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(5 * time.Millisecond) {
		if _, err := os.Stat(sock); err == nil {
			break
		} else if time.Now().After(deadline) {
			t.Fatal("the backend never listened")
		}
	}

	for boot := 1; boot <= 2; boot++ {
		hostMsg := fmt.Sprintf("hello from the host, boot %d", boot)
		if err := os.WriteFile(filepath.Join(root, "from-host.txt"), []byte(hostMsg), 0o644); err != nil {
			t.Fatal(err)
		}
		os.Remove(filepath.Join(root, "from-guest.txt"))
		ov.SetPayload(payload) // /init.krun is one-shot: re-arm it

		cmd := exec.Command(timeoutBin, "-k", "5", "60", qemu,
			"-M", "microvm,memory-backend=mem", "-accel", "tcg", "-cpu", "max", "-m", "512",
			"-object", "memory-backend-memfd,id=mem,size=512M,share=on",
			"-chardev", "socket,id=vfs,path="+sock,
			"-device", "vhost-user-fs-device,chardev=vfs,tag="+virtiofs.RootTag,
			"-global", "virtio-mmio.force-legacy=false",
			"-nographic", "-nodefaults", "-no-reboot", "-serial", "stdio",
			"-kernel", kernel,
			"-append", "console=ttyS0 rootfstype=virtiofs rw init=/init.krun reboot=t panic=-1 tsc_early_khz=2000000 quiet")
		var console bytes.Buffer
		cmd.Stdout = &console
		cmd.Stderr = &console
		cmd.Stdin = io.LimitReader(nil, 0)
		start := time.Now()
		err := cmd.Run()
		elapsed := time.Since(start)
		reqs := logs.take()
		t.Logf("boot %d: QEMU exited after %v (%v)\nconsole:\n%s\nbackend saw: %s", boot, elapsed.Round(time.Millisecond), err, console.String(), strings.Join(reqs, " "))
		if err != nil {
			t.Fatalf("boot %d: QEMU failed: %v", boot, err)
		}
		if !strings.Contains(console.String(), "KRUNBENCH-GUEST-DONE") {
			t.Fatalf("boot %d: no KRUNBENCH-GUEST-DONE marker on the console", boot)
		}
		got, err := os.ReadFile(filepath.Join(root, "from-guest.txt"))
		if err != nil || string(got) != "guest read: "+hostMsg {
			t.Fatalf("boot %d: from-guest.txt = %q (%v)", boot, got, err)
		}
	}
}
