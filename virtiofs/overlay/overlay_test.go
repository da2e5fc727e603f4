package overlay_test

import (
	"bytes"
	"encoding/binary"
	"errors"
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"unsafe"

	"github.com/krunbench/krunbench/initlib"
	"github.com/krunbench/krunbench/virtiofs/fuse"
	"github.com/krunbench/krunbench/virtiofs/overlay"
	"github.com/krunbench/krunbench/virtiofs/passthrough"
)

// These tests call the overlay's FUSE methods directly, as fuse.Server
// dispatches them, over a real passthrough filesystem on a temporary
// directory: no root, no mount, no KVM. The /dev/fuse tests
// (virtiofs/fusedev) check the same semantics through the kernel's client.

// newFS wraps a passthrough of a fresh directory, which holds sub/ and a
// file named like the init in sub/.
func newFS(t *testing.T) (*overlay.FS, string) {
	t.Helper()
	dir := t.TempDir()
	if err := os.Mkdir(filepath.Join(dir, "sub"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "sub", overlay.InitName), []byte("host"), 0o644); err != nil {
		t.Fatal(err)
	}
	pt, err := passthrough.New(dir, passthrough.Options{})
	if err != nil {
		t.Fatal(err)
	}
	ov := overlay.New(pt)
	ov.Init(0)
	t.Cleanup(ov.Destroy)
	return ov, dir
}

func req() *fuse.Request { return &fuse.Request{} }

func lookup(ov *overlay.FS, parent uint64, name string) (fuse.EntryOut, fuse.Errno) {
	var out fuse.EntryOut
	errno := ov.Lookup(req(), parent, name, &out)
	return out, errno
}

func read(t *testing.T, ov *overlay.FS, off uint64, size uint32) ([]byte, fuse.Errno) {
	t.Helper()
	buf := make([]byte, size)
	n, errno := ov.Read(req(), overlay.InitNodeid, &fuse.ReadIn{Offset: off, Size: size}, [][]byte{buf})
	return buf[:n], errno
}

// names lists a directory the way READDIR (plus: READDIRPLUS) answers.
func names(t *testing.T, ov *overlay.FS, nodeid uint64, plus bool) []string {
	t.Helper()
	var open fuse.OpenOut
	in := &fuse.OpenIn{Flags: syscall.O_RDONLY}
	if errno := ov.OpenDir(req(), nodeid, in, &open); errno != 0 {
		t.Fatalf("OPENDIR: %v", errno)
	}
	defer ov.ReleaseDir(req(), nodeid, &fuse.ReleaseIn{Fh: open.Fh})
	list := fuse.NewDirList(nil, 64<<10, plus)
	if errno := ov.ReadDir(req(), nodeid, &fuse.ReadIn{Fh: open.Fh, Size: 64 << 10}, plus, list); errno != 0 {
		t.Fatalf("READDIR: %v", errno)
	}
	var out []string
	for b := list.Bytes(); len(b) > 0; {
		if plus {
			b = b[unsafe.Sizeof(fuse.EntryOut{}):]
		}
		namelen := int(binary.LittleEndian.Uint32(b[16:]))
		out = append(out, string(b[24:24+namelen]))
		b = b[min(len(b), (24+namelen+7)&^7):]
	}
	return out
}

