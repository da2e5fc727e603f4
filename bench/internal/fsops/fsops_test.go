package fsops

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"golang.org/x/sys/unix"
)

// TestWalkStatCountsRegularFiles: a tree of 3 files in two directories,
// a symlink and an empty directory counts 3; a closed stop channel
// stops it; a missing directory is an error.
func TestWalkStatCountsRegularFiles(t *testing.T) {
	dir := t.TempDir()
	for _, p := range []string{"a", "d/b", "d/e/c"} {
		if err := os.MkdirAll(filepath.Dir(filepath.Join(dir, p)), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, p), nil, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Symlink("a", filepath.Join(dir, "link")); err != nil {
		t.Fatal(err)
	}
	if err := os.Mkdir(filepath.Join(dir, "empty"), 0o755); err != nil {
		t.Fatal(err)
	}
	if n, err := WalkStat(dir, nil); n != 3 || err != nil {
		t.Fatalf("WalkStat = %d, %v; want 3 files", n, err)
	}
	stop := make(chan struct{})
	close(stop)
	if _, err := WalkStat(dir, stop); !errors.Is(err, ErrStopped) {
		t.Fatalf("WalkStat after stop: %v, want ErrStopped", err)
	}
	if _, err := WalkStat(filepath.Join(dir, "missing"), nil); err == nil {
		t.Fatal("WalkStat(a missing directory) = nil error")
	}
}

// TestWalkTolerantCountsAndGoesOn: in a tree of 2 files beside a chain
// of directories whose path outgrows PATH_MAX (made through descriptors,
// the way no path could), the walk counts the 2 files, fails once where
// the path gets too long, keeps that first error, and goes on; WalkStat
// stops at the same place with the error.
func TestWalkTolerantCountsAndGoesOn(t *testing.T) {
	dir := t.TempDir()
	for _, p := range []string{"a", "z/b"} {
		if err := os.MkdirAll(filepath.Dir(filepath.Join(dir, p)), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, p), nil, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	fd, err := unix.Open(dir, unix.O_DIRECTORY|unix.O_RDONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	long := strings.Repeat("d", 250)
	for range 20 { // 20 x 251 bytes > PATH_MAX (4096)
		if err := unix.Mkdirat(fd, long, 0o755); err != nil {
			t.Fatal(err)
		}
		next, err := unix.Openat(fd, long, unix.O_DIRECTORY|unix.O_RDONLY, 0)
		unix.Close(fd)
		if err != nil {
			t.Fatal(err)
		}
		fd = next
	}
	unix.Close(fd)
	t.Cleanup(func() { removeDeep(t, dir, long) })

	var tally WalkTally
	WalkTolerant(dir, &tally, nil)
	if tally.Seen != 2 || tally.Failed != 1 || !strings.Contains(tally.FirstError, "file name too long") || tally.ErrnoCounts() != "ENAMETOOLONG:1" {
		t.Fatalf("WalkTolerant = %+v; want 2 seen, 1 failed (file name too long)", tally)
	}
	var none WalkTally
	WalkTolerant(filepath.Join(dir, "missing"), &none, nil)
	if none.Failed != 1 || none.Seen != 0 || none.FirstError == "" || none.ErrnoCounts() != "ENOENT:1" {
		t.Fatalf("WalkTolerant(missing) = %+v; want 1 failure", none)
	}
	if _, err := WalkStat(dir, nil); err == nil {
		t.Fatal("WalkStat over the too-long chain = nil error")
	}
}

// removeDeep removes the chain of long directories from the bottom up
// through descriptors (t.TempDir's RemoveAll works by path).
func removeDeep(t *testing.T, dir, long string) {
	fds := []int{}
	fd, err := unix.Open(dir, unix.O_DIRECTORY|unix.O_RDONLY, 0)
	for err == nil {
		fds = append(fds, fd)
		fd, err = unix.Openat(fd, long, unix.O_DIRECTORY|unix.O_RDONLY, 0)
	}
	for i := len(fds) - 1; i >= 0; i-- {
		if i < len(fds)-1 {
			if err := unix.Unlinkat(fds[i], long, unix.AT_REMOVEDIR); err != nil {
				t.Error(err)
			}
		}
		unix.Close(fds[i])
	}
}

// TestCreateUnlinkLeavesNothing: 300 files made and removed leave the
// directory empty; a name already there is an error naming it; a closed
// stop channel stops it before the first file.
func TestCreateUnlinkLeavesNothing(t *testing.T) {
	dir := t.TempDir()
	if err := CreateUnlink(dir, 300, nil); err != nil {
		t.Fatal(err)
	}
	if left, _ := os.ReadDir(dir); len(left) != 0 {
		t.Fatalf("%d entries left behind", len(left))
	}
	if err := os.WriteFile(filepath.Join(dir, "f000002"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := CreateUnlink(dir, 5, nil); err == nil || !strings.Contains(err.Error(), "f000002") {
		t.Fatalf("CreateUnlink over an existing name: %v", err)
	}
	stop := make(chan struct{})
	close(stop)
	if err := CreateUnlink(t.TempDir(), 5, stop); !errors.Is(err, ErrStopped) {
		t.Fatalf("CreateUnlink after stop: %v, want ErrStopped", err)
	}
}

// TestPatternIsFixedAndVaried: the same megabyte every call, not one
// repeated byte.
func TestPatternIsFixedAndVaried(t *testing.T) {
	a, b := Pattern(), Pattern()
	if len(a) != PatternBytes || !bytes.Equal(a, b) {
		t.Fatalf("Pattern: %d bytes, equal twice: %v", len(a), bytes.Equal(a, b))
	}
	if bytes.Count(a, a[:1]) > len(a)/64 {
		t.Fatalf("Pattern repeats byte %#x %d times", a[0], bytes.Count(a, a[:1]))
	}
}

// TestReadFileReadsItAll: a 2.5-chunk file reads whole; a missing one is
// an error; a closed stop channel stops before the first read.
func TestReadFileReadsItAll(t *testing.T) {
	path := filepath.Join(t.TempDir(), "f")
	if err := os.WriteFile(path, make([]byte, 10240), 0o644); err != nil {
		t.Fatal(err)
	}
	if n, err := ReadFile(path, 4096, nil); n != 10240 || err != nil {
		t.Fatalf("ReadFile = %d, %v; want 10240", n, err)
	}
	if _, err := ReadFile(path+".missing", 4096, nil); err == nil {
		t.Fatal("ReadFile(a missing file) = nil error")
	}
	stop := make(chan struct{})
	close(stop)
	if n, err := ReadFile(path, 4096, stop); n != 0 || !errors.Is(err, ErrStopped) {
		t.Fatalf("ReadFile after stop = %d, %v", n, err)
	}
}
