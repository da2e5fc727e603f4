package fuse_test

import (
	"encoding/binary"
	"fmt"
	"testing"
	"time"

	"github.com/krunbench/krunbench/virtiofs/fuse"
	"github.com/krunbench/krunbench/virtiofs/overlay"
	"github.com/krunbench/krunbench/virtiofs/passthrough"
)

// seeds are well-formed requests of many opcodes; the fuzzer mutates them.
func seeds() [][]byte {
	return [][]byte{
		request(fuse.OpLookup, 1, "init.krun"),
		request(fuse.OpGetattr, 1, fuse.GetAttrIn{}),
		request(fuse.OpRead, 2, fuse.ReadIn{Size: 4096}),
		request(fuse.OpWrite, 3, fuse.WriteIn{Size: 5}, []byte("hello")),
		request(fuse.OpMkdir, 1, fuse.MkdirIn{Mode: 0o755}, "d"),
		request(fuse.OpCreate, 1, fuse.CreateIn{Flags: 0o102, Mode: 0o644}, "f"),
		request(fuse.OpRename, 1, fuse.RenameIn{Newdir: 1}, "f", "g"),
		request(fuse.OpSymlink, 1, "l", "../../etc/passwd"),
		request(fuse.OpSetxattr, 1, fuse.SetXattrIn{Size: 3}, "user.a", []byte("xyz")),
		request(fuse.OpBatchForget, 0, fuse.BatchForgetIn{Count: 2}, fuse.ForgetOne{Nodeid: 3, Nlookup: 1}, fuse.ForgetOne{Nodeid: 2, Nlookup: 1}),
		request(fuse.OpIoctl, 1, fuse.IoctlIn{Cmd: fuse.ExitCodeIoctl, Arg: 42}),
		request(fuse.OpReaddirplus, 1, fuse.ReadIn{Size: 4096}),
		request(fuse.OpCopyFileRange, 3, fuse.CopyFileRangeIn{NodeidOut: 3, Len: 10}),
	}
}

// checkReply asserts a reply is self-consistent and answers the request.
func checkReply(t *testing.T, data []byte, out []byte, n int, sent bool) {
	if !sent {
		return
	}
	if n < fuse.OutHeaderSize || n > len(out) {
		t.Fatalf("reply length %d outside [16, %d]", n, len(out))
	}
	if got := binary.LittleEndian.Uint32(out); int(got) != n {
		t.Fatalf("reply header length %d, returned %d", got, n)
	}
	if len(data) >= 16 && binary.LittleEndian.Uint64(out[8:]) != binary.LittleEndian.Uint64(data[8:]) {
		t.Fatal("reply unique differs from the request's")
	}
}

// inputBound is how long one fuzz input may run before it counts as a
// hang. Go's fuzzer has no per-input deadline: a request the server never
// finishes would hang make fuzz for good. The slowest of 100,000 FuzzServe
// inputs took 0.3 s on a busy 2-core machine; the bound is far beyond any
// scheduling delay, so only a request of unbounded cost reaches it.
const inputBound = 60 * time.Second

// boundInput arms the hang detector for one input; the caller stops it
// when the input is done. A hang crashes the worker with the input in the
// message, and the fuzzer saves it as a failing input.
func boundInput(data []byte) (stop func() bool) {
	return time.AfterFunc(inputBound, func() {
		panic(fmt.Sprintf("fuzz input still running after %v (a request of unbounded cost is a DoS): %x", inputBound, data))
	}).Stop
}

// FuzzDecode feeds arbitrary bytes, split at arbitrary points, to a server
// over an in-memory filesystem: no panic, every reply well-formed.
func FuzzDecode(f *testing.F) {
	for _, s := range seeds() {
		f.Add(s, uint16(13), uint16(41))
	}
	f.Fuzz(func(t *testing.T, data []byte, cut1, cut2 uint16) {
		defer boundInput(data)()
		s, _ := newServer(t)
		out := make([]byte, 1<<16)
		n, sent := s.Serve(split(data, int(cut1)%(len(data)+1), int(cut2)), [][]byte{out[:7], out[7:]})
		checkReply(t, data, out, n, sent)
	})
}

// FuzzServe dispatches garbage requests to the real stack: the /init.krun
// overlay over the passthrough of a temporary directory.
func FuzzServe(f *testing.F) {
	for _, s := range seeds() {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		defer boundInput(data)()
		pt, err := passthrough.New(t.TempDir(), passthrough.Options{})
		if err != nil {
			t.Fatal(err)
		}
		defer pt.Close()
		ov := overlay.New(pt)
		ov.SetPayload([]byte("#!/bin/sh\necho hi\n"))
		s := fuse.NewServer(ov, fuse.Options{})
		serve(t, s, [][]byte{initIn(7, 31, 0xffffffff)})
		out := make([]byte, fuse.MaxWrite+4096)
		for _, req := range [][]byte{request(fuse.OpLookup, 1, "init.krun"), data, data} {
			n, sent := s.Serve([][]byte{req}, [][]byte{out})
			checkReply(t, req, out, n, sent)
		}
		s.Reset()
	})
}
