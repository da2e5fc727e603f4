package fuse_test

import (
	"bytes"
	"encoding/binary"
	"os"
	"path/filepath"
	"syscall"
	"testing"

	"github.com/krunbench/krunbench/virtiofs/fuse"
)

// TestSymlinkAndLinkNodeidsNeverResolve: the nodeids SYMLINK and LINK
// return are the link itself, never what it points to. They come from the
// slow lookup path (open with O_PATH|O_NOFOLLOW); without O_NOFOLLOW there
// the nodeid of a symlink to ../outside is the outside directory, and a
// LOOKUP of "secret" in it reads the file outside the share. LOOKUP itself
// takes another path (fstatat and name_to_handle_at without following),
// which is why the escape tests above do not catch that regression.
// (Issue 11, item 12.)
func TestSymlinkAndLinkNodeidsNeverResolve(t *testing.T) {
	h := newHostile(t)
	targets := []string{"../outside", h.outside, "../outside/secret", filepath.Join(h.outside, "secret")}
	for i, target := range targets {
		name := "link" + string(rune('0'+i))
		r := h.do(request(fuse.OpSymlink, fuse.RootID, name, target))
		if r.hdr.Error != 0 {
			t.Fatalf("SYMLINK %s -> %s: %d", name, target, r.hdr.Error)
		}
		var entry fuse.EntryOut
		binary.Read(bytes.NewReader(r.body), binary.LittleEndian, &entry)
		entries := map[string]fuse.EntryOut{"SYMLINK": entry}
		// A hard link to the symlink (the nodeid as LINK's old node).
		if hard := h.do(request(fuse.OpLink, fuse.RootID, fuse.LinkIn{Oldnodeid: entry.Nodeid}, name+"-hard")); hard.hdr.Error == 0 {
			var hardEntry fuse.EntryOut
			binary.Read(bytes.NewReader(hard.body), binary.LittleEndian, &hardEntry)
			entries["LINK"] = hardEntry
		} else {
			t.Errorf("LINK to symlink %s -> %s: error %d", name, target, hard.hdr.Error)
		}
		for what, e := range entries {
			if e.Attr.Mode&syscall.S_IFMT != syscall.S_IFLNK {
				t.Errorf("%s %s -> %s: nodeid %d has mode %o, want a symlink", what, name, target, e.Nodeid, e.Attr.Mode)
			}
			node := e.Nodeid
			if r := h.do(request(fuse.OpGetattr, node, fuse.GetAttrIn{})); r.hdr.Error == 0 {
				var ao fuse.AttrOut
				binary.Read(bytes.NewReader(r.body), binary.LittleEndian, &ao)
				if ao.Attr.Mode&syscall.S_IFMT != syscall.S_IFLNK {
					t.Errorf("%s %s: GETATTR of nodeid %d: mode %o, want a symlink", what, name, node, ao.Attr.Mode)
				}
			}
			if _, errno := h.lookup(node, "secret"); errno == 0 {
				t.Errorf("%s %s -> %s: LOOKUP secret in its nodeid succeeded", what, name, target)
			}
			if r := h.do(request(fuse.OpOpen, node, fuse.OpenIn{Flags: syscall.O_RDONLY})); r.hdr.Error == 0 {
				fh := binary.LittleEndian.Uint64(r.body)
				h.do(request(fuse.OpRead, node, fuse.ReadIn{Fh: fh, Size: 4096}))
				t.Errorf("%s %s -> %s: OPEN of its nodeid succeeded", what, name, target)
			}
			if r := h.do(request(fuse.OpOpendir, node, fuse.OpenIn{})); r.hdr.Error == 0 {
				t.Errorf("%s %s -> %s: OPENDIR of its nodeid succeeded", what, name, target)
			}
			h.do(request(fuse.OpCreate, node, fuse.CreateIn{Flags: syscall.O_RDWR, Mode: 0o644}, "planted"))
			h.do(request(fuse.OpSetattr, node, fuse.SetAttrIn{Valid: fuse.FattrMode, Mode: 0o777}))
		}
	}
	if _, err := os.Lstat(filepath.Join(h.outside, "planted")); err == nil {
		t.Error("a file was planted outside the share")
	}
	h.check()
}
