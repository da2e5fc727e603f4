package passthrough

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/krunbench/krunbench/virtiofs/fuse"
)

func TestNewErrors(t *testing.T) {
	dir := t.TempDir()
	_, err := New(filepath.Join(dir, "missing"), Options{})
	if !errors.Is(err, ErrRoot) || !errors.Is(err, unix.ENOENT) {
		t.Fatalf("missing root: %v", err)
	}
	f := filepath.Join(dir, "file")
	writeFile(t, f, "x")
	if _, err := New(f, Options{}); !errors.Is(err, ErrNotDirectory) {
		t.Fatalf("file root: %v", err)
	}
}

func TestCreateWriteReadGetattr(t *testing.T) {
	fs, dir := newTestFS(t, Options{})
	var entry fuse.EntryOut
	must(t, fs.Mkdir(rootReq, fuse.RootID, "d", &fuse.MkdirIn{Mode: 0o750}, &entry), "mkdir")
	if entry.Nodeid < firstNodeid || entry.Attr.Mode != unix.S_IFDIR|0o750 {
		t.Fatalf("mkdir entry: nodeid %d mode %o", entry.Nodeid, entry.Attr.Mode)
	}
	if entry.EntryValid != 1 || entry.AttrValid != 1 {
		t.Fatalf("timeouts %d %d", entry.EntryValid, entry.AttrValid)
	}
	d := entry.Nodeid
	var fe fuse.EntryOut
	var oo fuse.OpenOut
	must(t, fs.Create(rootReq, d, "f", &fuse.CreateIn{Flags: unix.O_RDWR | unix.O_CREAT, Mode: 0o666, Umask: 0o002}, &fe, &oo), "create")
	if fe.Attr.Mode != unix.S_IFREG|0o664 {
		t.Fatalf("create mode %o", fe.Attr.Mode)
	}
	n, e := fs.Write(rootReq, fe.Nodeid, &fuse.WriteIn{Fh: oo.Fh, Offset: 0, Size: 11}, [][]byte{[]byte("hello "), []byte("worldXXX")})
	must(t, e, "write")
	if n != 11 {
		t.Fatalf("wrote %d", n)
	}
	b1, b2 := make([]byte, 3), make([]byte, 20)
	got, e := fs.Read(rootReq, fe.Nodeid, &fuse.ReadIn{Fh: oo.Fh, Offset: 2, Size: 23}, [][]byte{b1, b2})
	must(t, e, "read")
	if s := string(b1) + string(b2[:got-3]); got != 9 || s != "llo world" {
		t.Fatalf("read %d %q", got, s)
	}
	must(t, fs.Flush(rootReq, fe.Nodeid, &fuse.FlushIn{Fh: oo.Fh}), "flush")
	must(t, fs.Fsync(rootReq, fe.Nodeid, &fuse.FsyncIn{Fh: oo.Fh, FsyncFlags: 1}), "fdatasync")
	must(t, fs.Release(rootReq, fe.Nodeid, &fuse.ReleaseIn{Fh: oo.Fh}), "release")
	wantErr(t, fs.Release(rootReq, fe.Nodeid, &fuse.ReleaseIn{Fh: oo.Fh}), unix.EBADF, "double release")
	if _, e := fs.Read(rootReq, fe.Nodeid, &fuse.ReadIn{Fh: oo.Fh, Size: 1}, [][]byte{b1}); e != unix.EBADF {
		t.Fatalf("read after release: %v", e)
	}
	if b, _ := os.ReadFile(filepath.Join(dir, "d", "f")); string(b) != "hello world" {
		t.Fatalf("host content %q", b)
	}

	var ao fuse.AttrOut
	must(t, fs.GetAttr(rootReq, fe.Nodeid, &fuse.GetAttrIn{}, &ao), "getattr")
	var st unix.Stat_t
	unix.Stat(filepath.Join(dir, "d", "f"), &st)
	if ao.Attr.Ino != st.Ino || ao.Attr.Size != 11 || ao.Attr.Blksize != uint32(st.Blksize) {
		t.Fatalf("getattr %+v", ao.Attr)
	}
	if again := lookup(t, fs, d, "f"); again.Nodeid != fe.Nodeid {
		t.Fatalf("lookup gave %d, create gave %d", again.Nodeid, fe.Nodeid)
	}
	if p := fs.PathOf(fe.Nodeid); p != "/d/f" {
		t.Fatalf("PathOf %q", p)
	}
	if p := fs.PathOf(fuse.RootID); p != "/" {
		t.Fatalf("PathOf root %q", p)
	}
	wantErr(t, fs.Create(rootReq, d, "f", &fuse.CreateIn{Flags: unix.O_RDWR | unix.O_CREAT | unix.O_EXCL, Mode: 0o644}, &fe, &oo), unix.EEXIST, "create excl")
	var eo fuse.EntryOut
	wantErr(t, fs.Lookup(rootReq, d, "nope", &eo), unix.ENOENT, "lookup missing")
	wantErr(t, fs.GetAttr(rootReq, 999999, &fuse.GetAttrIn{}, &ao), unix.ENOENT, "getattr unknown")
}

