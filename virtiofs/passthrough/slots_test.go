package passthrough

import (
	"math"
	"path/filepath"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/krunbench/krunbench/virtiofs/fuse"
)

// TestNodeidNeverReused: a slot freed by FORGET is taken by the next new
// inode with the next generation, and every request naming the old nodeid,
// or a forged one (another generation, a reserved or never used slot, the
// root's slot with a generation), gets ENOENT or is ignored: never the
// inode now in the slot.
func TestNodeidNeverReused(t *testing.T) {
	fs, dir := newTestFS(t, Options{})
	writeFile(t, filepath.Join(dir, "a"), "aaaa")
	writeFile(t, filepath.Join(dir, "b"), "bbbbbbbb")

	a := lookup(t, fs, fuse.RootID, "a")
	lookup(t, fs, fuse.RootID, "a")
	fs.Forget(a.Nodeid, 2)
	b := lookup(t, fs, fuse.RootID, "b")
	if uint32(b.Nodeid) != uint32(a.Nodeid) || b.Nodeid>>32 != a.Nodeid>>32+1 {
		t.Fatalf("b is nodeid %#x after a (%#x) was forgotten, want a's slot with the next generation", b.Nodeid, a.Nodeid)
	}

	var attr fuse.AttrOut
	forged := []uint64{
		a.Nodeid,         // forgotten
		b.Nodeid + 1<<32, // a generation not handed out yet
		0, 2,             // reserved slots
		b.Nodeid + 1,                // a slot never used
		uint64(math.MaxUint32),      // the last slot
		fuse.RootID | 1<<32,         // the root's slot, another generation
		uint64(math.MaxUint64),      // all ones
		uint64(firstNodeid) | 7<<32, // a used slot, a wrong generation
	}
	for _, id := range forged {
		wantErr(t, fs.GetAttr(rootReq, id, &fuse.GetAttrIn{}, &attr), unix.ENOENT, "GETATTR of a stale or forged nodeid")
		var out fuse.EntryOut
		wantErr(t, fs.Lookup(rootReq, id, "b", &out), unix.ENOENT, "LOOKUP under a stale or forged nodeid")
		fs.Forget(id, 1)
	}
	// The FORGETs of the old nodeid did not drop b's lookup.
	must(t, fs.GetAttr(rootReq, b.Nodeid, &fuse.GetAttrIn{}, &attr), "GETATTR b")
	if attr.Attr.Size != 8 {
		t.Fatalf("b has size %d, want 8", attr.Attr.Size)
	}
	if fs.PathOf(a.Nodeid) != "" || fs.PathOf(b.Nodeid) != "/b" {
		t.Fatalf("paths: old %q, new %q", fs.PathOf(a.Nodeid), fs.PathOf(b.Nodeid))
	}
	if n := fs.inodes.count(); n != 2 {
		t.Fatalf("%d inodes, want the root and b", n)
	}
}

// TestPinnedSlotNotReused: an inode forgotten while an operation has it
// pinned keeps its slot until the last unpin, so the pinned record is never
// handed to another inode under the operation's feet.
func TestPinnedSlotNotReused(t *testing.T) {
	fs, dir := newTestFS(t, Options{})
	writeFile(t, filepath.Join(dir, "a"), "")
	writeFile(t, filepath.Join(dir, "b"), "")
	a := lookup(t, fs, fuse.RootID, "a")
	in, _, e := fs.inodes.pin(a.Nodeid)
	must(t, e, "pin a")
	fs.Forget(a.Nodeid, 1)
	b := lookup(t, fs, fuse.RootID, "b")
	if uint32(b.Nodeid) == uint32(a.Nodeid) {
		t.Fatalf("b took the slot of a while a was pinned (%#x, %#x)", a.Nodeid, b.Nodeid)
	}
	if in.key.ino == 0 || !in.gone {
		t.Fatalf("pinned record changed: %+v", in)
	}
	fs.inodes.unpin(in)
	fs.Forget(b.Nodeid, 1)
	c := lookup(t, fs, fuse.RootID, "a")
	if uint32(c.Nodeid) != uint32(b.Nodeid) && uint32(c.Nodeid) != uint32(a.Nodeid) {
		t.Fatalf("c (%#x) took a fresh slot, want one of the freed", c.Nodeid)
	}
	if c.Nodeid == a.Nodeid || c.Nodeid == b.Nodeid {
		t.Fatalf("nodeid %#x handed out twice", c.Nodeid)
	}
}

// TestRetiredSlot: a slot at its last generation is retired when freed,
// not reused with generation 0.
func TestRetiredSlot(t *testing.T) {
	fs, dir := newTestFS(t, Options{})
	writeFile(t, filepath.Join(dir, "a"), "")
	a := lookup(t, fs, fuse.RootID, "a")
	// Move a to its slot's last generation, as 2^32 reuses would.
	last := uint64(uint32(a.Nodeid)) | math.MaxUint32<<32
	fs.inodes.mu.Lock()
	fs.inodes.getLocked(a.Nodeid).nodeid = last
	fs.inodes.mu.Unlock()
	fs.Forget(last, 1)
	b := lookup(t, fs, fuse.RootID, "a")
	if uint32(b.Nodeid) == uint32(a.Nodeid) {
		t.Fatalf("retired slot reused: %#x", b.Nodeid)
	}
	var attr fuse.AttrOut
	for _, id := range []uint64{a.Nodeid, last} {
		wantErr(t, fs.GetAttr(rootReq, id, &fuse.GetAttrIn{}, &attr), unix.ENOENT, "GETATTR of a retired slot")
	}
}
