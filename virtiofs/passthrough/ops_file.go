package passthrough

import (
	"math"

	"golang.org/x/sys/unix"

	"github.com/krunbench/krunbench/virtiofs/fuse"
)

// openFlagMask are the open(2) flags a client may pass through. O_CREAT,
// O_EXCL, O_NOFOLLOW, O_PATH, O_TMPFILE and O_NOCTTY are never passed on a
// reopen; O_CLOEXEC is always added.
const openFlagMask = unix.O_ACCMODE | unix.O_APPEND | unix.O_NONBLOCK | unix.O_SYNC | unix.O_DSYNC |
	unix.O_DIRECT | unix.O_LARGEFILE | unix.O_DIRECTORY | unix.O_NOATIME | unix.O_TRUNC

// openFlags turns the client's open flags into the host's.
func (fs *FS) openFlags(flags uint32) int {
	f := int(flags) & openFlagMask
	if fs.flags.Load()&fuse.InitWritebackCache != 0 {
		// The client's page cache reads even write-only files and
		// handles append itself, as virtiofsd does.
		if f&unix.O_ACCMODE == unix.O_WRONLY {
			f = f&^unix.O_ACCMODE | unix.O_RDWR
		}
		f &^= unix.O_APPEND
	}
	return f
}

// reopen opens the inode behind the O_PATH descriptor fd for I/O through
// /proc/self/fd, with the current thread's credentials. Only regular files
// and directories are reopened: a symlink gets ELOOP and a special file
// ENXIO (the client never opens those through FUSE). O_DIRECT is dropped if
// the host filesystem refuses it.
func (fs *FS) reopen(ino *inode, fd int, flags int) (int, error) {
	return fs.reopenType(ino.typ, fd, flags)
}

func (fs *FS) reopenType(typ uint32, fd int, flags int) (int, error) {
	switch typ {
	case unix.S_IFREG, unix.S_IFDIR:
	case unix.S_IFLNK:
		return -1, unix.ELOOP
	default:
		return -1, unix.ENXIO
	}
	flags = flags&openFlagMask | unix.O_CLOEXEC
	nfd, err := unix.Openat(fs.procFD, procName(fd), flags, 0)
	if err == unix.EINVAL && flags&unix.O_DIRECT != 0 {
		nfd, err = unix.Openat(fs.procFD, procName(fd), flags&^unix.O_DIRECT, 0)
	}
	return nfd, err
}

// Open opens nodeid for I/O.
func (fs *FS) Open(r *fuse.Request, nodeid uint64, in *fuse.OpenIn, out *fuse.OpenOut) fuse.Errno {
	return fs.open(r, nodeid, fs.openFlags(in.Flags), in.OpenFlags&fuse.OpenKillSuidgid != 0, false, out)
}

// open reopens nodeid with flags, with the server's credentials (the client
// kernel checked the caller), except that a non-root caller's O_TRUNC runs
// without CAP_FSETID, so the host clears SUID/SGID as the truncation of a
// local file by that caller would (see creds.go); so does a root caller's
// when the kernel says it lacks CAP_FSETID (kill, FUSE_OPEN_KILL_SUIDGID).
func (fs *FS) open(r *fuse.Request, nodeid uint64, flags int, kill, dir bool, out *fuse.OpenOut) fuse.Errno {
	ino, fd, e := fs.inodes.pin(nodeid)
	if e != 0 {
		return e
	}
	defer fs.inodes.unpin(ino)
	if dir && ino.typ != unix.S_IFDIR {
		return unix.ENOTDIR
	}
	if e := fs.reserveHandle(); e != 0 {
		return e
	}
	sw, dropped := false, false
	switch {
	case flags&unix.O_TRUNC == 0:
	case !fs.privileged(r.Caller):
		sw, e = fs.becomeOwner(r.Caller, false)
	case kill:
		dropped, e = fs.dropFsetid()
	}
	if e != 0 {
		fs.unreserveHandle()
		return e
	}
	nfd, err := fs.reopen(ino, fd, flags)
	fs.unbecome(sw)
	fs.restoreFsetid(dropped)
	if err != nil {
		fs.unreserveHandle()
		return errno(err)
	}
	*out = fuse.OpenOut{Fh: fs.newHandle(nodeid, nfd, flags, dir)}
	return fuse.OK
}