func TestUmaskIsClients(t *testing.T) {
	old := unix.Umask(0o077)
	defer unix.Umask(old)
	fs, _ := newTestFS(t, Options{})
	var e fuse.EntryOut
	must(t, fs.Mkdir(rootReq, fuse.RootID, "d", &fuse.MkdirIn{Mode: 0o777, Umask: 0o022}, &e), "mkdir")
	if e.Attr.Mode&0o7777 != 0o755 {
		t.Fatalf("mkdir mode %o", e.Attr.Mode)
	}
	var oo fuse.OpenOut
	must(t, fs.Create(rootReq, fuse.RootID, "f", &fuse.CreateIn{Flags: unix.O_WRONLY, Mode: 0o666, Umask: 0o022}, &e, &oo), "create")
	fs.Release(rootReq, e.Nodeid, &fuse.ReleaseIn{Fh: oo.Fh})
	if e.Attr.Mode&0o7777 != 0o644 {
		t.Fatalf("create mode %o", e.Attr.Mode)
	}
}

func TestReadDir(t *testing.T) {
	fs, dir := newTestFS(t, Options{})
	var want []string
	for i := range 100 {
		name := "file-with-a-long-name-" + string(rune('a'+i%26)) + time.Duration(i).String()
		writeFile(t, filepath.Join(dir, name), "x")
		want = append(want, name)
	}
	os.Mkdir(filepath.Join(dir, "sub"), 0o755)
	want = append(want, ".", "..", "sub")
	slices.Sort(want)

	for _, plus := range []bool{false, true} {
		got := listDir(t, fs, rootReq, fuse.RootID, plus, 512)
		var names []string
		for _, l := range got {
			names = append(names, l.name)
			if l.name == "sub" && l.typ != unix.DT_DIR {
				t.Fatalf("sub type %d", l.typ)
			}
			if plus {
				dot := l.name == "." || l.name == ".."
				if dot != (l.entry.Nodeid == 0) {
					t.Fatalf("%q: nodeid %d", l.name, l.entry.Nodeid)
				}
				if !dot && l.entry.Attr.Ino != l.ino {
					t.Fatalf("%q: attr ino %d vs %d", l.name, l.entry.Attr.Ino, l.ino)
				}
			}
		}
		slices.Sort(names)
		if !slices.Equal(names, want) {
			t.Fatalf("plus=%v listed %d names, want %d: %v", plus, len(names), len(want), names)
		}
	}
	// READDIRPLUS took exactly one lookup per listed entry.
	for _, in := range fs.Inodes() {
		if in.Nodeid != fuse.RootID && in.Nlookup != 1 {
			t.Fatalf("%s has nlookup %d", in.Path, in.Nlookup)
		}
	}
	if n := len(fs.Inodes()); n != 102 {
		t.Fatalf("%d inodes after readdirplus", n)
	}
}

