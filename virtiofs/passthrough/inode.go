package passthrough

import (
	"bytes"
	"container/list"
	"sort"
	"strings"
	"sync"

	"golang.org/x/sys/unix"

	"github.com/krunbench/krunbench/virtiofs/fuse"
)

// firstNodeid is the first nodeid handed out after the root; nodeid 2 is
// reserved for the synthetic /init.krun of the overlay above.
const firstNodeid = 3

// maxPathDepth bounds PathOf's walk up stale or cyclic parent records.
const maxPathDepth = 4096

// inodeKey identifies a host inode.
type inodeKey struct{ dev, ino uint64 }

// inode is one entry of the table. Its fields after key are guarded by
// inodeTable.mu.
type inode struct {
	nodeid uint64
	key    inodeKey
	// typ is the S_IFMT part of the mode; it never changes for an inode.
	typ uint32

	nlookup uint64
	// parent and name record where the inode was last seen, for PathOf.
	parent uint64
	name   string

	// fd is the O_PATH descriptor, or -1 while evicted.
	fd int
	// pins counts in-flight operations using fd; a pinned fd is never closed.
	pins int
	// gone is set once the inode left the table; the last unpin closes fd.
	gone bool
	// handle reopens fd after eviction; nil means the filesystem has no
	// file handles, so fd is kept open for the inode's whole life.
	handle  *unix.FileHandle
	mountFD int
	elem    *list.Element
}

// inodeTable maps nodeids and host inodes to inodes and bounds the number
// of O_PATH descriptors it keeps open with an LRU.
type inodeTable struct {
	fs     *FS
	mu     sync.Mutex
	byID   map[uint64]*inode
	byKey  map[inodeKey]*inode
	root   *inode
	nextID uint64
	// lru holds the evictable inodes whose fd is open, most recent first.
	lru    list.List
	maxFDs int
	// mounts maps mount ids to a real (not O_PATH) descriptor on that
	// mount, as open_by_handle_at needs.
	mounts map[int]int
	// warned is set once the lack of file handles has been logged.
	warned bool
	// epoch counts resets. An operation that can add a lookup takes it
	// first (session) and hands it to the registration, which refuses a
	// stale one: a LOOKUP in flight across a DESTROY must not leave an
	// inode (and its descriptor) in the table after the reset.
	epoch uint64
	// beforeRegister, when set (by tests), runs just before a lookup is
	// registered, to put a DESTROY in that window deterministically.
	beforeRegister func()
}

// session is the current epoch, for a registration later in the same
// operation.
func (t *inodeTable) session() uint64 {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.epoch
}

