package main

import (
	"context"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/krunbench/krunbench/session/qemu"
	"github.com/krunbench/krunbench/vmm/cmdline"
)

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
	serve := startProcess(t, exec.Command(krunbenchBin(t), "serve", "--shared-dir", root, "--socket", sock, "--init", initBin))
	serve.waitPath(t, sock, 30*time.Second)
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
			t.Fatalf("boot %d: %v\n%s\nserver:\n%s", boot, err, out, serve.out.String())
		}
	}
	serve.cmd.Process.Signal(syscall.SIGTERM)
	if err := serve.waitExit(t, 60*time.Second, "serve after SIGTERM"); err != nil {
		t.Fatalf("serve after SIGTERM: %v\n%s", err, serve.out.String())
	}
	if !strings.Contains(serve.out.String(), "guest reported exit code 42") {
		t.Fatalf("serve did not report the guest's exit code:\n%s", serve.out.String())
	}
}