func TestReadDirPlusNoLookupWhenFull(t *testing.T) {
	fs, dir := newTestFS(t, Options{})
	for _, n := range []string{"a", "b", "c", "d"} {
		writeFile(t, filepath.Join(dir, n), "")
	}
	var oo fuse.OpenOut
	must(t, fs.OpenDir(rootReq, fuse.RootID, &fuse.OpenIn{}, &oo), "opendir")
	lookups := func() int {
		n := 0
		for _, in := range fs.Inodes() {
			if in.Nodeid != fuse.RootID {
				n += int(in.Nlookup)
			}
		}
		return n
	}
	var off uint64
	total, named := 0, 0
	for range 10 {
		// Room for exactly one plus entry with a short name.
		list := fuse.NewDirList(nil, fuse.EntryOutSize+32, true)
		must(t, fs.ReadDir(rootReq, fuse.RootID, &fuse.ReadIn{Fh: oo.Fh, Offset: off}, true, list), "readdirplus")
		got := parseList(t, list.Bytes(), true)
		if len(got) == 0 {
			break
		}
		if len(got) != 1 {
			t.Fatalf("%d entries in a one-entry buffer", len(got))
		}
		total++
		if got[0].entry.Nodeid != 0 {
			named++
		}
		off = got[0].off
		if n := lookups(); n != named {
			t.Fatalf("after %d named entries, %d lookups", named, n)
		}
	}
	if total != 6 || named != 4 {
		t.Fatalf("listed %d entries, %d named", total, named)
	}
	fs.ReleaseDir(rootReq, fuse.RootID, &fuse.ReleaseIn{Fh: oo.Fh})
}

func TestRenameLinkSymlinkUnlink(t *testing.T) {
	fs, dir := newTestFS(t, Options{})
	writeFile(t, filepath.Join(dir, "a", "f"), "data")
	a := lookup(t, fs, fuse.RootID, "a")
	f := lookup(t, fs, a.Nodeid, "f")
	var e fuse.EntryOut
	must(t, fs.Mkdir(rootReq, fuse.RootID, "b", &fuse.MkdirIn{Mode: 0o755}, &e), "mkdir b")
	b := e.Nodeid

	must(t, fs.Rename(rootReq, a.Nodeid, "f", b, "g", 0), "rename")
	if p := fs.PathOf(f.Nodeid); p != "/b/g" {
		t.Fatalf("PathOf after rename %q", p)
	}
	if got := readAll(t, fs, rootReq, f.Nodeid, 10); got != "data" {
		t.Fatalf("read after rename %q", got)
	}
	writeFile(t, filepath.Join(dir, "a", "h"), "other")
	wantErr(t, fs.Rename(rootReq, b, "g", a.Nodeid, "h", unix.RENAME_NOREPLACE), unix.EEXIST, "rename noreplace")
	must(t, fs.Rename(rootReq, b, "g", a.Nodeid, "h", unix.RENAME_EXCHANGE), "rename exchange")
	if p := fs.PathOf(f.Nodeid); p != "/a/h" {
		t.Fatalf("PathOf after exchange %q", p)
	}
	wantErr(t, fs.Rename(rootReq, b, "g", a.Nodeid, "h", 1<<10), unix.EINVAL, "rename bad flags")

	must(t, fs.Link(rootReq, f.Nodeid, fuse.RootID, "hard", &e), "link")
	if e.Nodeid != f.Nodeid || e.Attr.Nlink != 2 {
		t.Fatalf("link entry nodeid %d nlink %d", e.Nodeid, e.Attr.Nlink)
	}
	wantErr(t, fs.Link(rootReq, a.Nodeid, fuse.RootID, "dirlink", &e), unix.EPERM, "link dir")

	must(t, fs.Symlink(rootReq, fuse.RootID, "sl", "a/h", &e), "symlink")
	if e.Attr.Mode&unix.S_IFMT != unix.S_IFLNK {
		t.Fatalf("symlink mode %o", e.Attr.Mode)
	}
	target, errno := fs.Readlink(rootReq, e.Nodeid)
	must(t, errno, "readlink")
	if string(target) != "a/h" {
		t.Fatalf("readlink %q", target)
	}
	if _, errno := fs.Readlink(rootReq, f.Nodeid); errno != unix.EINVAL {
		t.Fatalf("readlink of a file: %v", errno)
	}

	var mn fuse.EntryOut
	must(t, fs.Mknod(rootReq, fuse.RootID, "fifo", &fuse.MknodIn{Mode: unix.S_IFIFO | 0o600}, &mn), "mknod fifo")
	var oo fuse.OpenOut
	wantErr(t, fs.Open(rootReq, mn.Nodeid, &fuse.OpenIn{Flags: unix.O_RDONLY}, &oo), unix.ENXIO, "open fifo")

	must(t, fs.Unlink(rootReq, fuse.RootID, "hard"), "unlink")
	wantErr(t, fs.Unlink(rootReq, fuse.RootID, "hard"), unix.ENOENT, "unlink again")
	wantErr(t, fs.Rmdir(rootReq, fuse.RootID, "a"), unix.ENOTEMPTY, "rmdir nonempty")
	must(t, fs.Unlink(rootReq, b, "g"), "unlink exchanged file")
	must(t, fs.Rmdir(rootReq, fuse.RootID, "b"), "rmdir")
	if _, err := os.Stat(filepath.Join(dir, "b")); !os.IsNotExist(err) {
		t.Fatalf("b still there: %v", err)
	}
}

