package passthrough

import (
	"bytes"
	"encoding/binary"
	"sync"

	"golang.org/x/sys/unix"

	"github.com/krunbench/krunbench/virtiofs/fuse"
)

// direntBufSize is the getdents64 buffer of a directory handle.
const direntBufSize = 32 << 10

// direntBufs recycles getdents64 buffers between directory handles.
var direntBufs = sync.Pool{New: func() any { b := make([]byte, direntBufSize); return &b }}

// dirBuffer lends d a getdents64 buffer for a READDIR. It stays with the
// handle between READDIRs (resident) while fewer than MaxResidentDirBuffers
// handles hold one; beyond that it is only borrowed for this READDIR.
func (fs *FS) dirBuffer(d *dirState) {
	d.buf = *direntBufs.Get().(*[]byte)
	d.resident = fs.residentDirBufs.Add(1) <= MaxResidentDirBuffers
	if !d.resident {
		fs.residentDirBufs.Add(-1)
	}
}

// settleDirBuffer ends a READDIR: a resident buffer with entries not yet
// handed out stays; a drained one goes back to the pool with its slot; a
// borrowed one goes back too, after the directory is rewound to the last
// entry handed out so that the entries it held are read again next time.
func (fs *FS) settleDirBuffer(fd int, d *dirState) {
	switch {
	case d.buf == nil || (d.resident && d.off < d.end):
		return
	case d.resident:
		fs.residentDirBufs.Add(-1)
		d.resident = false
	case d.off < d.end:
		// If the rewind fails, the position is forgotten: the next
		// READDIR then seeks to the client's cookie itself.
		if _, err := unix.Seek(fd, int64(d.pos), unix.SEEK_SET); err != nil {
			d.pos = ^uint64(0)
		}
	}
	buf := d.buf
	d.buf, d.off, d.end = nil, 0, 0
	direntBufs.Put(&buf)
}

// OpenDir opens a directory for READDIR (see open).
func (fs *FS) OpenDir(r *fuse.Request, nodeid uint64, in *fuse.OpenIn, out *fuse.OpenOut) fuse.Errno {
	return fs.open(r, nodeid, unix.O_RDONLY|unix.O_DIRECTORY, false, true, out)
}

// ReadDir lists the directory from the cookie in.Offset, which is the host's
// d_off of the last entry the client got (0 to start). "." and ".." are
// listed as the host returns them; READDIRPLUS looks up every other entry,
// and only once it is sure the entry fits, so no lookup count is taken for
// an entry the client never sees.
func (fs *FS) ReadDir(r *fuse.Request, nodeid uint64, in *fuse.ReadIn, plus bool, list *fuse.DirList) fuse.Errno {
	epoch := fs.inodes.session()
	h, e := fs.getHandle(in.Fh)
	if e != 0 {
		return e
	}
	defer h.put()
	d := h.dir
	if d == nil {
		return unix.ENOTDIR
	}
	dirFD := -1
	if plus {
		ino, fd, e := fs.inodes.pin(h.nodeid)
		if e != 0 {
			return e
		}
		defer fs.inodes.unpin(ino)
		dirFD = fd
	}

	d.mu.Lock()
	defer d.mu.Unlock()
	if in.Offset != d.pos {
		if _, err := unix.Seek(h.fd, int64(in.Offset), unix.SEEK_SET); err != nil {
			return errno(err)
		}
		d.pos = in.Offset
		d.off, d.end = 0, 0
	}
	if d.buf == nil {
		fs.dirBuffer(d)
	}
	defer fs.settleDirBuffer(h.fd, d)
	for {
		if d.off >= d.end {
			n, err := unix.Getdents(h.fd, d.buf)
			if err != nil {
				if list.Len() > 0 {
					return fuse.OK
				}
				return errno(err)
			}
			if n <= 0 {
				return fuse.OK
			}
			d.off, d.end = 0, n
		}
		ent, ok := parseDirent(d.buf[d.off:d.end])
		if !ok {
			d.off = d.end
			continue
		}
		if !list.Fits(ent.name) {
			return fuse.OK
		}
		var added bool
		if plus && ent.name != "." && ent.name != ".." {
			var entry fuse.EntryOut
			if fs.lookupFast(epoch, h.nodeid, dirFD, ent.name, &entry) != 0 {
				entry = fuse.EntryOut{}
			}
			added = list.AddPlus(&entry, ent.ino, ent.off, ent.typ, ent.name)
			if !added && entry.Nodeid != 0 {
				fs.inodes.forget(entry.Nodeid, 1)
			}
		} else {
			added = list.Add(ent.ino, ent.off, ent.typ, ent.name)
		}
		if !added {
			return fuse.OK
		}
		d.off += ent.reclen
		d.pos = ent.off
	}
}

// dirent is one linux_dirent64.
type dirent struct {
	ino, off uint64
	reclen   int
	typ      uint32
	name     string
}

// parseDirent decodes the first linux_dirent64 in b.
func parseDirent(b []byte) (dirent, bool) {
	const hdr = 19
	if len(b) < hdr {
		return dirent{}, false
	}
	reclen := int(binary.NativeEndian.Uint16(b[16:18]))
	if reclen < hdr || reclen > len(b) {
		return dirent{}, false
	}
	name := b[hdr:reclen]
	if i := bytes.IndexByte(name, 0); i >= 0 {
		name = name[:i]
	}
	return dirent{
		ino:    binary.NativeEndian.Uint64(b[0:8]),
		off:    binary.NativeEndian.Uint64(b[8:16]),
		reclen: reclen,
		typ:    uint32(b[18]),
		name:   string(name),
	}, true
}

// ReleaseDir closes a directory handle.
func (fs *FS) ReleaseDir(r *fuse.Request, nodeid uint64, in *fuse.ReleaseIn) fuse.Errno {
	return fs.releaseHandle(in.Fh, true)
}

// FsyncDir flushes a directory handle to disk.
func (fs *FS) FsyncDir(r *fuse.Request, nodeid uint64, in *fuse.FsyncIn) fuse.Errno {
	return fs.Fsync(r, nodeid, in)
}
