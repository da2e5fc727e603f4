package passthrough

import (
	"unsafe"

	"golang.org/x/sys/unix"

	"github.com/krunbench/krunbench/virtiofs/fuse"
)

// LOOKUP and READDIRPLUS entries take the cheap path here instead of
// opening every name: an fstatat of the name (one component, never
// followed) identifies the host inode. An inode the table
// holds a descriptor for is that same inode (an open descriptor keeps its
// number from being reused), so it only gains a lookup. Otherwise the
// inode's file handle comes from name_to_handle_at on the same name, also
// without following it, and the O_PATH descriptor is opened from the
// handle only when an operation pins the inode (inodeTable.pin), which
// checks that it is still the inode the fstatat saw. Whatever the fast
// path cannot decide (no file handles, a mount not seen yet, "." and "..")
// goes through lookupAt.
//
// The file handle is what the find+stat rows pay for over go-fuse, whose
// loopback keeps only paths: per READDIRPLUS entry we make two host
// calls (fstatat, name_to_handle_at), it makes one (statx). Measured
// (issue 15, default settings, 15,000 files, 4 rounds x 2 runs in one
// lock hold, tap vs go-fuse within rounds): with name_to_handle_at
// replaced by a constant handle (a measuring hack, not correct) the rows
// went from 0.90 and 1.10x (cold; the first run was noisy: 59% spread)
// and 1.18 and 1.12x (warm) to 1.28 and 1.30x (cold) and 1.35 and 1.27x
// (warm). Not done: taking the handle only when an operation first pins
// the inode (opening it by parent and name then and checking dev
// and inode number) would drop that call, but until that pin the nodeid
// would name "whatever now has this name and inode number": a file
// renamed on the host in between would be lost (ENOENT), and a file
// deleted and recreated with a reused inode number would be served in
// the old one's place, to a client whose cached attributes (up to the
// 1 s timeout) are the old file's; the handle's generation refuses it
// (ESTALE). That is the lead's call, not a speed-up to slip in.
//
// Also not done (issue 15), for want of a proof that a known (dev, ino)
// is still the same file without its handle: a cache of handles keyed by
// (dev, ino) kept past FORGET (on the warm-server rows drop_caches makes
// the kernel FORGET every inode, so the table is empty when the next walk
// looks them up) would reuse a handle for whatever file now has that
// number. statx offers no generation number (FS_IOC_GETVERSION needs a
// real open descriptor, a syscall as dear as name_to_handle_at), and
// STATX_BTIME only narrows it: btime comes from the coarse clock, so a
// file deleted and a new one given its inode number within one tick share
// it, and ctime is no better (same clock). Where the table still holds the
// inode's descriptor, again already skips the handle; an inode held by
// handle alone is checked by comparing the new handle (registerHandle).
// What was done instead: READDIRPLUS looks up its entries on two
// goroutines (lookupBatch in ops_dir.go).
//
// Where a request's cost goes (issue 15, items 1 and 3; serve --mount
// --readdirplus auto, tap on, a find -printf %s over 15,000 files and
// 2,000 create+close+unlink, strace -c -f and perf record -g on the
// server): a LOOKUP makes exactly these two host calls (15,028
// newfstatat and 15,027 name_to_handle_at for about 15,030 LOOKUPs), a
// GETATTR one fstat, and a create+close+unlink nine (the negative
// LOOKUP's newfstatat, CREATE's openat, fstat, name_to_handle_at and
// fstatfs (closeFlags), RELEASE's close, UNLINK's unlinkat, and the two
// fstat of the parent's GETATTRs). virtiofsd's lookup makes three
// (openat O_PATH, fstatat of it, close when the inode is known). The
// rest of the server's 5.6 syscalls per request over the find were the
// transport's and the Go runtime's: per request 1.26 nanosleep, 0.39
// futex, 0.23 epoll_pwait, 0.80 read and 0.80 write of /dev/fuse. perf:
// 81% of the server's samples in the kernel (context switches around
// /dev/fuse reads, wake-ups; ext4's inode allocator, recently_deleted,
// was most of CREATE), under 5% in the request path's own Go code
// (decode, tap, inode table, encode). Taking the heap allocations out of
// that path (GETATTR 2 -> 0, LOOKUP 3 -> 1, TestRequestAllocs) moved the
// server's CPU per round by 0.99x (stat) and 0.99x (create), medians of
// 10 alternating old/new rounds, within the noise.
//
// Not done: caching the filesystem type behind closeFlags (one fstatfs
// per CREATE, 1 of those 9 calls) by st_dev or by mount id: both are
// reused after an unmount (anonymous device numbers, which tmpfs and
// FUSE share; ida-allocated mount ids), so a tmpfs unmounted under the
// share and a FUSE filesystem mounted in its place could inherit
// FOPEN_NOFLUSH and lose the close-time errors FLUSH reports. And the
// LOOKUP's last allocation, its name: the FileSystem interface lets an
// implementation keep the name it is given (the inode table and the
// tap's ring do), so a name borrowed from the request buffer would need
// every keeper to copy it, which the tap, on in serve, would do anyway.
//
// The guest path against QEMU's C virtiofsd (issue 15 item 3, session 11:
// guestbench -modes virtiofs-tap|virtiofsd, one workload per boot, -dirs 3
// -creates 1000 -size 32M, each backend exec'd under strace -c -f; TCG,
// default settings, --readdirplus auto, same cache settings): our request
// path makes fewer host syscalls than virtiofsd's in every workload, so
// there is no extra syscall to remove. stat (3,000 files): ours 3,068
// newfstatat + 3,006 name_to_handle_at (2 per LOOKUP), virtiofsd 3,049
// openat + 3,011 statx + 3,057 close (3). create+close+unlink (1,000): ours
// 9 per triple (as on /dev/fuse above), virtiofsd 18 (4 setres[ug]id, 2
// gete[ug]id, 2 statx, 2 newfstatat, 3 openat, 3 close, dup, unlinkat) and
// a FLUSH more. read (32 MiB, 256 READs): one preadv per READ on both. The
// transport's calls are on par or fewer (stat: ppoll 2,344 vs 3,022, read
// 2,343 vs 3,039, write 2,994 vs 3,018). What we make and
// virtiofsd does not is the Go runtime's: per LOOKUP 0.28 futex and 0.17
// nanosleep, per READ 1.09 futex and 1.33 nanosleep (virtiofsd: none):
// goroutine wake-ups around the queue thread's hand-off
// (virtiofs/vhostuser, not this file's). FUSE requests per workload are
// the same as virtiofsd's (stat 14,864 vs 14,868, read 2,057 both) or
// fewer (create 30,008 vs 35,009: FOPEN_NOFLUSH), so our INIT and ENTRY
// replies do not make the guest ask more. The LOOKUP name's NUL-terminated
// copy is already on the stack (statAt, nameToHandle: cName).

