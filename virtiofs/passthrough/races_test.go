package passthrough

import (
	"os"
	"path/filepath"
	"slices"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/krunbench/krunbench/virtiofs/fuse"
)

// TestLookupAcrossDestroy: a LOOKUP (and a CREATE, a READDIRPLUS) in
// flight when DESTROY resets the table must not register its inode in the
// new session: nobody would ever FORGET it, so it (and its descriptor)
// would stay for good. The DESTROY is put between the operation's start
// and its registration by a test hook, the one seam here; the rest is the
// real table over a real directory.
func TestLookupAcrossDestroy(t *testing.T) {
	fs, dir := newTestFS(t, Options{})
	writeFile(t, filepath.Join(dir, "f"), "x")
	fds0 := countFDs(t)

	destroyOnce := func() {
		fs.inodes.beforeRegister = nil
		fs.Destroy()
	}
	ops := map[string]func() fuse.Errno{
		"LOOKUP": func() fuse.Errno {
			return fs.Lookup(rootReq, fuse.RootID, "f", &fuse.EntryOut{})
		},
		"CREATE": func() fuse.Errno {
			var oo fuse.OpenOut
			e := fs.Create(rootReq, fuse.RootID, "new", &fuse.CreateIn{Flags: unix.O_RDWR, Mode: 0o644}, &fuse.EntryOut{}, &oo)
			if e == 0 {
				fs.Release(rootReq, 0, &fuse.ReleaseIn{Fh: oo.Fh})
			}
			return e
		},
		"MKDIR": func() fuse.Errno {
			return fs.Mkdir(rootReq, fuse.RootID, "newdir", &fuse.MkdirIn{Mode: 0o755}, &fuse.EntryOut{})
		},
	}
	for _, name := range slices.Sorted(func(yield func(string) bool) {
		for k := range ops {
			if !yield(k) {
				return
			}
		}
	}) {
		fs.inodes.beforeRegister = destroyOnce
		e := ops[name]()
		if e != unix.ESTALE {
			t.Errorf("%s across DESTROY: errno %v, want ESTALE", name, e)
		}
		n := fs.inodes.count()
		if n != 1 {
			t.Errorf("%s across DESTROY: %d inodes after the reset, want the root alone", name, n)
		}
		if fds := countFDs(t); fds != fds0 {
			t.Errorf("%s across DESTROY: %d descriptors, was %d", name, fds, fds0)
		}
	}
	// A lookup after the reset registers as usual.
	lookup(t, fs, fuse.RootID, "f")
	if _, err := os.Stat(filepath.Join(dir, "new")); err != nil {
		t.Fatal(err)
	}
}

// TestHandleMustBelongToNodeid: SETATTR and GETATTR name a nodeid and a
// handle; a handle opened on another file must not be used for them.
// Before the check, SETATTR(size 0) on file b with a's handle truncated a.
func TestHandleMustBelongToNodeid(t *testing.T) {
	fs, dir := newTestFS(t, Options{})
	writeFile(t, filepath.Join(dir, "a"), "precious")
	writeFile(t, filepath.Join(dir, "b"), "bb")
	a, b := lookup(t, fs, fuse.RootID, "a"), lookup(t, fs, fuse.RootID, "b")
	var oo fuse.OpenOut
	must(t, fs.Open(rootReq, a.Nodeid, &fuse.OpenIn{Flags: unix.O_RDWR}, &oo), "open a")
	defer fs.Release(rootReq, a.Nodeid, &fuse.ReleaseIn{Fh: oo.Fh})

	e := fs.SetAttr(rootReq, b.Nodeid, &fuse.SetAttrIn{Valid: fuse.FattrSize | fuse.FattrFh, Fh: oo.Fh}, &fuse.AttrOut{})
	wantErr(t, e, unix.EBADF, "SETATTR of b with a's handle")
	if got, _ := os.ReadFile(filepath.Join(dir, "a")); string(got) != "precious" {
		t.Fatalf("a now holds %q", got)
	}
	var ao fuse.AttrOut
	must(t, fs.GetAttr(rootReq, b.Nodeid, &fuse.GetAttrIn{GetattrFlags: fuse.GetattrFh, Fh: oo.Fh}, &ao), "GETATTR of b with a's handle")
	if ao.Attr.Ino != b.Attr.Ino || ao.Attr.Size != 2 {
		t.Fatalf("GETATTR of b with a's handle: ino %d size %d, want b's (%d, 2)", ao.Attr.Ino, ao.Attr.Size, b.Attr.Ino)
	}
	must(t, fs.SetAttr(rootReq, a.Nodeid, &fuse.SetAttrIn{Valid: fuse.FattrSize | fuse.FattrFh, Fh: oo.Fh, Size: 3}, &fuse.AttrOut{}), "SETATTR of a with its handle")
	if got, _ := os.ReadFile(filepath.Join(dir, "a")); string(got) != "pre" {
		t.Fatalf("a after its own truncate: %q", got)
	}
}

// TestLseekOnDirectoryHandle: LSEEK on a directory handle would move the
// host offset under the entries READDIR has buffered; the listing then
// skipped entries. It is refused (the client never sends it: directories
// seek by READDIR cookie), and the listing stays whole.
func TestLseekOnDirectoryHandle(t *testing.T) {
	fs, dir := newTestFS(t, Options{})
	for i := range 100 {
		writeFile(t, filepath.Join(dir, "d", "entry-"+string(rune('a'+i/26))+string(rune('a'+i%26))), "")
	}
	d := lookup(t, fs, fuse.RootID, "d").Nodeid
	var oo fuse.OpenOut
	must(t, fs.OpenDir(rootReq, d, &fuse.OpenIn{}, &oo), "opendir")
	defer fs.ReleaseDir(rootReq, d, &fuse.ReleaseIn{Fh: oo.Fh})
	seen := map[string]bool{}
	var off uint64
	for chunk := 0; ; chunk++ {
		list := fuse.NewDirList(nil, 256, false)
		must(t, fs.ReadDir(rootReq, d, &fuse.ReadIn{Fh: oo.Fh, Offset: off, Size: 256}, false, list), "readdir")
		got := parseList(t, list.Bytes(), false)
		if len(got) == 0 {
			break
		}
		for _, l := range got {
			seen[l.name] = true
		}
		off = got[len(got)-1].off
		if chunk == 0 {
			var lo fuse.LseekOut
			wantErr(t, fs.Lseek(rootReq, d, &fuse.LseekIn{Fh: oo.Fh, Whence: unix.SEEK_END}, &lo), unix.EINVAL, "LSEEK on a directory handle")
		}
	}
	if len(seen) != 102 {
		t.Fatalf("listed %d names, want 102 (100 entries, . and ..)", len(seen))
	}
}
