package main

import (
	"bufio"
	"bytes"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/creack/pty"
	"golang.org/x/sys/unix"
)

// guestRun prepares a krunbench run of the test init with the given mode.
func guestRun(t *testing.T, mode string, extra ...string) *exec.Cmd {
	t.Helper()
	requireQEMU(t)
	kernel := guestKernel(t)
	root := busyboxRootfs(t)
	initBin := buildStatic(t, "./testdata/testinit", filepath.Join(t.TempDir(), "testinit"))
	args := append([]string{"run", "--engine", "qemu", "--accel", "tcg", "--rootfs", root, "--init", initBin, "--kernel", kernel}, extra...)
	args = append(args, "--", mode)
	return exec.Command(krunbenchBin(t), args...)
}

// qemuProcesses lists QEMU processes whose command line mentions marker
// (krunbench's vhost-user sockets live in krunbench-run-* directories).
func qemuProcesses(marker string) []string {
	var found []string
	entries, _ := os.ReadDir("/proc")
	for _, e := range entries {
		b, err := os.ReadFile(filepath.Join("/proc", e.Name(), "cmdline"))
		if err != nil {
			continue
		}
		s := string(bytes.ReplaceAll(b, []byte{0}, []byte{' '}))
		if strings.Contains(s, "qemu-system") && strings.Contains(s, marker) {
			found = append(found, e.Name()+": "+s)
		}
	}
	return found
}

