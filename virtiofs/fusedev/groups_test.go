package fusedev_test

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"golang.org/x/sys/unix"
)

// TestSupplementaryGroupsAsTheKernelAllows is issue 11's rule for what the
// kernel checks with the caller's full credentials, supplementary groups
// included, while FUSE sends the server only the uid and the primary gid:
// uid 1000, holding group 3000 only as a supplementary group, reads and
// appends to a 0660 root:3000 file, lists a 0770 root:3000 directory and
// creates in it (touch, mkdir, ln -s, mkfifo, ln), and what it creates is
// owned by 1000 and its primary gid, or by the directory's gid (with SGID
// on directories) under a setgid directory, with the caller's umask
// applied. uid 2000, outside group 3000, is refused each of these, and
// the host files stay as they were.
func TestSupplementaryGroupsAsTheKernelAllows(t *testing.T) {
	mt := mount(t, mountOpts{})
	must(t, os.Chmod(mt.host("."), 0o755))
	must(t, os.Mkdir(mt.host("team"), 0o770))
	must(t, os.Chown(mt.host("team"), 0, 3000))
	must(t, os.Chmod(mt.host("team"), 0o770))
	writeFile(t, mt.host("team/notes"), []byte("notes\n"))
	must(t, os.Chown(mt.host("team/notes"), 0, 3000))
	must(t, os.Chmod(mt.host("team/notes"), 0o660))

	type hostStat struct{ uid, gid, mode uint32 }
	stat := func(name string) (hostStat, bool) {
		var st unix.Stat_t
		if err := unix.Lstat(mt.host(name), &st); err != nil {
			return hostStat{}, false
		}
		return hostStat{st.Uid, st.Gid, st.Mode}, true
	}
	team := mt.path("team")
	member := func(script string) (string, error) {
		return runAs(t, 1000, 1000, "umask 027; "+script, 1000, 3000)
	}

	// What uid 2000 may not do, tried first so that nothing it could
	// have done is mistaken for uid 1000's work.
	outsider := []string{
		"cat " + team + "/notes",
		"echo outsider >> " + team + "/notes",
		"ls " + team,
		"touch " + team + "/outsider",
		"mkdir " + team + "/outsider.d",
	}
	for _, s := range outsider {
		if out, err := runAs(t, 2000, 2000, s); err == nil || !strings.Contains(out, "Permission denied") {
			t.Errorf("uid 2000 (not in group 3000): %s: want Permission denied, got %v %q", s, err, out)
		}
	}
	for _, name := range []string{"team/outsider", "team/outsider.d"} {
		if _, ok := stat(name); ok {
			t.Errorf("uid 2000's refused create left %s on the host", name)
		}
	}

	if out, err := member("cat " + team + "/notes"); err != nil || out != "notes\n" {
		t.Errorf("uid 1000 (group 3000 supplementary) reading the 0660 root:3000 file: %v %q", err, out)
	}
	if out, err := member("echo member >> " + team + "/notes"); err != nil {
		t.Errorf("uid 1000 appending to the 0660 root:3000 file: %v %q", err, out)
	}
	if b, _ := os.ReadFile(mt.host("team/notes")); string(b) != "notes\nmember\n" {
		t.Errorf("the host file holds %q after uid 1000's append", b)
	}
	if out, err := member("ls " + team); err != nil || out != "notes\n" {
		t.Errorf("uid 1000 listing the 0770 root:3000 directory: %v %q", err, out)
	}
	// create runs each of touch, mkdir, ln -s, mkfifo and ln as uid 1000
	// on its own, making names that start with prefix.
	create := func(prefix string) {
		for _, s := range []string{"touch %sfile", "mkdir %sdir", "ln -s notes %slink", "mkfifo %sfifo", "ln " + team + "/notes %shard"} {
			s = fmt.Sprintf(s, prefix)
			if out, err := member(s); err != nil {
				t.Errorf("uid 1000 (group 3000 supplementary): %s: %v %q", s, err, out)
			}
		}
	}
	create(team + "/")
	want := map[string]hostStat{
		"team/file": {1000, 1000, unix.S_IFREG | 0o640},
		"team/dir":  {1000, 1000, unix.S_IFDIR | 0o750},
		"team/link": {1000, 1000, unix.S_IFLNK | 0o777},
		"team/fifo": {1000, 1000, unix.S_IFIFO | 0o640},
		"team/hard": {0, 3000, unix.S_IFREG | 0o660},
	}
	for name, w := range want {
		if got, ok := stat(name); !ok || got != w {
			t.Errorf("%s on the host: %+v (exists %v), want uid %d gid %d mode %o", name, got, ok, w.uid, w.gid, w.mode)
		}
	}

	// Under a setgid directory what uid 1000 creates gets the directory's
	// group, and a new directory keeps SGID.
	must(t, unix.Chmod(mt.path("team"), 0o2770))
	create(team + "/sg")
	want = map[string]hostStat{
		"team/sgfile": {1000, 3000, unix.S_IFREG | 0o640},
		"team/sgdir":  {1000, 3000, unix.S_IFDIR | 0o2750},
		"team/sglink": {1000, 3000, unix.S_IFLNK | 0o777},
		"team/sgfifo": {1000, 3000, unix.S_IFIFO | 0o640},
		"team/sghard": {0, 3000, unix.S_IFREG | 0o660},
	}
	for name, w := range want {
		if got, ok := stat(name); !ok || got != w {
			t.Errorf("%s on the host: %+v (exists %v), want uid %d gid %d mode %o", name, got, ok, w.uid, w.gid, w.mode)
		}
	}
	for _, s := range outsider {
		if out, err := runAs(t, 2000, 2000, s); err == nil || !strings.Contains(out, "Permission denied") {
			t.Errorf("uid 2000 after the setgid change: %s: want Permission denied, got %v %q", s, err, out)
		}
	}
	if b, _ := os.ReadFile(mt.host("team/notes")); string(b) != "notes\nmember\n" {
		t.Errorf("the host file holds %q after uid 2000's refused appends", b)
	}
}

