package fuse_test

import (
	"bytes"
	"encoding/binary"
	"os"
	"path/filepath"
	"slices"
	"syscall"
	"testing"

	"github.com/krunbench/krunbench/virtiofs/fuse"
	"github.com/krunbench/krunbench/virtiofs/overlay"
	"github.com/krunbench/krunbench/virtiofs/passthrough"
)

// FuzzSequence runs sequences of FUSE requests, decoded from the fuzzer's
// bytes, against the real stack (the /init.krun overlay over the
// passthrough of a fresh directory) with small reply buffers, often split
// and sometimes without a single writable byte, as a virtqueue gives
// them. Each reply must fit the buffers it was given (no reply at all for
// FORGET, BATCH_FORGET and INTERRUPT). After every input an escape oracle
// checks a canary file and directory beside the share: never read (no
// reply carries their bytes), written, chmod-ed, linked or renamed into.
func FuzzSequence(f *testing.F) {
	for _, s := range sequenceSeeds() {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		defer boundInput(data)()
		w := newSeqWorld(t)
		c := &cursor{b: data}
		for range maxSeqOps {
			if c.done() {
				break
			}
			w.step(t, c)
		}
		w.srv.Reset()
		w.check(t)
	})
}

// maxSeqOps bounds the requests of one input (with the argument caps in
// step, what bounds its cost).
const maxSeqOps = 48

const canaryText = "CANARY-OUTSIDE-THE-SHARE-7f3a"

// cursor reads the fuzzer's bytes; past the end it reads zeros.
type cursor struct {
	b   []byte
	off int
}

func (c *cursor) done() bool { return c.off >= len(c.b) }

func (c *cursor) u8() byte {
	if c.off >= len(c.b) {
		return 0
	}
	c.off++
	return c.b[c.off-1]
}

func (c *cursor) u32() uint32 {
	return uint32(c.u8()) | uint32(c.u8())<<8 | uint32(c.u8())<<16 | uint32(c.u8())<<24
}

func (c *cursor) pick(n int) int { return int(c.u8()) % n }

type seqWorld struct {
	srv            *fuse.Server
	share, outside string
	canary, canDir string
	nodes, fhs     []uint64
	canaryStat     syscall.Stat_t
	outsideNames   []string
	canDirNames    []string
	outsideDirStat syscall.Stat_t
	leaked         bool
	names, targets []string
	xattrs         []string
}

