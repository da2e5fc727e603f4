package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/krunbench/krunbench/virtiofs/fuse"
	"github.com/krunbench/krunbench/virtiofs/overlay"
)

// TestQEMUEngineBootsGuestFromOurVirtioFS boots the real guest kernel under
// QEMU (TCG, so it runs anywhere) with our vhost-user virtio-fs as its root
// and a static Go test program as /init.krun.
func TestQEMUEngineBootsGuestFromOurVirtioFS(t *testing.T) {
	requireQEMU(t)
	kernel := guestKernel(t)
	root := busyboxRootfs(t)
	if err := os.WriteFile(filepath.Join(root, "to-guest.txt"), []byte("hello guest"), 0o644); err != nil {
		t.Fatal(err)
	}
	work := t.TempDir()
	initBin := buildStatic(t, "./testdata/testinit", filepath.Join(work, "testinit"))
	traceFile := filepath.Join(work, "trace.jsonl")

	ctx, cancel := context.WithTimeout(context.Background(), 120*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, krunbenchBin(t), "run", "--engine", "qemu", "--accel", "tcg",
		"--rootfs", root, "--init", initBin, "--kernel", kernel, "--trace", traceFile, "--", "ignored")
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	err := cmd.Run()
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.ExitCode() != 42 {
		t.Fatalf("krunbench run: %v (want exit code 42)\n%s", err, out.String())
	}
	console := out.String()
	img, err := os.Stat(initBin)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"KRUNBENCH-E2E-MARKER pid 1", `read from host: "hello guest" <nil>`,
		fmt.Sprintf("own image: %d bytes", img.Size())} {
		if !strings.Contains(console, want) {
			t.Errorf("console lacks %q:\n%s", want, console)
		}
	}
	if b, err := os.ReadFile(filepath.Join(root, "from-guest.txt")); err != nil || string(b) != "written by the guest\n" {
		t.Errorf("host side of the guest's write: %q %v", b, err)
	}

	evs := readTrace(t, traceFile)
	var lookup, reads, eof int
	for _, ev := range evs {
		switch {
		case ev.Op == fuse.OpLookup && ev.Nodeid == fuse.RootID && ev.Name == "init.krun" && ev.NewNodeid == overlay.InitNodeid:
			lookup++
		case ev.Op == fuse.OpRead && ev.Nodeid == overlay.InitNodeid:
			reads++
			if ev.EOF && ev.Bytes == 0 {
				eof++
			}
		}
	}
	if lookup != 1 || reads < 2 || eof < 1 {
		t.Fatalf("trace: %d LOOKUP init.krun (want 1), %d READs of it, %d 0-byte EOF READs (want >= 1) among %d events",
			lookup, reads, eof, len(evs))
	}
}
