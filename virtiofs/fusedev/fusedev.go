// Package fusedev serves a fuse.Server through the host's /dev/fuse, so the
// real Linux FUSE client can mount krunbench's filesystem directly. It is
// the transport used by `krunbench serve --mount` and by the FUSE tests.
package fusedev

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"sync"
	"sync/atomic"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"

	"github.com/krunbench/krunbench/virtiofs/fuse"
)

// ErrMount wraps failures to mount.
var ErrMount = errors.New("fusedev: mount failed")

// bufSize fits the largest request (a max_write WRITE) and the largest
// reply (a max_pages READ); the kernel refuses smaller read buffers.
const bufSize = fuse.MaxWrite + 4096

// writeDataOffset is where a WRITE's data starts in a request: after the
// request header and fuse_write_in.
var writeDataOffset = fuse.InHeaderSize + int(unsafe.Sizeof(fuse.WriteIn{}))

// alignedAt returns a buffer of size bytes whose byte at index off starts a
// page. A host file opened O_DIRECT (the client opened it so through the
// mount) refuses I/O to or from unaligned memory with EINVAL, so the bytes
// a READ reply carries after its header and the bytes a WRITE request
// carries after its arguments must start on a page boundary, as the
// client's own buffer did. Go never moves heap memory, so the alignment
// holds for the buffer's life.
func alignedAt(size, off int) []byte {
	page := unix.Getpagesize()
	b := make([]byte, size+page)
	addr := uintptr(unsafe.Pointer(&b[0])) + uintptr(off)
	skip := (page - int(addr%uintptr(page))) % page
	return b[skip : skip+size : skip+size]
}

// Options configure a mount.
type Options struct {
	// Workers is how many requests are served at once; default 8. Slow
	// requests (large WRITEs, fsyncs) may start more, up to 64 or
	// Workers, so that they never hold every worker (workers.go).
	Workers int
	// Readers is how many workers may read and serve requests without
	// handing over (see workers.go); default GOMAXPROCS-1, at least 1,
	// at most Workers.
	Readers int
	// FSName is shown as the mount's source; default "krunbench".
	FSName string
	// AllowOther lets users other than the mounter use the mount. The
	// kernel checks every caller's permissions itself (the mount always
	// has default_permissions, see New), with the caller's supplementary
	// groups, which FUSE does not send: a passthrough filesystem serves
	// what the kernel allowed with its own credentials (its creds.go).
	AllowOther bool
	// NoSplice sends every READ reply by copying it through the server,
	// even when the filesystem could hand out a descriptor (see splice.go),
	// and reads every request, large WRITEs too (see splicein.go).
	NoSplice bool
}

// Mount is a live /dev/fuse mount.
type Mount struct {
	dir  string
	dev  *os.File
	srv  *fuse.Server
	wg   sync.WaitGroup
	once sync.Once
	err  error
	conn uint32 // fusectl connection id (the mount's device minor)
	// noSplice and spliceFailures govern READ splicing (splice.go).
	noSplice       bool
	spliceFailures atomic.Int32
	// spliceCredit is how many more requests workers splice in; each
	// large WRITE renews it (splicein.go).
	spliceCredit atomic.Int32
	// splicedWrites counts WRITEs whose data went pipe -> file.
	splicedWrites atomic.Uint64
	// maxRequest is the max_write offered (splicein.go).
	maxRequest int
	// readers holds a token per worker allowed to read (workers.go).
	readers chan struct{}
	// live counts running workers, slow those serving a slow request;
	// workers is Options.Workers, maxWorkers the most live with spares
	// (workers.go).
	live, slow          atomic.Int32
	workers, maxWorkers int32
	freeBufs            chan workerBufs // retired workers' buffers (keepBufs)
}

