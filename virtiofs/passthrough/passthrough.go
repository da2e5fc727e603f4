// Package passthrough serves a host directory through fuse.FileSystem.
//
// Every host access is made relative to a file descriptor the filesystem
// already holds, one name component at a time and without following
// symlinks, so a client can never reach outside the shared directory.
// Requests run with the server's credentials after the client kernel's
// checks, creating ones as the new inode's owner (see creds.go), and the
// O_PATH descriptors of looked-up inodes live in a bounded cache backed by
// Linux file handles (see inode.go), so a guest that looks up millions of
// files cannot exhaust the host's descriptors.
package passthrough

import (
	"errors"
	"fmt"
	"log/slog"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/krunbench/krunbench/virtiofs/fuse"
)

// Sentinel errors returned (wrapped) by New.
var (
	// ErrNotDirectory means the share root is not a directory.
	ErrNotDirectory = errors.New("not a directory")
	// ErrRoot means the share root could not be opened.
	ErrRoot = errors.New("cannot open share root")
)

// Defaults applied by New for zero Options fields.
const (
	DefaultMaxOpenFDs = 1024
	DefaultMaxHandles = 4096
	DefaultTimeout    = time.Second
)

// MaxResidentDirBuffers bounds the directory handles that keep a getdents
// buffer (32 KiB) between READDIRs: 8 MiB in all. Beyond it a READDIR
// reads into a pooled buffer and rewinds the directory to the last entry
// it handed out.
const MaxResidentDirBuffers = 256

// Options tunes a passthrough filesystem. The zero value is usable.
type Options struct {
	// MaxOpenFDs bounds the O_PATH descriptors cached for looked-up inodes.
	// Zero means min(DefaultMaxOpenFDs, RLIMIT_NOFILE/4). Inodes on
	// filesystems without file handle support keep their descriptor for
	// as long as they are known and are not counted against this bound.
	MaxOpenFDs int
	// MaxHandles bounds the open file and directory handles (OPEN, CREATE,
	// OPENDIR without RELEASE), each a host descriptor; beyond it the
	// client gets ENFILE. Zero means min(DefaultMaxHandles,
	// RLIMIT_NOFILE/4), so a guest cannot take the descriptors the rest of
	// the process (the VMM's eventfds) needs.
	MaxHandles int
	// EntryTimeout and AttrTimeout are the cache lifetimes sent with entry
	// and attribute replies. Zero means DefaultTimeout; negative means 0.
	EntryTimeout time.Duration
	AttrTimeout  time.Duration
	// DisableXattr makes every extended attribute request fail with ENOSYS
	// (the client then stops sending them).
	DisableXattr bool
	// Log receives diagnostics; nil discards them.
	Log *slog.Logger
}

// FS is a passthrough filesystem rooted at a host directory. It implements
// fuse.FileSystem, fuse.PathResolver and fuse.InodeLister.
type FS struct {
	root    string
	log     *slog.Logger
	xattr   bool
	entryTO time.Duration
	attrTO  time.Duration

	// procFD is /proc/self/fd, used to reopen O_PATH descriptors.
	procFD int
	// umask is the process umask, undone after creating files (see fixMode).
	umask uint32
	creds credState
	flags atomic.Uint32

	inodes inodeTable
	// handles maps open file handles to their descriptors.
	hmu     sync.RWMutex
	handles map[uint64]*handle
	nextFh  uint64
	// openFDs counts handle descriptors not yet closed (released handles
	// still in use by a request included); maxHandles bounds it.
	openFDs    atomic.Int64
	maxHandles int64
	// residentDirBufs counts directory handles holding a buffer.
	residentDirBufs atomic.Int64
}

var (
	_ fuse.FileSystem   = (*FS)(nil)
	_ fuse.PathResolver = (*FS)(nil)
	_ fuse.InodeLister  = (*FS)(nil)
	_ fuse.FDReader     = (*FS)(nil)
	_ fuse.FDWriter     = (*FS)(nil)
)

// New opens root and returns a filesystem serving it.
func New(root string, opts Options) (*FS, error) {
	fd, err := unix.Open(root, unix.O_PATH|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("passthrough: %w %q: %w", ErrRoot, root, err)
	}
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		unix.Close(fd)
		return nil, fmt.Errorf("passthrough: %w %q: %w", ErrRoot, root, err)
	}
	if st.Mode&unix.S_IFMT != unix.S_IFDIR {
		unix.Close(fd)
		return nil, fmt.Errorf("passthrough: share root %q: %w", root, ErrNotDirectory)
	}
	procFD, err := unix.Open("/proc/self/fd", unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		unix.Close(fd)
		return nil, fmt.Errorf("passthrough: open /proc/self/fd: %w", err)
	}
	fs := &FS{
		root:    root,
		log:     opts.Log,
		xattr:   !opts.DisableXattr,
		entryTO: timeout(opts.EntryTimeout),
		attrTO:  timeout(opts.AttrTimeout),
		procFD:  procFD,
		umask:   processUmask(),
		handles: make(map[uint64]*handle),
		nextFh:  1,
	}
	fs.maxHandles = int64(opts.MaxHandles)
	if fs.maxHandles <= 0 {
		fs.maxHandles = int64(quarterOfNofile(DefaultMaxHandles))
	}
	if fs.log == nil {
		fs.log = slog.New(slog.DiscardHandler)
	}
	fs.creds = newCredState(fs.log)
	max := opts.MaxOpenFDs
	if max <= 0 {
		max = quarterOfNofile(DefaultMaxOpenFDs)
	}
	if err := fs.inodes.init(fs, fd, &st, max); err != nil {
		unix.Close(fd)
		unix.Close(procFD)
		return nil, fmt.Errorf("passthrough: share root %q: %w", root, err)
	}
	return fs, nil
}

