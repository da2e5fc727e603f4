package fuse_test

import (
	"bytes"
	"encoding/binary"
	"math/rand/v2"
	"syscall"
	"testing"

	"github.com/krunbench/krunbench/virtiofs/fuse"
	"github.com/krunbench/krunbench/virtiofs/fuse/fusetest"
)

var unique uint64

// request builds a complete request with a correct header length.
func request(op uint32, nodeid uint64, body ...any) []byte {
	unique++
	return fusetest.Request(op, unique, nodeid, body...)
}

// split cuts b at the given offsets.
func split(b []byte, cuts ...int) [][]byte {
	var out [][]byte
	prev := 0
	for _, c := range cuts {
		if c > prev && c < len(b) {
			out = append(out, b[prev:c])
			prev = c
		}
	}
	return append(out, b[prev:])
}

type reply struct {
	hdr  fuse.OutHeader
	body []byte
	sent bool
}

func serve(t testing.TB, s *fuse.Server, in [][]byte, outSizes ...int) reply {
	if len(outSizes) == 0 {
		outSizes = []int{fuse.MaxWrite + 4096}
	}
	var out [][]byte
	for _, n := range outSizes {
		out = append(out, make([]byte, n))
	}
	n, sent := s.Serve(in, out)
	if !sent {
		return reply{}
	}
	flat := bytes.Join(out, nil)[:n]
	var r reply
	r.sent = true
	if err := binary.Read(bytes.NewReader(flat), binary.LittleEndian, &r.hdr); err != nil {
		t.Fatalf("reply shorter than a header: %d bytes", n)
	}
	if int(r.hdr.Len) != n {
		t.Fatalf("reply header says %d bytes, server returned %d", r.hdr.Len, n)
	}
	r.body = flat[fuse.OutHeaderSize:]
	return r
}

func initIn(major, minor, flags uint32) []byte {
	return request(fuse.OpInit, 0, fuse.InitIn{Major: major, Minor: minor, MaxReadahead: 1 << 17, Flags: flags},
		// Newer kernels append flags2 and reserved words.
		[44]byte{})
}

func newServer(t testing.TB) (*fuse.Server, *memFS) {
	fs := newMemFS()
	s := fuse.NewServer(fs, fuse.Options{})
	r := serve(t, s, [][]byte{initIn(7, 37, 0xffffffff)})
	if r.hdr.Error != 0 {
		t.Fatalf("INIT failed: %d", r.hdr.Error)
	}
	return s, fs
}

func TestWireSizesMatchFuseH(t *testing.T) {
	sizes := map[string][2]int{
		"in_header":  {binary.Size(fuse.InHeader{}), 40},
		"out_header": {binary.Size(fuse.OutHeader{}), 16},
		"attr":       {binary.Size(fuse.Attr{}), 88},
		"entry_out":  {binary.Size(fuse.EntryOut{}), 128},
		"attr_out":   {binary.Size(fuse.AttrOut{}), 104},
		"setattr_in": {binary.Size(fuse.SetAttrIn{}), 88},
		"read_in":    {binary.Size(fuse.ReadIn{}), 40},
		"write_in":   {binary.Size(fuse.WriteIn{}), 40},
		"init_out":   {binary.Size(fuse.InitOut{}), 64},
		"kstatfs":    {binary.Size(fuse.StatfsOut{}), 80},
		"ioctl_in":   {binary.Size(fuse.IoctlIn{}), 32},
		"cfr_in":     {binary.Size(fuse.CopyFileRangeIn{}), 56},
		"release_in": {binary.Size(fuse.ReleaseIn{}), 24},
	}
	for name, s := range sizes {
		if s[0] != s[1] {
			t.Errorf("%s: %d bytes, fuse.h says %d", name, s[0], s[1])
		}
	}
}

