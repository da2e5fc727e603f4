package passthrough

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/krunbench/krunbench/virtiofs/fuse"
)

func TestNameValidation(t *testing.T) {
	fs, dir := newTestFS(t, Options{})
	writeFile(t, filepath.Join(dir, "a", "b"), "x")
	var e fuse.EntryOut
	var oo fuse.OpenOut
	for _, name := range []string{"", ".", "..", "a/b", "x\x00y", "/etc", strings.Repeat("n", 256)} {
		if name != "." && name != ".." {
			if fs.Lookup(rootReq, fuse.RootID, name, &e) == 0 {
				t.Errorf("lookup %q succeeded", name)
			}
		}
		if fs.Mkdir(rootReq, fuse.RootID, name, &fuse.MkdirIn{Mode: 0o755}, &e) == 0 {
			t.Errorf("mkdir %q succeeded", name)
		}
		if fs.Create(rootReq, fuse.RootID, name, &fuse.CreateIn{Flags: unix.O_RDWR, Mode: 0o644}, &e, &oo) == 0 {
			t.Errorf("create %q succeeded", name)
		}
		if fs.Unlink(rootReq, fuse.RootID, name) == 0 || fs.Rmdir(rootReq, fuse.RootID, name) == 0 {
			t.Errorf("remove %q succeeded", name)
		}
		if fs.Symlink(rootReq, fuse.RootID, name, "t", &e) == 0 {
			t.Errorf("symlink %q succeeded", name)
		}
		if fs.Rename(rootReq, fuse.RootID, "a", fuse.RootID, name, 0) == 0 {
			t.Errorf("rename to %q succeeded", name)
		}
	}
	wantErr(t, fs.Lookup(rootReq, fuse.RootID, "a/b", &e), unix.EINVAL, "lookup a/b")
	// "." and ".." at the root are the root.
	for _, name := range []string{".", ".."} {
		if got := lookup(t, fs, fuse.RootID, name); got.Nodeid != fuse.RootID {
			t.Fatalf("lookup %q at root gave %d", name, got.Nodeid)
		}
	}
	a := lookup(t, fs, fuse.RootID, "a")
	if got := lookup(t, fs, a.Nodeid, ".."); got.Nodeid != fuse.RootID {
		t.Fatalf("a/.. gave %d", got.Nodeid)
	}
	if got := lookup(t, fs, a.Nodeid, "."); got.Nodeid != a.Nodeid {
		t.Fatalf("a/. gave %d", got.Nodeid)
	}
	if p := fs.PathOf(a.Nodeid); p != "/a" {
		t.Fatalf("PathOf a after . lookups: %q", p)
	}
	b := lookup(t, fs, a.Nodeid, "b")
	wantErr(t, fs.Lookup(rootReq, b.Nodeid, "x", &e), unix.ENOTDIR, "lookup under a file")
	if _, err := os.Stat(filepath.Join(dir, "a", "b")); err != nil {
		t.Fatal(err)
	}
}

