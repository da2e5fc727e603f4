package passthrough

import (
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/krunbench/krunbench/virtiofs/fuse"
)

func TestFDCacheBound(t *testing.T) {
	const files, maxFDs = 3000, 64
	fs, dir := newTestFS(t, Options{MaxOpenFDs: maxFDs})
	if fs.inodes.mountFDs() == nil {
		t.Skip("test filesystem has no file handles")
	}
	for i := range files {
		writeFile(t, filepath.Join(dir, fmt.Sprintf("d%02d", i%30), fmt.Sprintf("f%04d", i)), fmt.Sprint("content ", i))
	}
	base := countFDs(t)
	dirs := map[string]uint64{}
	ids := make([]uint64, files)
	check := func() {
		if n := countFDs(t); n > base+maxFDs+8 {
			t.Fatalf("%d fds open (base %d, cap %d)", n, base, maxFDs)
		}
		if n := fs.inodes.openFDs(); n > maxFDs {
			t.Fatalf("cache holds %d fds", n)
		}
	}
	for i := range files {
		dn := fmt.Sprintf("d%02d", i%30)
		d, ok := dirs[dn]
		if !ok {
			d = lookup(t, fs, fuse.RootID, dn).Nodeid
			dirs[dn] = d
		}
		e := lookup(t, fs, d, fmt.Sprintf("f%04d", i))
		ids[i] = e.Nodeid
		var ao fuse.AttrOut
		must(t, fs.GetAttr(rootReq, e.Nodeid, &fuse.GetAttrIn{}, &ao), "getattr")
		if ao.Attr.Ino != e.Attr.Ino {
			t.Fatalf("getattr ino %d, lookup ino %d", ao.Attr.Ino, e.Attr.Ino)
		}
		if i%100 == 0 {
			check()
		}
	}
	check()
	// Everything was evicted long ago; reopen by file handle.
	for i, id := range ids {
		want := fmt.Sprint("content ", i)
		if got := readAll(t, fs, rootReq, id, 64); got != want {
			t.Fatalf("file %d read %q, want %q", i, got, want)
		}
		if i%100 == 0 {
			check()
		}
	}
	check()
	// Directories too: list one that was evicted.
	if n := len(listDir(t, fs, rootReq, dirs["d00"], false, 4096)); n != files/30+2 {
		t.Fatalf("d00 lists %d entries", n)
	}
	if p := fs.PathOf(ids[2999]); p != "/d29/f2999" {
		t.Fatalf("PathOf %q", p)
	}
	// A file deleted while evicted is gone, not another file.
	os.Remove(filepath.Join(dir, "d00", "f0000"))
	var ao fuse.AttrOut
	if e := fs.GetAttr(rootReq, ids[0], &fuse.GetAttrIn{}, &ao); e == 0 && ao.Attr.Nlink != 0 {
		t.Fatalf("deleted file still has nlink %d", ao.Attr.Nlink)
	}
	check()
}

func TestConcurrent(t *testing.T) {
	fs, dir := newTestFS(t, Options{MaxOpenFDs: 8})
	const files = 64
	for i := range files {
		writeFile(t, filepath.Join(dir, fmt.Sprintf("f%d", i)), fmt.Sprint(i))
	}
	base := countFDs(t)
	var wg sync.WaitGroup
	errs := make(chan error, 16)
	for w := range 16 {
		wg.Go(func() {
			r := rootReq
			if w%2 == 1 {
				r = userReq(1000, 1000)
			}
			for i := range 200 {
				n := (i*7 + w) % files
				var e fuse.EntryOut
				if err := fs.Lookup(r, fuse.RootID, fmt.Sprintf("f%d", n), &e); err != 0 {
					errs <- fmt.Errorf("lookup: %v", err)
					return
				}
				var oo fuse.OpenOut
				if err := fs.Open(r, e.Nodeid, &fuse.OpenIn{Flags: unix.O_RDONLY}, &oo); err != 0 {
					errs <- fmt.Errorf("open: %v", err)
					return
				}
				buf := make([]byte, 16)
				got, err := fs.Read(r, e.Nodeid, &fuse.ReadIn{Fh: oo.Fh, Size: 16}, [][]byte{buf})
				fs.Release(r, e.Nodeid, &fuse.ReleaseIn{Fh: oo.Fh})
				if err != 0 || string(buf[:got]) != fmt.Sprint(n) {
					errs <- fmt.Errorf("read f%d: %q %v", n, buf[:got], err)
					return
				}
				if i%3 == 0 {
					fs.Forget(e.Nodeid, 1)
				}
				if i%50 == 0 {
					var do fuse.OpenOut
					if err := fs.OpenDir(r, fuse.RootID, &fuse.OpenIn{}, &do); err != 0 {
						errs <- fmt.Errorf("opendir: %v", err)
						return
					}
					if err := fs.ReadDir(r, fuse.RootID, &fuse.ReadIn{Fh: do.Fh}, true, fuse.NewDirList(nil, 4096, true)); err != 0 {
						errs <- fmt.Errorf("readdirplus: %v", err)
					}
					fs.ReleaseDir(r, fuse.RootID, &fuse.ReleaseIn{Fh: do.Fh})
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	if n := countFDs(t); n > base+8+4 {
		t.Fatalf("%d fds open, base %d", n, base)
	}
	if fs.openHandles() != 0 {
		t.Fatalf("handles leaked")
	}
}

// TestCreateRegistersByHandle: CREATE leaves the new inode without an
// O_PATH descriptor (it has a file handle); the first operation that needs
// one opens it by that handle, and a file swapped in under the name on the
// host is refused rather than served in its place.
func TestCreateRegistersByHandle(t *testing.T) {
	fs, dir := newTestFS(t, Options{})
	if fs.inodes.mountFDs() == nil {
		t.Skip("test filesystem has no file handles")
	}
	before := fs.inodes.openFDs()
	var e fuse.EntryOut
	var oo fuse.OpenOut
	must(t, fs.Create(rootReq, fuse.RootID, "f", &fuse.CreateIn{Flags: unix.O_RDWR, Mode: 0o644}, &e, &oo), "create")
	if n := fs.inodes.openFDs(); n != before {
		t.Fatalf("CREATE left %d cached O_PATH descriptors, want %d", n, before)
	}
	must(t, fs.Release(rootReq, e.Nodeid, &fuse.ReleaseIn{Fh: oo.Fh}), "release")
	var ao fuse.AttrOut
	must(t, fs.SetAttr(rootReq, e.Nodeid, &fuse.SetAttrIn{Valid: fuse.FattrMode, Mode: 0o600}, &ao), "chmod the new inode")
	if st, err := os.Stat(filepath.Join(dir, "f")); err != nil || st.Mode().Perm() != 0o600 {
		t.Fatalf("host file after chmod: %v, %v", st, err)
	}
	if fs.inodes.openFDs() != before+1 {
		t.Fatalf("SETATTR did not open the inode by its handle")
	}

	must(t, fs.Create(rootReq, fuse.RootID, "g", &fuse.CreateIn{Flags: unix.O_RDWR, Mode: 0o644}, &e, &oo), "create g")
	must(t, fs.Release(rootReq, e.Nodeid, &fuse.ReleaseIn{Fh: oo.Fh}), "release g")
	if err := os.Remove(filepath.Join(dir, "g")); err != nil {
		t.Fatal(err)
	}
	writeFile(t, filepath.Join(dir, "g"), "planted")
	wantErr(t, fs.GetAttr(rootReq, e.Nodeid, nil, &ao), unix.ENOENT, "getattr of a created inode replaced on the host")
}
