package passthrough

import (
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/krunbench/krunbench/virtiofs/fuse"
)

// TestInodeMemory: a LOOKUP of a new name costs the table its inode (112
// bytes, in a slab), the name and its share of the key table, and nothing
// else stays allocated: live heap per inode after a GC, and allocations
// per lookup. Before the inode record was compacted (LRU element, handle
// buffer and its pointer per inode) this read 250 bytes and 5.02
// allocations; 194 and 2.02 with a nodeid map and an allocation per
// inode; 168 and 1.02 with the slabs (slots.go) and a map from host key to
// inode; now 117 and 0.01 with the key table of slot numbers (keys.go).
func TestInodeMemory(t *testing.T) {
	const files = 4000
	fs, dir := newTestFS(t, Options{})
	if fs.inodes.mountFDs() == nil {
		t.Skip("test filesystem has no file handles")
	}
	var h fileHandle
	if _, err := nameToHandle(unix.AT_FDCWD, dir, 0, &h); err != nil || h.n > inlineHandle {
		// overlayfs (32 bytes): every inode allocates its handle too.
		t.Skipf("file handles of %d bytes (%v) are not kept inline", h.n, err)
	}
	for i := range files {
		if err := os.WriteFile(filepath.Join(dir, fmt.Sprintf("f%05d", i)), nil, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	names := make([]string, files)
	for i := range names {
		names[i] = fmt.Sprintf("f%05d", i)
	}
	var out fuse.EntryOut
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	for _, name := range names {
		if e := fs.Lookup(rootReq, fuse.RootID, name, &out); e != 0 {
			t.Fatalf("lookup %s: %v", name, e)
		}
	}
	runtime.GC()
	runtime.ReadMemStats(&after)
	perInode := float64(after.HeapAlloc-before.HeapAlloc) / files
	allocs := float64(after.Mallocs-before.Mallocs) / files
	t.Logf("%.0f bytes of live heap and %.2f allocations per new inode", perInode, allocs)
	if perInode > 135 {
		t.Errorf("%.0f bytes of live heap per inode, want at most 135", perInode)
	}
	if allocs > 1.5 {
		t.Errorf("%.2f allocations per new inode, want at most 1.5 (fstatat's copy of the name, key table and slab growth)", allocs)
	}
	if n := len(fs.Inodes()); n != files+1 {
		t.Fatalf("%d inodes, want %d", n, files+1)
	}
}

// TestInodeHandleStorage: handles up to inlineHandle bytes are kept in the
// inode, longer ones beside it, and each comes back byte for byte.
func TestInodeHandleStorage(t *testing.T) {
	for _, n := range []int{0, 1, 8, inlineHandle, inlineHandle + 1, 20, maxHandleSize} {
		var h fileHandle
		h.typ, h.n = int32(n+1), uint32(n)
		for i := range n {
			h.b[i] = byte(i*7 + 1)
		}
		var in inode
		if in.hasHandle() || in.sameHandle(&h) {
			t.Fatalf("%d bytes: an inode without a handle matched", n)
		}
		in.setHandle(&h)
		if !in.hasHandle() || !in.sameHandle(&h) {
			t.Fatalf("%d bytes: stored handle does not match", n)
		}
		if long := n > inlineHandle; long != (in.hlong != nil) {
			t.Fatalf("%d bytes: stored long %v", n, in.hlong != nil)
		}
		var got fileHandle
		if !in.getHandle(&got) || got.typ != h.typ || string(got.bytes()) != string(h.bytes()) {
			t.Fatalf("%d bytes: got back type %d %x, want %d %x", n, got.typ, got.bytes(), h.typ, h.bytes())
		}
		other := h
		other.typ++
		if in.sameHandle(&other) {
			t.Fatalf("%d bytes: a handle of another type matched", n)
		}
		if n > 0 {
			other = h
			other.b[n-1]++
			if in.sameHandle(&other) {
				t.Fatalf("%d bytes: a handle with other bytes matched", n)
			}
		}
	}
}

// TestNameToHandleBadNames: names no component can have are errors from
// nameToHandle, before any system call.
func TestNameToHandleBadNames(t *testing.T) {
	var h fileHandle
	if _, err := nameToHandle(unix.AT_FDCWD, strings.Repeat("x", unix.NAME_MAX+1), 0, &h); err != unix.ENAMETOOLONG {
		t.Fatalf("long name: %v", err)
	}
	if _, err := nameToHandle(unix.AT_FDCWD, "a\x00b", 0, &h); err != unix.EINVAL {
		t.Fatalf("name with NUL: %v", err)
	}
	if _, err := nameToHandle(unix.AT_FDCWD, strings.Repeat("x", unix.NAME_MAX), 0, &h); err != unix.ENOENT {
		t.Fatalf("missing name of NAME_MAX bytes: %v", err)
	}
}
