package main

import (
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
	serve := startProcess(t, exec.Command(krunbenchBin(t), "serve", "--shared-dir", shared, "--mount", mnt, "--break", "OPEN", "--control", sock))
	defer unix.Unmount(mnt, unix.MNT_DETACH)
	c := dialControl(t, sock, serve.exited)
	// The control socket opens before the mount is made: a read before
	// the mount appears would find the empty directory underneath, and
	// no OPEN would ever be held.
	serve.waitMounted(t, mnt, 60*time.Second)

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
	if err := serve.cmd.Process.Signal(syscall.SIGINT); err != nil {
		t.Fatal(err)
	}
	serve.waitExit(t, 60*time.Second, "krunbench serve (a held request blocking the shutdown?)")
	select {
	case <-second: // served or failed: either way it returned
	case <-time.After(30 * time.Second):
		t.Fatal("the held read never returned after the server stopped")
	}
}

// TestInterruptWhileHeldStopsTheGuest interrupts `krunbench run` while a
// breakpoint holds the guest, on each engine (the vhost-user backend's
// device reset, or the in-process VMM's stop, releases the held request)
// and the run ends as interrupted.
func TestInterruptWhileHeldStopsTheGuest(t *testing.T) {
	forEachEngine(t, testInterruptWhileHeldStopsTheGuest)
}

func testInterruptWhileHeldStopsTheGuest(t *testing.T, engine []string) {
	root := busyboxRootfs(t)
	ctlDir, err := os.MkdirTemp("", "ctl")
	if err != nil {
		t.Fatal(err)
	}
	defer os.RemoveAll(ctlDir)
	sock := filepath.Join(ctlDir, "s")
	args := append(append([]string{"run"}, engine...), "--rootfs", root,
		"--break", "LOOKUP /etc/*", "--control", sock, "--", "/bin/cat", "/etc/hostname")
	run := startProcess(t, exec.Command(krunbenchBin(t), args...))
	c := dialControl(t, sock, run.exited)
	if op, _, _ := held(t, c.do("wait")); op != "LOOKUP" {
		t.Fatalf("held %s", op)
	}
	if err := run.cmd.Process.Signal(syscall.SIGINT); err != nil {
		t.Fatal(err)
	}
	runErr := run.waitExit(t, 60*time.Second, "krunbench run (a held request blocking the shutdown?)")
	var ee *exec.ExitError
	if !errors.As(runErr, &ee) || ee.ExitCode() != 130 || !strings.Contains(run.out.String(), "interrupted") {
		t.Errorf("run ended with %v, want exit 130 (interrupted):\n%s", runErr, run.out.String())
	}
	waitNoQEMU(t, runMarker())
	waitNoRunDirs(t)
}