func TestInitNegotiation(t *testing.T) {
	s := fuse.NewServer(newMemFS(), fuse.Options{})
	if r := serve(t, s, [][]byte{request(fuse.OpLookup, 1, "x")}); r.hdr.Error != -int32(syscall.EIO) {
		t.Fatalf("request before INIT: error %d, want -EIO", r.hdr.Error)
	}
	if r := serve(t, s, [][]byte{initIn(7, 26, 0)}); r.hdr.Error != -int32(syscall.EPROTO) {
		t.Fatalf("7.26 client: error %d, want -EPROTO", r.hdr.Error)
	}
	r := serve(t, s, [][]byte{initIn(8, 0, 0)})
	var out fuse.InitOut
	binary.Read(bytes.NewReader(r.body), binary.LittleEndian, &out)
	if r.hdr.Error != 0 || out.Major != 7 || s.Initialized() {
		t.Fatalf("major 8: got error %d major %d initialized %v; want our major alone", r.hdr.Error, out.Major, s.Initialized())
	}
	kernelFlags := uint32(fuse.InitAsyncRead | fuse.InitWritebackCache | fuse.InitMaxPages | fuse.InitDoReaddirplus | fuse.InitPosixACL)
	r = serve(t, s, [][]byte{initIn(7, 37, kernelFlags)})
	binary.Read(bytes.NewReader(r.body), binary.LittleEndian, &out)
	if r.hdr.Error != 0 || len(r.body) != 64 {
		t.Fatalf("INIT 7.37: error %d, body %d bytes", r.hdr.Error, len(r.body))
	}
	if out.Minor != fuse.KernelMinor || out.MaxWrite != 1<<20 || out.MaxPages != 256 {
		t.Fatalf("INIT reply minor %d max_write %d max_pages %d", out.Minor, out.MaxWrite, out.MaxPages)
	}
	want := uint32(fuse.InitAsyncRead | fuse.InitMaxPages | fuse.InitDoReaddirplus)
	if out.Flags != want {
		t.Fatalf("flags %#x, want the intersection %#x (no writeback cache, no ACLs)", out.Flags, want)
	}
	r = serve(t, s, [][]byte{initIn(7, 27, 0)})
	binary.Read(bytes.NewReader(r.body), binary.LittleEndian, &out)
	if out.Minor != 27 {
		t.Fatalf("7.27 client: reply minor %d, want 27", out.Minor)
	}
}

// killprivFS is a memFS that claims to clear set-id bits itself.
type killprivFS struct{ *memFS }

func (killprivFS) HandlesKillprivV2() bool { return true }

// TestKillprivV2OfferedOnlyByHandlers: FUSE_HANDLE_KILLPRIV_V2 moves
// clearing set-id bits from the client kernel to the server, so INIT
// agrees to it only for a filesystem that says it does that
// (fuse.KillprivHandler), with the default offer and with an explicit one.
func TestKillprivV2OfferedOnlyByHandlers(t *testing.T) {
	kernelFlags := uint32(fuse.InitAsyncRead | fuse.InitHandleKillprivV2)
	for _, tc := range []struct {
		name string
		fs   fuse.FileSystem
		opts fuse.Options
		want bool
	}{
		{"memfs", newMemFS(), fuse.Options{}, false},
		{"memfs, explicit offer", newMemFS(), fuse.Options{Offer: fuse.Offered | fuse.InitWritebackCache}, false},
		{"handler", killprivFS{newMemFS()}, fuse.Options{}, true},
		{"handler, explicit offer", killprivFS{newMemFS()}, fuse.Options{Offer: fuse.Offered | fuse.InitWritebackCache}, true},
		{"handler, offer without it", killprivFS{newMemFS()}, fuse.Options{Offer: fuse.InitAsyncRead}, false},
	} {
		s := fuse.NewServer(tc.fs, tc.opts)
		r := serve(t, s, [][]byte{initIn(7, 37, kernelFlags)})
		var out fuse.InitOut
		binary.Read(bytes.NewReader(r.body), binary.LittleEndian, &out)
		if got := out.Flags&fuse.InitHandleKillprivV2 != 0; r.hdr.Error != 0 || got != tc.want {
			t.Errorf("%s: error %d, HANDLE_KILLPRIV_V2 agreed %v, want %v", tc.name, r.hdr.Error, got, tc.want)
		}
	}
}

// TestLimitRequests: a transport's limit (fusedev's pipes) is what INIT
// offers as max_write and, in pages, max_pages, and at least that as
// max_readahead; sizes out of range are kept to whole pages between one
// page and MaxWrite.
func TestLimitRequests(t *testing.T) {
	for _, tc := range []struct{ limit, write, pages, readahead int }{
		{512 << 10, 512 << 10, 128, 512 << 10}, {(512 << 10) + 100, 512 << 10, 128, 512 << 10},
		{1, 4096, 1, 128 << 10}, {4 << 20, 1 << 20, 256, 1 << 20},
	} {
		s := fuse.NewServer(newMemFS(), fuse.Options{})
		s.LimitRequests(tc.limit)
		r := serve(t, s, [][]byte{initIn(7, 37, fuse.InitMaxPages)})
		var out fuse.InitOut
		binary.Read(bytes.NewReader(r.body), binary.LittleEndian, &out)
		if r.hdr.Error != 0 || int(out.MaxWrite) != tc.write || int(out.MaxPages) != tc.pages || int(out.MaxReadahead) != tc.readahead {
			t.Errorf("limit %d: error %d, max_write %d, max_pages %d, max_readahead %d; want %d, %d and %d (the kernel offered 128 KiB)",
				tc.limit, r.hdr.Error, out.MaxWrite, out.MaxPages, out.MaxReadahead, tc.write, tc.pages, tc.readahead)
		}
	}
}