func newSeqWorld(t *testing.T) *seqWorld {
	base := t.TempDir()
	w := &seqWorld{share: filepath.Join(base, "share"), outside: filepath.Join(base, "outside")}
	w.canary = filepath.Join(w.outside, "canary")
	w.canDir = filepath.Join(w.outside, "canary-dir")
	for _, d := range []string{w.share, w.outside, w.canDir, filepath.Join(w.share, "d")} {
		if err := os.Mkdir(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	for p, s := range map[string]string{
		w.canary: canaryText, filepath.Join(w.canDir, "inner"): canaryText,
		filepath.Join(w.share, "f"): "file data in the share", filepath.Join(w.share, "d", "g"): "g",
	} {
		if err := os.WriteFile(p, []byte(s), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	for name, target := range map[string]string{"up": "../outside", "abs": w.outside, "can": "../outside/canary", "dd": "d/../../outside/canary-dir"} {
		if err := os.Symlink(target, filepath.Join(w.share, name)); err != nil {
			t.Fatal(err)
		}
	}
	w.names = []string{"f", "d", "g", "up", "abs", "can", "dd", "new", "n2", "..", ".", "init.krun", "canary", "outside", "x/y", ""}
	w.targets = []string{"../outside", w.outside, "../outside/canary", "canary", "/", "d"}
	w.xattrs = []string{"user.a", "trusted.t", "security.capability", "system.posix_acl_access", "user."}
	w.outsideNames, w.canDirNames = listNames(t, w.outside), listNames(t, w.canDir)
	if err := syscall.Lstat(w.canary, &w.canaryStat); err != nil {
		t.Fatal(err)
	}
	if err := syscall.Lstat(w.outside, &w.outsideDirStat); err != nil {
		t.Fatal(err)
	}
	pt, err := passthrough.New(w.share, passthrough.Options{MaxHandles: 64})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { pt.Close() })
	ov := overlay.New(pt)
	ov.SetPayload([]byte("#!/bin/sh\necho hi\n"))
	w.srv = fuse.NewServer(ov, fuse.Options{})
	serve(t, w.srv, [][]byte{initIn(7, 31, 0xffffffff)})
	w.nodes = []uint64{fuse.RootID}
	return w
}

func listNames(t *testing.T, dir string) []string {
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range ents {
		names = append(names, e.Name())
	}
	return names
}

// replyShapes are the writable buffers a request may get.
var replyShapes = [][]int{{}, {16}, {7, 9}, {100, 28}, {4096}, {3, 61, 4096, 64 << 10}}

func (w *seqWorld) node(c *cursor) uint64 {
	if c.pick(8) == 0 {
		return uint64(c.u8()) // any nodeid, known or not
	}
	return w.nodes[c.pick(len(w.nodes))]
}

func (w *seqWorld) fh(c *cursor) uint64 {
	if len(w.fhs) == 0 || c.pick(8) == 0 {
		return uint64(c.u8())
	}
	return w.fhs[c.pick(len(w.fhs))]
}

func (w *seqWorld) name(c *cursor) string { return w.names[c.pick(len(w.names))] }

// request builds one request from the cursor.
func (w *seqWorld) request(c *cursor) (op uint32, req []byte) {
	node := w.node(c)
	small := uint64(c.u32() % (1 << 20))
	mode := c.u32() & 0o7777
	switch c.pick(30) {
	case 0:
		return fuse.OpLookup, request(fuse.OpLookup, node, w.name(c))
	case 1:
		return fuse.OpForget, request(fuse.OpForget, node, fuse.ForgetIn{Nlookup: uint64(c.pick(3))})
	case 2:
		n := c.pick(4)
		parts := []any{fuse.BatchForgetIn{Count: uint32(n + c.pick(2))}}
		for range n {
			parts = append(parts, fuse.ForgetOne{Nodeid: w.node(c), Nlookup: 1})
		}
		return fuse.OpBatchForget, request(fuse.OpBatchForget, 0, parts...)
	case 3:
		return fuse.OpGetattr, request(fuse.OpGetattr, node, fuse.GetAttrIn{GetattrFlags: uint32(c.pick(2)), Fh: w.fh(c)})
	case 4:
		return fuse.OpSetattr, request(fuse.OpSetattr, node, fuse.SetAttrIn{Valid: uint32(c.u8()) | uint32(c.pick(2))<<11, Fh: w.fh(c), Size: small, Mode: mode, Uid: uint32(c.pick(3)), Gid: uint32(c.pick(3))})
	case 5:
		return fuse.OpReadlink, request(fuse.OpReadlink, node)
	case 6:
		return fuse.OpSymlink, request(fuse.OpSymlink, node, w.name(c), w.targets[c.pick(len(w.targets))])
	case 7:
		typ := []uint32{syscall.S_IFREG, syscall.S_IFIFO, syscall.S_IFCHR, syscall.S_IFSOCK}[c.pick(4)]
		return fuse.OpMknod, request(fuse.OpMknod, node, fuse.MknodIn{Mode: typ | mode}, w.name(c))
	case 8:
		return fuse.OpMkdir, request(fuse.OpMkdir, node, fuse.MkdirIn{Mode: mode}, w.name(c))
	case 9:
		return fuse.OpUnlink, request(fuse.OpUnlink, node, w.name(c))
	case 10:
		return fuse.OpRmdir, request(fuse.OpRmdir, node, w.name(c))
	case 11:
		return fuse.OpRename, request(fuse.OpRename, node, fuse.RenameIn{Newdir: w.node(c)}, w.name(c), w.name(c))
	case 12:
		return fuse.OpLink, request(fuse.OpLink, node, fuse.LinkIn{Oldnodeid: w.node(c)}, w.name(c))
	case 13:
		flags := []uint32{syscall.O_RDONLY, syscall.O_RDWR, syscall.O_WRONLY | syscall.O_TRUNC, syscall.O_RDWR | syscall.O_APPEND, syscall.O_RDONLY | syscall.O_DIRECTORY}[c.pick(5)]
		return fuse.OpOpen, request(fuse.OpOpen, node, fuse.OpenIn{Flags: flags})
	case 14:
		return fuse.OpRead, request(fuse.OpRead, node, fuse.ReadIn{Fh: w.fh(c), Offset: small, Size: uint32(c.pick(4)) * 4096})
	case 15:
		data := bytes.Repeat([]byte{c.u8()}, c.pick(64)*64)
		return fuse.OpWrite, request(fuse.OpWrite, node, fuse.WriteIn{Fh: w.fh(c), Offset: small, Size: uint32(len(data))}, data)
	case 16:
		return fuse.OpRelease, request(fuse.OpRelease, node, fuse.ReleaseIn{Fh: w.fh(c)})
	case 17:
		value := bytes.Repeat([]byte{c.u8()}, c.pick(32))
		return fuse.OpSetxattr, request(fuse.OpSetxattr, node, fuse.SetXattrIn{Size: uint32(len(value))}, w.xattrs[c.pick(len(w.xattrs))], value)
	case 18:
		return fuse.OpGetxattr, request(fuse.OpGetxattr, node, fuse.GetXattrIn{Size: uint32(c.pick(3)) * 64}, w.xattrs[c.pick(len(w.xattrs))])
	case 19:
		return fuse.OpListxattr, request(fuse.OpListxattr, node, fuse.GetXattrIn{Size: uint32(c.pick(3)) * 64})
	case 20:
		return fuse.OpOpendir, request(fuse.OpOpendir, node, fuse.OpenIn{})
	case 21:
		op := []uint32{fuse.OpReaddir, fuse.OpReaddirplus}[c.pick(2)]
		return op, request(op, node, fuse.ReadIn{Fh: w.fh(c), Offset: uint64(c.pick(4)), Size: uint32(c.pick(3)) * 2048})
	case 22:
		return fuse.OpReleasedir, request(fuse.OpReleasedir, node, fuse.ReleaseIn{Fh: w.fh(c)})
	case 23:
		return fuse.OpCreate, request(fuse.OpCreate, node, fuse.CreateIn{Flags: []uint32{syscall.O_RDWR, syscall.O_RDWR | syscall.O_EXCL, syscall.O_WRONLY | syscall.O_TRUNC}[c.pick(3)], Mode: mode}, w.name(c))
	case 24:
		return fuse.OpInterrupt, request(fuse.OpInterrupt, 0, fuse.InterruptIn{Unique: uint64(c.u8())})
	case 25:
		// Lengths stay small: a FALLOCATE of terabytes fills the host disk.
		return fuse.OpFallocate, request(fuse.OpFallocate, node, fuse.FallocateIn{Fh: w.fh(c), Offset: small, Length: small%(1<<20) + 1, Mode: uint32(c.pick(4))})
	case 26:
		return fuse.OpLseek, request(fuse.OpLseek, node, fuse.LseekIn{Fh: w.fh(c), Offset: small, Whence: uint32(c.pick(5))})
	case 27:
		return fuse.OpCopyFileRange, request(fuse.OpCopyFileRange, node, fuse.CopyFileRangeIn{FhIn: w.fh(c), OffIn: small, NodeidOut: w.node(c), FhOut: w.fh(c), OffOut: uint64(c.u8()), Len: small})
	case 28:
		return fuse.OpIoctl, request(fuse.OpIoctl, node, fuse.IoctlIn{Fh: w.fh(c), Cmd: []uint32{fuse.ExitCodeIoctl, 0x5401, c.u32()}[c.pick(3)], Arg: uint64(c.u8())})
	default:
		if c.pick(2) == 0 {
			return fuse.OpDestroy, request(fuse.OpDestroy, 0)
		}
		return fuse.OpInit, initIn(7, 31, 0xffffffff)
	}
}

// step sends one request and checks its reply against its buffers.
func (w *seqWorld) step(t *testing.T, c *cursor) {
	op, req := w.request(c)
	in := split(req, c.pick(len(req)+1), c.pick(len(req)+1))
	shape := replyShapes[c.pick(len(replyShapes))]
	var out [][]byte
	total := 0
	for _, n := range shape {
		out = append(out, make([]byte, n))
		total += n
	}
	n, sent := w.srv.Serve(in, out)
	flat := bytes.Join(out, nil)
	if bytes.Contains(flat, []byte(canaryText)) {
		w.leaked = true
	}
	noReply := op == fuse.OpForget || op == fuse.OpBatchForget || op == fuse.OpInterrupt
	switch {
	case !sent && n != 0:
		t.Fatalf("%s: no reply, but length %d", fuse.OpName(op), n)
	case !sent:
		return
	case noReply:
		t.Fatalf("%s got a reply of %d bytes", fuse.OpName(op), n)
	case n < fuse.OutHeaderSize || n > total:
		t.Fatalf("%s: reply of %d bytes into %d writable bytes %v", fuse.OpName(op), n, total, shape)
	}
	var hdr fuse.OutHeader
	binary.Read(bytes.NewReader(flat), binary.LittleEndian, &hdr)
	if int(hdr.Len) != n || hdr.Unique != binary.LittleEndian.Uint64(req[8:]) {
		t.Fatalf("%s: reply header len %d unique %d, returned %d for unique %d", fuse.OpName(op), hdr.Len, hdr.Unique, n, binary.LittleEndian.Uint64(req[8:]))
	}
	body := flat[fuse.OutHeaderSize:n]
	if hdr.Error != 0 {
		return
	}
	switch op {
	case fuse.OpLookup, fuse.OpMknod, fuse.OpMkdir, fuse.OpSymlink, fuse.OpLink, fuse.OpCreate:
		if len(body) >= 8 {
			w.nodes = append(w.nodes, binary.LittleEndian.Uint64(body))
		}
		if op == fuse.OpCreate && len(body) >= fuse.EntryOutSize+8 {
			w.fhs = append(w.fhs, binary.LittleEndian.Uint64(body[fuse.EntryOutSize:]))
		}
	case fuse.OpOpen, fuse.OpOpendir:
		if len(body) >= 8 {
			w.fhs = append(w.fhs, binary.LittleEndian.Uint64(body))
		}
	}
}

// check is the escape oracle: the canaries outside the share are as they
// were, and no reply carried their bytes.
func (w *seqWorld) check(t *testing.T) {
	if w.leaked {
		t.Fatal("a reply carried the canary's content from outside the share")
	}
	b, err := os.ReadFile(w.canary)
	if err != nil || string(b) != canaryText {
		t.Fatalf("canary file: %q, %v", b, err)
	}
	var st, dst syscall.Stat_t
	if err := syscall.Lstat(w.canary, &st); err != nil {
		t.Fatal(err)
	}
	a := w.canaryStat
	if st.Mode != a.Mode || st.Uid != a.Uid || st.Gid != a.Gid || st.Nlink != a.Nlink || st.Size != a.Size || st.Mtim != a.Mtim || st.Ctim != a.Ctim {
		t.Fatalf("canary file changed: mode %o->%o owner %d:%d->%d:%d nlink %d->%d size %d->%d, mtime or ctime",
			a.Mode, st.Mode, a.Uid, a.Gid, st.Uid, st.Gid, a.Nlink, st.Nlink, a.Size, st.Size)
	}
	if err := syscall.Lstat(w.outside, &dst); err != nil {
		t.Fatal(err)
	}
	if dst.Mode != w.outsideDirStat.Mode || dst.Mtim != w.outsideDirStat.Mtim || dst.Ctim != w.outsideDirStat.Ctim {
		t.Fatalf("the directory outside the share changed (mode %o -> %o, or its entries)", w.outsideDirStat.Mode, dst.Mode)
	}
	if got := listNames(t, w.outside); !slices.Equal(got, w.outsideNames) {
		t.Fatalf("outside entries %v, were %v", got, w.outsideNames)
	}
	if got := listNames(t, w.canDir); !slices.Equal(got, w.canDirNames) {
		t.Fatalf("canary directory entries %v, were %v", got, w.canDirNames)
	}
}

// sequenceSeeds are short plausible sessions; the fuzzer mutates them.
func sequenceSeeds() [][]byte {
	return [][]byte{
		{0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 4},
		{0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 3, 0, 4, 13, 2, 0, 0, 0, 0, 0, 0, 0, 0, 0, 4},
		{6, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 7, 0, 5, 0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 1, 2},
		{2, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 2, 1, 1, 0, 0, 0, 0},
		{20, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 4, 21, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 2, 0},
		// SYMLINK new -> ../outside, then MKDIR n2 in the nodeid it
		// returned: an escape if that nodeid resolved the link.
		{1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 6, 7, 0, 0, 0, 4, 1, 1, 0, 0, 0, 0, 0xed, 1, 0, 0, 8, 8, 0, 0, 4},
	}
}
