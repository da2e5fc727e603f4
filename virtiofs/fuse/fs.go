package fuse

import "syscall"

// Errno is a Linux errno; 0 means success. Replies carry it negated.
type Errno = syscall.Errno

// OK is the zero Errno.
const OK Errno = 0

// RootID is the nodeid of the filesystem root.
const RootID = 1

// Caller is who sent a request, from the request header.
type Caller struct {
	Uid uint32
	Gid uint32
	Pid uint32
}

// Request is what a handler sees of the request being served: the header
// fields and, for the trace, what the filesystem learned while serving it.
type Request struct {
	Header InHeader
	Caller Caller
	// Synthetic is set by a filesystem that served the request from a
	// synthetic inode (the /init.krun overlay); the trace flags it.
	Synthetic bool
}

// FileSystem is what the server dispatches decoded requests to. Nodeids and
// file handles are the filesystem's own; the server never interprets them.
// Methods must be safe for concurrent use: requests are served in parallel.
type FileSystem interface {
	// Init is called once INIT is negotiated, with the flags both sides agreed on.
	Init(flags uint32)
	// Destroy releases everything: the client unmounted or the device reset.
	Destroy()

	Lookup(r *Request, parent uint64, name string, out *EntryOut) Errno
	Forget(nodeid, nlookup uint64)
	GetAttr(r *Request, nodeid uint64, in *GetAttrIn, out *AttrOut) Errno
	SetAttr(r *Request, nodeid uint64, in *SetAttrIn, out *AttrOut) Errno
	Readlink(r *Request, nodeid uint64) ([]byte, Errno)
	Symlink(r *Request, parent uint64, name, target string, out *EntryOut) Errno
	Mknod(r *Request, parent uint64, name string, in *MknodIn, out *EntryOut) Errno
	Mkdir(r *Request, parent uint64, name string, in *MkdirIn, out *EntryOut) Errno
	Unlink(r *Request, parent uint64, name string) Errno
	Rmdir(r *Request, parent uint64, name string) Errno
	Rename(r *Request, parent uint64, name string, newParent uint64, newName string, flags uint32) Errno
	Link(r *Request, nodeid, newParent uint64, newName string, out *EntryOut) Errno

	Open(r *Request, nodeid uint64, in *OpenIn, out *OpenOut) Errno
	Create(r *Request, parent uint64, name string, in *CreateIn, entry *EntryOut, out *OpenOut) Errno
	// Read fills dst (the reply's data buffers, possibly several) and
	// returns how many bytes it wrote; 0 at or past the end of the file.
	Read(r *Request, nodeid uint64, in *ReadIn, dst [][]byte) (int, Errno)
	// Write stores data (in.Size bytes split over the request's buffers).
	Write(r *Request, nodeid uint64, in *WriteIn, data [][]byte) (uint32, Errno)
	Flush(r *Request, nodeid uint64, in *FlushIn) Errno
	Fsync(r *Request, nodeid uint64, in *FsyncIn) Errno
	Release(r *Request, nodeid uint64, in *ReleaseIn) Errno
	Fallocate(r *Request, nodeid uint64, in *FallocateIn) Errno
	Lseek(r *Request, nodeid uint64, in *LseekIn, out *LseekOut) Errno
	CopyFileRange(r *Request, nodeid uint64, in *CopyFileRangeIn) (uint32, Errno)

	OpenDir(r *Request, nodeid uint64, in *OpenIn, out *OpenOut) Errno
	// ReadDir appends entries to list until it is full; plus selects
	// READDIRPLUS, whose entries carry an EntryOut (a lookup each).
	ReadDir(r *Request, nodeid uint64, in *ReadIn, plus bool, list *DirList) Errno
	ReleaseDir(r *Request, nodeid uint64, in *ReleaseIn) Errno
	FsyncDir(r *Request, nodeid uint64, in *FsyncIn) Errno

	StatFs(r *Request, nodeid uint64, out *StatfsOut) Errno
	Access(r *Request, nodeid uint64, mask uint32) Errno
	SetXattr(r *Request, nodeid uint64, name string, value []byte, flags uint32) Errno
	// GetXattr copies the value into dst; with a nil dst it returns the size.
	GetXattr(r *Request, nodeid uint64, name string, dst []byte) (int, Errno)
	// ListXattr copies the NUL-separated names into dst; nil dst: size only.
	ListXattr(r *Request, nodeid uint64, dst []byte) (int, Errno)
	RemoveXattr(r *Request, nodeid uint64, name string) Errno
	// Ioctl handles a restricted ioctl; it returns the result and the
	// number of bytes written to outData.
	Ioctl(r *Request, nodeid uint64, in *IoctlIn, inData []byte, outData []byte) (result int32, n int, errno Errno)
	SyncFs(r *Request, nodeid uint64) Errno
}