// waitNoQEMU waits until no QEMU of this test run (marker in its command
// line) is left; a busy machine can take a while to reap one, so the bound
// is generous and only a QEMU still there after it fails the test.
func waitNoQEMU(t *testing.T, marker string) {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for time.Now().Before(deadline) {
		if len(qemuProcesses(marker)) == 0 {
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("QEMU left behind: %v", qemuProcesses(marker))
}

// startOnPty starts cmd on a fresh pty (a real terminal) and returns the
// master, and a scanner that waits for a line of console output.
func startOnPty(t *testing.T, cmd *exec.Cmd) (*os.File, func(string) string) {
	t.Helper()
	master, err := pty.Start(cmd)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { master.Close() })
	lines := make(chan string, 256)
	go func() {
		sc := bufio.NewScanner(master)
		for sc.Scan() {
			lines <- sc.Text()
		}
		close(lines)
	}()
	var seen []string
	wait := func(want string) string {
		timeout := time.After(90 * time.Second)
		for {
			select {
			case l, ok := <-lines:
				if !ok {
					t.Fatalf("console closed before %q; saw:\n%s", want, strings.Join(seen, "\n"))
				}
				seen = append(seen, l)
				if strings.Contains(l, want) {
					return l
				}
			case <-timeout:
				t.Fatalf("no %q within 90s; saw:\n%s", want, strings.Join(seen, "\n"))
			}
		}
	}
	return master, wait
}

func termiosOf(t *testing.T, f *os.File) *unix.Termios {
	t.Helper()
	tio, err := unix.IoctlGetTermios(int(f.Fd()), unix.TCGETS)
	if err != nil {
		t.Fatal(err)
	}
	return tio
}

func TestInterruptStopsGuestAndRestoresTerminal(t *testing.T) {
	cmd := guestRun(t, "sleep")
	master, wait := startOnPty(t, cmd)
	before := termiosOf(t, master)
	wait("KRUNBENCH-SLEEPING")
	if raw := termiosOf(t, master); raw.Lflag&unix.ICANON != 0 {
		t.Fatal("terminal not in raw mode while the guest runs")
	}
	if err := cmd.Process.Signal(syscall.SIGINT); err != nil {
		t.Fatal(err)
	}
	err := cmd.Wait()
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.ExitCode() != 130 {
		t.Fatalf("after SIGINT: %v, want exit 130", err)
	}
	after := termiosOf(t, master)
	if after.Lflag != before.Lflag || after.Iflag != before.Iflag || after.Oflag != before.Oflag {
		t.Fatalf("terminal not restored: lflag %#x -> %#x", before.Lflag, after.Lflag)
	}
	waitNoQEMU(t, runMarker())
}

func TestGuestPanicIsReportedInBoundedTime(t *testing.T) {
	run := startProcess(t, guestRun(t, "die"))
	err := run.waitExit(t, 90*time.Second, "krunbench, whose guest's init died,")
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.ExitCode() == 0 {
		t.Fatalf("guest panic: %v, want a non-zero exit", err)
	}
	out := run.out
	last := strings.TrimSpace(out.String())
	last = last[strings.LastIndex(last, "\n")+1:]
	if !strings.Contains(last, "Kernel panic") || !strings.HasPrefix(last, "krunbench: ") ||
		!strings.Contains(last, "the init exited (status 3)") {
		t.Fatalf("last line should say in a sentence that the init exited, got %q", last)
	}
	// The kernel's report (registers, stack) stays off the output.
	if n := strings.Count(out.String(), "Kernel panic"); n != 1 || strings.Contains(out.String(), "end Kernel panic") {
		t.Fatalf("the panic report reached the output:\n%s", out.String())
	}
	waitNoQEMU(t, runMarker())
}

func TestKillingKrunbenchOrQEMULeavesNothingBehind(t *testing.T) {
	for _, victim := range []string{"qemu", "krunbench"} {
		t.Run(victim, func(t *testing.T) {
			cmd := guestRun(t, "sleep")
			_, wait := startOnPty(t, cmd)
			wait("KRUNBENCH-SLEEPING")
			sock := runMarker()
			procs := qemuProcesses(sock)
			if len(procs) != 1 {
				t.Fatalf("want one QEMU, found %v", procs)
			}
			pid := strings.SplitN(procs[0], ":", 2)[0]
			switch victim {
			case "qemu":
				exec.Command("kill", "-9", pid).Run()
				err := cmd.Wait()
				var ee *exec.ExitError
				if !errors.As(err, &ee) || ee.ExitCode() == 0 {
					t.Fatalf("QEMU killed: krunbench ended with %v, want a non-zero exit", err)
				}
			case "krunbench":
				cmd.Process.Kill()
				cmd.Wait()
			}
			waitNoQEMU(t, sock)
		})
	}
}

// runDirs lists the runtime directories under this test binary's TMPDIR.
func runDirs() []string {
	m, _ := filepath.Glob(runMarker() + "*")
	return m
}

// waitNoRunDirs fails when a runtime directory outlives its krunbench.
func waitNoRunDirs(t *testing.T) {
	t.Helper()
	if d := runDirs(); len(d) > 0 {
		t.Fatalf("runtime directories left behind: %v", d)
	}
}

// TestStopSignalsLeaveNothingBehind: SIGTERM and SIGHUP (the terminal
// closed) stop the guest, remove the runtime directory, restore the
// terminal and exit 128+signal.
func TestStopSignalsLeaveNothingBehind(t *testing.T) {
	for _, sig := range []syscall.Signal{syscall.SIGTERM, syscall.SIGHUP} {
		t.Run(sig.String(), func(t *testing.T) {
			cmd := guestRun(t, "sleep")
			master, wait := startOnPty(t, cmd)
			before := termiosOf(t, master)
			wait("KRUNBENCH-SLEEPING")
			if len(runDirs()) != 1 {
				t.Fatalf("want one runtime directory while the guest runs, found %v", runDirs())
			}
			if err := cmd.Process.Signal(sig); err != nil {
				t.Fatal(err)
			}
			err := cmd.Wait()
			var ee *exec.ExitError
			if !errors.As(err, &ee) || ee.ExitCode() != 128+int(sig) {
				t.Fatalf("after %s: %v, want exit %d", sig, err, 128+int(sig))
			}
			if after := termiosOf(t, master); after.Lflag != before.Lflag {
				t.Fatalf("terminal not restored: lflag %#x -> %#x", before.Lflag, after.Lflag)
			}
			waitNoQEMU(t, runMarker())
			waitNoRunDirs(t)
		})
	}
}

// TestRunIntoClosedPipe is `krunbench run -- chatter | head -2`: when the
// reader goes away krunbench stops the guest and exits 141 (SIGPIPE's
// 128+13) quietly, leaving no QEMU and no runtime directory.
func TestRunIntoClosedPipe(t *testing.T) {
	cmd := guestRun(t, "chatter")
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	sc := bufio.NewScanner(stdout)
	for n := 0; n < 2 && sc.Scan(); {
		if strings.Contains(sc.Text(), "KRUNBENCH-CHATTER") {
			n++
		}
	}
	stdout.Close() // head -2 exits
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err = <-done:
	case <-time.After(60 * time.Second):
		cmd.Process.Kill()
		t.Fatalf("krunbench still running 60 s after its stdout closed; stderr:\n%s", stderr.String())
	}
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.ExitCode() != 141 {
		t.Fatalf("stdout closed: %v, want exit 141; stderr:\n%s", err, stderr.String())
	}
	waitNoQEMU(t, runMarker())
	waitNoRunDirs(t)
}
