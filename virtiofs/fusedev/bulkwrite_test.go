package fusedev_test

import (
	"bytes"
	"io"
	"os"
	"strconv"
	"strings"
	"testing"
)

// TestBulkWrites writes large WRITEs through the kernel client, which the
// server takes from /dev/fuse by splicing and moves pipe -> file, mixed
// with what must not take that path or must switch it off again: small
// writes, metadata requests, an O_APPEND file, unaligned offsets. Every
// byte is checked on the host, and the server's counter shows which path
// served the large writes (with splicing off, none is spliced).
//
// "default-pipes" runs with fs.pipe-max-size at the 1 MiB Linux ships,
// whose pipes are four buffers short of a 1 MiB WRITE: the server then
// asks for smaller requests (spliceableRequest) and still splices them;
// before it did, every WRITE there was copied through the server.
func TestBulkWrites(t *testing.T) {
	requireRoot(t)
	for _, tc := range []struct {
		name     string
		noSplice bool
		pipeMax  int
	}{{"splice", false, 2 << 20}, {"nosplice", true, 2 << 20}, {"default-pipes", false, 1 << 20}} {
		t.Run(tc.name, func(t *testing.T) {
			pipeMaxSize(t, tc.pipeMax)
			mt := mount(t, mountOpts{noSplice: tc.noSplice})
			const mib = 1 << 20
			data := make([]byte, 24*mib)
			_, _ = io.ReadFull(newPattern(), data)

			// 1 MiB writes at page-aligned and unaligned offsets, with a
			// small write, a stat and a create between them.
			f, err := os.Create(mt.path("bulk.bin"))
			must(t, err)
			for off := 0; off < 8*mib; off += mib {
				_, err := f.WriteAt(data[off:off+mib], int64(off))
				must(t, err)
			}
			_, err = f.WriteAt(data[8*mib:8*mib+4096], 8*mib)
			must(t, err)
			_, err = os.Stat(mt.path("bulk.bin"))
			must(t, err)
			writeFile(t, mt.path("small.txt"), []byte("between bulk writes\n"))
			for off := 8*mib + 4096; off < 24*mib; off += mib {
				end := min(off+mib+777, len(data))
				_, err := f.WriteAt(data[off:end], int64(off))
				must(t, err)
			}
			must(t, f.Close())

			// O_APPEND: splice cannot write there; the server reads the
			// data from the pipe instead.
			a, err := os.OpenFile(mt.path("append.bin"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
			must(t, err)
			for off := 0; off < 4*mib; off += mib {
				_, err := a.Write(data[off : off+mib])
				must(t, err)
			}
			must(t, a.Close())

			checkHost(t, mt.host("bulk.bin"), data)
			checkHost(t, mt.host("append.bin"), data[:4*mib])
			checkHost(t, mt.host("small.txt"), []byte("between bulk writes\n"))

			spliced := mt.splicedWrites(t)
			if tc.noSplice && spliced != 0 {
				t.Fatalf("%d WRITEs spliced with splicing off", spliced)
			}
			// 24 large writes to bulk.bin; the first of a run is read to
			// switch splicing on, and so is the one after the small write.
			if !tc.noSplice && spliced < 16 {
				t.Fatalf("only %d of 24 large WRITEs were spliced", spliced)
			}
			t.Logf("%d WRITEs spliced", spliced)
		})
	}
}

// pipeMaxSize sets fs.pipe-max-size to want for the test (a server
// without CAP_SYS_RESOURCE, as in the CI sandbox, cannot grow pipes past
// it; root with it can) and restores it afterwards.
func pipeMaxSize(t *testing.T, want int) {
	t.Helper()
	const path = "/proc/sys/fs/pipe-max-size"
	b, err := os.ReadFile(path)
	must(t, err)
	was, err := strconv.Atoi(strings.TrimSpace(string(b)))
	must(t, err)
	if was == want {
		return
	}
	must(t, os.WriteFile(path, []byte(strconv.Itoa(want)), 0))
	t.Cleanup(func() { _ = os.WriteFile(path, []byte(strconv.Itoa(was)), 0) })
}

// checkHost compares a host file with want.
func checkHost(t *testing.T, path string, want []byte) {
	t.Helper()
	got, err := os.ReadFile(path)
	must(t, err)
	if !bytes.Equal(got, want) {
		i := 0
		for i < min(len(got), len(want)) && got[i] == want[i] {
			i++
		}
		t.Fatalf("%s: %d bytes, want %d; first difference at %d", path, len(got), len(want), i)
	}
}
