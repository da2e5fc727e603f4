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
		r := serve(t, s, [][]byte{fromPID(request(fuse.OpIoctl, node, fuse.IoctlIn{Cmd: fuse.ExitCodeIoctl, Arg: 42}), fuse.InitPID, 0)})
		if r.hdr.Error != -int32(syscall.ENOTTY) {
			t.Errorf("exit-code ioctl on nodeid %d: error %d, want -ENOTTY", node, r.hdr.Error)
		}
		if code, ok := ov.ExitCode(); ok {
			t.Fatalf("exit-code ioctl on nodeid %d set the exit code to %d", node, code)
		}
	}
	r = serve(t, s, [][]byte{fromPID(request(fuse.OpIoctl, fuse.RootID, fuse.IoctlIn{Cmd: fuse.ExitCodeIoctl, Arg: 7}), fuse.InitPID, 0)})
	if code, ok := ov.ExitCode(); r.hdr.Error != 0 || !ok || code != 7 {
		t.Fatalf("exit-code ioctl on the root: error %d, code %d set %v; want 7", r.hdr.Error, code, ok)
	}
}

// fromPID sets the caller's pid and uid in a request built by request: the
// FUSE header's pid is the calling thread's id in the filesystem's pid
// namespace, for virtio-fs the guest's first one.
func fromPID(b []byte, pid, uid uint32) []byte {
	binary.LittleEndian.PutUint32(b[24:], uid)
	binary.LittleEndian.PutUint32(b[32:], pid)
	return b
}

// TestExitCodeIoctlOnlyFromInit: only the guest's init (pid 1, the thread
// krun-init reports from) may report the exit code; any other guest
// process, root or not, gets EPERM on the root too, and the code stays
// unset. The check is on the pid, not the uid, so it holds with a policy
// that squashes guest root, under which the init's uid is no longer 0.
// (Issue 11, item 11: the ioctl was accepted from any caller.)
func TestExitCodeIoctlOnlyFromInit(t *testing.T) {
	squash, err := fuse.ParseIDRule("squash:0:65534:1")
	if err != nil {
		t.Fatal(err)
	}
	for _, policy := range []fuse.GuestPolicy{{}, {UIDs: fuse.IDMap{squash}}} {
		pt, err := passthrough.New(t.TempDir(), passthrough.Options{})
		if err != nil {
			t.Fatal(err)
		}
		defer pt.Close()
		ov := overlay.New(pt)
		s := fuse.NewServer(ov, fuse.Options{Policy: policy})
		serve(t, s, [][]byte{initIn(7, 31, 0xffffffff)})
		for _, caller := range []struct{ pid, uid uint32 }{{0, 0}, {2, 0}, {4242, 0}, {4242, 1000}, {0xffffffff, 0}} {
			r := serve(t, s, [][]byte{fromPID(request(fuse.OpIoctl, fuse.RootID, fuse.IoctlIn{Cmd: fuse.ExitCodeIoctl, Arg: 42}), caller.pid, caller.uid)})
			if r.hdr.Error != -int32(syscall.EPERM) {
				t.Errorf("policy %v: exit-code ioctl from pid %d uid %d: error %d, want -EPERM", policy.UIDs, caller.pid, caller.uid, r.hdr.Error)
			}
			if code, ok := ov.ExitCode(); ok {
				t.Fatalf("policy %v: exit-code ioctl from pid %d uid %d set the exit code to %d", policy.UIDs, caller.pid, caller.uid, code)
			}
		}
		r := serve(t, s, [][]byte{fromPID(request(fuse.OpIoctl, fuse.RootID, fuse.IoctlIn{Cmd: fuse.ExitCodeIoctl, Arg: 7}), fuse.InitPID, 0)})
		if code, ok := ov.ExitCode(); r.hdr.Error != 0 || !ok || code != 7 {
			t.Fatalf("policy %v: exit-code ioctl from the init: error %d, code %d set %v; want 7", policy.UIDs, r.hdr.Error, code, ok)
		}
	}
}