func TestSetAttr(t *testing.T) {
	fs, dir := newTestFS(t, Options{})
	p := filepath.Join(dir, "f")
	writeFile(t, p, "0123456789")
	f := lookup(t, fs, fuse.RootID, "f")
	var ao fuse.AttrOut
	must(t, fs.SetAttr(rootReq, f.Nodeid, &fuse.SetAttrIn{Valid: fuse.FattrMode, Mode: 0o600}, &ao), "chmod")
	must(t, fs.SetAttr(rootReq, f.Nodeid, &fuse.SetAttrIn{Valid: fuse.FattrUID | fuse.FattrGID, Uid: 123, Gid: 456}, &ao), "chown")
	must(t, fs.SetAttr(rootReq, f.Nodeid, &fuse.SetAttrIn{Valid: fuse.FattrSize, Size: 4}, &ao), "truncate")
	mtime := time.Date(2001, 2, 3, 4, 5, 6, 7, time.UTC)
	must(t, fs.SetAttr(rootReq, f.Nodeid, &fuse.SetAttrIn{Valid: fuse.FattrMtime | fuse.FattrAtimeNow,
		Mtime: uint64(mtime.Unix()), Mtimensec: 7}, &ao), "utimens")
	if ao.Attr.Mode != unix.S_IFREG|0o600 || ao.Attr.Uid != 123 || ao.Attr.Gid != 456 || ao.Attr.Size != 4 ||
		ao.Attr.Mtime != uint64(mtime.Unix()) || ao.Attr.Mtimensec != 7 {
		t.Fatalf("attr %+v", ao.Attr)
	}
	if time.Since(time.Unix(int64(ao.Attr.Atime), 0)) > time.Minute {
		t.Fatalf("atime not now: %d", ao.Attr.Atime)
	}
	var oo fuse.OpenOut
	must(t, fs.Open(rootReq, f.Nodeid, &fuse.OpenIn{Flags: unix.O_RDWR}, &oo), "open")
	must(t, fs.SetAttr(rootReq, f.Nodeid, &fuse.SetAttrIn{Valid: fuse.FattrSize | fuse.FattrFh, Fh: oo.Fh, Size: 2}, &ao), "ftruncate")
	fs.Release(rootReq, f.Nodeid, &fuse.ReleaseIn{Fh: oo.Fh})
	if b, _ := os.ReadFile(p); string(b) != "01" {
		t.Fatalf("content %q", b)
	}
	var st unix.Stat_t
	unix.Stat(p, &st)
	if st.Mode&0o7777 != 0o600 || st.Uid != 123 || st.Gid != 456 {
		t.Fatalf("host stat %+v", st)
	}
	// Symlink times and owner change the link itself.
	os.Symlink("/etc/passwd", filepath.Join(dir, "sl"))
	sl := lookup(t, fs, fuse.RootID, "sl")
	must(t, fs.SetAttr(rootReq, sl.Nodeid, &fuse.SetAttrIn{Valid: fuse.FattrUID | fuse.FattrMtime, Uid: 77, Mtime: 1000}, &ao), "symlink setattr")
	var pw unix.Stat_t
	unix.Stat("/etc/passwd", &pw)
	if pw.Uid == 77 || pw.Mtim.Sec == 1000 {
		t.Fatalf("setattr on a symlink reached its target")
	}
	unix.Lstat(filepath.Join(dir, "sl"), &st)
	if st.Uid != 77 || st.Mtim.Sec != 1000 {
		t.Fatalf("symlink not changed: %+v", st)
	}
}