// PathResolver is implemented by filesystems that can name a nodeid, so the
// trace can show paths instead of numbers.
type PathResolver interface {
	PathOf(nodeid uint64) string
}

// FDReader is implemented by filesystems whose READ data comes from a host
// file descriptor, so a transport that can splice (fusedev) moves it into
// the reply without copying it through the server's memory.
type FDReader interface {
	// ReadFD returns the descriptor to read in.Size bytes at in.Offset
	// from, and done, which the caller must call once it no longer uses
	// fd (until then fd stays open, even if the handle is released). fd
	// -1 with OK means this READ has no descriptor (a synthetic inode):
	// serve it with Read. A non-zero errno fails the READ.
	ReadFD(r *Request, nodeid uint64, in *ReadIn) (fd int, done func(), errno Errno)
}

// FDWriter is implemented by filesystems whose WRITE data goes to a host
// file descriptor, so a transport that holds a WRITE's data in a pipe
// (fusedev) moves it into the file without copying it through the
// server's memory.
type FDWriter interface {
	// WriteFD returns the descriptor to write in.Size bytes at in.Offset
	// to, and done, which the caller must call once it no longer uses fd,
	// from the goroutine that called WriteFD and writes to fd (the
	// filesystem may have set per-thread credentials for the write).
	// fd -1 with OK means this WRITE has no descriptor the data can be
	// spliced to (a synthetic inode, an O_APPEND or O_DIRECT file): serve
	// it with Write. A non-zero errno fails the WRITE.
	WriteFD(r *Request, nodeid uint64, in *WriteIn) (fd int, done func(), errno Errno)
}

// KillprivHandler is implemented by filesystems that clear set-id bits
// themselves (FUSE_HANDLE_KILLPRIV_V2): a WRITE with WriteKillSuidgid, a
// SETATTR with FattrKillSuid and an OPEN or CREATE with OpenKillSuidgid
// must clear SUID, and SGID when group execute is set, as the same
// operation by a caller without CAP_FSETID would on a local filesystem; a
// write and a chown must drop security.capability. Only then is
// InitHandleKillprivV2 offered: a filesystem that relies on the client
// kernel to do it must not implement this.
type KillprivHandler interface {
	HandlesKillprivV2() bool
}

// PendingWrite is the data of a WRITE that a transport has not read into
// memory yet (fusedev leaves it in a pipe); see ServePending.
type PendingWrite interface {
	// Len is how many bytes wait: the request's length beyond what the
	// transport handed over in memory.
	Len() int
	// SpliceTo moves size bytes of the data to fd at off and returns how
	// many the file took.
	SpliceTo(fd int, off int64, size int) (int, error)
	// Read reads size bytes of the data into memory.
	Read(size int) ([][]byte, error)
}

// ReadSplicer is what a transport hands ServeSplice to send READ replies
// whose data it moves from a descriptor itself.
type ReadSplicer interface {
	// SpliceRead sends the complete reply to READ unique: the header, whose
	// length it sets to OutHeaderSize plus the data, then up to size bytes
	// read from fd at off (fewer at the end of the file, none past it).
	// It returns how many data bytes the reply carried. An error means
	// nothing was sent: the server then serves the READ by copying.
	SpliceRead(unique uint64, fd int, off int64, size int) (int, error)
}
