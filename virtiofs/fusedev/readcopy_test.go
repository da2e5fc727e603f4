package fusedev_test

import (
	"bytes"
	"testing"

	"golang.org/x/sys/unix"
)

// TestSmallReadsCopied reads through the mount with O_DIRECT, so each
// pread is one READ of its own size: READs of at most 16 KiB are answered
// by copying (pread + one write, as passthrough_hp does: splice.go's
// copyReadMax), so serving them opens no splice pipes in the server; a
// 32 KiB READ is spliced and its worker opens its two pipes (four
// descriptors). Every reply carries the file's bytes either way.
func TestSmallReadsCopied(t *testing.T) {
	mt := mount(t, mountOpts{})
	const size = 1 << 20
	fd, want := openDirectPattern(t, mt, "small.bin", size)
	pread := func(off, n int) {
		t.Helper()
		buf := alignedBuf(n)
		got, err := unix.Pread(fd, buf, int64(off))
		if err != nil || got != n || !bytes.Equal(buf, want[off:off+n]) {
			t.Fatalf("O_DIRECT pread of %d bytes at %d: got %d (%v), bytes equal %v",
				n, off, got, err, got == n && bytes.Equal(buf, want[off:off+n]))
		}
	}
	before := mt.serverFDs(t)
	for _, c := range []struct{ off, n int }{{0, 4096}, {4096, 8192}, {65536, 16384}, {size - 16384, 16384}} {
		pread(c.off, c.n)
	}
	if got := mt.serverFDs(t); got != before {
		t.Fatalf("server descriptors %d after READs of 4-16 KiB, %d before: small READs were spliced (pipes opened)", got, before)
	}
	pread(131072, 32768)
	if got := mt.serverFDs(t); got != before+4 {
		t.Fatalf("server descriptors %d after a 32 KiB READ, want %d (+4: one worker's two splice pipes)", got, before+4)
	}
}
