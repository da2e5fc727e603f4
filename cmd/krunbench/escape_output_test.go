package main

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/krunbench/krunbench/virtiofs/trace"
)

// Guest-chosen strings with terminal control sequences: an OSC 52
// clipboard write ended by BEL, a CR that would overwrite the line, a
// screen clear, and a byte that is not UTF-8.
const (
	hostileName   = "evil\x1b]52;c;cHduZWQ=\x07\r\x1b[2Jname\xff"
	hostileTarget = "\x1b]52;c;dGFyZ2V0\x07\rtarget"
)

// serveMount runs `krunbench serve --shared-dir shared --mount MNT` with
// extra flags on a fresh mount point and waits until it is mounted. stop
// sends SIGTERM, waits for a clean exit and returns the server's stdout;
// cleanup kills and unmounts whatever is left.
func serveMount(t *testing.T, shared string, flags ...string) (mnt string, stop func() string) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("SKIP: mounting through /dev/fuse needs root")
	}
	if _, err := os.Stat("/dev/fuse"); err != nil {
		t.Skip("SKIP: no /dev/fuse")
	}
	mnt = t.TempDir()
	serve := exec.Command(krunbenchBin(t), append([]string{"serve", "--shared-dir", shared, "--mount", mnt}, flags...)...)
	stdout, stderr := newSyncBuffer(), newSyncBuffer()
	serve.Stdout, serve.Stderr = stdout, stderr
	if err := serve.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- serve.Wait() }()
	t.Cleanup(func() {
		serve.Process.Kill()
		syscall.Unmount(mnt, syscall.MNT_DETACH)
	})
	for deadline := time.Now().Add(60 * time.Second); !mounted(t, mnt); time.Sleep(20 * time.Millisecond) {
		select {
		case err := <-exited:
			t.Fatalf("serve exited before mounting: %v\n%s", err, stderr.String())
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s not mounted after 60 s:\n%s", mnt, stderr.String())
		}
	}
	return mnt, func() string {
		t.Helper()
		serve.Process.Signal(syscall.SIGTERM)
		select {
		case err := <-exited:
			if err != nil {
				t.Fatalf("serve after SIGTERM: %v\n%s", err, stderr.String())
			}
		case <-time.After(60 * time.Second):
			t.Fatalf("serve still running 60 s after SIGTERM:\n%s", stderr.String())
		}
		return stdout.String()
	}
}

// serveAndCreate serves a fresh directory with the given --trace
// argument, creates a file named hostileName and a symlink to
// hostileTarget through the real /dev/fuse mount, stops the server and
// returns its stdout.
func serveAndCreate(t *testing.T, traceArg string) string {
	t.Helper()
	mnt, stop := serveMount(t, t.TempDir(), "--trace", traceArg)
	if err := os.WriteFile(filepath.Join(mnt, hostileName), []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(hostileTarget, filepath.Join(mnt, "link")); err != nil {
		t.Fatal(err)
	}
	if got, err := os.Readlink(filepath.Join(mnt, "link")); err != nil || got != hostileTarget {
		t.Fatalf("readlink through the mount: %q, %v", got, err)
	}
	return stop()
}

func mounted(t *testing.T, dir string) bool {
	b, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		t.Fatal(err)
	}
	return bytes.Contains(b, []byte(" "+dir+" "))
}

// checkEscaped fails if out holds a control character other than newline
// or is not UTF-8, or lacks the escaped forms of name and hostileTarget.
func checkEscaped(t *testing.T, what, out, name string) {
	t.Helper()
	if !utf8.ValidString(out) {
		t.Fatalf("%s: output is not UTF-8:\n%q", what, out)
	}
	for i, r := range out {
		if (r < 0x20 && r != '\n') || r == 0x7f || (r >= 0x80 && r <= 0x9f) {
			t.Fatalf("%s: raw control %U at byte %d:\n%q", what, r, i, out)
		}
	}
	for _, want := range []string{trace.Printable(name), "target=" + trace.Printable(hostileTarget)} {
		if !strings.Contains(out, want) {
			t.Fatalf("%s: no %q in\n%s", what, want, out)
		}
	}
}

// TestGuestNamesAreEscapedOnTheTerminal: names and symlink targets created
// through a real /dev/fuse mount reach `serve --trace -` and `trace show`
// escaped (issue 11, item 7), while the JSON trace file keeps their exact
// bytes.
func TestGuestNamesAreEscapedOnTheTerminal(t *testing.T) {
	checkEscaped(t, "serve --trace -", serveAndCreate(t, "-"), hostileName)

	file := filepath.Join(t.TempDir(), "trace.json")
	serveAndCreate(t, file)
	f, err := os.Open(file)
	if err != nil {
		t.Fatal(err)
	}
	events, err := trace.ReadFile(f)
	f.Close()
	if err != nil {
		t.Fatal(err)
	}
	// JSON strings cannot hold bytes that are not UTF-8: encoding/json
	// writes U+FFFD for them. Everything else, controls included, is exact.
	jsonName := strings.ToValidUTF8(hostileName, "\ufffd")
	var name, target bool
	for _, ev := range events {
		name = name || ev.Name == jsonName
		target = target || ev.NewName == hostileTarget
	}
	if !name || !target {
		t.Fatalf("JSON trace lost the exact bytes: name %v, target %v", name, target)
	}
	out, err := exec.Command(krunbenchBin(t), "trace", "show", "--summary", file).CombinedOutput()
	if err != nil {
		t.Fatalf("trace show: %v\n%s", err, out)
	}
	checkEscaped(t, "trace show", string(out), jsonName)
}