func TestRequestsSplitAtEveryBoundary(t *testing.T) {
	s, fs := newServer(t)
	fs.files["hello.txt"] = []byte("hello, world")
	req := request(fuse.OpLookup, 1, "hello.txt")
	for cut := 1; cut < len(req); cut++ {
		for cut2 := cut + 1; cut2 <= len(req); cut2 += 7 {
			r := serve(t, s, split(req, cut, cut2))
			if r.hdr.Error != 0 || len(r.body) != fuse.EntryOutSize {
				t.Fatalf("cut %d/%d: error %d, body %d", cut, cut2, r.hdr.Error, len(r.body))
			}
		}
	}
}

func TestWriteDataArrivesIntactAcrossSplits(t *testing.T) {
	s, fs := newServer(t)
	data := make([]byte, 100_000)
	for i := range data {
		data[i] = byte(i * 7)
	}
	req := request(fuse.OpWrite, 5, fuse.WriteIn{Fh: 1, Size: uint32(len(data))}, data)
	rng := rand.New(rand.NewPCG(1, 2))
	for range 50 {
		cuts := []int{rng.IntN(len(req)), rng.IntN(len(req)), rng.IntN(100), 41, 79}
		slicesSort(cuts)
		r := serve(t, s, split(req, cuts...))
		var wo fuse.WriteOut
		binary.Read(bytes.NewReader(r.body), binary.LittleEndian, &wo)
		if r.hdr.Error != 0 || wo.Size != uint32(len(data)) {
			t.Fatalf("write: error %d size %d", r.hdr.Error, wo.Size)
		}
		if got := fs.written[len(fs.written)-1]; !bytes.Equal(got, data) {
			t.Fatalf("write data differs after split at %v", cuts)
		}
	}
}

func slicesSort(a []int) {
	for i := range a {
		for j := i + 1; j < len(a); j++ {
			if a[j] < a[i] {
				a[i], a[j] = a[j], a[i]
			}
		}
	}
}

func TestReadFillsSplitReplyBuffers(t *testing.T) {
	s, fs := newServer(t)
	fs.files["f"] = bytes.Repeat([]byte("0123456789"), 1000)
	serve(t, s, [][]byte{request(fuse.OpLookup, 1, "f")})
	node := fs.next
	r := serve(t, s, [][]byte{request(fuse.OpRead, node, fuse.ReadIn{Offset: 3, Size: 5000})}, 7, 9, 4093, 100000)
	if r.hdr.Error != 0 || !bytes.Equal(r.body, fs.files["f"][3:5003]) {
		t.Fatalf("read across split reply buffers: error %d, %d bytes", r.hdr.Error, len(r.body))
	}
	r = serve(t, s, [][]byte{request(fuse.OpRead, node, fuse.ReadIn{Offset: 10000, Size: 4096})})
	if r.hdr.Error != 0 || len(r.body) != 0 {
		t.Fatalf("read at EOF: error %d, %d bytes; want 0 bytes", r.hdr.Error, len(r.body))
	}
}

