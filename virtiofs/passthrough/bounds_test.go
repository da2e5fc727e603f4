package passthrough

import (
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
