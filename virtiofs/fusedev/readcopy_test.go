package fusedev_test

import (
	"bytes"
	"fmt"
	"slices"
	"strings"
	"testing"

	"golang.org/x/sys/unix"
)

// TestSmallReadsCopied reads through the mount with O_DIRECT, so each
// pread is one READ of its own size: READs of at most 16 KiB are answered
// by copying (pread + one write, as passthrough_hp does: splice.go's
// copyReadMax), so serving them opens no splice pipes in the server; a
// 32 KiB READ is spliced and its worker opens its two pipes (four
// descriptors). Every reply carries the file's bytes either way. Only the
// server's pipe descriptors are counted: it may open or close others
// meanwhile (an inode's O_PATH descriptor, the runtime's), which once
// made a count of all of them fail on a busy machine (18 after, 17
// before, which one went unrecorded).
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
	before := mt.serverFDLinks(t)
	pipes := func(links map[string]string) int {
		n := 0
		for _, link := range links {
			if strings.HasPrefix(link, "pipe:") {
				n++
			}
		}
		return n
	}
	for _, c := range []struct{ off, n int }{{0, 4096}, {4096, 8192}, {65536, 16384}, {size - 16384, 16384}} {
		pread(c.off, c.n)
	}
	if got := mt.serverFDLinks(t); pipes(got) != pipes(before) {
		t.Fatalf("server pipe descriptors %d after READs of 4-16 KiB, %d before: small READs were spliced (pipes opened)\n%s",
			pipes(got), pipes(before), fdChanges(before, got))
	}
	pread(131072, 32768)
	if got := mt.serverFDLinks(t); pipes(got) != pipes(before)+4 {
		t.Fatalf("server pipe descriptors %d after a 32 KiB READ, want %d (+4: one worker's two splice pipes)\n%s",
			pipes(got), pipes(before)+4, fdChanges(before, got))
	}
}

// fdChanges lists the descriptors opened and closed between two
// serverFDLinks snapshots, one per line.
func fdChanges(before, after map[string]string) string {
	var lines []string
	for fd, link := range after {
		if before[fd] != link {
			lines = append(lines, fmt.Sprintf("opened %s -> %s", fd, link))
		}
	}
	for fd, link := range before {
		if after[fd] != link {
			lines = append(lines, fmt.Sprintf("closed %s -> %s", fd, link))
		}
	}
	slices.Sort(lines)
	return strings.Join(lines, "\n")
}
