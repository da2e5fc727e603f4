package passthrough

import (
	"slices"
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
// inodeTable.mu. It is 112 bytes (a size class) with nothing else to
// allocate but its name, when its file handle fits inline (fhandle.go).
// It was 120 bytes (the 128 class), plus a list.Element (48) for the LRU,
// a 40-byte handle buffer (48) and a pointer to it (8): about 257 bytes of
// live heap per inode with the maps, measured by a heap profile after a
// find over 15,000 files through serve --mount.
type inode struct {
	nodeid uint64
	key    inodeKey

	nlookup uint64
	// parent and name record where the inode was last seen, for PathOf.
	parent uint64
	name   string

	// prev and next link the inode into inodeTable.lru while its fd is
	// open and evictable; next is nil while it is not linked.
	prev, next *inode
	// hlong holds a handle longer than inlineHandle (hlen longHandle).
	hlong *[]byte

	// fd is the O_PATH descriptor, or -1 while evicted.
	fd int32
	// pins counts in-flight operations using fd; a pinned fd is never closed.
	pins int32
	// htyp is the file handle's type; see hlen.
	htyp int32
	// typ is the S_IFMT part of the mode; it never changes for an inode.
	typ uint32
	// mnt indexes inodeTable.mountList: the mount descriptor that
	// open_by_handle_at needs; meaningful only with a handle.
	mnt uint16
	// hlen says where the file handle that reopens fd after eviction is:
	// noHandle (the filesystem has none, so fd stays open for the
	// inode's whole life), 1+n for n bytes in hbuf, or longHandle.
	hlen uint8
	// gone is set once the inode left the table; the last unpin closes fd.
	gone bool
	hbuf [inlineHandle]byte
}

// inodeTable maps nodeids and host inodes to inodes and bounds the number
// of O_PATH descriptors it keeps open with an LRU.
//
// Nodeids are slots of the slabs plus a generation (slots.go); keys, an
// open-addressed table of slot numbers keyed by the records' device and
// inode numbers (keys.go), finds an inode again from a stat.
type inodeTable struct {
	fs *FS
	mu sync.Mutex
	// keys finds an inode from its host key (keys.go).
	keys keyTable
	root *inode
	// slabs hold the inode records but the root's; a nodeid's low 32 bits
	// index them (slots.go). nslots is the high-water mark of slots, free
	// the freed ones, live the records in the table.
	slabs  []*[slabSize]inode
	nslots uint64
	free   []uint32
	live   int
	// lru is the sentinel of a ring of the evictable inodes whose fd is
	// open, most recent first; lruLen counts them.
	lru    inode
	lruLen int
	maxFDs int
	// mounts maps mount ids to an index in mountList, which holds a real
	// (not O_PATH) descriptor on that mount, as open_by_handle_at needs.
	mounts    map[int]uint16
	mountList []int
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

// lruPush links in at the front of the LRU.
func (t *inodeTable) lruPush(in *inode) {
	head := &t.lru
	in.prev, in.next = head, head.next
	head.next.prev = in
	head.next = in
	t.lruLen++
}

// lruRemove unlinks in from the LRU.
func (t *inodeTable) lruRemove(in *inode) {
	in.prev.next = in.next
	in.next.prev = in.prev
	in.prev, in.next = nil, nil
	t.lruLen--
}

// linked says whether in is in the LRU.
func (in *inode) linked() bool { return in.next != nil }

// session is the current epoch, for a registration later in the same
// operation.
func (t *inodeTable) session() uint64 {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.epoch
}

func (t *inodeTable) init(fs *FS, rootFD int, st *unix.Stat_t, maxFDs int) error {
	t.fs = fs
	t.mounts = make(map[int]uint16)
	t.slabs = []*[slabSize]inode{new([slabSize]inode)}
	for s := range firstNodeid {
		t.slabs[0][s] = inode{fd: -1, gone: true}
	}
	t.nslots = firstNodeid
	t.maxFDs = maxFDs
	t.lru.prev, t.lru.next = &t.lru, &t.lru
	root := &inode{
		nodeid:  fuse.RootID,
		key:     inodeKey{st.Dev, st.Ino},
		typ:     unix.S_IFDIR,
		nlookup: 1,
		fd:      int32(rootFD),
	}
	// The root keeps its fd for good, but its mount is registered here so
	// that every inode of the same filesystem can be evicted.
	var h fileHandle
	if mnt, err := nameToHandle(rootFD, "", unix.AT_EMPTY_PATH, &h); err == nil {
		mfd, err := unix.Openat(fs.procFD, procName(rootFD), unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
		if err != nil {
			return err
		}
		t.mounts[mnt] = 0
		t.mountList = append(t.mountList, mfd)
	} else {
		t.warnNoHandle(err)
	}
	t.root = root
	t.keySetLocked(root)
	return nil
}

// pin returns the inode and an open O_PATH descriptor for nodeid, reopening
// it by file handle if it was evicted. The caller must unpin it. pin needs
// the process's own credentials (open_by_handle_at needs
// CAP_DAC_READ_SEARCH), so it must run before switching to the caller's.
func (t *inodeTable) pin(nodeid uint64) (*inode, int, fuse.Errno) {
	t.mu.Lock()
	in := t.getLocked(nodeid)
	if in == nil {
		t.mu.Unlock()
		return nil, -1, unix.ENOENT
	}
	in.pins++
	if in.fd >= 0 {
		if in.linked() {
			t.lruRemove(in)
			t.lruPush(in)
		}
		fd := int(in.fd)
		t.mu.Unlock()
		return in, fd, fuse.OK
	}
	var h fileHandle
	ok := in.getHandle(&h)
	mfd := -1
	if ok {
		mfd = t.mountList[in.mnt]
	}
	t.mu.Unlock()
	if !ok {
		t.unpin(in)
		return nil, -1, unix.EBADF
	}

	fd, e := openHandle(in, mfd, &h)
	if e != 0 {
		t.unpin(in)
		return nil, -1, e
	}
	t.mu.Lock()
	var victims []int
	if in.fd >= 0 {
		victims = append(victims, fd)
	} else {
		in.fd = int32(fd)
		if !in.gone {
			t.lruPush(in)
		}
	}
	fd = int(in.fd)
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
	if in.gone && in.pins == 0 {
		if in.fd >= 0 {
			victims = append(victims, int(in.fd))
			in.fd = -1
		}
		if in != t.root {
			t.freeLocked(in)
		}
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
	for in := t.lru.prev; in != &t.lru && t.lruLen > t.maxFDs; {
		prev := in.prev
		if in.pins == 0 {
			t.lruRemove(in)
			victims = append(victims, int(in.fd))
			in.fd = -1
		}
		in = prev
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
	var fh fileHandle
	var h *fileHandle
	mi := -1
	mnt, err := nameToHandle(fd, "", unix.AT_EMPTY_PATH, &fh)
	if err == nil {
		mi = t.mountIndex(mnt, fd, st.Mode&unix.S_IFMT)
		if mi >= 0 {
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
	in := t.keyGetLocked(key)
	if in != nil && in != t.root && in.hasHandle() && h != nil && !in.sameHandle(h) {
		t.keyDeleteLocked(in)
		in = nil
	}
	var victims []int
	if in != nil {
		in.nlookup++
		if in != t.root && name != "" {
			in.parent, in.name = parent, name
		}
		if in.fd < 0 {
			in.fd = int32(fd)
			t.lruPush(in)
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
	in = t.allocLocked(inode{
		key:     key,
		typ:     st.Mode & unix.S_IFMT,
		nlookup: 1,
		parent:  parent,
		name:    name,
		fd:      int32(fd),
	})
	if in == nil {
		t.mu.Unlock()
		unix.Close(fd)
		return 0, unix.ENFILE
	}
	if h != nil {
		in.setHandle(h)
		in.mnt = uint16(mi)
	}
	t.keySetLocked(in)
	if h != nil {
		t.lruPush(in)
		victims = t.evictLocked()
	}
	t.mu.Unlock()
	closeAll(victims)
	return in.nodeid, fuse.OK
}

// mountIndex returns the index in mountList of the descriptor
// open_by_handle_at needs for mount mnt, opening one from fd if the inode
// is a directory. It returns -1 when no such descriptor can be had (or
// 65,536 mounts have one); the inode then keeps its fd pinned.
func (t *inodeTable) mountIndex(mnt, fd int, typ uint32) int {
	t.mu.Lock()
	mi, ok := t.mounts[mnt]
	full := len(t.mountList) > 0xffff
	t.mu.Unlock()
	if ok {
		return int(mi)
	}
	if typ != unix.S_IFDIR || full {
		return -1
	}
	mfd, err := unix.Openat(t.fs.procFD, procName(fd), unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return -1
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	if old, ok := t.mounts[mnt]; ok {
		unix.Close(mfd)
		return int(old)
	}
	if len(t.mountList) > 0xffff {
		unix.Close(mfd)
		return -1
	}
	t.mounts[mnt] = uint16(len(t.mountList))
	t.mountList = append(t.mountList, mfd)
	return len(t.mountList) - 1
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
	in := t.getLocked(nodeid)
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
// unless an operation still has it pinned; an unpinned inode's slot is
// freed at once, a pinned one's by its last unpin.
func (t *inodeTable) removeLocked(in *inode) []int {
	t.keyDeleteLocked(in)
	in.gone = true
	if in.linked() {
		t.lruRemove(in)
	}
	if in.pins != 0 {
		return nil
	}
	var fds []int
	if in.fd >= 0 {
		fds = []int{int(in.fd)}
		in.fd = -1
	}
	t.freeLocked(in)
	return fds
}

// rename updates the path record of the inode now at newName in newParent.
func (t *inodeTable) rename(st *unix.Stat_t, newParent uint64, newName string) {
	t.mu.Lock()
	if in := t.keyGetLocked(inodeKey{st.Dev, st.Ino}); in != nil && in != t.root {
		in.parent, in.name = newParent, newName
	}
	t.mu.Unlock()
}

// reset forgets every inode but the root.
func (t *inodeTable) reset() {
	t.mu.Lock()
	var victims []int
	t.liveLocked(func(in *inode) {
		victims = append(victims, t.removeLocked(in)...)
	})
	t.root.nlookup = 1
	t.epoch++
	t.mu.Unlock()
	closeAll(victims)
}

// close releases the root and mount descriptors.
func (t *inodeTable) close() {
	t.mu.Lock()
	defer t.mu.Unlock()
	for _, fd := range t.mountList {
		unix.Close(fd)
	}
	t.mountList = nil
	clear(t.mounts)
	if t.root.fd >= 0 {
		unix.Close(int(t.root.fd))
		t.root.fd = -1
	}
}

// mountFDs returns the real descriptors held per mount.
func (t *inodeTable) mountFDs() []int {
	t.mu.Lock()
	defer t.mu.Unlock()
	return slices.Clone(t.mountList)
}

// openFDs reports how many evictable descriptors are open (for tests).
func (t *inodeTable) openFDs() int {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.lruLen
}

// pathLocked names in from the recorded parents, best effort.
func (t *inodeTable) pathLocked(in *inode) string {
	var parts []string
	for i := 0; in != nil && in != t.root; i++ {
		if i == maxPathDepth {
			return ""
		}
		parts = append(parts, in.name)
		in = t.getLocked(in.parent)
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
	in := t.getLocked(nodeid)
	if in == nil {
		return ""
	}
	return t.pathLocked(in)
}

// Inodes lists the inode table, ordered by nodeid.
func (fs *FS) Inodes() []fuse.InodeInfo {
	t := &fs.inodes
	t.mu.Lock()
	out := make([]fuse.InodeInfo, 0, t.live+1)
	add := func(in *inode) {
		out = append(out, fuse.InodeInfo{Nodeid: in.nodeid, Path: t.pathLocked(in), Nlookup: in.nlookup})
	}
	add(t.root)
	t.liveLocked(add)
	t.mu.Unlock()
	sort.Slice(out, func(i, j int) bool { return out[i].Nodeid < out[j].Nodeid })
	return out
}