// Create creates (or, without O_EXCL, opens) name in parent and opens it.
//
// The create+unlink row (issue 15) asks the server for more than go-fuse's
// loopback does: the kernel sent 8 requests per open(O_CREAT|O_EXCL),
// close, unlink (LOOKUP, CREATE, GETATTR, FLUSH, RELEASE, GETATTR, UNLINK,
// FORGET; 2,000 triples, counted in the trace) against go-fuse's 6 (no
// GETATTR); 7 since CREATE answers FOPEN_NOFLUSH where closing cannot fail
// (noflush.go). The two GETATTRs are the parent directory's: CREATE and UNLINK
// invalidate its attributes in the client, and a default_permissions
// mount (ours, as virtio-fs mounts) must refresh them for the next
// permission check; the loopback in bench/ mounts without it. Per triple
// our server uses 0.72x go-fuse's CPU (1.405 s against 1.965 s for
// 10,000), but the row is 1.13-1.16x; against go-fuse with
// -default-permissions the same triples ran 1.53x [1.37-1.60] (4,000 a
// round, 5 interleaved rounds, default settings).
// The new file is created as its owner (see creds.go); a file that exists
// on the host although the client sent CREATE is opened as the caller,
// because the client kernel, believing it created the file, checked
// nothing.
func (fs *FS) Create(r *fuse.Request, parent uint64, name string, in *fuse.CreateIn, entry *fuse.EntryOut, out *fuse.OpenOut) fuse.Errno {
	epoch := fs.inodes.session()
	if e := checkName(name); e != 0 {
		return e
	}
	p, pfd, e := fs.inodes.pin(parent)
	if e != 0 {
		return e
	}
	defer fs.inodes.unpin(p)
	// The slot is taken before anything is created, so a full table
	// leaves no file behind.
	if e := fs.reserveHandle(); e != 0 {
		return e
	}
	opened := false
	defer func() {
		if !opened {
			fs.unreserveHandle()
		}
	}()

	flags := fs.openFlags(in.Flags) &^ unix.O_DIRECTORY
	mode := in.Mode & 0o7777 &^ in.Umask
	want := int64(-1)
	var fd int
	var err error
	for range 3 {
		if fd, err = fs.createExclusive(r.Caller, pfd, name, flags, mode); err == nil {
			want = int64(mode)
			break
		}
		if err != unix.EEXIST || in.Flags&unix.O_EXCL != 0 {
			return errno(err)
		}
		// It exists: open it the way OPEN would, so a fifo or device
		// planted under the name is refused rather than opened.
		sw, e := fs.become(r.Caller)
		if e != 0 {
			return e
		}
		dropped := false
		if !sw && flags&unix.O_TRUNC != 0 && in.OpenFlags&fuse.OpenKillSuidgid != 0 {
			// A root caller without CAP_FSETID (become keeps root's).
			if dropped, e = fs.dropFsetid(); e != 0 {
				return e
			}
		}
		fd, err = fs.openExisting(pfd, name, flags)
		fs.restoreFsetid(dropped)
		fs.unbecome(sw)
		if err != unix.ENOENT {
			break
		}
	}
	if err != nil {
		return errno(err)
	}
	if e := fs.enterOpened(epoch, parent, name, fd, want, entry); e != 0 {
		unix.Close(fd)
		return e
	}
	*out = fuse.OpenOut{OpenFlags: closeFlags(fd), Fh: fs.newHandle(entry.Nodeid, fd, flags, false)}
	opened = true
	return fuse.OK
}

// createExclusive creates name in the directory at pfd (O_EXCL) and opens
// it, as the owner of what caller creates.
func (fs *FS) createExclusive(caller fuse.Caller, pfd int, name string, flags int, mode uint32) (int, error) {
	sw, e := fs.becomeOwner(caller, true)
	if e != 0 {
		return -1, e
	}
	defer fs.unbecome(sw)
	return openat(pfd, name, flags|unix.O_CREAT|unix.O_EXCL|unix.O_NOFOLLOW|unix.O_CLOEXEC, mode)
}

