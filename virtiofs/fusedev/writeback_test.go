package fusedev_test

import (
	"bytes"
	"io"
	"os"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/krunbench/krunbench/virtiofs/fuse"
)

// TestWritebackCache writes through a mount with and without the kernel's
// writeback cache (serve --writeback): a partial-page write into an
// existing file opened write-only, a large unaligned write that extends
// it, and appends through O_APPEND. Every byte must reach the host file
// by close(2). With the cache the kernel reads the partial page before
// changing it, through the write-only open (the passthrough widens it to
// read-write on the host), and handles O_APPEND itself (the host file is
// opened without it); that READ on a write-only handle, seen in the
// trace, shows the cache was negotiated, and never happens without it.
func TestWritebackCache(t *testing.T) {
	requireRoot(t)
	for _, writeback := range []bool{true, false} {
		name := map[bool]string{true: "writeback", false: "writethrough"}[writeback]
		t.Run(name, func(t *testing.T) {
			mt := mount(t, mountOpts{writeback: writeback})
			orig := make([]byte, 3*4096)
			_, _ = io.ReadFull(newPattern(), orig)
			writeFile(t, mt.host("data.bin"), orig)
			writeFile(t, mt.host("log.txt"), []byte("one\n"))

			big := make([]byte, 1<<20)
			for i := range big {
				big[i] = byte(i*7 + 3)
			}
			f, err := os.OpenFile(mt.path("data.bin"), os.O_WRONLY, 0)
			must(t, err)
			_, err = f.WriteAt([]byte("hello"), 5)
			must(t, err)
			_, err = f.WriteAt(big, 8192+13)
			must(t, err)
			must(t, f.Close())
			want := append(bytes.Clone(orig[:8192+13]), big...)
			copy(want[5:], "hello")
			checkHost(t, mt.host("data.bin"), want)

			a, err := os.OpenFile(mt.path("log.txt"), os.O_WRONLY|os.O_APPEND, 0)
			must(t, err)
			for _, line := range []string{"two\n", "three\n"} {
				_, err := a.WriteString(line)
				must(t, err)
			}
			must(t, a.Close())
			checkHost(t, mt.host("log.txt"), []byte("one\ntwo\nthree\n"))

			// What the mount shows agrees with the host after a
			// fresh open.
			got, err := os.ReadFile(mt.path("data.bin"))
			must(t, err)
			if !bytes.Equal(got, want) {
				t.Fatalf("data.bin through the mount: %d bytes, differs from the host's", len(got))
			}

			readsWriteOnly := 0
			for _, ev := range mt.events(t) {
				if ev.Op == fuse.OpRead && ev.Flags&unix.O_ACCMODE == unix.O_WRONLY {
					readsWriteOnly++
				}
			}
			if writeback && readsWriteOnly == 0 {
				t.Fatal("no READ through the write-only open: the writeback cache was not negotiated")
			}
			if !writeback && readsWriteOnly != 0 {
				t.Fatalf("%d READs through a write-only open without the writeback cache", readsWriteOnly)
			}
		})
	}
}
