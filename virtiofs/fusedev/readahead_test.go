package fusedev_test

import (
	"io"
	"os"
	"testing"

	"github.com/krunbench/krunbench/virtiofs/fuse"
)

// TestSequentialReadsUseLargeREADs reads a 4 MiB file through the mount
// in 1 MiB reads: with the kernel's default 128 KiB readahead every READ
// was 128 KiB; the server raises its mount's window (readahead.go), so
// the kernel asks for up to max_pages at once. The bytes must match.
func TestSequentialReadsUseLargeREADs(t *testing.T) {
	requireRoot(t)
	mt := mount(t, mountOpts{})
	data := make([]byte, 4<<20)
	_, _ = io.ReadFull(newPattern(), data)
	writeFile(t, mt.host("seq.bin"), data)
	f, err := os.Open(mt.path("seq.bin"))
	must(t, err)
	got, err := io.ReadAll(f)
	must(t, err)
	must(t, f.Close())
	if string(got) != string(data) {
		t.Fatalf("read %d bytes through the mount, differing from the host file's %d", len(got), len(data))
	}
	largest := 0
	for _, ev := range mt.events(t) {
		if ev.Op == fuse.OpRead {
			largest = max(largest, int(ev.Size))
		}
	}
	if largest <= 128<<10 {
		t.Fatalf("largest READ %d bytes: the readahead window was not raised past 128 KiB", largest)
	}
	t.Logf("largest READ %d bytes", largest)
}
