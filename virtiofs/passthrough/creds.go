package passthrough

import (
	"log/slog"
	"os"
	"runtime"
	"unsafe"

	"golang.org/x/sys/unix"

	"github.com/krunbench/krunbench/virtiofs/fuse"
)

// Requests run with the caller's credentials, as virtiofsd does: the
// serving goroutine locks its OS thread, drops the thread's supplementary
// groups and sets the thread's fsgid and fsuid to the caller's. All three
// are per-thread on Linux when set with raw syscalls (the libc and
// syscall.Set* wrappers apply them to every thread, which must not happen).
// With a non-zero fsuid the kernel clears CAP_DAC_OVERRIDE, CAP_DAC_READ_SEARCH,
// CAP_FOWNER, CAP_FSETID and CAP_CHOWN from the thread's effective set, so
// permission checks behave as on a local filesystem for that user; setting
// fsuid back to 0 restores them. Capabilities outside that set (CAP_MKNOD,
// CAP_SYS_ADMIN for trusted.* xattrs, CAP_SETFCAP) survive the switch, so
// the operations that depend on them refuse non-root callers explicitly.
//
// Anything that needs the process's own privileges, open_by_handle_at above
// all, happens before the switch: operations pin their inodes first.
//
// ACCESS uses faccessat2 with AT_EACCESS under the switched credentials:
// plain faccessat checks the real uid (root), while AT_EACCESS checks the
// current fsuid/fsgid.
//
// When the process is not root it cannot switch; every request then runs
// with the process's credentials.
//
// SETATTR is the exception: it runs with the server's credentials, as in
// virtiofsd, because the caller's credentials as FUSE sends them are
// narrower than the caller's own. The request carries the uid and the
// primary gid, not the supplementary groups, so a file's owner could not
// chown it to a group it holds only as a supplementary group; and the
// SETATTR by which the client kernel clears SUID/SGID after a write by a
// non-owner comes with the writer's credentials, which may not chmod the
// file. The client kernel has already checked the request against the
// caller's full credentials: the Linux virtio-fs driver always mounts
// with default_permissions, and so does fusedev: owner or CAP_FOWNER for
// mode and explicit times, CAP_CHOWN or the owner and one of its groups
// for owner changes, write permission for truncate and "now" times, and
// SGID dropped from a mode whose group the caller is not in. Nothing
// is lost by not checking again: a guest is no permission boundary for
// the share, since it chooses the uid it sends.

// credState is what credential switching needs to restore a thread.
type credState struct {
	enabled bool
	uid     int
	gid     int
	groups  []uint32
	log     *slog.Logger
}

func newCredState(log *slog.Logger) credState {
	c := credState{enabled: os.Geteuid() == 0, uid: os.Geteuid(), gid: os.Getegid(), log: log}
	if !c.enabled {
		log.Warn("passthrough: not running as root; requests run with the process's credentials")
		return c
	}
	if gs, err := unix.Getgroups(); err == nil {
		for _, g := range gs {
			c.groups = append(c.groups, uint32(g))
		}
	}
	return c
}

// become switches the calling goroutine's thread to caller's credentials.
// It returns whether it switched; pass that to unbecome when done (defer).
func (fs *FS) become(caller fuse.Caller) (bool, fuse.Errno) {
	c := &fs.creds
	if !c.enabled || (caller.Uid == 0 && caller.Gid == 0) {
		return false, fuse.OK
	}
	runtime.LockOSThread()
	if _, _, e := unix.RawSyscall(unix.SYS_SETGROUPS, 0, 0, 0); e != 0 {
		fs.unbecome(true)
		return false, e
	}
	unix.Setfsgid(int(caller.Gid))
	unix.Setfsuid(int(caller.Uid))
	// setfsuid/setfsgid report failure only by not changing the value;
	// passing -1 reads it back.
	gotUID, _ := unix.SetfsuidRetUid(-1)
	gotGID, _ := unix.SetfsgidRetGid(-1)
	if gotUID != int(caller.Uid) || gotGID != int(caller.Gid) {
		fs.unbecome(true)
		return false, unix.EPERM
	}
	return true, fuse.OK
}

// unbecome restores the process's credentials on the thread and unlocks it.
// If that fails the thread stays locked to the goroutine, so the runtime
// discards it when the goroutine exits instead of reusing it.
func (fs *FS) unbecome(switched bool) {
	if !switched {
		return
	}
	c := &fs.creds
	unix.Setfsuid(c.uid)
	unix.Setfsgid(c.gid)
	var e unix.Errno
	if len(c.groups) > 0 {
		_, _, e = unix.RawSyscall(unix.SYS_SETGROUPS, uintptr(len(c.groups)), uintptr(unsafe.Pointer(&c.groups[0])), 0)
	} else {
		_, _, e = unix.RawSyscall(unix.SYS_SETGROUPS, 0, 0, 0)
	}
	gotUID, _ := unix.SetfsuidRetUid(-1)
	gotGID, _ := unix.SetfsgidRetGid(-1)
	if e != 0 || gotUID != c.uid || gotGID != c.gid {
		c.log.Error("passthrough: cannot restore thread credentials; retiring the thread",
			"fsuid", gotUID, "fsgid", gotGID, "err", e)
		return
	}
	runtime.UnlockOSThread()
}

// privileged reports whether caller keeps the process's privileges.
func (fs *FS) privileged(caller fuse.Caller) bool {
	return !fs.creds.enabled || caller.Uid == 0
}
