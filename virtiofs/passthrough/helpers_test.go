package passthrough

import (
	"encoding/binary"
	"os"
	"path/filepath"
	"testing"
	"unsafe"

	"golang.org/x/sys/unix"

	"github.com/krunbench/krunbench/virtiofs/fuse"
)

var rootReq = &fuse.Request{}

func userReq(uid, gid uint32) *fuse.Request {
	return &fuse.Request{Caller: fuse.Caller{Uid: uid, Gid: gid}}
}

func newTestFS(t *testing.T, opts Options) (*FS, string) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root")
	}
	dir := t.TempDir()
	fs, err := New(dir, opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { fs.Close() })
	return fs, dir
}

func must(t *testing.T, e fuse.Errno, what string) {
	t.Helper()
	if e != 0 {
		t.Fatalf("%s: %v", what, e)
	}
}

func wantErr(t *testing.T, got, want fuse.Errno, what string) {
	t.Helper()
	if got != want {
		t.Fatalf("%s: got errno %v (%d), want %v (%d)", what, got, int(got), want, int(want))
	}
}

func lookup(t *testing.T, fs *FS, parent uint64, name string) fuse.EntryOut {
	t.Helper()
	var out fuse.EntryOut
	must(t, fs.Lookup(rootReq, parent, name, &out), "lookup "+name)
	return out
}

func writeFile(t *testing.T, path, data string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(data), 0o644); err != nil {
		t.Fatal(err)
	}
}

// readAll opens nodeid, reads up to n bytes at 0 and releases it.
func readAll(t *testing.T, fs *FS, r *fuse.Request, nodeid uint64, n int) string {
	t.Helper()
	var oo fuse.OpenOut
	must(t, fs.Open(r, nodeid, &fuse.OpenIn{Flags: unix.O_RDONLY}, &oo), "open")
	buf := make([]byte, n)
	got, e := fs.Read(r, nodeid, &fuse.ReadIn{Fh: oo.Fh, Size: uint32(n)}, [][]byte{buf})
	must(t, e, "read")
	must(t, fs.Release(r, nodeid, &fuse.ReleaseIn{Fh: oo.Fh}), "release")
	return string(buf[:got])
}

type listed struct {
	name  string
	ino   uint64
	off   uint64
	typ   uint32
	entry fuse.EntryOut
}

// parseList decodes a READDIR or READDIRPLUS buffer.
func parseList(t *testing.T, b []byte, plus bool) []listed {
	t.Helper()
	var out []listed
	for len(b) > 0 {
		var l listed
		if plus {
			l.entry = *(*fuse.EntryOut)(unsafe.Pointer(&b[0]))
			b = b[fuse.EntryOutSize:]
		}
		l.ino = binary.NativeEndian.Uint64(b[0:])
		l.off = binary.NativeEndian.Uint64(b[8:])
		n := int(binary.NativeEndian.Uint32(b[16:]))
		l.typ = binary.NativeEndian.Uint32(b[20:])
		l.name = string(b[24 : 24+n])
		size := (24 + n + 7) &^ 7
		if size > len(b) {
			t.Fatalf("truncated dirent")
		}
		b = b[size:]
		out = append(out, l)
	}
	return out
}

// listDir reads a whole directory with buffers of size bytes.
func listDir(t *testing.T, fs *FS, r *fuse.Request, nodeid uint64, plus bool, size int) []listed {
	t.Helper()
	var oo fuse.OpenOut
	must(t, fs.OpenDir(r, nodeid, &fuse.OpenIn{}, &oo), "opendir")
	defer fs.ReleaseDir(r, nodeid, &fuse.ReleaseIn{Fh: oo.Fh})
	var all []listed
	var off uint64
	for {
		list := fuse.NewDirList(nil, size, plus)
		must(t, fs.ReadDir(r, nodeid, &fuse.ReadIn{Fh: oo.Fh, Offset: off, Size: uint32(size)}, plus, list), "readdir")
		got := parseList(t, list.Bytes(), plus)
		if len(got) == 0 {
			return all
		}
		all = append(all, got...)
		off = got[len(got)-1].off
	}
}

func countFDs(t *testing.T) int {
	t.Helper()
	ents, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Fatal(err)
	}
	return len(ents)
}
