package fuse_test

import (
	"bytes"
	"sync"
	"syscall"

	"github.com/krunbench/krunbench/virtiofs/fuse"
)

// memFS is a tiny in-memory filesystem used to test the codec and the
// dispatcher in isolation (the passthrough is tested against the real
// kernel client elsewhere). Every method it does not model returns ENOSYS.
type memFS struct {
	mu      sync.Mutex
	files   map[string][]byte
	nodes   map[uint64]string
	next    uint64
	forgets uint64
	inits   int
	written [][]byte
}

func newMemFS() *memFS {
	return &memFS{files: map[string][]byte{}, nodes: map[uint64]string{}, next: 10}
}

func (m *memFS) Init(flags uint32) { m.mu.Lock(); m.inits++; m.mu.Unlock() }
func (m *memFS) Destroy()          {}

func (m *memFS) Lookup(r *fuse.Request, parent uint64, name string, out *fuse.EntryOut) fuse.Errno {
	m.mu.Lock()
	defer m.mu.Unlock()
	data, ok := m.files[name]
	if !ok || parent != fuse.RootID {
		return syscall.ENOENT
	}
	m.next++
	m.nodes[m.next] = name
	out.Nodeid = m.next
	out.Attr = fuse.Attr{Ino: m.next, Size: uint64(len(data)), Mode: syscall.S_IFREG | 0o644, Nlink: 1}
	return 0
}

func (m *memFS) Forget(nodeid, nlookup uint64) {
	m.mu.Lock()
	m.forgets += nlookup
	m.mu.Unlock()
}

func (m *memFS) file(nodeid uint64) ([]byte, bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	data, ok := m.files[m.nodes[nodeid]]
	return data, ok
}

func (m *memFS) GetAttr(r *fuse.Request, nodeid uint64, in *fuse.GetAttrIn, out *fuse.AttrOut) fuse.Errno {
	if nodeid == fuse.RootID {
		out.Attr = fuse.Attr{Ino: 1, Mode: syscall.S_IFDIR | 0o755, Nlink: 2}
		return 0
	}
	data, ok := m.file(nodeid)
	if !ok {
		return syscall.ENOENT
	}
	out.Attr = fuse.Attr{Ino: nodeid, Size: uint64(len(data)), Mode: syscall.S_IFREG | 0o644, Nlink: 1}
	return 0
}

func (m *memFS) Read(r *fuse.Request, nodeid uint64, in *fuse.ReadIn, dst [][]byte) (int, fuse.Errno) {
	data, ok := m.file(nodeid)
	if !ok {
		return 0, syscall.ENOENT
	}
	if in.Offset >= uint64(len(data)) {
		return 0, 0
	}
	src := data[in.Offset:]
	n := 0
	for _, d := range dst {
		k := copy(d, src)
		src = src[k:]
		n += k
	}
	return n, 0
}

func (m *memFS) Write(r *fuse.Request, nodeid uint64, in *fuse.WriteIn, data [][]byte) (uint32, fuse.Errno) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.written = append(m.written, bytes.Join(data, nil))
	return in.Size, 0
}

func (m *memFS) ReadDir(r *fuse.Request, nodeid uint64, in *fuse.ReadIn, plus bool, list *fuse.DirList) fuse.Errno {
	for i, name := range []string{".", "..", "a", "b"} {
		if in.Offset > uint64(i) {
			continue
		}
		if !list.Add(uint64(i+1), uint64(i+1), syscall.DT_REG, name) {
			break
		}
	}
	return 0
}

func (m *memFS) GetXattr(r *fuse.Request, nodeid uint64, name string, dst []byte) (int, fuse.Errno) {
	v := []byte("value-of-" + name)
	if dst == nil {
		return len(v), 0
	}
	if len(dst) < len(v) {
		return 0, syscall.ERANGE
	}
	return copy(dst, v), 0
}