func (t *inodeTable) init(fs *FS, rootFD int, st *unix.Stat_t, maxFDs int) error {
	t.fs = fs
	t.byID = make(map[uint64]*inode)
	t.byKey = make(map[inodeKey]*inode)
	t.mounts = make(map[int]int)
	t.nextID = firstNodeid
	t.maxFDs = maxFDs
	t.lru.Init()
	root := &inode{
		nodeid:  fuse.RootID,
		key:     inodeKey{st.Dev, st.Ino},
		typ:     unix.S_IFDIR,
		nlookup: 1,
		fd:      rootFD,
		mountFD: -1,
	}
	// The root keeps its fd for good, but its mount is registered here so
	// that every inode of the same filesystem can be evicted.
	if _, mnt, err := unix.NameToHandleAt(rootFD, "", unix.AT_EMPTY_PATH); err == nil {
		mfd, err := unix.Openat(fs.procFD, procName(rootFD), unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
		if err != nil {
			return err
		}
		t.mounts[mnt] = mfd
	} else {
		t.warnNoHandle(err)
	}
	t.root = root
	t.byID[root.nodeid] = root
	t.byKey[root.key] = root
	return nil
}

// pin returns the inode and an open O_PATH descriptor for nodeid, reopening
// it by file handle if it was evicted. The caller must unpin it. pin needs
// the process's own credentials (open_by_handle_at needs
// CAP_DAC_READ_SEARCH), so it must run before switching to the caller's.
func (t *inodeTable) pin(nodeid uint64) (*inode, int, fuse.Errno) {
	t.mu.Lock()
	in := t.byID[nodeid]
	if in == nil {
		t.mu.Unlock()
		return nil, -1, unix.ENOENT
	}
	in.pins++
	if in.fd >= 0 {
		if in.elem != nil {
			t.lru.MoveToFront(in.elem)
		}
		fd := in.fd
		t.mu.Unlock()
		return in, fd, fuse.OK
	}
	h, mfd := in.handle, in.mountFD
	t.mu.Unlock()
	if h == nil {
		t.unpin(in)
		return nil, -1, unix.EBADF
	}

	fd, e := openHandle(in, mfd, h)
	if e != 0 {
		t.unpin(in)
		return nil, -1, e
	}
	t.mu.Lock()
	var victims []int
	if in.fd >= 0 {
		victims = append(victims, fd)
	} else {
		in.fd = fd
		if !in.gone {
			in.elem = t.lru.PushFront(in)
		}
	}
	fd = in.fd
	victims = append(victims, t.evictLocked()...)
	t.mu.Unlock()
	closeAll(victims)
	return in, fd, fuse.OK
}

// pin2 pins two inodes, for operations with two parents.
func (t *inodeTable) pin2(a, b uint64) (*inode, int, *inode, int, fuse.Errno) {
	ia, fa, e := t.pin(a)
	if e != 0 {
		return nil, -1, nil, -1, e
	}
	ib, fb, e := t.pin(b)
	if e != 0 {
		t.unpin(ia)
		return nil, -1, nil, -1, e
	}
	return ia, fa, ib, fb, fuse.OK
}

// unpin releases a pin taken by pin.
func (t *inodeTable) unpin(in *inode) {
	t.mu.Lock()
	in.pins--
	var victims []int
	if in.gone && in.pins == 0 && in.fd >= 0 {
		victims = append(victims, in.fd)
		in.fd = -1
	} else {
		victims = t.evictLocked()
	}
	t.mu.Unlock()
	closeAll(victims)
}

// evictLocked detaches the least recently used unpinned descriptors beyond
// maxFDs and returns them for closing outside the lock.
func (t *inodeTable) evictLocked() []int {
	var victims []int
	for e := t.lru.Back(); e != nil && t.lru.Len() > t.maxFDs; {
		prev := e.Prev()
		in := e.Value.(*inode)
		if in.pins == 0 {
			t.lru.Remove(e)
			in.elem = nil
			victims = append(victims, in.fd)
			in.fd = -1
		}
		e = prev
	}
	return victims
}

func closeAll(fds []int) {
	for _, fd := range fds {
		unix.Close(fd)
	}
}

// register records one more lookup of the host inode open at fd (O_PATH,
// ownership passes to the table) found as name in parent, and returns its
// nodeid. An empty name ("." or "..") leaves the path record alone. A cached inode whose file handle no longer matches (the host
// inode number was reused) is replaced by a fresh one.
func (t *inodeTable) register(epoch, parent uint64, name string, fd int, st *unix.Stat_t) (uint64, fuse.Errno) {
	key := inodeKey{st.Dev, st.Ino}
	var h *unix.FileHandle
	mfd := -1
	fh, mnt, err := unix.NameToHandleAt(fd, "", unix.AT_EMPTY_PATH)
	if err == nil {
		mfd = t.mountFD(mnt, fd, st.Mode&unix.S_IFMT)
		if mfd >= 0 {
			h = &fh
		}
	} else {
		t.warnNoHandle(err)
	}

	if t.beforeRegister != nil {
		t.beforeRegister()
	}
	t.mu.Lock()
	if epoch != t.epoch {
		t.mu.Unlock()
		unix.Close(fd)
		return 0, unix.ESTALE
	}
	in := t.byKey[key]
	if in != nil && in != t.root && in.handle != nil && h != nil && !sameHandle(in.handle, h) {
		delete(t.byKey, key)
		in = nil
	}
	var victims []int
	if in != nil {
		in.nlookup++
		if in != t.root && name != "" {
			in.parent, in.name = parent, name
		}
		if in.fd < 0 {
			in.fd = fd
			in.elem = t.lru.PushFront(in)
			victims = t.evictLocked()
		} else {
			victims = append(victims, fd)
		}
		id := in.nodeid
		t.mu.Unlock()
		closeAll(victims)
		return id, fuse.OK
	}
	if name == "" {
		name = ".."
	}
	in = &inode{
		nodeid:  t.nextID,
		key:     key,
		typ:     st.Mode & unix.S_IFMT,
		nlookup: 1,
		parent:  parent,
		name:    name,
		fd:      fd,
		handle:  h,
		mountFD: mfd,
	}
	t.nextID++
	t.byID[in.nodeid] = in
	t.byKey[key] = in
	if h != nil {
		in.elem = t.lru.PushFront(in)
		victims = t.evictLocked()
	}
	t.mu.Unlock()
	closeAll(victims)
	return in.nodeid, fuse.OK
}

func sameHandle(a, b *unix.FileHandle) bool {
	return a.Type() == b.Type() && bytes.Equal(a.Bytes(), b.Bytes())
}

// mountFD returns the descriptor open_by_handle_at needs for mount mnt,
// opening one from fd if the inode is a directory. It returns -1 when no
// such descriptor can be had; the inode then keeps its fd pinned.
func (t *inodeTable) mountFD(mnt, fd int, typ uint32) int {
	t.mu.Lock()
	mfd, ok := t.mounts[mnt]
	t.mu.Unlock()
	if ok {
		return mfd
	}
	if typ != unix.S_IFDIR {
		return -1
	}
	mfd, err := unix.Openat(t.fs.procFD, procName(fd), unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return -1
	}
	t.mu.Lock()
	if old, ok := t.mounts[mnt]; ok {
		t.mu.Unlock()
		unix.Close(mfd)
		return old
	}
	t.mounts[mnt] = mfd
	t.mu.Unlock()
	return mfd
}

func (t *inodeTable) warnNoHandle(err error) {
	t.mu.Lock()
	warned := t.warned
	t.warned = true
	t.mu.Unlock()
	if !warned {
		t.fs.log.Warn("passthrough: no file handles; inodes keep their descriptors open", "err", err)
	}
}

// forget drops n lookups of nodeid, removing it at zero.
func (t *inodeTable) forget(nodeid, n uint64) {
	t.mu.Lock()
	in := t.byID[nodeid]
	if in == nil {
		t.mu.Unlock()
		return
	}
	if n >= in.nlookup {
		in.nlookup = 0
	} else {
		in.nlookup -= n
	}
	var victims []int
	if in.nlookup == 0 && in != t.root {
		victims = t.removeLocked(in)
	}
	t.mu.Unlock()
	closeAll(victims)
}

// removeLocked takes in out of the table and returns its fd for closing
// unless an operation still has it pinned.
func (t *inodeTable) removeLocked(in *inode) []int {
	delete(t.byID, in.nodeid)
	if t.byKey[in.key] == in {
		delete(t.byKey, in.key)
	}
	in.gone = true
	if in.elem != nil {
		t.lru.Remove(in.elem)
		in.elem = nil
	}
	if in.pins == 0 && in.fd >= 0 {
		fd := in.fd
		in.fd = -1
		return []int{fd}
	}
	return nil
}

// rename updates the path record of the inode now at newName in newParent.
func (t *inodeTable) rename(st *unix.Stat_t, newParent uint64, newName string) {
	t.mu.Lock()
	if in := t.byKey[inodeKey{st.Dev, st.Ino}]; in != nil && in != t.root {
		in.parent, in.name = newParent, newName
	}
	t.mu.Unlock()
}

// reset forgets every inode but the root.
func (t *inodeTable) reset() {
	t.mu.Lock()
	var victims []int
	for _, in := range t.byID {
		if in != t.root {
			victims = append(victims, t.removeLocked(in)...)
		}
	}
	t.root.nlookup = 1
	t.epoch++
	t.mu.Unlock()
	closeAll(victims)
}

// close releases the root and mount descriptors.
func (t *inodeTable) close() {
	t.mu.Lock()
	defer t.mu.Unlock()
	for mnt, fd := range t.mounts {
		unix.Close(fd)
		delete(t.mounts, mnt)
	}
	if t.root.fd >= 0 {
		unix.Close(t.root.fd)
		t.root.fd = -1
	}
}

// mountFDs returns the real descriptors held per mount.
func (t *inodeTable) mountFDs() []int {
	t.mu.Lock()
	defer t.mu.Unlock()
	fds := make([]int, 0, len(t.mounts))
	for _, fd := range t.mounts {
		fds = append(fds, fd)
	}
	return fds
}

// openFDs reports how many evictable descriptors are open (for tests).
func (t *inodeTable) openFDs() int {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.lru.Len()
}

// pathLocked names in from the recorded parents, best effort.
func (t *inodeTable) pathLocked(in *inode) string {
	var parts []string
	for i := 0; in != nil && in != t.root; i++ {
		if i == maxPathDepth {
			return ""
		}
		parts = append(parts, in.name)
		in = t.byID[in.parent]
	}
	if in == nil {
		if len(parts) == 0 {
			return ""
		}
		parts = append(parts, "?")
	}
	var b strings.Builder
	for i := len(parts) - 1; i >= 0; i-- {
		b.WriteByte('/')
		b.WriteString(parts[i])
	}
	if b.Len() == 0 {
		return "/"
	}
	return b.String()
}

// PathOf names nodeid relative to the share ("/" for the root), from the
// names it was looked up or renamed by; "" if the nodeid is unknown. For
// hard links it is one of the names.
func (fs *FS) PathOf(nodeid uint64) string {
	t := &fs.inodes
	t.mu.Lock()
	defer t.mu.Unlock()
	in := t.byID[nodeid]
	if in == nil {
		return ""
	}
	return t.pathLocked(in)
}

// Inodes lists the inode table, ordered by nodeid.
func (fs *FS) Inodes() []fuse.InodeInfo {
	t := &fs.inodes
	t.mu.Lock()
	out := make([]fuse.InodeInfo, 0, len(t.byID))
	for _, in := range t.byID {
		out = append(out, fuse.InodeInfo{Nodeid: in.nodeid, Path: t.pathLocked(in), Nlookup: in.nlookup})
	}
	t.mu.Unlock()
	sort.Slice(out, func(i, j int) bool { return out[i].Nodeid < out[j].Nodeid })
	return out
}