// TestInitKrunSemantics is libkrun v1.19's table for the synthetic
// /init.krun (../shared/reference/libkrun-facts.md), row by row.
func TestInitKrunSemantics(t *testing.T) {
	payload := bytes.Repeat([]byte("not a script "), 100) // 1300 bytes
	ov, _ := newFS(t)
	if err := ov.SetPayload(payload); err != nil {
		t.Fatal(err)
	}

	t.Run("never listed", func(t *testing.T) {
		for _, plus := range []bool{false, true} {
			for _, n := range names(t, ov, fuse.RootID, plus) {
				if n == overlay.InitName {
					t.Fatalf("READDIR (plus %v) lists %s", plus, n)
				}
			}
		}
	})
	t.Run("lookup only in the root", func(t *testing.T) {
		sub, errno := lookup(ov, fuse.RootID, "sub")
		if errno != 0 {
			t.Fatal(errno)
		}
		e, errno := lookup(ov, sub.Nodeid, overlay.InitName)
		if errno != 0 || e.Nodeid == overlay.InitNodeid || e.Attr.Size != 4 {
			t.Fatalf("sub/init.krun: nodeid %d size %d errno %v, want the host file", e.Nodeid, e.Attr.Size, errno)
		}
		ov.Forget(sub.Nodeid, 1)
		ov.Forget(e.Nodeid, 1)
	})

	e, errno := lookup(ov, fuse.RootID, overlay.InitName)
	t.Run("inode 2, mode 0755, root, zero timeouts", func(t *testing.T) {
		a := e.Attr
		switch {
		case errno != 0:
			t.Fatalf("LOOKUP: %v", errno)
		case e.Nodeid != 2 || a.Ino != 2:
			t.Errorf("nodeid %d ino %d, want 2", e.Nodeid, a.Ino)
		case a.Mode != syscall.S_IFREG|0o755 || a.Uid != 0 || a.Gid != 0:
			t.Errorf("mode %o uid %d gid %d, want regular 0755 root:root", a.Mode, a.Uid, a.Gid)
		case a.Size != uint64(len(payload)) || a.Nlink != 1 || a.Blocks != 3 || a.Blksize != 4096:
			t.Errorf("size %d nlink %d blocks %d blksize %d", a.Size, a.Nlink, a.Blocks, a.Blksize)
		case e.EntryValid != 0 || e.AttrValid != 0 || e.EntryValidNsec != 0 || e.AttrValidNsec != 0:
			t.Errorf("timeouts %+v, want 0", e)
		case a.Atime != 0 || a.Mtime != 0 || a.Ctime != 0:
			t.Errorf("times %d %d %d, want 0", a.Atime, a.Mtime, a.Ctime)
		}
	})
	t.Run("one-shot", func(t *testing.T) {
		if _, errno := lookup(ov, fuse.RootID, overlay.InitName); errno != syscall.ENOENT {
			t.Fatalf("second LOOKUP: %v, want ENOENT", errno)
		}
		var attr fuse.AttrOut
		if errno := ov.GetAttr(req(), overlay.InitNodeid, &fuse.GetAttrIn{}, &attr); errno != 0 || attr.Attr.Size != uint64(len(payload)) {
			t.Fatalf("the looked-up inode lives on until forgotten: GETATTR %v size %d", errno, attr.Attr.Size)
		}
	})
	t.Run("write-open EACCES, read-only open", func(t *testing.T) {
		var out fuse.OpenOut
		for _, flags := range []uint32{syscall.O_WRONLY, syscall.O_RDWR} {
			if errno := ov.Open(req(), overlay.InitNodeid, &fuse.OpenIn{Flags: flags}, &out); errno != syscall.EACCES {
				t.Errorf("OPEN flags %#o: %v, want EACCES", flags, errno)
			}
		}
		if errno := ov.Open(req(), overlay.InitNodeid, &fuse.OpenIn{Flags: syscall.O_RDONLY}, &out); errno != 0 || out.Fh != 0 {
			t.Errorf("read-only OPEN: %v fh %d", errno, out.Fh)
		}
		if errno := ov.OpenDir(req(), overlay.InitNodeid, &fuse.OpenIn{}, &out); errno != syscall.EISDIR {
			t.Errorf("OPENDIR: %v, want EISDIR", errno)
		}
	})
	t.Run("reads, and 0 bytes at or past EOF", func(t *testing.T) {
		if got, errno := read(t, ov, 0, 4096); errno != 0 || !bytes.Equal(got, payload) {
			t.Fatalf("whole read: %d bytes, %v", len(got), errno)
		}
		if got, _ := read(t, ov, uint64(len(payload))-10, 100); !bytes.Equal(got, payload[len(payload)-10:]) {
			t.Fatalf("read straddling the end: %q", got)
		}
		for _, off := range []uint64{uint64(len(payload)), uint64(len(payload)) + 4096, 1 << 62} {
			if got, errno := read(t, ov, off, 4096); len(got) != 0 || errno != 0 {
				t.Errorf("read at %d: %d bytes, %v; want 0 bytes, no error", off, len(got), errno)
			}
		}
	})
	t.Run("mutations refused", func(t *testing.T) {
		if errno := ov.SetAttr(req(), overlay.InitNodeid, &fuse.SetAttrIn{}, &fuse.AttrOut{}); errno != syscall.EPERM {
			t.Errorf("SETATTR: %v", errno)
		}
		if _, errno := ov.Write(req(), overlay.InitNodeid, &fuse.WriteIn{Size: 1}, [][]byte{{1}}); errno != syscall.EPERM {
			t.Errorf("WRITE: %v", errno)
		}
		if errno := ov.Access(req(), overlay.InitNodeid, 2 /* W_OK */); errno != syscall.EACCES {
			t.Errorf("ACCESS W_OK: %v", errno)
		}
		if _, errno := ov.Readlink(req(), overlay.InitNodeid); errno != syscall.EINVAL {
			t.Errorf("READLINK: %v", errno)
		}
	})
	t.Run("a second INIT does not re-arm it", func(t *testing.T) {
		ov.Forget(overlay.InitNodeid, 1)
		ov.Destroy()
		ov.Init(0)
		if _, errno := lookup(ov, fuse.RootID, overlay.InitName); errno != syscall.ENOENT {
			t.Fatalf("LOOKUP after a second INIT: %v, want ENOENT", errno)
		}
		if err := ov.SetPayload(payload); err != nil {
			t.Fatal(err)
		}
		if e, errno := lookup(ov, fuse.RootID, overlay.InitName); errno != 0 || e.Nodeid != overlay.InitNodeid {
			t.Fatalf("LOOKUP after the host's SetPayload: %v", errno)
		}
	})
}

