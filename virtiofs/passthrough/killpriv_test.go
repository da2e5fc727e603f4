package passthrough

import (
	"os"
	"path/filepath"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/krunbench/krunbench/virtiofs/fuse"
)

// hostMode is the permission bits of the host file at p.
func hostMode(t *testing.T, p string) uint32 {
	t.Helper()
	var st unix.Stat_t
	if err := unix.Stat(p, &st); err != nil {
		t.Fatal(err)
	}
	return st.Mode & 0o7777
}

// TestKillprivV2Flags: with FUSE_HANDLE_KILLPRIV_V2 the client kernel
// leaves clearing set-id bits to the server and says, per request, that
// the caller lacks CAP_FSETID. Each flagged operation on a 06777 file
// (WRITE by Write and by the spliced WriteFD path, a truncating SETATTR,
// an O_TRUNC OPEN and CREATE of an existing file) must leave it 0777, as
// the same operation by an unprivileged local caller would; 02767 (SGID
// without group execute) keeps its bit on a write, as locally; and the
// same requests without the flags (a caller with CAP_FSETID) keep every
// bit. The server runs as root, so without dropping CAP_FSETID the host
// would keep the bits (all but the unflagged cases failed before the
// change: Write and WriteFD left 06777).
func TestKillprivV2Flags(t *testing.T) {
	fs, dir := newTestFS(t, Options{})
	fs.Init(fuse.Offered)
	if !fs.killpriv() {
		t.Fatal("INIT flags without HANDLE_KILLPRIV_V2")
	}
	setup := func(name string, mode uint32) uint64 {
		t.Helper()
		p := filepath.Join(dir, name)
		writeFile(t, p, "0123456789")
		if err := os.Chmod(p, os.FileMode(mode&0o777)|modeBits(mode)); err != nil {
			t.Fatal(err)
		}
		if got := hostMode(t, p); got != mode {
			t.Fatalf("%s: host mode %o, want %o", name, got, mode)
		}
		return lookup(t, fs, 1, name).Nodeid
	}
	open := func(nodeid uint64, flags, openFlags uint32) uint64 {
		t.Helper()
		var oo fuse.OpenOut
		must(t, fs.Open(rootReq, nodeid, &fuse.OpenIn{Flags: flags, OpenFlags: openFlags}, &oo), "open")
		t.Cleanup(func() { fs.Release(rootReq, nodeid, &fuse.ReleaseIn{Fh: oo.Fh}) })
		return oo.Fh
	}
	write := func(nodeid, fh uint64, flags uint32) {
		t.Helper()
		_, e := fs.Write(rootReq, nodeid, &fuse.WriteIn{Fh: fh, Size: 3, WriteFlags: flags}, [][]byte{[]byte("abc")})
		must(t, e, "write")
	}
	spliceWrite := func(nodeid, fh uint64, flags uint32) {
		t.Helper()
		fd, done, e := fs.WriteFD(rootReq, nodeid, &fuse.WriteIn{Fh: fh, Size: 3, WriteFlags: flags})
		must(t, e, "writefd")
		if fd < 0 {
			t.Fatal("WriteFD named no descriptor")
		}
		_, err := unix.Pwrite(fd, []byte("abc"), 0)
		done()
		if err != nil {
			t.Fatal(err)
		}
	}
	for _, tc := range []struct {
		name       string
		mode, want uint32
		do         func(nodeid uint64)
	}{
		{"write", 0o6777, 0o777, func(n uint64) { write(n, open(n, unix.O_WRONLY, 0), fuse.WriteKillSuidgid) }},
		{"write-fd", 0o6777, 0o777, func(n uint64) { spliceWrite(n, open(n, unix.O_WRONLY, 0), fuse.WriteKillSuidgid) }},
		{"write-sgid-noexec", 0o2767, 0o2767, func(n uint64) { write(n, open(n, unix.O_WRONLY, 0), fuse.WriteKillSuidgid) }},
		{"write-unflagged", 0o6777, 0o6777, func(n uint64) { write(n, open(n, unix.O_WRONLY, 0), 0) }},
		{"write-fd-unflagged", 0o6777, 0o6777, func(n uint64) { spliceWrite(n, open(n, unix.O_WRONLY, 0), 0) }},
		{"truncate", 0o6777, 0o777, func(n uint64) {
			var ao fuse.AttrOut
			must(t, fs.SetAttr(rootReq, n, &fuse.SetAttrIn{Valid: fuse.FattrSize | fuse.FattrKillSuid, Size: 1}, &ao), "setattr")
		}},
		{"truncate-unflagged", 0o6777, 0o6777, func(n uint64) {
			var ao fuse.AttrOut
			must(t, fs.SetAttr(rootReq, n, &fuse.SetAttrIn{Valid: fuse.FattrSize, Size: 1}, &ao), "setattr")
		}},
		{"open-trunc", 0o6777, 0o777, func(n uint64) { open(n, unix.O_WRONLY|unix.O_TRUNC, fuse.OpenKillSuidgid) }},
		{"open-trunc-unflagged", 0o6777, 0o6777, func(n uint64) { open(n, unix.O_WRONLY|unix.O_TRUNC, 0) }},
		{"create-existing", 0o6777, 0o777, func(n uint64) {
			var eo fuse.EntryOut
			var oo fuse.OpenOut
			in := &fuse.CreateIn{Flags: unix.O_WRONLY | unix.O_TRUNC, Mode: 0o644, OpenFlags: fuse.OpenKillSuidgid}
			must(t, fs.Create(rootReq, 1, "create-existing", in, &eo, &oo), "create")
			fs.Release(rootReq, eo.Nodeid, &fuse.ReleaseIn{Fh: oo.Fh})
		}},
	} {
		n := setup(tc.name, tc.mode)
		tc.do(n)
		if got := hostMode(t, filepath.Join(dir, tc.name)); got != tc.want {
			t.Errorf("%s on a %o file: host mode %o, want %o", tc.name, tc.mode, got, tc.want)
		}
	}
	// The thread that served a flagged request has CAP_FSETID back.
	var hdr = capHeader()
	var caps [2]unix.CapUserData
	if err := unix.Capget(hdr, &caps[0]); err != nil || caps[0].Effective&(1<<unix.CAP_FSETID) == 0 {
		t.Errorf("CAP_FSETID not restored: %v %#x", err, caps[0].Effective)
	}
}

// modeBits turns set-id and sticky bits into os.FileMode's.
func modeBits(mode uint32) os.FileMode {
	var m os.FileMode
	if mode&unix.S_ISUID != 0 {
		m |= os.ModeSetuid
	}
	if mode&unix.S_ISGID != 0 {
		m |= os.ModeSetgid
	}
	return m
}
