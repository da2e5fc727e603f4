package fuse_test

import (
	"encoding/binary"
	"os"
	"path/filepath"
	"syscall"
	"testing"

	"github.com/krunbench/krunbench/virtiofs/fuse"
	"github.com/krunbench/krunbench/virtiofs/overlay"
	"github.com/krunbench/krunbench/virtiofs/passthrough"
)

// TestExitCodeIoctlOnlyOnRoot: the init reports its exit code with ioctl
// 0x7602 on the root it opened (libkrun-facts.md). On any other nodeid,
// a file or a nodeid nobody looked up, the command must not reach the
// overlay's handler: a guest process could otherwise fake the exit code
// through any file it can open. (Issue 11, item 11.)
func TestExitCodeIoctlOnlyOnRoot(t *testing.T) {
	share := t.TempDir()
	if err := os.WriteFile(filepath.Join(share, "f"), []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	pt, err := passthrough.New(share, passthrough.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer pt.Close()
	ov := overlay.New(pt)
	s := fuse.NewServer(ov, fuse.Options{})
	serve(t, s, [][]byte{initIn(7, 31, 0xffffffff)})
	r := serve(t, s, [][]byte{request(fuse.OpLookup, fuse.RootID, "f")})
	if r.hdr.Error != 0 {
		t.Fatalf("LOOKUP f: %d", r.hdr.Error)
	}
	file := binary.LittleEndian.Uint64(r.body)
	for _, node := range []uint64{file, 2, 9999} {
		r := serve(t, s, [][]byte{request(fuse.OpIoctl, node, fuse.IoctlIn{Cmd: fuse.ExitCodeIoctl, Arg: 42})})
		if r.hdr.Error != -int32(syscall.ENOTTY) {
			t.Errorf("exit-code ioctl on nodeid %d: error %d, want -ENOTTY", node, r.hdr.Error)
		}
		if code, ok := ov.ExitCode(); ok {
			t.Fatalf("exit-code ioctl on nodeid %d set the exit code to %d", node, code)
		}
	}
	r = serve(t, s, [][]byte{request(fuse.OpIoctl, fuse.RootID, fuse.IoctlIn{Cmd: fuse.ExitCodeIoctl, Arg: 7})})
	if code, ok := ov.ExitCode(); r.hdr.Error != 0 || !ok || code != 7 {
		t.Fatalf("exit-code ioctl on the root: error %d, code %d set %v; want 7", r.hdr.Error, code, ok)
	}
}