// lookupFast resolves name in the directory open at pfd, registers it and
// fills out.
func (fs *FS) lookupFast(epoch, parent uint64, pfd int, name string, out *fuse.EntryOut) fuse.Errno {
	if name == "." || name == ".." {
		return fs.lookupAt(epoch, parent, pfd, name, -1, out)
	}
	var st unix.Stat_t
	if err := statAt(pfd, name, &st); err != nil {
		return errno(err)
	}
	t := &fs.inodes
	if id, ok := t.again(epoch, parent, name, &st); ok {
		fs.fillEntry(out, id, &st)
		return fuse.OK
	}
	var fh fileHandle
	mnt, err := nameToHandle(pfd, name, 0, &fh)
	if err != nil {
		return fs.lookupAt(epoch, parent, pfd, name, -1, out)
	}
	id, ok := t.registerHandle(epoch, parent, name, &st, &fh, mnt)
	if !ok {
		return fs.lookupAt(epoch, parent, pfd, name, -1, out)
	}
	fs.fillEntry(out, id, &st)
	return fuse.OK
}

// statAt is fstatat(dirfd, name, st, AT_SYMLINK_NOFOLLOW) with the name
// made NUL-terminated on the stack: unix.Fstatat copies it to the heap,
// the one allocation a LOOKUP made in the passthrough (BenchmarkRequest).
func statAt(dirfd int, name string, st *unix.Stat_t) error {
	var nb [unix.NAME_MAX + 1]byte
	p, err := cName(&nb, name)
	if err != nil {
		return err
	}
	_, _, e := unix.Syscall6(unix.SYS_NEWFSTATAT, uintptr(dirfd), uintptr(unsafe.Pointer(p)),
		uintptr(unsafe.Pointer(st)), unix.AT_SYMLINK_NOFOLLOW, 0, 0)
	if e != 0 {
		return e
	}
	return nil
}