func TestSymlinkEscape(t *testing.T) {
	fs, dir := newTestFS(t, Options{})
	os.Symlink("/etc/passwd", filepath.Join(dir, "passwd"))
	os.Symlink("../../../../../../..", filepath.Join(dir, "up"))
	os.Symlink("/etc", filepath.Join(dir, "etc"))

	for _, name := range []string{"passwd", "up", "etc"} {
		e := lookup(t, fs, fuse.RootID, name)
		if e.Attr.Mode&unix.S_IFMT != unix.S_IFLNK {
			t.Fatalf("%s: lookup returned mode %o, not the symlink", name, e.Attr.Mode)
		}
		var oo fuse.OpenOut
		wantErr(t, fs.Open(rootReq, e.Nodeid, &fuse.OpenIn{Flags: unix.O_RDONLY}, &oo), unix.ELOOP, "open "+name)
		wantErr(t, fs.OpenDir(rootReq, e.Nodeid, &fuse.OpenIn{}, &oo), unix.ENOTDIR, "opendir "+name)
		var x fuse.EntryOut
		wantErr(t, fs.Lookup(rootReq, e.Nodeid, "passwd", &x), unix.ENOTDIR, "lookup through "+name)
		var ao fuse.AttrOut
		wantErr(t, fs.SetAttr(rootReq, e.Nodeid, &fuse.SetAttrIn{Valid: fuse.FattrSize}, &ao), unix.EINVAL, "truncate "+name)
	}
	target, errno := fs.Readlink(rootReq, lookup(t, fs, fuse.RootID, "passwd").Nodeid)
	must(t, errno, "readlink")
	if string(target) != "/etc/passwd" {
		t.Fatalf("readlink %q", target)
	}
	// CREATE over a symlink must not follow it.
	var e fuse.EntryOut
	var oo fuse.OpenOut
	wantErr(t, fs.Create(rootReq, fuse.RootID, "passwd", &fuse.CreateIn{Flags: unix.O_RDWR | unix.O_TRUNC, Mode: 0o644}, &e, &oo), unix.ELOOP, "create over symlink")
	if st, err := os.Stat("/etc/passwd"); err != nil || st.Size() == 0 {
		t.Fatalf("/etc/passwd damaged: %v", err)
	}

	// A directory swapped for a symlink after lookup: the nodeid still
	// names the original directory, never the symlink's target.
	writeFile(t, filepath.Join(dir, "d", "inside"), "mine")
	d := lookup(t, fs, fuse.RootID, "d")
	if err := os.Rename(filepath.Join(dir, "d"), filepath.Join(dir, "moved")); err != nil {
		t.Fatal(err)
	}
	os.Symlink("/etc", filepath.Join(dir, "d"))
	var x fuse.EntryOut
	wantErr(t, fs.Lookup(rootReq, d.Nodeid, "passwd", &x), unix.ENOENT, "lookup passwd in swapped dir")
	in := lookup(t, fs, d.Nodeid, "inside")
	if got := readAll(t, fs, rootReq, in.Nodeid, 100); got != "mine" {
		t.Fatalf("read %q", got)
	}
	for _, l := range listDir(t, fs, rootReq, d.Nodeid, true, 4096) {
		if l.name == "passwd" || l.name == "shadow" {
			t.Fatalf("listing of swapped dir shows host /etc")
		}
	}
}

func TestForgetAndNodeidReuse(t *testing.T) {
	fs, dir := newTestFS(t, Options{})
	writeFile(t, filepath.Join(dir, "f"), "x")
	a := lookup(t, fs, fuse.RootID, "f")
	b := lookup(t, fs, fuse.RootID, "f")
	if a.Nodeid != b.Nodeid {
		t.Fatalf("two lookups gave %d and %d", a.Nodeid, b.Nodeid)
	}
	if a.Nodeid != firstNodeid {
		t.Fatalf("first nodeid %d", a.Nodeid)
	}
	fs.Forget(a.Nodeid, 1)
	var ao fuse.AttrOut
	must(t, fs.GetAttr(rootReq, a.Nodeid, &fuse.GetAttrIn{}, &ao), "getattr with one lookup left")
	fs.Forget(a.Nodeid, 1)
	wantErr(t, fs.GetAttr(rootReq, a.Nodeid, &fuse.GetAttrIn{}, &ao), unix.ENOENT, "getattr after forget")
	if n := len(fs.Inodes()); n != 1 {
		t.Fatalf("%d inodes after forget", n)
	}
	c := lookup(t, fs, fuse.RootID, "f")
	if c.Nodeid == a.Nodeid {
		t.Fatalf("nodeid %d reused", c.Nodeid)
	}
	fs.Forget(fuse.RootID, 100)
	must(t, fs.GetAttr(rootReq, fuse.RootID, &fuse.GetAttrIn{}, &ao), "root survives forget")
	fs.Forget(12345, 1)

	// A host inode number reused by another file is not confused with
	// the forgotten-but-still-known one.
	os.Remove(filepath.Join(dir, "f"))
	writeFile(t, filepath.Join(dir, "g"), "new")
	g := lookup(t, fs, fuse.RootID, "g")
	if got := readAll(t, fs, rootReq, g.Nodeid, 10); got != "new" {
		t.Fatalf("read g %q", got)
	}

	var oo fuse.OpenOut
	must(t, fs.Open(rootReq, g.Nodeid, &fuse.OpenIn{Flags: unix.O_RDONLY}, &oo), "open")
	fs.Destroy()
	if n := len(fs.Inodes()); n != 1 {
		t.Fatalf("%d inodes after destroy", n)
	}
	if fs.openHandles() != 0 {
		t.Fatalf("handles survive destroy")
	}
	wantErr(t, fs.GetAttr(rootReq, g.Nodeid, &fuse.GetAttrIn{}, &ao), unix.ENOENT, "getattr after destroy")
	if l := lookup(t, fs, fuse.RootID, "g"); l.Nodeid <= g.Nodeid {
		t.Fatalf("nodeid after destroy %d", l.Nodeid)
	}
}