// TestNoPayload: without a payload the name does not exist (ENOENT, not
// the EBADF of libkrun <= 1.18), and a host file of that name shows through.
func TestNoPayload(t *testing.T) {
	ov, dir := newFS(t)
	for _, nodeid := range []uint64{overlay.InitNodeid} {
		if _, errno := lookup(ov, fuse.RootID, overlay.InitName); errno != syscall.ENOENT {
			t.Fatalf("LOOKUP without a payload: %v, want ENOENT", errno)
		}
		var attr fuse.AttrOut
		if errno := ov.GetAttr(req(), nodeid, &fuse.GetAttrIn{}, &attr); errno != syscall.ENOENT {
			t.Errorf("GETATTR of nodeid 2: %v, want ENOENT", errno)
		}
		if _, errno := read(t, ov, 0, 10); errno != syscall.ENOENT {
			t.Errorf("READ of nodeid 2: %v, want ENOENT", errno)
		}
	}
	if err := os.WriteFile(filepath.Join(dir, overlay.InitName), []byte("host file"), 0o644); err != nil {
		t.Fatal(err)
	}
	if e, errno := lookup(ov, fuse.RootID, overlay.InitName); errno != 0 || e.Nodeid == overlay.InitNodeid || e.Attr.Size != 9 {
		t.Fatalf("host init.krun: %+v %v", e, errno)
	}
	if err := ov.SetPayload([]byte("x")); err != nil {
		t.Fatal(err)
	}
	ov.RemovePayload()
	if ov.Payload() != nil {
		t.Fatal("RemovePayload left a payload")
	}
}

// TestPayloadRules: the overlay applies initlib's rules: empty refused with
// the sentinel (and nothing changes), scripts lasting, others one-shot.
func TestPayloadRules(t *testing.T) {
	ov, _ := newFS(t)
	for _, b := range [][]byte{nil, {}} {
		if err := ov.SetPayload(b); !errors.Is(err, initlib.ErrEmptyPayload) {
			t.Errorf("SetPayload(%#v) = %v, want initlib.ErrEmptyPayload", b, err)
		}
	}
	if _, errno := lookup(ov, fuse.RootID, overlay.InitName); errno != syscall.ENOENT {
		t.Fatalf("a refused payload is served: %v", errno)
	}
	if err := ov.SetPayload(make([]byte, initlib.MaxPayloadSize+1)); !errors.Is(err, initlib.ErrHugePayload) {
		t.Errorf("oversized: %v, want ErrHugePayload", err)
	}
	if err := ov.SetPayload(initlib.ShellTemplate.Bytes); err != nil {
		t.Fatal(err)
	}
	for i := range 3 {
		if e, errno := lookup(ov, fuse.RootID, overlay.InitName); errno != 0 || e.Nodeid != overlay.InitNodeid {
			t.Fatalf("script lookup %d: %v (scripts are re-opened by their interpreter)", i+1, errno)
		}
	}
	if err := ov.SetPayload(initlib.ExitAtOnce.Bytes); err != nil {
		t.Fatal(err)
	}
	lookup(ov, fuse.RootID, overlay.InitName)
	if _, errno := lookup(ov, fuse.RootID, overlay.InitName); errno != syscall.ENOENT {
		t.Fatalf("an ELF payload is one-shot again after a script: %v", errno)
	}
}

// TestServesTheCallersMemory: the overlay never copies the payload: what
// it reports is the caller's slice, and a change to the caller's bytes is
// what the next READ returns.
func TestServesTheCallersMemory(t *testing.T) {
	ov, _ := newFS(t)
	mine := []byte("caller-owned init bytes")
	if err := ov.SetPayload(mine); err != nil {
		t.Fatal(err)
	}
	if got := ov.Payload(); unsafe.SliceData(got) != unsafe.SliceData(mine) || len(got) != len(mine) {
		t.Fatal("Payload() is not the caller's slice")
	}
	if _, errno := lookup(ov, fuse.RootID, overlay.InitName); errno != 0 {
		t.Fatal(errno)
	}
	mine[0] = 'C'
	if got, _ := read(t, ov, 0, 64); string(got) != "Caller-owned init bytes" {
		t.Fatalf("READ after the caller changed its bytes: %q", got)
	}
}

// TestPolicyAsksTheOverlay: initlib's central check derives "the root
// serves a payload" from the overlay itself.
func TestPolicyAsksTheOverlay(t *testing.T) {
	ov, _ := newFS(t)
	spec := initlib.InitSpec{Policy: initlib.InitKrun}
	dev := []initlib.FSDevice{{Tag: initlib.RootTag, FS: ov}}
	if err := spec.Check(dev); !errors.Is(err, initlib.ErrPolicy) {
		t.Fatalf("overlay without payload: %v, want ErrPolicy", err)
	}
	if err := ov.SetPayload(initlib.ExitAtOnce.Bytes); err != nil {
		t.Fatal(err)
	}
	if err := spec.Check(dev); err != nil {
		t.Fatalf("overlay with payload: %v", err)
	}
}