// enterOpened registers the inode that CREATE just opened for I/O at fd
// (which stays the caller's) as name in parent and fills out, the way
// lookupFast does: by its file handle, taken from fd itself, so the new
// inode costs no O_PATH descriptor until an operation pins it (a
// create+unlink never does: FLUSH and RELEASE use the open handle, UNLINK
// the parent). This saved, per CREATE, the O_PATH reopen through
// /proc/self/fd and its close at FORGET: 2 of the 10 host syscalls a
// create+unlink triple made (strace -f -c, 2,000 triples). Without file
// handles it falls back to that reopen (enter).
func (fs *FS) enterOpened(epoch, parent uint64, name string, fd int, want int64, out *fuse.EntryOut) fuse.Errno {
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		return errno(err)
	}
	if want >= 0 && fs.fixMode(st.Mode, uint32(want)) {
		mode := st.Mode&0o7000 | uint32(want)&0o777
		if unix.Fchmod(fd, mode) == nil {
			st.Mode = st.Mode&unix.S_IFMT | mode
		}
		want = -1
	}
	t := &fs.inodes
	if id, ok := t.again(epoch, parent, name, &st); ok {
		fs.fillEntry(out, id, &st)
		return fuse.OK
	}
	var fh fileHandle
	if mnt, err := nameToHandle(fd, "", unix.AT_EMPTY_PATH, &fh); err == nil {
		if id, ok := t.registerHandle(epoch, parent, name, &st, &fh, mnt); ok {
			fs.fillEntry(out, id, &st)
			return fuse.OK
		}
	}
	pathFD, err := unix.Openat(fs.procFD, procName(fd), unix.O_PATH|unix.O_CLOEXEC, 0)
	if err != nil {
		return errno(err)
	}
	return fs.enter(epoch, parent, name, pathFD, want, out)
}

// again adds a lookup to the known inode st describes if the table holds
// its descriptor, which proves it is the same host inode. It reports false
// when the inode needs its file handle to tell, or epoch is stale (the
// slow path then refuses it).
func (t *inodeTable) again(epoch, parent uint64, name string, st *unix.Stat_t) (uint64, bool) {
	if t.beforeRegister != nil {
		t.beforeRegister()
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	in := t.keyGetLocked(inodeKey{st.Dev, st.Ino})
	if in == nil || in.fd < 0 || epoch != t.epoch {
		return 0, false
	}
	in.nlookup++
	if in != t.root {
		in.parent, in.name = parent, name
	}
	return in.nodeid, true
}

// registerHandle records a lookup of the inode st describes, known by its
// file handle h on mount mnt, without a descriptor: a known inode with the
// same handle gains a lookup, one with another handle (its number was
// reused) is replaced. It reports false when mnt has no descriptor for
// open_by_handle_at yet (lookupAt makes one), or epoch is stale (the
// slow path then refuses it).
func (t *inodeTable) registerHandle(epoch, parent uint64, name string, st *unix.Stat_t, h *fileHandle, mnt int) (uint64, bool) {
	key := inodeKey{st.Dev, st.Ino}
	if t.beforeRegister != nil {
		t.beforeRegister()
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	mi, ok := t.mounts[mnt]
	if !ok || epoch != t.epoch {
		return 0, false
	}
	if in := t.keyGetLocked(key); in != nil {
		if in.fd >= 0 || in.sameHandle(h) {
			in.nlookup++
			if in != t.root {
				in.parent, in.name = parent, name
			}
			return in.nodeid, true
		}
		t.keyDeleteLocked(in)
	}
	in := t.allocLocked(inode{
		key:     key,
		typ:     st.Mode & unix.S_IFMT,
		nlookup: 1,
		parent:  parent,
		name:    name,
		fd:      -1,
		mnt:     mi,
	})
	if in == nil {
		return 0, false
	}
	in.setHandle(h)
	t.keySetLocked(in)
	return in.nodeid, true
}

// openHandle opens in's O_PATH descriptor from its file handle and checks
// that it is the inode the table knows (a handle taken by name can belong
// to a file swapped in under that name after it was stat-ed).
func openHandle(in *inode, mfd int, h *fileHandle) (int, fuse.Errno) {
	fd, err := openByHandle(mfd, h, unix.O_PATH|unix.O_CLOEXEC)
	if err != nil {
		if err == unix.ESTALE {
			return -1, unix.ENOENT
		}
		return -1, errno(err)
	}
	var st unix.Stat_t
	if err := statFD(fd, &st); err != nil || (inodeKey{st.Dev, st.Ino}) != in.key {
		unix.Close(fd)
		return -1, unix.ENOENT
	}
	return fd, fuse.OK
}
