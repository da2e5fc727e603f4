package overlay

import (
	"syscall"

	"github.com/krunbench/krunbench/virtiofs/fuse"
)

// The synthetic files are read-only regular files. These methods give the
// answers libkrun v1.19 gives for them and pass everything else through.

func (f *FS) refuse(r *fuse.Request, nodeid uint64, errno fuse.Errno) (fuse.Errno, bool) {
	if !synthetic(nodeid) {
		return 0, false
	}
	r.Synthetic = true
	return errno, true
}

// SetAttr: synthetic files are immutable (EPERM).
func (f *FS) SetAttr(r *fuse.Request, nodeid uint64, in *fuse.SetAttrIn, out *fuse.AttrOut) fuse.Errno {
	if e, ok := f.refuse(r, nodeid, syscall.EPERM); ok {
		return e
	}
	return f.FileSystem.SetAttr(r, nodeid, in, out)
}

// Write: EPERM on synthetic files.
func (f *FS) Write(r *fuse.Request, nodeid uint64, in *fuse.WriteIn, data [][]byte) (uint32, fuse.Errno) {
	if e, ok := f.refuse(r, nodeid, syscall.EPERM); ok {
		return 0, e
	}
	return f.FileSystem.Write(r, nodeid, in, data)
}

// Fallocate: EPERM on synthetic files.
func (f *FS) Fallocate(r *fuse.Request, nodeid uint64, in *fuse.FallocateIn) fuse.Errno {
	if e, ok := f.refuse(r, nodeid, syscall.EPERM); ok {
		return e
	}
	return f.FileSystem.Fallocate(r, nodeid, in)
}

// Link: a synthetic file cannot get a second name (EPERM).
func (f *FS) Link(r *fuse.Request, nodeid, newParent uint64, newName string, out *fuse.EntryOut) fuse.Errno {
	if e, ok := f.refuse(r, nodeid, syscall.EPERM); ok {
		return e
	}
	if e, ok := f.refuse(r, newParent, syscall.ENOTDIR); ok {
		return e
	}
	return f.FileSystem.Link(r, nodeid, newParent, newName, out)
}

// SetXattr: EPERM on synthetic files.
func (f *FS) SetXattr(r *fuse.Request, nodeid uint64, name string, value []byte, flags uint32) fuse.Errno {
	if e, ok := f.refuse(r, nodeid, syscall.EPERM); ok {
		return e
	}
	return f.FileSystem.SetXattr(r, nodeid, name, value, flags)
}

// RemoveXattr: EPERM on synthetic files.
func (f *FS) RemoveXattr(r *fuse.Request, nodeid uint64, name string) fuse.Errno {
	if e, ok := f.refuse(r, nodeid, syscall.EPERM); ok {
		return e
	}
	return f.FileSystem.RemoveXattr(r, nodeid, name)
}

// GetXattr: synthetic files have no attributes (ENODATA).
func (f *FS) GetXattr(r *fuse.Request, nodeid uint64, name string, dst []byte) (int, fuse.Errno) {
	if e, ok := f.refuse(r, nodeid, syscall.ENODATA); ok {
		return 0, e
	}
	return f.FileSystem.GetXattr(r, nodeid, name, dst)
}

// ListXattr: an empty list for synthetic files.
func (f *FS) ListXattr(r *fuse.Request, nodeid uint64, dst []byte) (int, fuse.Errno) {
	if _, ok := f.refuse(r, nodeid, 0); ok {
		return 0, 0
	}
	return f.FileSystem.ListXattr(r, nodeid, dst)
}

// Readlink: not a symlink (EINVAL).
func (f *FS) Readlink(r *fuse.Request, nodeid uint64) ([]byte, fuse.Errno) {
	if e, ok := f.refuse(r, nodeid, syscall.EINVAL); ok {
		return nil, e
	}
	return f.FileSystem.Readlink(r, nodeid)
}

// CopyFileRange: EXDEV, so the guest falls back to read and write.
func (f *FS) CopyFileRange(r *fuse.Request, nodeid uint64, in *fuse.CopyFileRangeIn) (uint32, fuse.Errno) {
	if e, ok := f.refuse(r, nodeid, syscall.EXDEV); ok {
		return 0, e
	}
	if e, ok := f.refuse(r, in.NodeidOut, syscall.EXDEV); ok {
		return 0, e
	}
	return f.FileSystem.CopyFileRange(r, nodeid, in)
}

// Access: read and execute are allowed, write is not.
func (f *FS) Access(r *fuse.Request, nodeid uint64, mask uint32) fuse.Errno {
	if !synthetic(nodeid) {
		return f.FileSystem.Access(r, nodeid, mask)
	}
	r.Synthetic = true
	if mask&2 != 0 { // W_OK
		return syscall.EACCES
	}
	return 0
}

// Flush, Fsync and Release succeed on synthetic files.
func (f *FS) Flush(r *fuse.Request, nodeid uint64, in *fuse.FlushIn) fuse.Errno {
	if _, ok := f.refuse(r, nodeid, 0); ok {
		return 0
	}
	return f.FileSystem.Flush(r, nodeid, in)
}

// Fsync succeeds on synthetic files.
func (f *FS) Fsync(r *fuse.Request, nodeid uint64, in *fuse.FsyncIn) fuse.Errno {
	if _, ok := f.refuse(r, nodeid, 0); ok {
		return 0
	}
	return f.FileSystem.Fsync(r, nodeid, in)
}

