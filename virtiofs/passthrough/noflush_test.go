package passthrough

import (
	"os"
	"path/filepath"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/krunbench/krunbench/virtiofs/fuse"
)

// TestCreateNoFlush creates a file on a tmpfs and on a ramfs mounted in
// the share: the tmpfs file's CREATE reply tells the client to skip FLUSH
// (tmpfs has no flush), the ramfs one's does not (not in noFlushTypes), and
// the share's own filesystem gets the flag exactly when its type is listed.
func TestCreateNoFlush(t *testing.T) {
	fs, dir := newTestFS(t, Options{})
	var s unix.Statfs_t
	if err := unix.Statfs(dir, &s); err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		sub, fstype string
		want        bool
	}{
		{"", "", noFlushTypes[int64(s.Type)]},
		{"tmp", "tmpfs", true},
		{"ram", "ramfs", false},
	}
	for _, c := range cases {
		parent := uint64(fuse.RootID)
		if c.sub != "" {
			mnt := filepath.Join(dir, c.sub)
			if err := os.Mkdir(mnt, 0o755); err != nil {
				t.Fatal(err)
			}
			if err := unix.Mount(c.fstype, mnt, c.fstype, 0, ""); err != nil {
				t.Fatalf("mount %s: %v", c.fstype, err)
			}
			t.Cleanup(func() { unix.Unmount(mnt, unix.MNT_DETACH) })
			parent = lookup(t, fs, fuse.RootID, c.sub).Nodeid
		}
		var e fuse.EntryOut
		var o fuse.OpenOut
		must(t, fs.Create(rootReq, parent, "f", &fuse.CreateIn{Flags: unix.O_WRONLY | unix.O_EXCL, Mode: 0o644}, &e, &o), "create on "+c.fstype)
		if got := o.OpenFlags&fuse.FopenNoflush != 0; got != c.want {
			t.Errorf("create on %q (%s): FOPEN_NOFLUSH %v, want %v", c.sub, c.fstype, got, c.want)
		}
		must(t, fs.Release(rootReq, e.Nodeid, &fuse.ReleaseIn{Fh: o.Fh}), "release")
	}
}
