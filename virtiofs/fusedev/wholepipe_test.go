package fusedev_test

import (
	"io"
	"os"
	"testing"

	"golang.org/x/sys/unix"
)

// TestWholePipeWrites mounts with fs.pipe-max-size at the 1 MiB Linux
// ships and checks the max_write INIT offered by the WRITEs the kernel
// then sends: 1016 KiB (the 256-buffer request pipe's pages less the
// headers' buffer and a spare) with WholePipeWrites, 512 KiB without.
// The writes start at unaligned offsets, so a max_write WRITE covers
// max_pages pages, the most buffers the kernel puts in the pipe; every
// byte is checked on the host and the large buffered WRITEs must have
// been spliced to the file. Buffered, through the writeback cache, and
// O_DIRECT. Before WholePipeWrites the largest WRITE was 512 KiB in all.
func TestWholePipeWrites(t *testing.T) {
	const kib, mib = 1 << 10, 1 << 20
	for _, tc := range []struct {
		name      string
		whole     bool
		writeback bool
		direct    bool
		want      int
	}{
		{"default", false, false, false, 512 * kib},
		{"whole", true, false, false, 1016 * kib},
		{"whole-writeback", true, true, false, 1016 * kib},
		{"whole-direct", true, false, true, 1016 * kib},
	} {
		t.Run(tc.name, func(t *testing.T) {
			pipeMaxSize(t, 1<<20)
			mt := mount(t, mountOpts{wholePipeWrites: tc.whole, writeback: tc.writeback})
			data := make([]byte, 12*mib)
			_, _ = io.ReadFull(newPattern(), data)
			if tc.direct {
				fd, err := unix.Open(mt.path("big.bin"), unix.O_CREAT|unix.O_WRONLY|unix.O_DIRECT|unix.O_CLOEXEC, 0o644)
				must(t, err)
				for off := 0; off < len(data); off += mib {
					buf := alignedBuf(mib)
					copy(buf, data[off:])
					if n, err := unix.Pwrite(fd, buf, int64(off)); err != nil || n != mib {
						unix.Close(fd)
						t.Fatalf("O_DIRECT pwrite at %d: %d, %v", off, n, err)
					}
				}
				must(t, unix.Close(fd))
			} else {
				f, err := os.Create(mt.path("big.bin"))
				must(t, err)
				// 1 MiB writes from offset 777, then one from 0 to
				// fill the start: every WRITE's data starts mid-page.
				for off := 777; off < len(data); off += mib {
					_, err := f.WriteAt(data[off:min(off+mib, len(data))], int64(off))
					must(t, err)
				}
				_, err = f.WriteAt(data[:777], 0)
				must(t, err)
				must(t, f.Sync())
				must(t, f.Close())
			}
			checkHost(t, mt.host("big.bin"), data)
			spliced := mt.splicedWrites(t)
			// READs stay at the readahead window (512 KiB), which a
			// reply pipe holds with its header and edges (splice.go).
			writeFile(t, mt.host("read.bin"), data[:4*mib])
			got, err := os.ReadFile(mt.path("read.bin"))
			must(t, err)
			if string(got) != string(data[:4*mib]) {
				t.Fatal("read.bin read back wrong through the mount")
			}

			largest, atMax, largestRead := 0, 0, 0
			for _, ev := range mt.events(t) {
				if ev.OpName == "READ" {
					largestRead = max(largestRead, int(ev.Size))
				}
				if ev.OpName != "WRITE" {
					continue
				}
				largest = max(largest, int(ev.Size))
				// A WRITE from mid-page stops at max_pages pages,
				// up to a page short of max_write.
				if int(ev.Size) > tc.want-4096 {
					atMax++
				}
			}
			t.Logf("largest WRITE %d KiB, %d WRITEs within a page of it, %d spliced; largest READ %d KiB",
				largest/kib, atMax, spliced, largestRead/kib)
			if largestRead > 512*kib || largestRead == 0 {
				t.Fatalf("largest READ %d bytes, want at most the 512 KiB readahead", largestRead)
			}
			if largest > tc.want || largest <= tc.want-4096 {
				t.Fatalf("largest WRITE %d bytes, want within a page below %d (max_write offered)", largest, tc.want)
			}
			if atMax < 8 {
				t.Fatalf("only %d WRITEs near max_write %d", atMax, tc.want)
			}
			// An O_DIRECT handle's data is spliced in but read from the
			// pipe (the host file needs aligned buffers), which the
			// counter of WRITEs moved pipe -> file does not count.
			if !tc.direct && spliced < uint64(atMax)/2 {
				t.Fatalf("%d of %d max_write WRITEs spliced", spliced, atMax)
			}
		})
	}
}
