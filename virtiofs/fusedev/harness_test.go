package fusedev_test

import (
	"os"
	"path/filepath"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/krunbench/krunbench/virtiofs/fuse"
	"github.com/krunbench/krunbench/virtiofs/fusedev"
	"github.com/krunbench/krunbench/virtiofs/overlay"
	"github.com/krunbench/krunbench/virtiofs/passthrough"
	"github.com/krunbench/krunbench/virtiofs/trace"
)

// mounted is the whole server stack (passthrough, overlay, tap, recorder)
// mounted through /dev/fuse and used by the real kernel FUSE client.
type mounted struct {
	shared, mnt string
	overlay     *overlay.FS
	tap         *trace.Tap
	traceFile   string
	m           *fusedev.Mount
	rec         *trace.Recorder
	file        *os.File
}

type mountOpts struct {
	payload []byte
	config  []byte
	ptOpts  passthrough.Options
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

func mount(t *testing.T, o mountOpts) *mounted {
	t.Helper()
	requireRoot(t)
	base := worldDir(t)
	mt := &mounted{
		shared:    filepath.Join(base, "shared"),
		mnt:       filepath.Join(base, "mnt"),
		traceFile: filepath.Join(base, "trace.jsonl"),
	}
	for _, d := range []string{mt.shared, mt.mnt} {
		if err := os.Mkdir(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	pt, err := passthrough.New(mt.shared, o.ptOpts)
	if err != nil {
		t.Fatal(err)
	}
	mt.overlay = overlay.New(pt)
	mt.overlay.SetPayload(o.payload)
	mt.overlay.SetConfig(o.config)
	mt.tap = trace.NewTap(trace.Options{Resolver: mt.overlay, Inodes: mt.overlay, EagerPaths: true})
	if mt.file, err = os.Create(mt.traceFile); err != nil {
		t.Fatal(err)
	}
	mt.rec = mt.tap.Record(mt.file, 0)
	srv := fuse.NewServer(mt.overlay, fuse.Options{Observer: mt.tap})
	if mt.m, err = fusedev.New(srv, mt.mnt, fusedev.Options{AllowOther: true}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(mt.close)
	disablePoll(t, mt.mnt)
	return mt
}

// disablePoll makes the kernel ask the server FUSE_POLL once, from a plain
// syscall. The server answers ENOSYS and the kernel never asks again. This
// matters because the tests use the mount from the process that serves it:
// Go's os.Open registers files with epoll from inside the runtime, and a
// FUSE_POLL sent then could wait on a server goroutine that a concurrent
// garbage collection has stopped.
func disablePoll(t *testing.T, mnt string) {
	t.Helper()
	name := filepath.Join(mnt, ".krunbench-poll-probe")
	fd, err := unix.Open(name, unix.O_CREAT|unix.O_RDWR|unix.O_CLOEXEC, 0o600)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Unlink(name)
	defer unix.Close(fd)
	ep, err := unix.EpollCreate1(unix.EPOLL_CLOEXEC)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(ep)
	_ = unix.EpollCtl(ep, unix.EPOLL_CTL_ADD, fd, &unix.EpollEvent{Events: unix.EPOLLIN, Fd: int32(fd)})
}

// close unmounts and flushes the trace; safe to call twice.
func (mt *mounted) close() {
	if mt.m == nil {
		return
	}
	mt.m.Close()
	mt.rec.Close()
	mt.file.Close()
	mt.m = nil
}

// events unmounts and returns every traced request.
func (mt *mounted) events(t *testing.T) []trace.Event {
	t.Helper()
	mt.close()
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
