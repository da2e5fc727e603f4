package fusedev_test

import (
	"bytes"
	"io"
	"os"
	"testing"
	"unsafe"

	"golang.org/x/sys/unix"
)

// alignedBuf returns n bytes starting on a 4096-byte boundary, as O_DIRECT
// needs on most host filesystems.
func alignedBuf(n int) []byte {
	const align = 4096
	b := make([]byte, n+align)
	off := int(uintptr(unsafe.Pointer(&b[0])) & (align - 1))
	if off != 0 {
		off = align - off
	}
	return b[off : off+n]
}

// openDirectPattern writes size bytes of the test pattern to name in the
// host directory and opens it through the mount with O_DIRECT (closed at
// the test's end); it returns the descriptor and the bytes written.
func openDirectPattern(t *testing.T, mt *mounted, name string, size int) (int, []byte) {
	t.Helper()
	want := make([]byte, size)
	_, _ = io.ReadFull(newPattern(), want)
	writeFile(t, mt.host(name), want)
	fd, err := unix.Open(mt.path(name), unix.O_RDONLY|unix.O_DIRECT|unix.O_CLOEXEC, 0)
	must(t, err)
	t.Cleanup(func() { unix.Close(fd) })
	return fd, want
}

// TestDirectIO reads and writes a file through the mount with O_DIRECT:
// the kernel sends the client's aligned requests straight to the server
// (no page cache), and the server opens the host file O_DIRECT too, so its
// buffers must be aligned. READ replies are spliced or copied (the 1 MiB
// ones are always copied: they do not fit the pipes); both ways are run.
func TestDirectIO(t *testing.T) {
	for _, noSplice := range []bool{false, true} {
		t.Run(map[bool]string{false: "splice", true: "copy"}[noSplice], func(t *testing.T) {
			testDirectIO(t, mountOpts{noSplice: noSplice})
		})
	}
}

func testDirectIO(t *testing.T, o mountOpts) {
	mt := mount(t, o)
	const size = 2 << 20
	fd, want := openDirectPattern(t, mt, "direct.bin", size)
	for _, c := range []struct{ off, n int }{{0, 4096}, {4096, 4096}, {8192, 256 << 10}, {size - 4096, 256 << 10}, {0, 1 << 20}, {1 << 20, 1 << 20}, {size - 4096, 1 << 20}} {
		buf := alignedBuf(c.n)
		n, err := unix.Pread(fd, buf, int64(c.off))
		wantN := min(c.n, size-c.off)
		if err != nil || n != wantN || !bytes.Equal(buf[:n], want[c.off:c.off+wantN]) {
			t.Fatalf("O_DIRECT pread of %d bytes at %d: got %d (%v), want %d, equal %v",
				c.n, c.off, n, err, wantN, n >= 0 && bytes.Equal(buf[:max(n, 0)], want[c.off:c.off+max(n, 0)]))
		}
	}

	wfd, err := unix.Open(mt.path("direct-out.bin"), unix.O_CREAT|unix.O_WRONLY|unix.O_DIRECT|unix.O_CLOEXEC, 0o644)
	must(t, err)
	defer unix.Close(wfd)
	for off := 0; off < size; off += 1 << 20 {
		buf := alignedBuf(1 << 20)
		copy(buf, want[off:])
		if n, err := unix.Pwrite(wfd, buf, int64(off)); err != nil || n != len(buf) {
			t.Fatalf("O_DIRECT pwrite of %d bytes at %d: %d, %v", len(buf), off, n, err)
		}
	}
	if got, err := os.ReadFile(mt.host("direct-out.bin")); err != nil || !bytes.Equal(got, want) {
		t.Fatalf("host file after O_DIRECT writes: %d bytes, equal %v, %v", len(got), bytes.Equal(got, want), err)
	}
}