// openExisting opens name in the directory at pfd without creating it.
func (fs *FS) openExisting(pfd int, name string, flags int) (int, error) {
	pathFD, err := unix.Openat(pfd, name, unix.O_PATH|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	if err != nil {
		return -1, err
	}
	defer unix.Close(pathFD)
	var st unix.Stat_t
	if err := statFD(pathFD, &st); err != nil {
		return -1, err
	}
	if st.Mode&unix.S_IFMT == unix.S_IFDIR {
		return -1, unix.EISDIR
	}
	return fs.reopenType(st.Mode&unix.S_IFMT, pathFD, flags)
}

// Read reads from an open handle into dst.
func (fs *FS) Read(r *fuse.Request, nodeid uint64, in *fuse.ReadIn, dst [][]byte) (int, fuse.Errno) {
	h, e := fs.getHandle(in.Fh)
	if e != 0 {
		return 0, e
	}
	defer h.put()
	dst = limit(dst, int(in.Size))
	n, err := preadv(h.fd, dst, int64(in.Offset))
	if err != nil {
		return 0, errno(err)
	}
	return n, fuse.OK
}

// ReadFD hands out an open file's descriptor for a READ the transport
// splices (fuse.FDReader). The returned func drops the reference that keeps
// the descriptor open, so a racing RELEASE cannot close it mid-splice.
// Directory handles get no descriptor: Read answers them.
func (fs *FS) ReadFD(r *fuse.Request, nodeid uint64, in *fuse.ReadIn) (int, func(), fuse.Errno) {
	return fs.fileFD(in.Fh)
}

// fileFD is the descriptor of file handle fh with a reference on it, or
// -1 for a directory handle.
func (fs *FS) fileFD(fh uint64) (int, func(), fuse.Errno) {
	h, e := fs.getHandle(fh)
	if e != 0 {
		return -1, nil, e
	}
	if h.dir != nil {
		h.put()
		return -1, nil, fuse.OK
	}
	return h.fd, h.release, fuse.OK
}

// WriteFD hands out an open file's descriptor for a WRITE the transport
// splices (fuse.FDWriter), with the same reference rule as ReadFD. Files
// open with O_APPEND (splice refuses them) or O_DIRECT (spliced pages
// need not meet its alignment) and directories get none: Write serves
// them.
//
// Under the writeback cache the kernel sends a file's WRITEs in parallel
// and ext4 serialises them on the inode lock: in a fresh `serve
// --writeback --mount` writing 512 MiB in 1 MiB write()s + fsync
// (default settings, 2 CPUs) 22-38% of the server's CPU samples were
// rwsem_spin_on_owner under ext4_buffered_write_iter. Tried and
// rejected: a per-handle sync.Mutex held from here to done, so that
// waiters park instead of spinning. 8 rounds alternating with the plain
// build and passthrough_hp: 473-780 MB/s against 503-912 (slower in
// every round), server CPU 388-492 ms against 218-362 ms, context
// switches 1380-3319 against 566-3136: each parked WRITE counts slow and
// starts a spare worker (workers.go), and the wake-ups cost more than
// the spinning did.
//
// Whether a handle may be spliced to is decided at open (handle's
// unspliceable), not by an fcntl(F_GETFL) here: that was one system call
// per spliced WRITE (31 for 31 512 KiB WRITEs, TestSplicedWriteSyscalls).
func (fs *FS) WriteFD(r *fuse.Request, nodeid uint64, in *fuse.WriteIn) (int, func(), fuse.Errno) {
	h, e := fs.getHandle(in.Fh)
	if e != 0 {
		return -1, nil, e
	}
	if h.dir != nil || h.unspliceable {
		h.put()
		return -1, nil, fuse.OK
	}
	fd, done := h.fd, h.release
	if in.WriteFlags&fuse.WriteKillSuidgid != 0 {
		// The caller splices on this goroutine before calling done
		// (fuse.FDWriter), so the thread is still the one without
		// CAP_FSETID.
		dropped, e := fs.dropFsetid()
		if e != 0 {
			done()
			return -1, nil, e
		}
		if dropped {
			release := done
			done = func() { fs.restoreFsetid(true); release() }
		}
	}
	return fd, done, fuse.OK
}

// Write writes in.Size bytes of data to an open handle.
func (fs *FS) Write(r *fuse.Request, nodeid uint64, in *fuse.WriteIn, data [][]byte) (uint32, fuse.Errno) {
	h, e := fs.getHandle(in.Fh)
	if e != 0 {
		return 0, e
	}
	defer h.put()
	data = limit(data, int(in.Size))
	if in.WriteFlags&fuse.WriteKillSuidgid != 0 {
		dropped, e := fs.dropFsetid()
		if e != 0 {
			return 0, e
		}
		defer fs.restoreFsetid(dropped)
	}
	n, err := pwritev(h.fd, data, int64(in.Offset))
	if err != nil {
		return 0, errno(err)
	}
	return uint32(n), fuse.OK
}

// limit trims bufs to at most n bytes in total.
func limit(bufs [][]byte, n int) [][]byte {
	total := 0
	for i, b := range bufs {
		if total+len(b) >= n {
			if total+len(b) == n && i == len(bufs)-1 {
				return bufs
			}
			out := make([][]byte, i+1)
			copy(out, bufs[:i])
			out[i] = b[:n-total]
			return out
		}
		total += len(b)
	}
	return bufs
}

// Flush is close(dup(fd)): it releases the process's POSIX locks on the
// file and reports errors a close would.
func (fs *FS) Flush(r *fuse.Request, nodeid uint64, in *fuse.FlushIn) fuse.Errno {
	h, e := fs.getHandle(in.Fh)
	if e != 0 {
		return e
	}
	defer h.put()
	nfd, err := unix.Dup(h.fd)
	if err != nil {
		return errno(err)
	}
	return errno(unix.Close(nfd))
}

// Fsync flushes a handle to disk; bit 0 of FsyncFlags asks for fdatasync.
//
// Tried and rejected (issue 15, fresh `serve --mount` per sample, 512 MiB
// in 1 MiB write()s + fsync, default settings, 2 CPUs, 6 rounds
// alternating, a busy machine): starting the host file's writeback early,
// sync_file_range(SYNC_FILE_RANGE_WRITE) over the last 8 MiB (or 32 MiB)
// of sequential large WRITEs after each WRITE, so that the disk works
// during the write() phase instead of all in the fsync (0.31-0.34 s of a
// 0.55-0.6 s sample for every server). The fsync did shrink (8 MiB:
// 0.04-0.24 s) but the write() phase grew by as much (0.37-0.60 s
// against 0.24-0.44 s: the flusher competes for the two CPUs): MB/s
// 8 MiB 0.88-1.22x (median about 1.07x), 32 MiB 0.87-1.15x (about
// 1.03x) of the plain build, within the noise, and it writes to disk
// files that would have been deleted before the kernel wrote them.
func (fs *FS) Fsync(r *fuse.Request, nodeid uint64, in *fuse.FsyncIn) fuse.Errno {
	h, e := fs.getHandle(in.Fh)
	if e != 0 {
		return e
	}
	defer h.put()
	if in.FsyncFlags&1 != 0 {
		return errno(unix.Fdatasync(h.fd))
	}
	return errno(unix.Fsync(h.fd))
}

// Release closes a file handle.
func (fs *FS) Release(r *fuse.Request, nodeid uint64, in *fuse.ReleaseIn) fuse.Errno {
	return fs.releaseHandle(in.Fh, false)
}

// Fallocate preallocates or punches space in an open file.
func (fs *FS) Fallocate(r *fuse.Request, nodeid uint64, in *fuse.FallocateIn) fuse.Errno {
	h, e := fs.getHandle(in.Fh)
	if e != 0 {
		return e
	}
	defer h.put()
	if in.Offset > math.MaxInt64 || in.Length > math.MaxInt64 {
		return unix.EINVAL
	}
	dropped, e := fs.dropFsetidFor(r.Caller)
	if e != 0 {
		return e
	}
	defer fs.restoreFsetid(dropped)
	return errno(unix.Fallocate(h.fd, in.Mode, int64(in.Offset), int64(in.Length)))
}

// Lseek answers SEEK_DATA and SEEK_HOLE (and the plain whences) on files.
func (fs *FS) Lseek(r *fuse.Request, nodeid uint64, in *fuse.LseekIn, out *fuse.LseekOut) fuse.Errno {
	switch in.Whence {
	case unix.SEEK_SET, unix.SEEK_CUR, unix.SEEK_END, unix.SEEK_DATA, unix.SEEK_HOLE:
	default:
		return unix.EINVAL
	}
	h, e := fs.getHandle(in.Fh)
	if e != 0 {
		return e
	}
	defer h.put()
	if h.dir != nil {
		// The client seeks directories itself (READDIR carries the
		// cookie); moving the host offset under a directory handle would
		// desynchronise its buffered entries from its position.
		return unix.EINVAL
	}
	off, err := unix.Seek(h.fd, int64(in.Offset), int(in.Whence))
	if err != nil {
		return errno(err)
	}
	out.Offset = uint64(off)
	return fuse.OK
}

// maxCopy bounds the host I/O of one COPY_FILE_RANGE: the host copies (not
// reflinks) on most filesystems, and 1 GiB out of a sparse file took 4 s
// of one request. A short count is a valid answer; the client's
// copy_file_range(2) loops. 8 MiB is a few tens of milliseconds.
const maxCopy = 8 << 20

// CopyFileRange copies between two open handles on the host.
func (fs *FS) CopyFileRange(r *fuse.Request, nodeid uint64, in *fuse.CopyFileRangeIn) (uint32, fuse.Errno) {
	if in.Flags != 0 {
		return 0, unix.EINVAL
	}
	if in.OffIn > math.MaxInt64 || in.OffOut > math.MaxInt64 {
		return 0, unix.EINVAL
	}
	src, e := fs.getHandle(in.FhIn)
	if e != 0 {
		return 0, e
	}
	defer src.put()
	dst, e := fs.getHandle(in.FhOut)
	if e != 0 {
		return 0, e
	}
	defer dst.put()
	offIn, offOut := int64(in.OffIn), int64(in.OffOut)
	dropped, e := fs.dropFsetidFor(r.Caller)
	if e != 0 {
		return 0, e
	}
	defer fs.restoreFsetid(dropped)
	n, err := unix.CopyFileRange(src.fd, &offIn, dst.fd, &offOut, int(min(in.Len, maxCopy)), 0)
	if err != nil {
		return 0, errno(err)
	}
	return uint32(n), fuse.OK
}
