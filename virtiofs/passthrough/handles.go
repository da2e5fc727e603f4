package passthrough

import (
	"sync"
	"sync/atomic"

	"golang.org/x/sys/unix"

	"github.com/krunbench/krunbench/virtiofs/fuse"
)

// handle is an open file or directory. The table holds one reference and
// every in-flight operation another, so RELEASE racing with a READ never
// closes (and lets the host reuse) a descriptor still being read.
type handle struct {
	fs     *FS
	fh     uint64
	nodeid uint64
	fd     int
	refs   atomic.Int32
	dir    *dirState
	// unspliceable is set when the descriptor was opened with O_APPEND
	// (splice refuses it) or O_DIRECT (spliced pages need not meet its
	// alignment), so WriteFD hands it out for no WRITE. Decided once at
	// open from the flags the descriptor was opened with (the server
	// never changes them, and the client's fcntl(F_SETFL) does not reach
	// it), not with an F_GETFL per WRITE: see WriteFD.
	unspliceable bool
	// release is put as a func value, made once so that handing it out
	// (ReadFD) does not allocate.
	release func()
}

// dirState is the READDIR position of a directory handle.
type dirState struct {
	mu sync.Mutex
	// pos is the cookie (d_off) of the last entry handed out; the host
	// descriptor's offset equals it when buf is empty.
	pos uint64
	// buf[off:end] holds dirents read from the host but not yet handed out.
	buf      []byte
	off, end int
	// resident is set while buf counts against MaxResidentDirBuffers; a
	// buffer that does not is only borrowed for one READDIR.
	resident bool
}

// put drops a reference, closing the descriptor with the last one.
func (h *handle) put() {
	if h.refs.Add(-1) == 0 {
		unix.Close(h.fd)
		if h.dir != nil && h.dir.resident {
			h.fs.residentDirBufs.Add(-1)
		}
		h.fs.openFDs.Add(-1)
	}
}

// reserveHandle takes one of the maxHandles slots for a handle about to
// be opened, or fails with ENFILE: the filesystem's table is full. The
// slot passes to newHandle, or is given back with unreserveHandle.
func (fs *FS) reserveHandle() fuse.Errno {
	if fs.openFDs.Add(1) > fs.maxHandles {
		fs.openFDs.Add(-1)
		return unix.ENFILE
	}
	return fuse.OK
}

func (fs *FS) unreserveHandle() { fs.openFDs.Add(-1) }

// newHandle registers fd, opened with flags, in a slot taken by
// reserveHandle and returns its fh; ownership of fd passes to it.
func (fs *FS) newHandle(nodeid uint64, fd int, flags int, dir bool) uint64 {
	h := &handle{fs: fs, nodeid: nodeid, fd: fd, unspliceable: flags&(unix.O_APPEND|unix.O_DIRECT) != 0}
	h.refs.Store(1)
	h.release = h.put
	if dir {
		h.dir = &dirState{}
	}
	fs.hmu.Lock()
	h.fh = fs.nextFh
	fs.nextFh++
	fs.handles[h.fh] = h
	fs.hmu.Unlock()
	return h.fh
}

// getHandle returns a referenced handle; the caller must put it.
func (fs *FS) getHandle(fh uint64) (*handle, fuse.Errno) {
	fs.hmu.RLock()
	h := fs.handles[fh]
	if h != nil {
		h.refs.Add(1)
	}
	fs.hmu.RUnlock()
	if h == nil {
		return nil, unix.EBADF
	}
	return h, fuse.OK
}

// getHandleFor is getHandle for a request that names both a nodeid and a
// handle (GETATTR, SETATTR): a handle opened on another inode is EBADF,
// so a SETATTR cannot truncate one file through another's handle.
func (fs *FS) getHandleFor(fh, nodeid uint64) (*handle, fuse.Errno) {
	h, e := fs.getHandle(fh)
	if e != 0 {
		return nil, e
	}
	if h.nodeid != nodeid {
		h.put()
		return nil, unix.EBADF
	}
	return h, fuse.OK
}

// releaseHandle removes fh from the table.
func (fs *FS) releaseHandle(fh uint64, dir bool) fuse.Errno {
	fs.hmu.Lock()
	h := fs.handles[fh]
	if h == nil || (h.dir != nil) != dir {
		fs.hmu.Unlock()
		return unix.EBADF
	}
	delete(fs.handles, fh)
	fs.hmu.Unlock()
	h.put()
	return fuse.OK
}

// openHandles reports how many handles are open (for tests).
func (fs *FS) openHandles() int {
	fs.hmu.RLock()
	defer fs.hmu.RUnlock()
	return len(fs.handles)
}
