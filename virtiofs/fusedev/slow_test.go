package fusedev_test

import (
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

const (
	// blockedWrites is more than the server's default 8 workers.
	blockedWrites = 12
	// probes is how many metadata requests must get through meanwhile.
	probes = 100
	// slowBound only bounds a hang: on a busy machine the probes take
	// milliseconds, before the fix they never finished.
	slowBound = 60 * time.Second
)

// TestSlowWritesLeaveWorkers holds more large WRITEs in the server than it
// has workers, each blocked for as long as the test likes (their target is
// a frozen ext4, fsfreeze -f, mounted inside the share), and checks that
// lookups and access() calls from another client still get answers: the
// slow class makes no progress at all while the other completes every one
// of its requests. Before spare workers (workers.go) every worker sat in a
// blocked WRITE and the probes waited until the thaw: issue 15's stress
// run, 15 access() calls in 60 s through the mount against 5296 on ext4.
func TestSlowWritesLeaveWorkers(t *testing.T) {
	requireRoot(t)
	for _, tool := range []string{"mkfs.ext4", "fsfreeze", "mount", "umount"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Fatalf("%s not found (e2fsprogs, util-linux)", tool)
		}
	}
	mt := mount(t, mountOpts{})
	frozen := mt.host("frozen")
	must(t, os.Mkdir(frozen, 0o755))
	img := filepath.Join(t.TempDir(), "frozen.img")
	must(t, os.WriteFile(img, nil, 0o600))
	must(t, os.Truncate(img, 64<<20))
	run(t, "mkfs.ext4", "-q", "-F", img)
	run(t, "mount", "-o", "loop", img, frozen)
	// Lazily: the server may still hold files there when this runs.
	t.Cleanup(func() { _ = exec.Command("umount", "-l", frozen).Run() })

	// Open the files through the mount while the filesystem still
	// takes writes, then freeze it: a WRITE now blocks in the server.
	files := make([]*os.File, blockedWrites)
	for i := range files {
		f, err := os.Create(mt.path(fmt.Sprintf("frozen/w%02d", i)))
		must(t, err)
		t.Cleanup(func() { f.Close() })
		files[i] = f
	}
	run(t, "fsfreeze", "-f", frozen)
	var thawOnce sync.Once
	var thawErr error
	thaw := func() error {
		thawOnce.Do(func() {
			if out, err := exec.Command("fsfreeze", "-u", frozen).CombinedOutput(); err != nil {
				thawErr = fmt.Errorf("fsfreeze -u %s: %v\n%s", frozen, err, out)
			}
		})
		return thawErr
	}
	// Runs first: unblocks the writers before the unmounts. The timer
	// thaws even if the test goroutine itself is stuck.
	t.Cleanup(func() { _ = thaw() })
	guard := time.AfterFunc(3*slowBound, func() { _ = thaw() })
	t.Cleanup(func() { guard.Stop() })

	data := make([]byte, 1<<20)
	_, _ = io.ReadFull(newPattern(), data)
	var written atomic.Int32
	writeErrs := make(chan error, blockedWrites)
	for _, f := range files {
		go func() {
			_, err := f.WriteAt(data, 0)
			written.Add(1)
			writeErrs <- err
		}()
	}
	// Every WRITE is in the server or queued for it.
	waitWaiting(t, mt.conn, blockedWrites)

	done := make(chan error, 1)
	var answered atomic.Int32
	go func() {
		for i := range probes {
			if _, err := os.Lstat(mt.path(fmt.Sprintf("probe%03d", i))); !os.IsNotExist(err) {
				done <- fmt.Errorf("lstat probe%03d: %v, want ENOENT", i, err)
				return
			}
			if err := unix.Access(mt.path("."), unix.R_OK|unix.X_OK); err != nil {
				done <- fmt.Errorf("access: %w", err)
				return
			}
			answered.Add(1)
		}
		done <- nil
	}()
	select {
	case err := <-done:
		must(t, err)
	case <-time.After(slowBound):
		_ = thaw()
		t.Fatalf("%d of %d lookup+access probes answered in %v while %d large WRITEs were blocked in the server: every worker is held by the slow class",
			answered.Load(), probes, slowBound, blockedWrites)
	}
	if n := written.Load(); n != 0 {
		t.Fatalf("%d WRITEs to a frozen filesystem returned before the thaw", n)
	}

	must(t, thaw())
	for range blockedWrites {
		select {
		case err := <-writeErrs:
			must(t, err)
		case <-time.After(slowBound):
			t.Fatalf("WRITEs still blocked %v after the thaw (%d of %d done)", slowBound, written.Load(), blockedWrites)
		}
	}
	for i := range files {
		checkHost(t, filepath.Join(frozen, fmt.Sprintf("w%02d", i)), data)
	}
}

// waitWaiting waits until the FUSE connection has at least n requests
// waiting for or in service (fusectl's waiting count).
func waitWaiting(t *testing.T, conn uint32, n int) {
	t.Helper()
	const ctl = "/sys/fs/fuse/connections"
	path := fmt.Sprintf("%s/%d/waiting", ctl, conn)
	if _, err := os.Stat(path); err != nil {
		_ = unix.Mount("fusectl", ctl, "fusectl", 0, "")
	}
	deadline := time.Now().Add(slowBound)
	for {
		b, err := os.ReadFile(path)
		must(t, err)
		got, err := strconv.Atoi(strings.TrimSpace(string(b)))
		must(t, err)
		if got >= n {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d requests waiting on the connection after %v, want %d", got, slowBound, n)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// run runs a command and fails the test with its output if it fails.
func run(t *testing.T, name string, args ...string) {
	t.Helper()
	if out, err := exec.Command(name, args...).CombinedOutput(); err != nil {
		t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, out)
	}
}