// New mounts srv's filesystem on dir and starts serving.
func New(srv *fuse.Server, dir string, opts Options) (*Mount, error) {
	if opts.Workers <= 0 {
		opts.Workers = 8
	}
	if opts.Readers <= 0 {
		opts.Readers = max(1, runtime.GOMAXPROCS(0)-1)
	}
	opts.Readers = min(opts.Readers, opts.Workers)
	if opts.FSName == "" {
		opts.FSName = "krunbench"
	}
	st, err := os.Stat(dir)
	if err != nil {
		return nil, fmt.Errorf("%w: mount point: %w", ErrMount, err)
	}
	if !st.IsDir() {
		return nil, fmt.Errorf("%w: mount point %s is not a directory", ErrMount, dir)
	}
	fd, err := unix.Open("/dev/fuse", unix.O_RDWR|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("%w: open /dev/fuse: %w", ErrMount, err)
	}
	// default_permissions: the kernel checks permissions against the
	// attributes it has (mode, owner, group, the caller's supplementary
	// groups) before it sends a request, as the Linux virtio-fs driver
	// always asks for, so the mount behaves as a guest sees it. Without
	// it the kernel checks nothing on its own: search permission on a
	// parent whose entries are cached and the modes of FIFOs and device
	// nodes (opened without a request) went unchecked, and another user
	// could open a file inside a 0700 directory through a cached entry.
	data := fmt.Sprintf("fd=%d,rootmode=40000,user_id=0,group_id=0,default_permissions", fd)
	if opts.AllowOther {
		data += ",allow_other"
	}
	// Requests as large as the pipes can splice (splicein.go): with 1 MiB
	// pipes a 1 MiB WRITE is copied twice through the server, a 512 KiB
	// one moved pipe -> file.
	maxRequest := fuse.MaxWrite
	if !opts.NoSplice {
		maxRequest = spliceableRequest()
		srv.LimitRequests(maxRequest)
	}
	// Where mountinfo will show the mount, resolved now: once mounted,
	// looking at the path waits for INIT, which no worker reads yet.
	mountedOn, err := filepath.EvalSymlinks(dir)
	if err == nil {
		mountedOn, err = filepath.Abs(mountedOn)
	}
	if err != nil {
		mountedOn = ""
	}
	if err := unix.Mount(opts.FSName, dir, "fuse.krunbench", unix.MS_NOSUID|unix.MS_NODEV, data); err != nil {
		unix.Close(fd)
		return nil, fmt.Errorf("%w: mount %s: %w", ErrMount, dir, err)
	}
	if mountedOn != "" {
		raiseReadahead(mountedOn, maxRequest) // before INIT: readahead.go
	}
	m := &Mount{dir: dir, dev: os.NewFile(uintptr(fd), "/dev/fuse"), srv: srv, noSplice: opts.NoSplice, maxRequest: maxRequest,
		readers: make(chan struct{}, opts.Readers),
		workers: int32(opts.Workers), maxWorkers: int32(max(opts.Workers, maxWorkersFloor)),
		freeBufs: make(chan workerBufs, keptBufs)}
	for range opts.Workers {
		m.live.Add(1)
		m.wg.Add(1)
		go m.loop(fd)
	}
	var root unix.Stat_t
	if err := unix.Stat(dir, &root); err == nil {
		m.conn = unix.Minor(root.Dev)
	}
	return m, nil
}

// SplicedWrites is how many WRITEs had their data spliced from the
// device into the file, never copied through the server (splicein.go).
func (m *Mount) SplicedWrites() uint64 { return m.splicedWrites.Load() }

// Dir returns the mount point.
func (m *Mount) Dir() string { return m.dir }

// Wait blocks until the filesystem is unmounted (by Close or by umount).
func (m *Mount) Wait() error {
	m.wg.Wait()
	return m.err
}

// Close unmounts (lazily, so busy users do not block it) and waits for the
// workers to stop.
func (m *Mount) Close() error {
	m.srv.Release() // a breakpoint must not hold the workers we wait for
	err := unix.Unmount(m.dir, unix.MNT_DETACH)
	if err == unix.EINVAL {
		err = nil // already unmounted
	}
	done := make(chan struct{})
	go func() { m.wg.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(time.Second):
		// Still in use after the lazy unmount: abort the connection so
		// the workers' reads return and users get ENOTCONN.
		m.abort()
		<-done
	}
	m.dev.Close()
	m.srv.Reset()
	return err
}

func (m *Mount) abort() {
	const ctl = "/sys/fs/fuse/connections"
	if _, err := os.Stat(ctl + "/" + fmt.Sprint(m.conn)); err != nil {
		_ = unix.Mount("fusectl", ctl, "fusectl", 0, "")
	}
	_ = os.WriteFile(fmt.Sprintf("%s/%d/abort", ctl, m.conn), []byte("1"), 0)
}