func TestXattr(t *testing.T) {
	fs, dir := newTestFS(t, Options{})
	writeFile(t, filepath.Join(dir, "f"), "")
	f := lookup(t, fs, fuse.RootID, "f")
	if e := fs.SetXattr(rootReq, f.Nodeid, "user.k", []byte("value"), 0); e == unix.ENOTSUP {
		t.Skip("no user xattrs on the test filesystem")
	} else {
		must(t, e, "setxattr")
	}
	n, e := fs.GetXattr(rootReq, f.Nodeid, "user.k", nil)
	must(t, e, "getxattr size")
	buf := make([]byte, n)
	n, e = fs.GetXattr(rootReq, f.Nodeid, "user.k", buf)
	must(t, e, "getxattr")
	if string(buf[:n]) != "value" {
		t.Fatalf("getxattr %q", buf[:n])
	}
	if _, e := fs.GetXattr(rootReq, f.Nodeid, "user.k", make([]byte, 2)); e != unix.ERANGE {
		t.Fatalf("small buffer: %v", e)
	}
	n, e = fs.ListXattr(rootReq, f.Nodeid, nil)
	must(t, e, "listxattr size")
	buf = make([]byte, n)
	n, e = fs.ListXattr(rootReq, f.Nodeid, buf)
	must(t, e, "listxattr")
	if !bytes.Contains(buf[:n], []byte("user.k\x00")) {
		t.Fatalf("listxattr %q", buf[:n])
	}
	must(t, fs.RemoveXattr(rootReq, f.Nodeid, "user.k"), "removexattr")
	if _, e := fs.GetXattr(rootReq, f.Nodeid, "user.k", nil); e != unix.ENODATA {
		t.Fatalf("after remove: %v", e)
	}
	os.Symlink("f", filepath.Join(dir, "sl"))
	sl := lookup(t, fs, fuse.RootID, "sl")
	wantErr(t, fs.SetXattr(rootReq, sl.Nodeid, "user.k", []byte("v"), 0), unix.EPERM, "setxattr symlink")
	if _, e := fs.GetXattr(rootReq, sl.Nodeid, "user.k", nil); e != unix.ENOTSUP {
		t.Fatalf("getxattr symlink: %v", e)
	}
	wantErr(t, fs.SetXattr(userReq(1000, 1000), f.Nodeid, "trusted.x", []byte("v"), 0), unix.EPERM, "trusted as user")

	off, _ := newTestFS(t, Options{DisableXattr: true})
	wantErr(t, off.SetXattr(rootReq, fuse.RootID, "user.k", nil, 0), unix.ENOSYS, "disabled xattr")
}

