package fusedev_test

import (
	"os"
	"path/filepath"
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

// TestCloseLeavesNoDescriptors: Close (lazy unmount) ends every worker
// and leaves no descriptor behind: this process holds as many
// descriptors as before New, none on /dev/fuse.
func TestCloseLeavesNoDescriptors(t *testing.T) {
	m, _, fuseBefore, before := mountHere(t, fusedev.Options{})
	if n, _ := devFuseFDs(t, "self"); n != fuseBefore+1 {
		t.Fatalf("%d descriptors on /dev/fuse while mounted, want %d", n, fuseBefore+1)
	}
	must(t, m.Close())
	waitStopped(t, m)
	if n, all := devFuseFDs(t, "self"); n != fuseBefore || all != before {
		t.Errorf("after Close: %d descriptors (%d on /dev/fuse), before New %d (%d)", all, n, before, fuseBefore)
	}
}

// TestAbortEndsWorkers: a fusectl abort makes every worker's read
// return, parked ones too (a stopping worker hands its reader token
// on), so all stop (Wait returns) without an unmount, and Close then
// leaves no descriptor behind.
func TestAbortEndsWorkers(t *testing.T) {
	m, conn, fuseBefore, before := mountHere(t, fusedev.Options{Workers: 3})
	abortConn(conn)
	waitStopped(t, m)
	must(t, m.Close())
	if n, all := devFuseFDs(t, "self"); n != fuseBefore || all != before {
		t.Errorf("after abort and Close: %d descriptors (%d on /dev/fuse), before New %d (%d)", all, n, before, fuseBefore)
	}
}
