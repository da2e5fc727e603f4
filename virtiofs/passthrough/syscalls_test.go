package passthrough

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"golang.org/x/sys/unix"
)

// TestVectoredIO checks preadv and pwritev against the file's bytes, for
// buffer lists that fit the stack's iovecs and for longer ones, with
// empty buffers among them (which move nothing).
func TestVectoredIO(t *testing.T) {
	path := filepath.Join(t.TempDir(), "f")
	want := make([]byte, 300_000)
	for i := range want {
		want[i] = byte(i * 7)
	}
	if err := os.WriteFile(path, want, 0o644); err != nil {
		t.Fatal(err)
	}
	fd, err := unix.Open(path, unix.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(fd)
	for _, nbufs := range []int{1, 3, stackIovecs, stackIovecs + 1, 200} {
		bufs := make([][]byte, nbufs)
		total := 0
		for i := range bufs {
			size := 4096
			if i%3 == 1 {
				size = 0
			} else if i%3 == 2 {
				size = 100 + i
			}
			bufs[i] = make([]byte, size)
			total += size
		}
		const off = 1234
		n, err := preadv(fd, bufs, off)
		if err != nil || n != min(total, len(want)-off) {
			t.Fatalf("%d buffers: preadv = %d, %v; want %d bytes", nbufs, n, err, total)
		}
		if got := bytes.Join(bufs, nil); !bytes.Equal(got, want[off:off+n]) {
			t.Fatalf("%d buffers: preadv read other bytes than the file's", nbufs)
		}
		for _, b := range bufs {
			for i := range b {
				b[i] ^= 0xff
			}
		}
		if n, err := pwritev(fd, bufs, off); err != nil || n != total {
			t.Fatalf("%d buffers: pwritev = %d, %v; want %d", nbufs, n, err, total)
		}
		got := make([]byte, total)
		if _, err := unix.Pread(fd, got, off); err != nil || !bytes.Equal(got, bytes.Join(bufs, nil)) {
			t.Fatalf("%d buffers: pwritev wrote other bytes (%v)", nbufs, err)
		}
		copy(want[off:], got)
	}
	if _, err := preadv(-1, [][]byte{make([]byte, 1)}, 0); !errors.Is(err, unix.EBADF) {
		t.Fatalf("preadv of fd -1: %v, want EBADF", err)
	}
}

// TestNameCalls checks openat and unlinkat as unix.Openat and
// unix.Unlinkat behave: the file created, its errors as errnos.
func TestNameCalls(t *testing.T) {
	dir := t.TempDir()
	dfd, err := unix.Open(dir, unix.O_DIRECTORY|unix.O_RDONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(dfd)
	fd, err := openat(dfd, "new", unix.O_WRONLY|unix.O_CREAT|unix.O_EXCL|unix.O_CLOEXEC, 0o640)
	if err != nil {
		t.Fatal(err)
	}
	unix.Close(fd)
	if st, err := os.Stat(filepath.Join(dir, "new")); err != nil || st.Mode().Perm()&0o600 != 0o600 {
		t.Fatalf("created file: %v, %v", st, err)
	}
	if _, err := openat(dfd, "new", unix.O_WRONLY|unix.O_CREAT|unix.O_EXCL, 0o640); err != unix.EEXIST {
		t.Fatalf("openat O_EXCL of an existing name: %v, want EEXIST", err)
	}
	if _, err := openat(dfd, "a\x00b", unix.O_RDONLY, 0); err != unix.EINVAL {
		t.Fatalf("openat of a name with a NUL: %v, want EINVAL", err)
	}
	if err := unlinkat(dfd, "new", 0); err != nil {
		t.Fatal(err)
	}
	if err := unlinkat(dfd, "new", 0); err != unix.ENOENT {
		t.Fatalf("unlinkat of a missing name: %v, want ENOENT", err)
	}
	if err := unlinkat(dfd, strings.Repeat("x", unix.NAME_MAX+1), 0); err != unix.ENAMETOOLONG {
		t.Fatalf("unlinkat of a name over NAME_MAX: %v, want ENAMETOOLONG", err)
	}
}
