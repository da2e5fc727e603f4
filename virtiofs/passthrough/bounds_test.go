package passthrough

import (
	"fmt"
	"path/filepath"
	"runtime"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/krunbench/krunbench/virtiofs/fuse"
)

// TestCopyFileRangeBounded: one COPY_FILE_RANGE asking for 1 GiB out of a
// sparse file copies at most maxCopy bytes. Unbounded, the host wrote the
// whole gibibyte of zeros (about 4 s of one request here): a guest could
// make each request cost seconds of host I/O. A short count is a valid
// answer; the client's copy_file_range(2) loops.
func TestCopyFileRangeBounded(t *testing.T) {
	fs, _ := newTestFS(t, Options{})
	var e fuse.EntryOut
	var src, dst fuse.OpenOut
	must(t, fs.Create(rootReq, fuse.RootID, "src", &fuse.CreateIn{Flags: unix.O_RDWR, Mode: 0o644}, &e, &src), "create src")
	srcID := e.Nodeid
	must(t, fs.Create(rootReq, fuse.RootID, "dst", &fuse.CreateIn{Flags: unix.O_RDWR, Mode: 0o644}, &e, &dst), "create dst")
	dstID := e.Nodeid
	defer fs.Release(rootReq, srcID, &fuse.ReleaseIn{Fh: src.Fh})
	defer fs.Release(rootReq, dstID, &fuse.ReleaseIn{Fh: dst.Fh})

	const gib = 1 << 30
	must(t, fs.SetAttr(rootReq, srcID, &fuse.SetAttrIn{Valid: fuse.FattrSize | fuse.FattrFh, Fh: src.Fh, Size: gib}, &fuse.AttrOut{}), "truncate src")
	n, errno := fs.CopyFileRange(rootReq, srcID, &fuse.CopyFileRangeIn{FhIn: src.Fh, NodeidOut: dstID, FhOut: dst.Fh, Len: gib})
	must(t, errno, "copy_file_range")
	// 16 MiB is the most host I/O one request may cost (about 60 ms here).
	if n == 0 || n > maxCopy || n > 16<<20 {
		t.Fatalf("one COPY_FILE_RANGE copied %d bytes, want 1..%d", n, min(maxCopy, 16<<20))
	}
	var st unix.Stat_t
	h, _ := fs.getHandle(dst.Fh)
	err := unix.Fstat(h.fd, &st)
	h.put()
	if err != nil {
		t.Fatal(err)
	}
	if st.Size != int64(n) {
		t.Fatalf("destination size %d after a copy of %d", st.Size, n)
	}
}

// heapBytes is the live heap after a full collection.
func heapBytes() uint64 {
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return ms.HeapAlloc
}