// Release succeeds on synthetic files (their handle is 0).
func (f *FS) Release(r *fuse.Request, nodeid uint64, in *fuse.ReleaseIn) fuse.Errno {
	if _, ok := f.refuse(r, nodeid, 0); ok {
		return 0
	}
	return f.FileSystem.Release(r, nodeid, in)
}

// Lseek answers SEEK_DATA/SEEK_HOLE on the in-memory bytes.
func (f *FS) Lseek(r *fuse.Request, nodeid uint64, in *fuse.LseekIn, out *fuse.LseekOut) fuse.Errno {
	if !synthetic(nodeid) {
		return f.FileSystem.Lseek(r, nodeid, in, out)
	}
	r.Synthetic = true
	data, _, _ := f.content(nodeid)
	size := uint64(len(data))
	switch {
	case in.Offset >= size:
		return syscall.ENXIO
	case in.Whence == 3: // SEEK_DATA
		out.Offset = in.Offset
	case in.Whence == 4: // SEEK_HOLE
		out.Offset = size
	default:
		return syscall.EINVAL
	}
	return 0
}

// StatFs on a synthetic file reports the shared filesystem.
func (f *FS) StatFs(r *fuse.Request, nodeid uint64, out *fuse.StatfsOut) fuse.Errno {
	if synthetic(nodeid) {
		nodeid = fuse.RootID
	}
	return f.FileSystem.StatFs(r, nodeid, out)
}

// Directory operations with a synthetic parent: not a directory.

// Mkdir refuses a synthetic parent.
func (f *FS) Mkdir(r *fuse.Request, parent uint64, name string, in *fuse.MkdirIn, out *fuse.EntryOut) fuse.Errno {
	if e, ok := f.refuse(r, parent, syscall.ENOTDIR); ok {
		return e
	}
	return f.FileSystem.Mkdir(r, parent, name, in, out)
}

// Mknod refuses a synthetic parent.
func (f *FS) Mknod(r *fuse.Request, parent uint64, name string, in *fuse.MknodIn, out *fuse.EntryOut) fuse.Errno {
	if e, ok := f.refuse(r, parent, syscall.ENOTDIR); ok {
		return e
	}
	return f.FileSystem.Mknod(r, parent, name, in, out)
}

// Symlink refuses a synthetic parent.
func (f *FS) Symlink(r *fuse.Request, parent uint64, name, target string, out *fuse.EntryOut) fuse.Errno {
	if e, ok := f.refuse(r, parent, syscall.ENOTDIR); ok {
		return e
	}
	return f.FileSystem.Symlink(r, parent, name, target, out)
}

// Create refuses a synthetic parent.
func (f *FS) Create(r *fuse.Request, parent uint64, name string, in *fuse.CreateIn, entry *fuse.EntryOut, out *fuse.OpenOut) fuse.Errno {
	if e, ok := f.refuse(r, parent, syscall.ENOTDIR); ok {
		return e
	}
	return f.FileSystem.Create(r, parent, name, in, entry, out)
}

// Unlink refuses a synthetic parent.
func (f *FS) Unlink(r *fuse.Request, parent uint64, name string) fuse.Errno {
	if e, ok := f.refuse(r, parent, syscall.ENOTDIR); ok {
		return e
	}
	return f.FileSystem.Unlink(r, parent, name)
}

// Rmdir refuses a synthetic parent.
func (f *FS) Rmdir(r *fuse.Request, parent uint64, name string) fuse.Errno {
	if e, ok := f.refuse(r, parent, syscall.ENOTDIR); ok {
		return e
	}
	return f.FileSystem.Rmdir(r, parent, name)
}

// Rename refuses synthetic parents.
func (f *FS) Rename(r *fuse.Request, parent uint64, name string, newParent uint64, newName string, flags uint32) fuse.Errno {
	if e, ok := f.refuse(r, parent, syscall.ENOTDIR); ok {
		return e
	}
	if e, ok := f.refuse(r, newParent, syscall.ENOTDIR); ok {
		return e
	}
	return f.FileSystem.Rename(r, parent, name, newParent, newName, flags)
}

// PathOf names synthetic inodes and asks the inner filesystem for others.
func (f *FS) PathOf(nodeid uint64) string {
	switch nodeid {
	case InitNodeid:
		return "/" + InitName
	case ConfigNodeid:
		return "/" + ConfigName
	}
	if pr, ok := f.FileSystem.(fuse.PathResolver); ok {
		return pr.PathOf(nodeid)
	}
	return ""
}

// Inodes lists the live synthetic inodes and the inner filesystem's table.
func (f *FS) Inodes() []fuse.InodeInfo {
	var rows []fuse.InodeInfo
	f.mu.Lock()
	if f.initRefs > 0 {
		rows = append(rows, fuse.InodeInfo{Nodeid: InitNodeid, Path: "/" + InitName, Nlookup: f.initRefs, Synthetic: true})
	}
	if f.cfgRefs > 0 {
		rows = append(rows, fuse.InodeInfo{Nodeid: ConfigNodeid, Path: "/" + ConfigName, Nlookup: f.cfgRefs, Synthetic: true})
	}
	f.mu.Unlock()
	if il, ok := f.FileSystem.(fuse.InodeLister); ok {
		rows = append(rows, il.Inodes()...)
	}
	return rows
}