func TestMalformedRequestsNeverPanic(t *testing.T) {
	s, fs := newServer(t)
	good := request(fuse.OpLookup, 1, "x")
	cases := map[string]struct {
		in      []byte
		errno   syscall.Errno
		dropped bool
	}{
		"empty":            {in: nil, dropped: true},
		"half a header":    {in: good[:20], dropped: true},
		"len below header": {in: withLen(good, 12), dropped: true},
		"len beyond data":  {in: withLen(good, uint32(len(good)+100)), errno: syscall.EINVAL},
		"len huge":         {in: withLen(good, 1<<30), errno: syscall.EINVAL},
		"unknown opcode":   {in: request(99, 1), errno: syscall.ENOSYS},
		"GETLK":            {in: request(fuse.OpGetlk, 1, [64]byte{}), errno: syscall.ENOSYS},
		"name without NUL": {in: request(fuse.OpLookup, 1, []byte("abc")), errno: syscall.EINVAL},
		"name too long":    {in: request(fuse.OpLookup, 1, string(bytes.Repeat([]byte("a"), 300))), errno: syscall.ENAMETOOLONG},
		"short read_in":    {in: request(fuse.OpRead, 1, [8]byte{}), errno: syscall.EINVAL},
		"write size lies":  {in: request(fuse.OpWrite, 1, fuse.WriteIn{Size: 4096}, []byte("short")), errno: syscall.EINVAL},
		"read too big":     {in: request(fuse.OpRead, 1, fuse.ReadIn{Size: 1 << 30}), errno: syscall.EINVAL},
		"xattr too big":    {in: request(fuse.OpSetxattr, 1, fuse.SetXattrIn{Size: 1 << 30}, "user.x"), errno: syscall.E2BIG},
		"batch forget lie": {in: request(fuse.OpBatchForget, 1, fuse.BatchForgetIn{Count: 1000}, fuse.ForgetOne{Nodeid: 9, Nlookup: 1}), dropped: true},
	}
	for name, c := range cases {
		r := serve(t, s, [][]byte{c.in})
		switch {
		case c.dropped && r.sent:
			t.Errorf("%s: got a reply (error %d), want it dropped", name, r.hdr.Error)
		case !c.dropped && (!r.sent || r.hdr.Error != -int32(c.errno)):
			t.Errorf("%s: reply sent=%v error %d, want -%d", name, r.sent, r.hdr.Error, c.errno)
		}
	}
	if fs.forgets != 1 {
		t.Errorf("batch forget with a lying count applied %d forgets, want the 1 present", fs.forgets)
	}
	if n, sent := s.Serve([][]byte{good}, [][]byte{make([]byte, 8)}); sent || n != 0 {
		t.Errorf("reply buffer smaller than a header: sent=%v n=%d, want dropped", sent, n)
	}
}

func withLen(req []byte, n uint32) []byte {
	c := append([]byte(nil), req...)
	binary.LittleEndian.PutUint32(c, n)
	return c
}

func TestForgetHasNoReplyAndXattrSizes(t *testing.T) {
	s, _ := newServer(t)
	if r := serve(t, s, [][]byte{request(fuse.OpForget, 5, fuse.ForgetIn{Nlookup: 3})}); r.sent {
		t.Fatal("FORGET got a reply")
	}
	r := serve(t, s, [][]byte{request(fuse.OpGetxattr, 1, fuse.GetXattrIn{Size: 0}, "user.k")})
	var size fuse.GetXattrOut
	binary.Read(bytes.NewReader(r.body), binary.LittleEndian, &size)
	if size.Size != uint32(len("value-of-user.k")) {
		t.Fatalf("xattr size query: %d", size.Size)
	}
	r = serve(t, s, [][]byte{request(fuse.OpGetxattr, 1, fuse.GetXattrIn{Size: 64}, "user.k")})
	if string(r.body) != "value-of-user.k" {
		t.Fatalf("xattr value %q", r.body)
	}
	r = serve(t, s, [][]byte{request(fuse.OpReaddir, 1, fuse.ReadIn{Size: 4096})})
	if r.hdr.Error != 0 || len(r.body) != 4*32 {
		t.Fatalf("readdir: error %d, %d bytes, want 4 entries of 32 bytes", r.hdr.Error, len(r.body))
	}
	r = serve(t, s, [][]byte{request(fuse.OpReaddir, 1, fuse.ReadIn{Size: 70})})
	if len(r.body) != 64 {
		t.Fatalf("readdir into 70 bytes: %d bytes, want two whole entries", len(r.body))
	}
}

func TestOpTableNames(t *testing.T) {
	for op, name := range map[uint32]string{fuse.OpLookup: "LOOKUP", fuse.OpReaddirplus: "READDIRPLUS", fuse.OpSyncfs: "SYNCFS", fuse.OpStatx: "STATX", 999: "OP_999"} {
		if got := fuse.OpName(op); got != name {
			t.Errorf("OpName(%d) = %q, want %q", op, got, name)
		}
	}
	if fuse.Implemented(fuse.OpSetlk) || !fuse.Implemented(fuse.OpCopyFileRange) {
		t.Error("Implemented disagrees with the table")
	}
}