func timeout(d time.Duration) time.Duration {
	switch {
	case d == 0:
		return DefaultTimeout
	case d < 0:
		return 0
	}
	return d
}

// quarterOfNofile is def, or a quarter of RLIMIT_NOFILE when that is less.
func quarterOfNofile(def int) int {
	var rl unix.Rlimit
	if err := unix.Getrlimit(unix.RLIMIT_NOFILE, &rl); err == nil && rl.Cur/4 < uint64(def) && rl.Cur >= 64 {
		return int(rl.Cur / 4)
	}
	return def
}

// processUmask reads the umask without changing it (umask(2) would race
// with other goroutines creating files).
func processUmask() uint32 {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0o022
	}
	for line := range strings.Lines(string(b)) {
		if v, ok := strings.CutPrefix(line, "Umask:"); ok {
			if m, err := strconv.ParseUint(strings.TrimSpace(v), 8, 32); err == nil {
				return uint32(m)
			}
		}
	}
	return 0o022
}

// Root returns the host path being served.
func (fs *FS) Root() string { return fs.root }

// Init records the INIT flags both sides agreed on.
func (fs *FS) Init(flags uint32) { fs.flags.Store(flags) }

// Destroy forgets every inode except the root and closes every handle.
func (fs *FS) Destroy() {
	fs.hmu.Lock()
	hs := fs.handles
	fs.handles = make(map[uint64]*handle)
	fs.hmu.Unlock()
	for _, h := range hs {
		h.put()
	}
	fs.inodes.reset()
}

// Close releases every descriptor, the root's included. The FS must not be
// used afterwards.
func (fs *FS) Close() error {
	fs.Destroy()
	fs.inodes.close()
	return unix.Close(fs.procFD)
}

// errno converts a host error to the errno replied to the client.
func errno(err error) fuse.Errno {
	if err == nil {
		return fuse.OK
	}
	// A bare Errno, what every unix call returns, needs no errors.As,
	// whose target would be a heap allocation per failed request (a
	// LOOKUP's ENOENT before each create).
	if e, ok := err.(syscall.Errno); ok {
		return e
	}
	var e syscall.Errno
	if errors.As(err, &e) {
		return e
	}
	return unix.EIO
}

// checkName validates a name component sent by the client.
func checkName(name string) fuse.Errno {
	switch {
	case name == "":
		return unix.ENOENT
	case name == "." || name == "..":
		return unix.EINVAL
	case strings.ContainsAny(name, "/\x00"):
		return unix.EINVAL
	case len(name) > 255:
		return unix.ENAMETOOLONG
	}
	return fuse.OK
}

func splitDuration(d time.Duration) (uint64, uint32) {
	return uint64(d / time.Second), uint32(d % time.Second)
}

func fillAttr(a *fuse.Attr, st *unix.Stat_t) {
	*a = fuse.Attr{
		Ino:       st.Ino,
		Size:      uint64(st.Size),
		Blocks:    uint64(st.Blocks),
		Atime:     uint64(st.Atim.Sec),
		Mtime:     uint64(st.Mtim.Sec),
		Ctime:     uint64(st.Ctim.Sec),
		Atimensec: uint32(st.Atim.Nsec),
		Mtimensec: uint32(st.Mtim.Nsec),
		Ctimensec: uint32(st.Ctim.Nsec),
		Mode:      st.Mode,
		Nlink:     uint32(st.Nlink),
		Uid:       st.Uid,
		Gid:       st.Gid,
		Rdev:      uint32(st.Rdev),
		Blksize:   uint32(st.Blksize),
	}
}

func (fs *FS) fillEntry(out *fuse.EntryOut, nodeid uint64, st *unix.Stat_t) {
	out.Nodeid = nodeid
	out.Generation = 0
	out.EntryValid, out.EntryValidNsec = splitDuration(fs.entryTO)
	out.AttrValid, out.AttrValidNsec = splitDuration(fs.attrTO)
	fillAttr(&out.Attr, st)
}

func (fs *FS) fillAttrOut(out *fuse.AttrOut, st *unix.Stat_t) {
	out.AttrValid, out.AttrValidNsec = splitDuration(fs.attrTO)
	fillAttr(&out.Attr, st)
}

// statFD stats what an O_PATH (or any) descriptor refers to: fstat, which
// takes O_PATH descriptors since Linux 3.6 and reports what the
// descriptor names (a symlink opened O_PATH|O_NOFOLLOW is the link), as
// fstatat(fd, "", AT_EMPTY_PATH|AT_SYMLINK_NOFOLLOW) did. That form cost
// one heap allocation per call (x/sys copies the empty path to make it
// NUL-terminated) and, before Linux 6.7, a path walk in the kernel: every
// GETATTR paid it.
func statFD(fd int, st *unix.Stat_t) error {
	return unix.Fstat(fd, st)
}

// procName is the name of fd inside /proc/self/fd.
func procName(fd int) string { return strconv.Itoa(fd) }

// procPath is the absolute /proc path of fd, for calls without an *at form.
func procPath(fd int) string { return "/proc/self/fd/" + strconv.Itoa(fd) }
