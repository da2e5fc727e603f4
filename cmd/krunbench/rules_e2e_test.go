package main

import (
	"bufio"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/krunbench/krunbench/virtiofs/fuse"
	"github.com/krunbench/krunbench/virtiofs/trace"
	"github.com/krunbench/krunbench/vmm/kvm/kvmtest"
)

// The init debugger end to end: `krunbench run` boots the real guest
// kernel on a busybox root, with rules from the command line, on every
// engine (guestEngines): under QEMU (TCG) served by our vhost-user
// backend, and in the in-process KVM VMM served on its own virtqueues
// (inside L1 where there is no hardware KVM: make e2e-kvm).

// guestEngine is one way `krunbench run` boots a guest. The rules tests
// run their body once per engine, as subtests named after it
// (vmm/l1/run.sh selects the kvm ones to run inside L1).
type guestEngine struct {
	name string
	// flags skips the test where the engine cannot run (or fails it
	// where it must: KRUNBENCH_REQUIRE_KVM) and returns run's flags
	// that select the engine and its kernel.
	flags func(t *testing.T) []string
}

var guestEngines = []guestEngine{
	{"qemu", func(t *testing.T) []string {
		requireQEMU(t)
		return []string{"--engine", "qemu", "--accel", "tcg", "--kernel", guestKernel(t)}
	}},
	{"kvm", func(t *testing.T) []string {
		requireHardwareKVM(t)
		return []string{"--engine", "kvm", "--kernel", kvmtest.Vmlinux(t)}
	}},
}

// forEachEngine runs body as a subtest on every engine, with run's flags
// for it.
func forEachEngine(t *testing.T, body func(t *testing.T, engine []string)) {
	for _, e := range guestEngines {
		t.Run(e.name, func(t *testing.T) { body(t, e.flags(t)) })
	}
}

// runOnEngine runs `krunbench run` with the engine's flags on root and
// returns its combined output and exit code, bounded in time.
func runOnEngine(t *testing.T, engine []string, root string, args ...string) (string, int) {
	t.Helper()
	full := append(append(append([]string{"run"}, engine...), "--rootfs", root), args...)
	return runCLI(t, 120*time.Second, full...)
}

func TestFaultOpenPasswdInGuest(t *testing.T) {
	forEachEngine(t, testFaultOpenPasswdInGuest)
}