func TestFallocateLseekCopyFileRange(t *testing.T) {
	fs, _ := newTestFS(t, Options{})
	var e fuse.EntryOut
	var src, dst fuse.OpenOut
	must(t, fs.Create(rootReq, fuse.RootID, "src", &fuse.CreateIn{Flags: unix.O_RDWR, Mode: 0o644}, &e, &src), "create src")
	srcID := e.Nodeid
	must(t, fs.Create(rootReq, fuse.RootID, "dst", &fuse.CreateIn{Flags: unix.O_RDWR, Mode: 0o644}, &e, &dst), "create dst")
	dstID := e.Nodeid

	const mb = 1 << 20
	must(t, fs.Fallocate(rootReq, srcID, &fuse.FallocateIn{Fh: src.Fh, Offset: 0, Length: 4 * mb}), "fallocate")
	var ao fuse.AttrOut
	must(t, fs.GetAttr(rootReq, srcID, &fuse.GetAttrIn{GetattrFlags: fuse.GetattrFh, Fh: src.Fh}, &ao), "getattr fh")
	if ao.Attr.Size != 4*mb {
		t.Fatalf("size after fallocate %d", ao.Attr.Size)
	}
	must(t, fs.Fallocate(rootReq, srcID, &fuse.FallocateIn{Fh: src.Fh, Offset: 0, Length: 4 * mb,
		Mode: unix.FALLOC_FL_PUNCH_HOLE | unix.FALLOC_FL_KEEP_SIZE}), "punch")
	_, errno := fs.Write(rootReq, srcID, &fuse.WriteIn{Fh: src.Fh, Offset: 2 * mb, Size: 5}, [][]byte{[]byte("hello")})
	must(t, errno, "write")
	var lo fuse.LseekOut
	must(t, fs.Lseek(rootReq, srcID, &fuse.LseekIn{Fh: src.Fh, Offset: 0, Whence: unix.SEEK_DATA}, &lo), "seek data")
	if lo.Offset == 0 || lo.Offset > 2*mb {
		t.Fatalf("SEEK_DATA %d", lo.Offset)
	}
	must(t, fs.Lseek(rootReq, srcID, &fuse.LseekIn{Fh: src.Fh, Offset: 2 * mb, Whence: unix.SEEK_HOLE}, &lo), "seek hole")
	if lo.Offset <= 2*mb || lo.Offset > 4*mb {
		t.Fatalf("SEEK_HOLE %d", lo.Offset)
	}
	wantErr(t, fs.Lseek(rootReq, srcID, &fuse.LseekIn{Fh: src.Fh, Whence: 42}, &lo), unix.EINVAL, "bad whence")

	n, errno := fs.CopyFileRange(rootReq, srcID, &fuse.CopyFileRangeIn{FhIn: src.Fh, OffIn: 2 * mb, NodeidOut: dstID, FhOut: dst.Fh, OffOut: 3, Len: 5})
	must(t, errno, "copy_file_range")
	if n != 5 {
		t.Fatalf("copied %d", n)
	}
	buf := make([]byte, 16)
	got, errno := fs.Read(rootReq, dstID, &fuse.ReadIn{Fh: dst.Fh, Size: 16}, [][]byte{buf})
	must(t, errno, "read dst")
	if string(buf[:got]) != "\x00\x00\x00hello" {
		t.Fatalf("dst %q", buf[:got])
	}
	must(t, fs.Release(rootReq, srcID, &fuse.ReleaseIn{Fh: src.Fh}), "release")
	must(t, fs.Release(rootReq, dstID, &fuse.ReleaseIn{Fh: dst.Fh}), "release")
	if n := fs.openHandles(); n != 0 {
		t.Fatalf("%d handles left", n)
	}
}

func TestMiscOps(t *testing.T) {
	fs, _ := newTestFS(t, Options{})
	var so fuse.StatfsOut
	must(t, fs.StatFs(rootReq, fuse.RootID, &so), "statfs")
	if so.Bsize == 0 || so.Blocks == 0 || so.Namelen == 0 {
		t.Fatalf("statfs %+v", so)
	}
	must(t, fs.SyncFs(rootReq, fuse.RootID), "syncfs")
	if _, _, e := fs.Ioctl(rootReq, fuse.RootID, &fuse.IoctlIn{Cmd: fuse.ExitCodeIoctl}, nil, nil); e != unix.ENOTTY {
		t.Fatalf("ioctl: %v", e)
	}
	must(t, fs.Access(rootReq, fuse.RootID, unix.W_OK|unix.X_OK), "access")
	var oo fuse.OpenOut
	must(t, fs.OpenDir(rootReq, fuse.RootID, &fuse.OpenIn{}, &oo), "opendir")
	must(t, fs.FsyncDir(rootReq, fuse.RootID, &fuse.FsyncIn{Fh: oo.Fh}), "fsyncdir")
	wantErr(t, fs.Release(rootReq, fuse.RootID, &fuse.ReleaseIn{Fh: oo.Fh}), unix.EBADF, "release of a dir handle")
	must(t, fs.ReleaseDir(rootReq, fuse.RootID, &fuse.ReleaseIn{Fh: oo.Fh}), "releasedir")
	fs.Init(fuse.InitWritebackCache)
	if f := fs.openFlags(unix.O_WRONLY | unix.O_APPEND); f != unix.O_RDWR {
		t.Fatalf("writeback open flags %#x", f)
	}
}