func (m *memFS) SetAttr(*fuse.Request, uint64, *fuse.SetAttrIn, *fuse.AttrOut) fuse.Errno {
	return syscall.ENOSYS
}
func (m *memFS) Readlink(*fuse.Request, uint64) ([]byte, fuse.Errno) { return nil, syscall.ENOSYS }
func (m *memFS) Symlink(*fuse.Request, uint64, string, string, *fuse.EntryOut) fuse.Errno {
	return syscall.ENOSYS
}
func (m *memFS) Mknod(*fuse.Request, uint64, string, *fuse.MknodIn, *fuse.EntryOut) fuse.Errno {
	return syscall.ENOSYS
}
func (m *memFS) Mkdir(*fuse.Request, uint64, string, *fuse.MkdirIn, *fuse.EntryOut) fuse.Errno {
	return syscall.ENOSYS
}
func (m *memFS) Unlink(*fuse.Request, uint64, string) fuse.Errno { return syscall.ENOSYS }
func (m *memFS) Rmdir(*fuse.Request, uint64, string) fuse.Errno  { return syscall.ENOSYS }
func (m *memFS) Rename(*fuse.Request, uint64, string, uint64, string, uint32) fuse.Errno {
	return syscall.ENOSYS
}
func (m *memFS) Link(*fuse.Request, uint64, uint64, string, *fuse.EntryOut) fuse.Errno {
	return syscall.ENOSYS
}
func (m *memFS) Open(*fuse.Request, uint64, *fuse.OpenIn, *fuse.OpenOut) fuse.Errno { return 0 }
func (m *memFS) Create(*fuse.Request, uint64, string, *fuse.CreateIn, *fuse.EntryOut, *fuse.OpenOut) fuse.Errno {
	return syscall.ENOSYS
}
func (m *memFS) Flush(*fuse.Request, uint64, *fuse.FlushIn) fuse.Errno     { return 0 }
func (m *memFS) Fsync(*fuse.Request, uint64, *fuse.FsyncIn) fuse.Errno     { return 0 }
func (m *memFS) Release(*fuse.Request, uint64, *fuse.ReleaseIn) fuse.Errno { return 0 }
func (m *memFS) Fallocate(*fuse.Request, uint64, *fuse.FallocateIn) fuse.Errno {
	return syscall.ENOSYS
}
func (m *memFS) Lseek(*fuse.Request, uint64, *fuse.LseekIn, *fuse.LseekOut) fuse.Errno {
	return syscall.ENOSYS
}
func (m *memFS) CopyFileRange(*fuse.Request, uint64, *fuse.CopyFileRangeIn) (uint32, fuse.Errno) {
	return 0, syscall.ENOSYS
}
func (m *memFS) OpenDir(*fuse.Request, uint64, *fuse.OpenIn, *fuse.OpenOut) fuse.Errno { return 0 }
func (m *memFS) ReleaseDir(*fuse.Request, uint64, *fuse.ReleaseIn) fuse.Errno          { return 0 }
func (m *memFS) FsyncDir(*fuse.Request, uint64, *fuse.FsyncIn) fuse.Errno              { return 0 }
func (m *memFS) StatFs(*fuse.Request, uint64, *fuse.StatfsOut) fuse.Errno              { return 0 }
func (m *memFS) Access(*fuse.Request, uint64, uint32) fuse.Errno                       { return 0 }
func (m *memFS) SetXattr(*fuse.Request, uint64, string, []byte, uint32) fuse.Errno {
	return syscall.ENOSYS
}
func (m *memFS) ListXattr(*fuse.Request, uint64, []byte) (int, fuse.Errno) { return 0, 0 }
func (m *memFS) RemoveXattr(*fuse.Request, uint64, string) fuse.Errno      { return syscall.ENOSYS }
func (m *memFS) Ioctl(*fuse.Request, uint64, *fuse.IoctlIn, []byte, []byte) (int32, int, fuse.Errno) {
	return 0, 0, syscall.ENOTTY
}
func (m *memFS) SyncFs(*fuse.Request, uint64) fuse.Errno { return 0 }
