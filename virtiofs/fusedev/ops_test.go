package fusedev_test

import (
	"bytes"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

func TestFileOperationsThroughKernelClient(t *testing.T) {
	mt := mount(t, mountOpts{})

	// create, write, read
	writeFile(t, mt.path("a.txt"), []byte("alpha"))
	if b, _ := os.ReadFile(mt.host("a.txt")); string(b) != "alpha" {
		t.Fatalf("host sees %q after write through the mount", b)
	}
	if b, err := os.ReadFile(mt.path("a.txt")); err != nil || string(b) != "alpha" {
		t.Fatalf("read back %q, %v", b, err)
	}
	// rename, link, symlink, unlink
	must(t, os.Rename(mt.path("a.txt"), mt.path("b.txt")))
	if _, err := os.Stat(mt.host("a.txt")); !errors.Is(err, os.ErrNotExist) {
		t.Fatal("rename left the old name on the host")
	}
	must(t, os.Link(mt.path("b.txt"), mt.path("hard.txt")))
	var st syscall.Stat_t
	must(t, syscall.Stat(mt.host("b.txt"), &st))
	if st.Nlink != 2 {
		t.Fatalf("nlink after link: %d", st.Nlink)
	}
	must(t, os.Symlink("b.txt", mt.path("sym")))
	if target, _ := os.Readlink(mt.host("sym")); target != "b.txt" {
		t.Fatalf("host symlink target %q", target)
	}
	if b, _ := os.ReadFile(mt.path("sym")); string(b) != "alpha" {
		t.Fatalf("read through symlink: %q", b)
	}
	must(t, os.Remove(mt.path("hard.txt")))
	if _, err := os.Lstat(mt.host("hard.txt")); !errors.Is(err, os.ErrNotExist) {
		t.Fatal("unlink did not remove the host file")
	}
	// mkdir, rmdir
	must(t, os.Mkdir(mt.path("dir"), 0o750))
	if fi, err := os.Stat(mt.host("dir")); err != nil || fi.Mode().Perm() != 0o750 || !fi.IsDir() {
		t.Fatalf("mkdir on host: %v %v", fi, err)
	}
	must(t, os.Remove(mt.path("dir")))
	if _, err := os.Stat(mt.host("dir")); !errors.Is(err, os.ErrNotExist) {
		t.Fatal("rmdir left the directory")
	}
	// chmod, chown, truncate, utimes
	must(t, os.Chmod(mt.path("b.txt"), 0o600))
	must(t, os.Chown(mt.path("b.txt"), 1234, 5678))
	must(t, os.Truncate(mt.path("b.txt"), 2))
	when := time.Date(2001, 2, 3, 4, 5, 6, 0, time.UTC)
	must(t, os.Chtimes(mt.path("b.txt"), when, when))
	must(t, syscall.Stat(mt.host("b.txt"), &st))
	if st.Mode&0o777 != 0o600 || st.Uid != 1234 || st.Gid != 5678 || st.Size != 2 || st.Mtim.Sec != when.Unix() {
		t.Fatalf("host attrs after chmod/chown/truncate/utimes: mode %o uid %d gid %d size %d mtime %d",
			st.Mode&0o777, st.Uid, st.Gid, st.Size, st.Mtim.Sec)
	}
	// xattrs
	must(t, unix.Setxattr(mt.path("b.txt"), "user.krunbench", []byte("v1"), 0))
	buf := make([]byte, 64)
	n, err := unix.Getxattr(mt.host("b.txt"), "user.krunbench", buf)
	if err != nil || string(buf[:n]) != "v1" {
		t.Fatalf("host xattr %q %v", buf[:n], err)
	}
	n, err = unix.Listxattr(mt.path("b.txt"), buf)
	if err != nil || !bytes.Contains(buf[:n], []byte("user.krunbench\x00")) {
		t.Fatalf("listxattr %q %v", buf[:n], err)
	}
	must(t, unix.Removexattr(mt.path("b.txt"), "user.krunbench"))
	if _, err := unix.Getxattr(mt.host("b.txt"), "user.krunbench", buf); err != unix.ENODATA {
		t.Fatalf("removexattr: host still has it (%v)", err)
	}
}

func TestLargeDirectoryListing(t *testing.T) {
	mt := mount(t, mountOpts{})
	must(t, os.Mkdir(mt.host("big"), 0o755))
	want := make([]string, 10_000)
	for i := range want {
		want[i] = fmt.Sprintf("entry-%05d", i)
		f, err := os.Create(filepath.Join(mt.host("big"), want[i]))
		must(t, err)
		f.Close()
	}
	entries, err := os.ReadDir(mt.path("big"))
	must(t, err)
	var got []string
	for _, e := range entries {
		got = append(got, e.Name())
	}
	slices.Sort(got)
	if !slices.Equal(got, want) {
		t.Fatalf("readdir of 10,000 entries: got %d names", len(got))
	}
	// ls -l style: every entry stat'ed through the mount.
	out, err := exec.Command("ls", "-la", mt.path("big")).Output()
	must(t, err)
	if lines := bytes.Count(out, []byte("\n")); lines != 10_000+3 {
		t.Fatalf("ls -la printed %d lines", lines)
	}
}

func TestFallocateAndSeekHoles(t *testing.T) {
	mt := mount(t, mountOpts{})
	f, err := os.Create(mt.path("sparse"))
	must(t, err)
	defer f.Close()
	const mib = 1 << 20
	must(t, unix.Fallocate(int(f.Fd()), 0, 0, 4*mib))
	var st syscall.Stat_t
	must(t, syscall.Stat(mt.host("sparse"), &st))
	if st.Size != 4*mib || st.Blocks*512 < 4*mib {
		t.Fatalf("fallocate: host size %d blocks %d", st.Size, st.Blocks)
	}
	g, err := os.Create(mt.path("holes"))
	must(t, err)
	defer g.Close()
	_, err = g.WriteAt([]byte("data"), 8*mib)
	must(t, err)
	must(t, g.Sync())
	data, err := unix.Seek(int(g.Fd()), 0, unix.SEEK_DATA)
	must(t, err)
	hole, err := unix.Seek(int(g.Fd()), 0, unix.SEEK_HOLE)
	must(t, err)
	if data < 7*mib || data > 8*mib || hole != 0 {
		t.Fatalf("SEEK_DATA %d SEEK_HOLE %d; want data near 8 MiB and a hole at 0", data, hole)
	}
}

func TestRoundTrip256MiBWithChecksum(t *testing.T) {
	mt := mount(t, mountOpts{})
	const size = 256 << 20
	src := io.LimitReader(newPattern(), size)
	f, err := os.Create(mt.path("big.bin"))
	must(t, err)
	h := sha256.New()
	if _, err := io.Copy(io.MultiWriter(f, h), src); err != nil {
		t.Fatal(err)
	}
	must(t, f.Close())
	want := h.Sum(nil)
	for _, p := range []string{mt.host("big.bin"), mt.path("big.bin")} {
		g, err := os.Open(p)
		must(t, err)
		h := sha256.New()
		n, err := io.Copy(h, g)
		g.Close()
		if err != nil || n != size || !bytes.Equal(h.Sum(nil), want) {
			t.Fatalf("%s: %d bytes, checksum match %v, err %v", p, n, bytes.Equal(h.Sum(nil), want), err)
		}
	}
}

// pattern is a deterministic, non-repeating-looking byte stream.
type pattern struct{ x uint64 }

func newPattern() *pattern { return &pattern{x: 0x9e3779b97f4a7c15} }

func (p *pattern) Read(b []byte) (int, error) {
	for i := range b {
		p.x ^= p.x << 13
		p.x ^= p.x >> 7
		p.x ^= p.x << 17
		b[i] = byte(p.x)
	}
	return len(b), nil
}

func TestCallerCredentials(t *testing.T) {
	mt := mount(t, mountOpts{})
	must(t, os.Chmod(mt.host("."), 0o777))
	writeFile(t, mt.host("rootfile"), []byte("root's"))
	must(t, os.Chmod(mt.host("rootfile"), 0o644))

	asUser := func(script string) ([]byte, error) {
		cmd := exec.Command("/bin/sh", "-c", script)
		cmd.Dir = "/"
		cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: 1000, Gid: 1000}}
		return cmd.CombinedOutput()
	}
	if out, err := asUser("echo mine > " + mt.path("userfile")); err != nil {
		t.Fatalf("uid 1000 could not create a file: %v %s", err, out)
	}
	var st syscall.Stat_t
	must(t, syscall.Stat(mt.host("userfile"), &st))
	if st.Uid != 1000 || st.Gid != 1000 {
		t.Fatalf("file created by uid 1000 is owned by %d:%d on the host", st.Uid, st.Gid)
	}
	if out, err := asUser("echo evil > " + mt.path("rootfile")); err == nil {
		t.Fatalf("uid 1000 wrote a root-owned 0644 file: %s", out)
	}
	if b, _ := os.ReadFile(mt.host("rootfile")); string(b) != "root's" {
		t.Fatalf("root-owned file changed to %q", b)
	}
	if out, err := asUser("cat " + mt.path("rootfile")); err != nil || string(out) != "root's" {
		t.Fatalf("uid 1000 could not read a 0644 file: %v %q", err, out)
	}
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}
