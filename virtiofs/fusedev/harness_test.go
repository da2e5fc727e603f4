package fusedev_test

import (
	"bufio"
	"bytes"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/krunbench/krunbench/virtiofs/trace"
)

// Bounds on the server child: how long it may take to mount, to answer a
// command, and to exit once told to.
const (
	mountTimeout = 20 * time.Second
	replyTimeout = 10 * time.Second
	exitTimeout  = 10 * time.Second
)

// mounted is the whole server stack (passthrough, overlay, tap, recorder)
// mounted through /dev/fuse by a child process (serve_test.go) and used by
// the real kernel FUSE client from the test's process.
type mounted struct {
	shared, mnt string
	traceFile   string
	cmd         *exec.Cmd
	ctl         *os.File      // the child's stdin
	replies     chan string   // the child's stdout, a line each
	stderr      *syncBuffer   // the child's stderr
	exited      chan struct{} // closed when the child has been waited for
	conn        uint32        // fusectl connection id
	closed      bool
}

type mountOpts struct {
	payload  []byte
	config   []byte
	noSplice bool
	noFile   uint64 // the server's RLIMIT_NOFILE; 0 leaves it
	// entryTimeout is how long the kernel caches entries; 0 is the
	// passthrough's default.
	entryTimeout time.Duration
	// writeback offers the kernel's writeback cache.
	writeback bool
}

// syncBuffer collects a child's stderr while it runs.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// requireRoot skips where mounting through /dev/fuse is impossible; CI runs
// as root, where these tests always run.
func requireRoot(t *testing.T) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("SKIPPED: mounting through /dev/fuse needs root")
	}
	if _, err := os.Stat("/dev/fuse"); err != nil {
		t.Skip("SKIPPED: no /dev/fuse")
	}
}

// worldDir makes a directory every user can enter, so that tests running
// commands as other users can reach the mount.
func worldDir(t *testing.T) string {
	t.Helper()
	dir, err := os.MkdirTemp("", "krunbench-fusedev-")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	return dir
}

