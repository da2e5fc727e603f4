package passthrough

import (
	"os"
	"path/filepath"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/krunbench/krunbench/virtiofs/fuse"
)

// TestCallerCredentials checks the credential model of creds.go against
// the host kernel directly (no client kernel in front: fusedev's
// TestSupplementaryGroupsAsTheKernelAllows and TestSetattrAsTheKernelAllows
// show the client's refusals). Uid 1000 works in root's 0755 directory,
// where the host would refuse it everything: what the client kernel has
// checked runs with the server's permissions, what uid 1000 creates is
// owned by it (or by a setgid directory's group), and what the client
// kernel does not check is checked as uid 1000.
func TestCallerCredentials(t *testing.T) {
	fs, dir := newTestFS(t, Options{})
	must(t, errno(os.Chmod(dir, 0o755)), "chmod share")
	writeFile(t, filepath.Join(dir, "rootfile"), "secret")
	os.Chmod(filepath.Join(dir, "rootfile"), 0o644)
	writeFile(t, filepath.Join(dir, "private"), "secret")
	os.Chmod(filepath.Join(dir, "private"), 0o600)
	must(t, errno(os.Mkdir(filepath.Join(dir, "sgid"), 0o755)), "mkdir sgid")
	must(t, errno(os.Chown(filepath.Join(dir, "sgid"), 0, 3000)), "chown sgid")
	must(t, errno(unix.Chmod(filepath.Join(dir, "sgid"), 0o2755)), "chmod sgid")
	user := userReq(1000, 1000)
	hostStat := func(name string) unix.Stat_t {
		t.Helper()
		var st unix.Stat_t
		must(t, errno(unix.Lstat(filepath.Join(dir, name), &st)), "stat "+name)
		return st
	}
	owned := func(name string, uid, gid, mode uint32) {
		t.Helper()
		if st := hostStat(name); st.Uid != uid || st.Gid != gid || st.Mode != mode {
			t.Errorf("%s on the host: %d:%d mode %o, want %d:%d mode %o", name, st.Uid, st.Gid, st.Mode, uid, gid, mode)
		}
	}

	// Creating: owned by the caller, with the server's permissions.
	var e fuse.EntryOut
	var oo fuse.OpenOut
	must(t, fs.Create(user, fuse.RootID, "mine", &fuse.CreateIn{Flags: unix.O_RDWR, Mode: 0o644}, &e, &oo), "create as 1000")
	fs.Release(user, e.Nodeid, &fuse.ReleaseIn{Fh: oo.Fh})
	if e.Attr.Uid != 1000 {
		t.Errorf("create replied owner %d", e.Attr.Uid)
	}
	owned("mine", 1000, 1000, unix.S_IFREG|0o644)
	must(t, fs.Mkdir(user, fuse.RootID, "mydir", &fuse.MkdirIn{Mode: 0o755}, &e), "mkdir as 1000")
	owned("mydir", 1000, 1000, unix.S_IFDIR|0o755)
	must(t, fs.Symlink(user, fuse.RootID, "mylink", "mine", &e), "symlink as 1000")
	owned("mylink", 1000, 1000, unix.S_IFLNK|0o777)
	must(t, fs.Mknod(user, fuse.RootID, "myfifo", &fuse.MknodIn{Mode: unix.S_IFIFO | 0o640}, &e), "mkfifo as 1000")
	owned("myfifo", 1000, 1000, unix.S_IFIFO|0o640)
	wantErr(t, fs.Mknod(user, fuse.RootID, "mem", &fuse.MknodIn{Mode: unix.S_IFCHR | 0o666, Rdev: 1<<8 | 1}, &e), unix.EPERM, "mknod device as 1000")
	// Under a setgid directory: its group, SGID on directories, and the
	// SGID bit the client sent kept (the client decides it).
	sg := lookup(t, fs, fuse.RootID, "sgid")
	must(t, fs.Mkdir(user, sg.Nodeid, "d", &fuse.MkdirIn{Mode: 0o750}, &e), "mkdir in setgid dir")
	owned("sgid/d", 1000, 3000, unix.S_IFDIR|0o2750)
	must(t, fs.Create(user, sg.Nodeid, "f", &fuse.CreateIn{Flags: unix.O_WRONLY, Mode: 0o2750}, &e, &oo), "create in setgid dir")
	fs.Release(user, e.Nodeid, &fuse.ReleaseIn{Fh: oo.Fh})
	owned("sgid/f", 1000, 3000, unix.S_IFREG|0o2750)

	// Checked by the client: served with the server's permissions.
	rf := lookup(t, fs, fuse.RootID, "rootfile")
	must(t, fs.Open(user, rf.Nodeid, &fuse.OpenIn{Flags: unix.O_WRONLY}, &oo), "open root's 0644 O_WRONLY as 1000")
	fs.Release(user, rf.Nodeid, &fuse.ReleaseIn{Fh: oo.Fh})
	if got := readAll(t, fs, user, lookup(t, fs, fuse.RootID, "private").Nodeid, 100); got != "secret" {
		t.Errorf("read of root's 0600 as 1000: %q", got)
	}
	must(t, fs.Link(user, rf.Nodeid, fuse.RootID, "hard", &e), "link as 1000")
	owned("hard", 0, 0, unix.S_IFREG|0o644)
	must(t, fs.Rename(user, fuse.RootID, "hard", fuse.RootID, "hard2", 0), "rename as 1000")
	must(t, fs.Unlink(user, fuse.RootID, "hard2"), "unlink as 1000")
	// The SETATTR by which the kernel clears SUID after uid 1000 wrote
	// root's 04777 file is served.
	writeFile(t, filepath.Join(dir, "suid"), "x")
	unix.Chmod(filepath.Join(dir, "suid"), 0o4777)
	var ao fuse.AttrOut
	must(t, fs.SetAttr(user, lookup(t, fs, fuse.RootID, "suid").Nodeid, &fuse.SetAttrIn{Valid: fuse.FattrMode, Mode: 0o777}, &ao), "clear SUID as 1000")
	if ao.Attr.Mode&0o7777 != 0o777 || ao.Attr.Uid != 0 {
		t.Errorf("after clearing SUID: mode %o owner %d", ao.Attr.Mode, ao.Attr.Uid)
	}
	// O_TRUNC (FUSE_ATOMIC_O_TRUNC: the server truncates) by uid 1000
	// clears SUID and SGID as a local truncation would; root's keeps them.
	for _, c := range []struct {
		who  *fuse.Request
		want uint32
	}{{user, 0o777}, {rootReq, 0o6777}} {
		writeFile(t, filepath.Join(dir, "trunc"), "x")
		unix.Chmod(filepath.Join(dir, "trunc"), 0o6777)
		tr := lookup(t, fs, fuse.RootID, "trunc")
		must(t, fs.Open(c.who, tr.Nodeid, &fuse.OpenIn{Flags: unix.O_WRONLY | unix.O_TRUNC}, &oo), "open O_TRUNC")
		fs.Release(c.who, tr.Nodeid, &fuse.ReleaseIn{Fh: oo.Fh})
		if st := hostStat("trunc"); st.Mode&0o7777 != c.want || st.Size != 0 {
			t.Errorf("O_TRUNC by uid %d: mode %o size %d, want mode %o size 0", c.who.Caller.Uid, st.Mode&0o7777, st.Size, c.want)
		}
	}

	// Not checked by the client: checked as uid 1000 (without groups).
	wantErr(t, fs.Create(user, fuse.RootID, "private", &fuse.CreateIn{Flags: unix.O_RDWR, Mode: 0o644}, &e, &oo), unix.EACCES,
		"CREATE without O_EXCL meeting root's 0600 file")
	wantErr(t, fs.Access(user, rf.Nodeid, unix.W_OK), unix.EACCES, "access W_OK as 1000")
	must(t, fs.Access(user, rf.Nodeid, unix.R_OK), "access R_OK as 1000")
	must(t, fs.Access(rootReq, rf.Nodeid, unix.W_OK), "access W_OK as root")

	// The thread's credentials are restored: fsuid, fsgid and the
	// capabilities; root still writes anything.
	pv := lookup(t, fs, fuse.RootID, "private")
	for range 20 {
		must(t, fs.Open(rootReq, pv.Nodeid, &fuse.OpenIn{Flags: unix.O_RDWR}, &oo), "open private as root")
		fs.Release(rootReq, pv.Nodeid, &fuse.ReleaseIn{Fh: oo.Fh})
	}
	if uid, _ := unix.SetfsuidRetUid(-1); uid != 0 {
		t.Errorf("fsuid left at %d", uid)
	}
	if gid, _ := unix.SetfsgidRetGid(-1); gid != 0 {
		t.Errorf("fsgid left at %d", gid)
	}
	var caps [2]unix.CapUserData
	must(t, errno(unix.Capget(capHeader(), &caps[0])), "capget")
	if caps != fs.creds.caps {
		t.Errorf("capabilities left at %+v, want %+v", caps, fs.creds.caps)
	}
}
