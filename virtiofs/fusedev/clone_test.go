package fusedev_test

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/krunbench/krunbench/virtiofs/fuse"
	"github.com/krunbench/krunbench/virtiofs/fusedev"
	"github.com/krunbench/krunbench/virtiofs/passthrough"
)

// devFuseFDs counts pid's descriptors open on /dev/fuse ("self" for this
// process), and all its descriptors.
func devFuseFDs(t *testing.T, pid string) (fuseFDs, all int) {
	t.Helper()
	dir := "/proc/" + pid + "/fd"
	ents, err := os.ReadDir(dir)
	must(t, err)
	for _, e := range ents {
		if target, err := os.Readlink(filepath.Join(dir, e.Name())); err == nil && target == "/dev/fuse" {
			fuseFDs++
		}
	}
	return fuseFDs, len(ents)
}

// TestWorkersCloneDevice: every worker serves through a /dev/fuse
// descriptor of its own (FUSE_DEV_IOC_CLONE, clone.go), so the server
// holds the session's and one per worker (8 by default), and replies
// reach their callers from eight clients at once: each reply goes to the
// descriptor its request was read from, or its caller would wait forever.
func TestWorkersCloneDevice(t *testing.T) {
	mt := mount(t, mountOpts{})
	want := make([]byte, 1<<20)
	for i := range want {
		want[i] = byte(i * 7)
	}
	writeFile(t, mt.host("f"), want)
	var wg sync.WaitGroup
	errs := make(chan error, 8)
	for c := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 50 {
				name := fmt.Sprintf("c%d-%d", c, i)
				if err := os.WriteFile(mt.path(name), []byte(name), 0o644); err != nil {
					errs <- err
					return
				}
				if got, err := os.ReadFile(mt.path(name)); err != nil || string(got) != name {
					errs <- fmt.Errorf("read back %s: %q, %v", name, got, err)
					return
				}
			}
			if got, err := os.ReadFile(mt.path("f")); err != nil || !bytes.Equal(got, want) {
				errs <- fmt.Errorf("read f: %d bytes, %v, equal %v", len(got), err, bytes.Equal(got, want))
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	if n, _ := devFuseFDs(t, fmt.Sprint(mt.cmd.Process.Pid)); n != 1+8 {
		t.Errorf("server holds %d descriptors on /dev/fuse, want 9 (the session's and a clone per worker)", n)
	}
}

// mountHere mounts an empty shared directory from this process (no client
// I/O from this process follows: see serve_test.go for why tests serve
// from a child) and returns the mount and its fusectl connection.
// fuseBefore and before count this process's descriptors (devFuseFDs)
// just before New.
func mountHere(t *testing.T, opts fusedev.Options) (m *fusedev.Mount, conn uint32, fuseBefore, before int) {
	t.Helper()
	requireRoot(t)
	base := worldDir(t)
	shared, mnt := filepath.Join(base, "shared"), filepath.Join(base, "mnt")
	must(t, os.Mkdir(shared, 0o755))
	must(t, os.Mkdir(mnt, 0o755))
	pt, err := passthrough.New(shared, passthrough.Options{})
	must(t, err)
	fuseBefore, before = devFuseFDs(t, "self")
	m, err = fusedev.New(fuse.NewServer(pt, fuse.Options{}), mnt, opts)
	must(t, err)
	t.Cleanup(func() { _ = unix.Unmount(mnt, unix.MNT_DETACH) })
	conn, ok := mountConn(mnt)
	if !ok {
		t.Fatalf("%s not in mountinfo", mnt)
	}
	return m, conn, fuseBefore, before
}

// waitStopped waits for every worker of m to stop; a bound only so that a
// broken build fails instead of hanging the package.
func waitStopped(t *testing.T, m *fusedev.Mount) {
	t.Helper()
	done := make(chan struct{})
	go func() { _ = m.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(exitTimeout):
		t.Fatalf("workers still running %v after the connection ended", exitTimeout)
	}
}

// TestClonesClosedOnUnmount: Close (lazy unmount) ends every worker, each
// reading its own clone, and leaves no descriptor behind: this process
// holds as many descriptors as before New, none on /dev/fuse.
func TestClonesClosedOnUnmount(t *testing.T) {
	m, _, fuseBefore, before := mountHere(t, fusedev.Options{})
	if open, failed := m.Clones(); open != 8 || failed != 0 {
		t.Fatalf("clones open %d, failed %d; want 8, 0", open, failed)
	}
	if n, _ := devFuseFDs(t, "self"); n != fuseBefore+9 {
		t.Fatalf("%d descriptors on /dev/fuse while mounted, want %d", n, fuseBefore+9)
	}
	must(t, m.Close())
	waitStopped(t, m)
	if open, _ := m.Clones(); open != 0 {
		t.Errorf("%d clones still open after Close", open)
	}
	if n, all := devFuseFDs(t, "self"); n != fuseBefore || all != before {
		t.Errorf("after Close: %d descriptors (%d on /dev/fuse), before New %d (%d)", all, n, before, fuseBefore)
	}
}

// TestClonesEndOnAbort: a fusectl abort makes every clone's read return,
// so all workers stop (Wait returns) without an unmount, and Close then
// leaves no descriptor behind.
func TestClonesEndOnAbort(t *testing.T) {
	m, conn, fuseBefore, before := mountHere(t, fusedev.Options{Workers: 3})
	if open, _ := m.Clones(); open != 3 {
		t.Fatalf("clones open %d, want 3", open)
	}
	abortConn(conn)
	waitStopped(t, m)
	if open, _ := m.Clones(); open != 0 {
		t.Errorf("%d clones still open after the workers stopped", open)
	}
	must(t, m.Close())
	if n, all := devFuseFDs(t, "self"); n != fuseBefore || all != before {
		t.Errorf("after abort and Close: %d descriptors (%d on /dev/fuse), before New %d (%d)", all, n, before, fuseBefore)
	}
}