func testFaultOpenPasswdInGuest(t *testing.T, engine []string) {
	root := busyboxRootfs(t)
	if err := os.WriteFile(filepath.Join(root, "etc", "passwd"), []byte("root:x:0:0:root:/root:/bin/sh\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	traceFile := filepath.Join(t.TempDir(), "trace.jsonl")
	out, code := runOnEngine(t, engine, root, "--trace", traceFile, "--fault", "OPEN /etc/passwd ENOENT", "--",
		"/bin/sh", "-c", "echo listed: $(ls /etc); cat /etc/passwd; echo cat-exit=$?")
	if code != 0 {
		t.Fatalf("exit %d, output:\n%s", code, out)
	}
	for _, want := range []string{"listed: passwd", "No such file or directory", "cat-exit=1"} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
	if strings.Contains(out, "root:x:0:0") {
		t.Errorf("the guest read /etc/passwd despite the fault:\n%s", out)
	}
	var injected []string
	for _, ev := range readTrace(t, traceFile) {
		if ev.Injected != "" {
			injected = append(injected, fmt.Sprintf("%s %s -> %s [%s]", ev.OpName, ev.Path, trace.ErrnoName(ev.Errno), ev.Injected))
		}
	}
	if len(injected) == 0 {
		t.Fatal("the trace marks no injected reply")
	}
	for _, line := range injected {
		if line != "OPEN /etc/passwd -> ENOENT [ENOENT (rule 1)]" {
			t.Errorf("injected reply %q, want only OPENs of /etc/passwd answered ENOENT", line)
		}
	}
}

func TestFaultOnInitReadFailsBootClearly(t *testing.T) {
	forEachEngine(t, testFaultOnInitReadFailsBootClearly)
}

func testFaultOnInitReadFailsBootClearly(t *testing.T, engine []string) {
	root := busyboxRootfs(t)
	out, code := runOnEngine(t, engine, root, "--fault", "READ /init.krun EIO nth=2", "--", "/bin/true")
	if code == 0 {
		t.Fatalf("the boot succeeded with the init's second READ failing:\n%s", out)
	}
	want := "injected faults: rule 1 (fault READ /init.krun nth=2 EIO) fired 1 time"
	if !strings.Contains(out, want) {
		t.Errorf("output lacks %q:\n%s", want, out)
	}
	last := strings.TrimSpace(out)
	t.Logf("exit %d, last line: %s", code, last[strings.LastIndex(last, "\n")+1:])
}

// control is a connection to `krunbench run --control`.
type control struct {
	t    *testing.T
	conn net.Conn
	r    *bufio.Reader
}

// dialControl waits (bounded) for the run to open its control socket.
func dialControl(t *testing.T, path string, exited <-chan struct{}) *control {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for {
		c, err := net.Dial("unix", path)
		if err == nil {
			t.Cleanup(func() { c.Close() })
			return &control{t: t, conn: c, r: bufio.NewReader(c)}
		}
		select {
		case <-exited:
			t.Fatalf("krunbench exited before opening %s", path)
		case <-time.After(100 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			t.Fatalf("no control socket: %v", err)
		}
	}
}

// do sends a command and returns its answer's lines.
func (c *control) do(cmd string) []string {
	c.t.Helper()
	c.conn.SetDeadline(time.Now().Add(120 * time.Second))
	if _, err := fmt.Fprintln(c.conn, cmd); err != nil {
		c.t.Fatalf("%s: %v", cmd, err)
	}
	var lines []string
	for {
		line, err := c.r.ReadString('\n')
		if err != nil {
			c.t.Fatalf("%s: %v (so far %q)", cmd, err, lines)
		}
		line = strings.TrimSuffix(line, "\n")
		if line == "end" {
			return lines
		}
		if strings.HasPrefix(line, "error:") {
			c.t.Fatalf("%s: %s", cmd, line)
		}
		lines = append(lines, line)
	}
}

var heldLine = regexp.MustCompile(`^held (\S+) (\S+) .*unique=(\d+) waiting `)

// held returns the opcode, path and unique of the held request in a state.
func held(t *testing.T, state []string) (op, path string, unique uint64) {
	t.Helper()
	for _, l := range state {
		if m := heldLine.FindStringSubmatch(l); m != nil {
			u, _ := strconv.ParseUint(m[3], 10, 64)
			return m[1], m[2], u
		}
	}
	t.Fatalf("no held request in %q", state)
	return
}

func TestBreakStepsGuestOneRequestAtATime(t *testing.T) {
	forEachEngine(t, testBreakStepsGuestOneRequestAtATime)
}

func testBreakStepsGuestOneRequestAtATime(t *testing.T, engine []string) {
	root := busyboxRootfs(t)
	if err := os.WriteFile(filepath.Join(root, "etc", "passwd"), []byte("root:x:0:0:root:/root:/bin/sh\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	ctlDir, err := os.MkdirTemp("", "ctl") // short: a socket path has 108 bytes
	if err != nil {
		t.Fatal(err)
	}
	defer os.RemoveAll(ctlDir)
	sock := filepath.Join(ctlDir, "s")
	traceFile := filepath.Join(t.TempDir(), "trace.jsonl")

	args := append(append([]string{"run"}, engine...), "--rootfs", root, "--trace", traceFile, "--break", "LOOKUP /etc/* once", "--control", sock,
		"--", "/bin/sh", "-c", "cat /etc/passwd; echo workload-done")
	run := startProcess(t, exec.Command(krunbenchBin(t), args...))

	c := dialControl(t, sock, run.exited)
	op, path, first := held(t, c.do("wait"))
	if op != "LOOKUP" || !strings.HasPrefix(path, "/etc/") {
		t.Fatalf("held %s %s, want the first LOOKUP under /etc", op, path)
	}
	// Each step serves exactly the held request; the next one held is
	// another request.
	stepped := []uint64{first}
	for i := range 3 {
		_, _, next := held(t, c.do("wait"))
		if next != stepped[len(stepped)-1] {
			t.Fatalf("step %d: held unique %d, want %d (the one not yet stepped)", i+1, next, stepped[len(stepped)-1])
		}
		c.do("step")
		_, _, after := held(t, c.do("wait"))
		if after == next {
			t.Fatalf("step %d did not serve unique %d", i+1, next)
		}
		stepped = append(stepped, after)
	}
	stepped = stepped[:3] // the fourth is still held
	t.Logf("held %s %s, then stepped uniques %v", op, path, stepped)
	c.do("continue")

	runErr := run.waitExit(t, 120*time.Second, "the workload, after continue,")
	if out := run.out.String(); runErr != nil || !strings.Contains(out, "workload-done") || !strings.Contains(out, "root:x:0:0") {
		t.Fatalf("workload: %v, output:\n%s", runErr, out)
	}

	// The trace shows the stepped requests served one after the other,
	// in the order they were held, none missing, nothing in between.
	evs := readTrace(t, traceFile)
	at := -1
	for i, ev := range evs {
		if ev.Unique == stepped[0] && ev.Op == fuse.OpLookup {
			at = i
		}
	}
	if at < 0 || at+len(stepped) > len(evs) {
		t.Fatalf("the held LOOKUP (unique %d) is not in the trace", stepped[0])
	}
	for i, u := range stepped {
		if ev := evs[at+i]; ev.Unique != u {
			t.Errorf("trace event %d after the break: unique %d (%s %s), want %d", i, ev.Unique, ev.OpName, ev.Path, u)
		}
	}
}