// TestHandlesBounded: 10,000 OPEN and OPENDIR (each directory read once,
// so it holds a getdents buffer) without RELEASE, under an RLIMIT_NOFILE
// of 2048. Unbounded, every request took a descriptor and a directory
// buffer: the process hit its limit (the VMM's eventfds then fail too) and
// the heap grew by 32 KiB per directory. Bounded, the guest gets ENFILE
// past MaxHandles, descriptors and heap stay bounded, an eventfd can still
// be made, and after the RELEASEs both are back where they started.
func TestHandlesBounded(t *testing.T) {
	var old unix.Rlimit
	if err := unix.Getrlimit(unix.RLIMIT_NOFILE, &old); err != nil {
		t.Fatal(err)
	}
	limited := unix.Rlimit{Cur: 2048, Max: old.Max}
	if err := unix.Setrlimit(unix.RLIMIT_NOFILE, &limited); err != nil {
		t.Fatal(err)
	}
	defer unix.Setrlimit(unix.RLIMIT_NOFILE, &old)
	fs, dir := newTestFS(t, Options{})
	if fs.maxHandles != 512 {
		t.Fatalf("default bound under RLIMIT_NOFILE 2048: %d, want 512", fs.maxHandles)
	}
	writeFile(t, filepath.Join(dir, "f"), "data")
	writeFile(t, filepath.Join(dir, "d", "entry"), "x")
	f, d := lookup(t, fs, fuse.RootID, "f").Nodeid, lookup(t, fs, fuse.RootID, "d").Nodeid

	fds0, heap0 := countFDs(t), heapBytes()
	var fhs []uint64
	refused := 0
	for i := range 10000 {
		var oo fuse.OpenOut
		var e fuse.Errno
		if i%2 == 0 {
			e = fs.Open(rootReq, f, &fuse.OpenIn{Flags: unix.O_RDONLY}, &oo)
		} else if e = fs.OpenDir(rootReq, d, &fuse.OpenIn{}, &oo); e == 0 {
			// One entry per READDIR: the rest stays in the buffer.
			list := fuse.NewDirList(nil, 40, false)
			must(t, fs.ReadDir(rootReq, d, &fuse.ReadIn{Fh: oo.Fh, Size: 40}, false, list), "readdir")
		}
		switch e {
		case 0:
			fhs = append(fhs, oo.Fh)
		case unix.ENFILE:
			refused++
		default:
			t.Fatalf("open %d: %v", i, e)
		}
	}
	fds1, heap1 := countFDs(t), heapBytes()
	t.Logf("10,000 opens: %d handles, %d refused (ENFILE); fds %d -> %d, heap %d KiB -> %d KiB",
		len(fhs), refused, fds0, fds1, heap0>>10, heap1>>10)
	// A few descriptors of slack: the runtime may open its own.
	if len(fhs) != 512 || fds1-fds0 > 512+8 {
		t.Fatalf("%d handles open, fds %d -> %d: want about 512 more", len(fhs), fds0, fds1)
	}
	// 256 resident directory buffers of 32 KiB, the handles, and slack.
	if heap1 > heap0+12<<20 {
		t.Fatalf("heap grew from %d KiB to %d KiB", heap0>>10, heap1>>10)
	}
	efd, err := unix.Eventfd(0, unix.EFD_CLOEXEC)
	if err != nil {
		t.Fatalf("an eventfd after the flood: %v", err)
	}
	unix.Close(efd)

	for _, fh := range fhs {
		h, _ := fs.getHandle(fh)
		isDir := h.dir != nil
		h.put()
		if isDir {
			must(t, fs.ReleaseDir(rootReq, d, &fuse.ReleaseIn{Fh: fh}), "releasedir")
		} else {
			must(t, fs.Release(rootReq, f, &fuse.ReleaseIn{Fh: fh}), "release")
		}
	}
	fds2, heap2 := countFDs(t), heapBytes()
	t.Logf("after the RELEASEs: fds %d, heap %d KiB", fds2, heap2>>10)
	if fds2 > fds0+8 || fs.openFDs.Load() != 0 || fs.residentDirBufs.Load() != 0 {
		t.Fatalf("after release: fds %d (was %d), %d handle fds and %d dir buffers counted", fds2, fds0, fs.openFDs.Load(), fs.residentDirBufs.Load())
	}
}

// TestReadDirWithBorrowedBuffer: past MaxResidentDirBuffers, a directory
// listed in small READDIRs (its buffer borrowed and the directory rewound
// each time) yields every entry exactly once, as a resident one does.
func TestReadDirWithBorrowedBuffer(t *testing.T) {
	fs, dir := newTestFS(t, Options{})
	want := map[string]bool{".": true, "..": true}
	for i := range 300 {
		name := fmt.Sprintf("entry-%03d", i)
		writeFile(t, filepath.Join(dir, "d", name), "")
		want[name] = true
	}
	d := lookup(t, fs, fuse.RootID, "d").Nodeid
	fs.residentDirBufs.Store(MaxResidentDirBuffers)
	defer fs.residentDirBufs.Store(0)
	for _, plus := range []bool{false, true} {
		got := listDir(t, fs, rootReq, d, plus, 200)
		seen := map[string]bool{}
		for _, l := range got {
			if seen[l.name] {
				t.Fatalf("plus=%v: %q listed twice", plus, l.name)
			}
			seen[l.name] = true
			if plus && l.entry.Nodeid != 0 {
				fs.Forget(l.entry.Nodeid, 1)
			}
		}
		if len(seen) != len(want) {
			t.Fatalf("plus=%v: %d entries listed, want %d", plus, len(seen), len(want))
		}
	}
	if n := fs.residentDirBufs.Load(); n != MaxResidentDirBuffers {
		t.Fatalf("resident buffers %d, want the %d set", n, MaxResidentDirBuffers)
	}
}