// mount starts a server child on a fresh shared directory and mount point
// and returns once the mount is live. Cleanup unmounts it and stops the
// child, bounded in time.
func mount(t *testing.T, o mountOpts) *mounted {
	t.Helper()
	requireRoot(t)
	base := worldDir(t)
	mt := &mounted{
		shared:    filepath.Join(base, "shared"),
		mnt:       filepath.Join(base, "mnt"),
		traceFile: filepath.Join(base, "trace.jsonl"),
		replies:   make(chan string, 1),
		stderr:    &syncBuffer{},
		exited:    make(chan struct{}),
	}
	for _, d := range []string{mt.shared, mt.mnt} {
		if err := os.Mkdir(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	cfg, err := json.Marshal(serveConfig{Shared: mt.shared, Mnt: mt.mnt, Trace: mt.traceFile,
		Payload: o.payload, Config: o.config, NoSplice: o.noSplice, NoFile: o.noFile,
		EntryTimeout: o.entryTimeout, Writeback: o.writeback})
	must(t, err)
	cfgPath := filepath.Join(base, "serve.json")
	must(t, os.WriteFile(cfgPath, cfg, 0o600))
	mt.start(t, cfgPath)
	t.Cleanup(func() { mt.close(t) })
	select {
	case line, ok := <-mt.replies:
		if !ok || line != readyLine {
			t.Fatalf("server child did not start: %q\n%s", line, mt.stderr)
		}
	case <-time.After(mountTimeout):
		t.Fatalf("server child not ready after %v\n%s", mountTimeout, mt.stderr)
	}
	mt.conn = waitMounted(t, mt.mnt)
	return mt
}

// start runs the test binary again as the server child.
func (mt *mounted) start(t *testing.T, cfgPath string) {
	t.Helper()
	exe, err := os.Executable()
	must(t, err)
	ctlR, ctlW, err := os.Pipe()
	must(t, err)
	outR, outW, err := os.Pipe()
	must(t, err)
	mt.cmd = exec.Command(exe)
	mt.cmd.Env = append(os.Environ(), serveEnv+"="+cfgPath)
	mt.cmd.Stdin, mt.cmd.Stdout, mt.cmd.Stderr = ctlR, outW, mt.stderr
	// A test binary killed by its -timeout takes its server with it, which
	// aborts the FUSE connection.
	mt.cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	err = mt.cmd.Start()
	ctlR.Close()
	outW.Close()
	if err != nil {
		ctlW.Close()
		outR.Close()
		t.Fatal(err)
	}
	mt.ctl = ctlW
	go func() {
		defer outR.Close()
		sc := bufio.NewScanner(outR)
		for sc.Scan() {
			mt.replies <- sc.Text()
		}
		close(mt.replies)
	}()
	go func() { _ = mt.cmd.Wait(); close(mt.exited) }()
}

// waitMounted polls /proc/self/mountinfo until mnt is a krunbench FUSE
// mount and returns its fusectl connection id (the device minor).
func waitMounted(t *testing.T, mnt string) uint32 {
	t.Helper()
	deadline := time.Now().Add(mountTimeout)
	for {
		if conn, ok := mountConn(mnt); ok {
			return conn
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s not mounted after %v", mnt, mountTimeout)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// mountConn finds mnt in /proc/self/mountinfo.
func mountConn(mnt string) (uint32, bool) {
	b, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		return 0, false
	}
	for line := range strings.Lines(string(b)) {
		f := strings.Fields(line)
		sep := slices.Index(f, "-")
		if len(f) < 5 || sep < 0 || sep+1 >= len(f) || f[4] != mnt || f[sep+1] != "fuse.krunbench" {
			continue
		}
		_, minor, _ := strings.Cut(f[2], ":")
		n, err := strconv.ParseUint(minor, 10, 32)
		return uint32(n), err == nil
	}
	return 0, false
}

// request sends one control command to the child and returns its answer.
func (mt *mounted) request(t *testing.T, cmd string) string {
	t.Helper()
	if _, err := fmt.Fprintln(mt.ctl, cmd); err != nil {
		t.Fatalf("server child: %v\n%s", err, mt.stderr)
	}
	select {
	case line, ok := <-mt.replies:
		if !ok {
			t.Fatalf("server child exited\n%s", mt.stderr)
		}
		return line
	case <-time.After(replyTimeout):
		t.Fatalf("server child did not answer %q in %v", cmd, replyTimeout)
	}
	return ""
}

// setPayload re-arms the overlay's /init.krun in the server.
func (mt *mounted) setPayload(t *testing.T, p []byte) {
	t.Helper()
	if got := mt.request(t, cmdPayload+" "+base64.StdEncoding.EncodeToString(p)); got != "ok" {
		t.Fatalf("setting the payload: %q", got)
	}
}

// exitCode is the server overlay's ExitCode.
func (mt *mounted) exitCode(t *testing.T) (int, bool) {
	t.Helper()
	var code int
	var set bool
	if _, err := fmt.Sscan(mt.request(t, cmdExit), &code, &set); err != nil {
		t.Fatalf("exit code answer: %v", err)
	}
	return code, set
}

// splicedWrites is the server mount's SplicedWrites.
func (mt *mounted) splicedWrites(t *testing.T) uint64 {
	t.Helper()
	n, err := strconv.ParseUint(mt.request(t, cmdSpliced), 10, 64)
	must(t, err)
	return n
}

// serverFDs counts the server child's open descriptors.
func (mt *mounted) serverFDs(t *testing.T) int {
	t.Helper()
	return len(mt.serverFDLinks(t))
}

// serverFDLinks maps each of the server child's open descriptors to what
// it refers to (the /proc link: "pipe:[123]", "anon_inode:[eventpoll]", a
// path), for failure messages that say which descriptor came or went.
func (mt *mounted) serverFDLinks(t *testing.T) map[string]string {
	t.Helper()
	dir := fmt.Sprintf("/proc/%d/fd", mt.cmd.Process.Pid)
	fds, err := os.ReadDir(dir)
	must(t, err)
	links := make(map[string]string, len(fds))
	for _, fd := range fds {
		link, err := os.Readlink(dir + "/" + fd.Name())
		if err != nil {
			link = "(closed while listed)"
		}
		links[fd.Name()] = link
	}
	return links
}

// close unmounts, tells the child to finish (it flushes the trace) and
// waits for it. A child still running after exitTimeout has its FUSE
// connection aborted and is killed, so no test hangs on a stuck server.
// Safe to call twice.
func (mt *mounted) close(t *testing.T) {
	t.Helper()
	if mt.closed {
		return
	}
	mt.closed = true
	if err := unix.Unmount(mt.mnt, unix.MNT_DETACH); err != nil && err != unix.EINVAL {
		t.Errorf("unmount %s: %v", mt.mnt, err)
	}
	mt.ctl.Close()
	select {
	case <-mt.exited:
	case <-time.After(exitTimeout):
		t.Errorf("server child still running %v after unmount; aborting connection %d\n%s", exitTimeout, mt.conn, mt.stderr)
		abortConn(mt.conn)
		_ = mt.cmd.Process.Kill()
		<-mt.exited
		return
	}
	if st := mt.cmd.ProcessState; st != nil && !st.Success() {
		t.Errorf("server child: %v\n%s", st, mt.stderr)
	}
}

// abortConn aborts a FUSE connection through fusectl: every request on it
// fails with ENOTCONN and the server's reads return.
func abortConn(conn uint32) {
	const ctl = "/sys/fs/fuse/connections"
	if _, err := os.Stat(fmt.Sprintf("%s/%d", ctl, conn)); err != nil {
		_ = unix.Mount("fusectl", ctl, "fusectl", 0, "")
	}
	_ = os.WriteFile(fmt.Sprintf("%s/%d/abort", ctl, conn), []byte("1"), 0)
}

// events unmounts and returns every traced request.
func (mt *mounted) events(t *testing.T) []trace.Event {
	t.Helper()
	mt.close(t)
	f, err := os.Open(mt.traceFile)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	evs, err := trace.ReadFile(f)
	if err != nil {
		t.Fatal(err)
	}
	return evs
}

func (mt *mounted) path(name string) string { return filepath.Join(mt.mnt, name) }
func (mt *mounted) host(name string) string { return filepath.Join(mt.shared, name) }
func writeFile(t *testing.T, p string, b []byte) {
	t.Helper()
	if err := os.WriteFile(p, b, 0o644); err != nil {
		t.Fatal(err)
	}
}