// TestSupplementaryGroupsXattr: the kernel checks a user.* extended
// attribute like the file's data (read permission to get, write to set),
// with the caller's supplementary groups, so uid 1000 in group 3000 gets
// and sets user.* attributes of a 0660 root:3000 file and uid 2000 may not.
func TestSupplementaryGroupsXattr(t *testing.T) {
	mt := mount(t, mountOpts{})
	must(t, os.Chmod(mt.host("."), 0o755))
	writeFile(t, mt.host("notes"), []byte("notes\n"))
	must(t, os.Chown(mt.host("notes"), 0, 3000))
	must(t, os.Chmod(mt.host("notes"), 0o660))
	if err := unix.Setxattr(mt.host("notes"), "user.team", []byte("3000"), 0); err != nil {
		t.Skipf("SKIPPED: the shared directory's filesystem has no user xattrs: %v", err)
	}
	bin := xattrBinary(t)
	notes := mt.path("notes")

	if out, err := xattrAs(t, bin, 1000, 1000, []uint32{1000, 3000}, "get", notes, "user.team"); err != nil || out != "3000" {
		t.Errorf("uid 1000 (group 3000 supplementary) getting user.team: %v %q", err, out)
	}
	if out, err := xattrAs(t, bin, 1000, 1000, []uint32{1000, 3000}, "set", notes, "user.by", "1000"); err != nil {
		t.Errorf("uid 1000 (group 3000 supplementary) setting user.by: %v %q", err, out)
	}
	b := make([]byte, 64)
	if n, err := unix.Getxattr(mt.host("notes"), "user.by", b); err != nil || string(b[:n]) != "1000" {
		t.Errorf("user.by on the host after uid 1000 set it: %q %v", b[:max(n, 0)], err)
	}
	for _, args := range [][]string{{"get", notes, "user.team"}, {"set", notes, "user.by", "2000"}} {
		if out, err := xattrAs(t, bin, 2000, 2000, nil, args...); err == nil || !strings.Contains(out, "permission denied") {
			t.Errorf("uid 2000 (not in group 3000): %v: want permission denied, got %v %q", args[0], err, out)
		}
	}
	if n, err := unix.Getxattr(mt.host("notes"), "user.by", b); err != nil || string(b[:n]) != "1000" {
		t.Errorf("user.by on the host after uid 2000's refused set: %q %v", b[:max(n, 0)], err)
	}
}

// xattrEnv makes the test binary run xattrChild instead of the tests.
const xattrEnv = "KRUNBENCH_FUSEDEV_XATTR"

// xattrChild makes one call: "get PATH NAME" prints the value, "set PATH
// NAME VALUE" sets it. Errors go to stderr with exit status 1.
func xattrChild(args []string) int {
	var err error
	switch {
	case len(args) == 3 && args[0] == "get":
		b := make([]byte, 4096)
		var n int
		if n, err = unix.Getxattr(args[1], args[2], b); err == nil {
			os.Stdout.Write(b[:n])
		}
	case len(args) == 4 && args[0] == "set":
		err = unix.Setxattr(args[1], args[2], []byte(args[3]), 0)
	default:
		err = fmt.Errorf("usage: get PATH NAME | set PATH NAME VALUE, not %q", args)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	return 0
}

// xattrBinary copies the test binary where every user may run it (go
// test builds it in a directory only root can enter).
func xattrBinary(t *testing.T) string {
	t.Helper()
	self, err := os.Executable()
	must(t, err)
	src, err := os.Open(self)
	must(t, err)
	defer src.Close()
	bin := filepath.Join(worldDir(t), "fusedev.test")
	dst, err := os.OpenFile(bin, os.O_CREATE|os.O_WRONLY|os.O_EXCL, 0o755)
	must(t, err)
	_, err = io.Copy(dst, src)
	must(t, err)
	must(t, dst.Close())
	return bin
}

// xattrAs runs xattrChild as uid:gid with the supplementary groups given,
// bounded in time, and returns its combined output and error.
func xattrAs(t *testing.T, bin string, uid, gid uint32, groups []uint32, args ...string) (string, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), replyTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, args...)
	cmd.Dir = "/"
	cmd.Env = append(os.Environ(), xattrEnv+"=1")
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: uid, Gid: gid, Groups: append([]uint32{}, groups...)}}
	out, err := cmd.CombinedOutput()
	if ctx.Err() != nil {
		t.Fatalf("%q as %d:%d did not finish within %v: %s", args, uid, gid, replyTimeout, out)
	}
	return string(out), err
}
