package main

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/krunbench/krunbench/session/qemu"
	"github.com/krunbench/krunbench/vmm/cmdline"
)

// syncBuffer is a bytes.Buffer safe for a writer goroutine and a reader.
type syncBuffer struct {
	mu chan struct{}
	b  bytes.Buffer
}

func newSyncBuffer() *syncBuffer { return &syncBuffer{mu: make(chan struct{}, 1)} }

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu <- struct{}{}
	defer func() { <-s.mu }()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu <- struct{}{}
	defer func() { <-s.mu }()
	return s.b.String()
}

// TestServeSocketIsADropInForVirtiofsd runs `krunbench serve --socket` as
// its own process and boots two QEMU guests against it, one after the
// other, as one would with virtiofsd.
func TestServeSocketIsADropInForVirtiofsd(t *testing.T) {
	requireQEMU(t)
	kernel := guestKernel(t)
	root := busyboxRootfs(t)
	work := t.TempDir()
	initBin := buildStatic(t, "./testdata/testinit", filepath.Join(work, "testinit"))
	sock := filepath.Join(work, "vfs.sock")
	serve := exec.Command(krunbenchBin(t), "serve", "--shared-dir", root, "--socket", sock, "--init", initBin)
	serveOut := newSyncBuffer()
	serve.Stdout, serve.Stderr = serveOut, serveOut
	if err := serve.Start(); err != nil {
		t.Fatal(err)
	}
	defer serve.Process.Kill()
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		if _, err := os.Stat(sock); err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no socket after 10s:\n%s", serveOut.String())
		}
	}
	line, err := cmdline.Build(cmdline.Spec{Extra: qemu.TCGParams()})
	if err != nil {
		t.Fatal(err)
	}
	for boot := 1; boot <= 2; boot++ {
		ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
		cfg := qemu.Config{Kernel: kernel, Cmdline: line, CPUs: 1, MemMiB: 256, Socket: sock, Tag: "/dev/root", Accel: qemu.AccelTCG}
		q := exec.CommandContext(ctx, "qemu-system-x86_64", cfg.Args()...)
		out, err := q.CombinedOutput()
		cancel()
		if err != nil || !strings.Contains(string(out), "KRUNBENCH-E2E-MARKER pid 1") || !strings.Contains(string(out), "exit-code ioctl: errno 0") {
			t.Fatalf("boot %d: %v\n%s\nserver:\n%s", boot, err, out, serveOut.String())
		}
	}
	serve.Process.Signal(syscall.SIGTERM)
	if err := serve.Wait(); err != nil {
		t.Fatalf("serve after SIGTERM: %v\n%s", err, serveOut.String())
	}
	if !strings.Contains(serveOut.String(), "guest reported exit code 42") {
		t.Fatalf("serve did not report the guest's exit code:\n%s", serveOut.String())
	}
}
