package main

import (
	"bytes"
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// startProcess starts cmd with its output collected, and returns a channel
// closed once it has exited (its error then in *err).
func startProcess(t *testing.T, cmd *exec.Cmd) (out *bytes.Buffer, exited <-chan struct{}, err *error) {
	t.Helper()
	out = &bytes.Buffer{}
	cmd.Stdout, cmd.Stderr = out, out
	if e := cmd.Start(); e != nil {
		t.Fatal(e)
	}
	done := make(chan struct{})
	err = new(error)
	go func() { *err = cmd.Wait(); close(done) }()
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		<-done
	})
	return out, done, err
}

func waitExit(t *testing.T, exited <-chan struct{}, what string, out *bytes.Buffer) {
	t.Helper()
	select {
	case <-exited:
	case <-time.After(60 * time.Second):
		t.Fatalf("%s did not end: a held request blocked the shutdown\n%s", what, out.String())
	}
}

// waitMountedOrExit waits (bounded, generously) for mnt to be mounted,
// failing if the server exits first.
func waitMountedOrExit(t *testing.T, mnt string, exited <-chan struct{}, out *bytes.Buffer) {
	t.Helper()
	for deadline := time.Now().Add(60 * time.Second); !mounted(t, mnt); {
		select {
		case <-exited:
			t.Fatalf("krunbench serve exited before mounting %s:\n%s", mnt, out.String())
		case <-time.After(20 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s not mounted after 60 s", mnt)
		}
	}
}

// TestBreakOverDevFuse holds requests of the host's own kernel FUSE client
// (serve --mount): a step serves the held OPEN, and an interrupt while a
// request is held releases it and unmounts instead of hanging.
func TestBreakOverDevFuse(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("SKIPPED: mounting through /dev/fuse needs root")
	}
	shared, mnt := t.TempDir(), t.TempDir()
	for _, name := range []string{"first", "second"} {
		if err := os.WriteFile(filepath.Join(shared, name), []byte("contents of "+name), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	ctlDir, err := os.MkdirTemp("", "ctl")
	if err != nil {
		t.Fatal(err)
	}
	defer os.RemoveAll(ctlDir)
	sock := filepath.Join(ctlDir, "s")
	serve := exec.Command(krunbenchBin(t), "serve", "--shared-dir", shared, "--mount", mnt, "--break", "OPEN", "--control", sock)
	out, exited, _ := startProcess(t, serve)
	defer unix.Unmount(mnt, unix.MNT_DETACH)
	c := dialControl(t, sock, exited)
	// The control socket opens before the mount is made: a read before
	// the mount appears would find the empty directory underneath, and
	// no OPEN would ever be held.
	waitMountedOrExit(t, mnt, exited, out)

	read := func(name string) <-chan string {
		ch := make(chan string, 1)
		go func() {
			b, err := os.ReadFile(filepath.Join(mnt, name))
			if err != nil {
				ch <- "error: " + err.Error()
				return
			}
			ch <- string(b)
		}()
		return ch
	}
	first := read("first")
	op, path, _ := held(t, c.do("wait"))
	if op != "OPEN" || path != "/first" {
		t.Fatalf("held %s %s, want OPEN /first", op, path)
	}
	select {
	case got := <-first:
		t.Fatalf("the read finished (%q) while its OPEN was held", got)
	case <-time.After(200 * time.Millisecond): // a chance to go wrong, not a measurement
	}
	c.do("step")
	c.do("continue") // the READ and the rest run
	select {
	case got := <-first:
		if got != "contents of first" {
			t.Errorf("read %q", got)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("the stepped read never finished")
	}

	second := read("second")
	if _, path, _ := held(t, c.do("wait")); path != "/second" {
		t.Fatalf("held %s, want /second", path)
	}
	if err := serve.Process.Signal(syscall.SIGINT); err != nil {
		t.Fatal(err)
	}
	waitExit(t, exited, "krunbench serve", out)
	select {
	case <-second: // served or failed: either way it returned
	case <-time.After(30 * time.Second):
		t.Fatal("the held read never returned after the server stopped")
	}
}

// TestInterruptWhileHeldStopsTheGuest interrupts `krunbench run` while a
// breakpoint holds the guest (vhost-user backend): the device reset
// releases the held request and the run ends as interrupted.
func TestInterruptWhileHeldStopsTheGuest(t *testing.T) {
	requireQEMU(t)
	root := busyboxRootfs(t)
	ctlDir, err := os.MkdirTemp("", "ctl")
	if err != nil {
		t.Fatal(err)
	}
	defer os.RemoveAll(ctlDir)
	sock := filepath.Join(ctlDir, "s")
	ctx, cancel := context.WithTimeout(context.Background(), 180*time.Second)
	defer cancel()
	run := exec.CommandContext(ctx, krunbenchBin(t), "run", "--engine", "qemu", "--accel", "tcg", "--rootfs", root,
		"--kernel", guestKernel(t), "--break", "LOOKUP /etc/*", "--control", sock, "--", "/bin/cat", "/etc/hostname")
	out, exited, runErr := startProcess(t, run)
	c := dialControl(t, sock, exited)
	if op, _, _ := held(t, c.do("wait")); op != "LOOKUP" {
		t.Fatalf("held %s", op)
	}
	if err := run.Process.Signal(syscall.SIGINT); err != nil {
		t.Fatal(err)
	}
	waitExit(t, exited, "krunbench run", out)
	var ee *exec.ExitError
	if !errors.As(*runErr, &ee) || ee.ExitCode() != 130 || !strings.Contains(out.String(), "interrupted") {
		t.Errorf("run ended with %v, want exit 130 (interrupted):\n%s", *runErr, out.String())
	}
	waitNoQEMU(t, runMarker())
}
