package passthrough_test

import (
	"encoding/binary"
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"github.com/krunbench/krunbench/virtiofs/fuse"
	"github.com/krunbench/krunbench/virtiofs/fuse/fusetest"
	"github.com/krunbench/krunbench/virtiofs/overlay"
	"github.com/krunbench/krunbench/virtiofs/passthrough"
	"github.com/krunbench/krunbench/virtiofs/trace"
)

// reqRig serves raw FUSE requests through the stack `krunbench serve`
// builds (passthrough under the overlay, the tap on without node
// counters) over a real directory, so that the per-request cost of the
// server, from request decoded to reply encoded, can be measured alone.
type reqRig struct {
	srv *fuse.Server
	dir string
	out []byte
	// in and outs are the one-slice lists Serve takes, kept so that the
	// rig itself allocates nothing per request.
	in, outs [][]byte
}

func newReqRig(tb testing.TB, files int) *reqRig { return newReqRigTap(tb, files, true) }

// newReqRigTap is newReqRig with the tap on or off (serve --no-tap).
func newReqRigTap(tb testing.TB, files int, tapOn bool) *reqRig {
	tb.Helper()
	if os.Geteuid() != 0 {
		tb.Skip("needs root")
	}
	dir := tb.TempDir()
	for i := range files {
		if err := os.WriteFile(filepath.Join(dir, fmt.Sprintf("f%05d", i)), nil, 0o644); err != nil {
			tb.Fatal(err)
		}
	}
	pt, err := passthrough.New(dir, passthrough.Options{})
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { pt.Close() })
	ov := overlay.New(pt)
	opts := fuse.Options{Readdirplus: fuse.ReaddirplusAuto}
	if tapOn {
		opts.Observer = trace.NewTap(trace.Options{Resolver: ov, Inodes: ov, NoNodeCounters: true})
	}
	r := &reqRig{srv: fuse.NewServer(ov, opts), dir: dir, out: make([]byte, 4096)}
	r.in, r.outs = make([][]byte, 1), [][]byte{r.out}
	init := fusetest.Request(fuse.OpInit, 1, 0, fuse.InitIn{Major: 7, Minor: 37}, [44]byte{})
	if errno := r.serve(init); errno != 0 {
		tb.Fatalf("INIT: %d", errno)
	}
	return r
}

// serve sends one request and returns the reply's errno (negated as on
// the wire, so 0 is success).
func (r *reqRig) serve(req []byte) int32 {
	r.in[0], r.outs[0] = req, r.out
	n, reply := r.srv.Serve(r.in, r.outs)
	if !reply || n < fuse.OutHeaderSize {
		return -1
	}
	return -int32(binary.LittleEndian.Uint32(r.out[4:8]))
}

// entry decodes the nodeid of an entry reply.
func (r *reqRig) nodeid() uint64 {
	return binary.LittleEndian.Uint64(r.out[fuse.OutHeaderSize:])
}

// The requests of the guest path's stat and create workloads, one at a
// time: LOOKUP of a known name (hit), of a missing one (miss), of a name
// not in the table (new: its FORGET follows), GETATTR, and the
// CREATE/RELEASE/UNLINK triple.
func BenchmarkRequest(b *testing.B) {
	r := newReqRig(b, 1)
	hit := fusetest.Request(fuse.OpLookup, 2, fuse.RootID, "f00000")
	miss := fusetest.Request(fuse.OpLookup, 3, fuse.RootID, "nothere")
	getattr := fusetest.Request(fuse.OpGetattr, 4, fuse.RootID, fuse.GetAttrIn{})
	if r.serve(hit) != 0 {
		b.Fatal("LOOKUP failed")
	}
	fileGetattr := fusetest.Request(fuse.OpGetattr, 4, r.nodeid(), fuse.GetAttrIn{})
	run := func(name string, req []byte, want int32) {
		b.Run(name, func(b *testing.B) {
			b.ReportAllocs()
			for range b.N {
				if got := r.serve(req); got != want {
					b.Fatalf("errno %d, want %d", got, want)
				}
			}
		})
	}
	run("lookup-hit", hit, 0)
	run("lookup-miss", miss, 2)
	run("getattr-root", getattr, 0)
	run("getattr-file", fileGetattr, 0)
	b.Run("getattr-root-notap", func(b *testing.B) {
		r := newReqRigTap(b, 0, false)
		b.ReportAllocs()
		for range b.N {
			if r.serve(getattr) != 0 {
				b.Fatal("GETATTR failed")
			}
		}
	})
	b.Run("lookup-new+forget", func(b *testing.B) {
		r := newReqRig(b, 1000)
		reqs := make([][]byte, 1000)
		for i := range reqs {
			reqs[i] = fusetest.Request(fuse.OpLookup, 5, fuse.RootID, fmt.Sprintf("f%05d", i))
		}
		forget := fusetest.Request(fuse.OpForget, 0, 0, fuse.ForgetIn{Nlookup: 1})
		b.ReportAllocs()
		b.ResetTimer()
		for i := range b.N {
			if r.serve(reqs[i%len(reqs)]) != 0 {
				b.Fatal("LOOKUP failed")
			}
			setNodeid(forget, r.nodeid())
			r.serve(forget)
		}
	})
	b.Run("create+release+unlink", func(b *testing.B) {
		create := fusetest.Request(fuse.OpCreate, 6, fuse.RootID, fuse.CreateIn{Flags: uint32(os.O_WRONLY | os.O_CREATE | os.O_EXCL), Mode: 0o100644}, "c")
		unlink := fusetest.Request(fuse.OpUnlink, 8, fuse.RootID, "c")
		release := fusetest.Request(fuse.OpRelease, 7, 0, fuse.ReleaseIn{})
		b.ReportAllocs()
		for range b.N {
			if r.serve(create) != 0 {
				b.Fatal("CREATE failed")
			}
			fh := binary.LittleEndian.Uint64(r.out[fuse.OutHeaderSize+int(entrySize):])
			setNodeid(release, r.nodeid())
			binary.LittleEndian.PutUint64(release[fuse.InHeaderSize:], fh)
			if r.serve(release) != 0 {
				b.Fatal("RELEASE failed")
			}
			if r.serve(unlink) != 0 {
				b.Fatal("UNLINK failed")
			}
		}
	})
}

var entrySize = binary.Size(fuse.EntryOut{})

// setNodeid rewrites the nodeid in req's header.
func setNodeid(req []byte, nodeid uint64) {
	binary.LittleEndian.PutUint64(req[16:], nodeid)
}

// TestRequestAllocs holds the per-request allocations of the stat
// workload's requests through serve's stack: none for GETATTR, and for
// LOOKUP only its name, which the request's trace event keeps (the tap's
// ring holds on to it). The passthrough's own Lookup allocates nothing,
// hit or miss. Before: GETATTR 2 (the header, passed through the opcode
// table, and the empty path of fstatat(fd, "", AT_EMPTY_PATH)), LOOKUP 3
// (the header, the name, its NUL-terminated copy for fstatat), READ 2
// (the header, its argument).
func TestRequestAllocs(t *testing.T) {
	r := newReqRig(t, 1)
	hit := fusetest.Request(fuse.OpLookup, 2, fuse.RootID, "f00000")
	miss := fusetest.Request(fuse.OpLookup, 3, fuse.RootID, "nothere")
	if r.serve(hit) != 0 {
		t.Fatal("LOOKUP failed")
	}
	file := r.nodeid()
	for _, c := range []struct {
		name string
		req  []byte
		want int32
		max  float64
	}{
		{"GETATTR root", fusetest.Request(fuse.OpGetattr, 4, fuse.RootID, fuse.GetAttrIn{}), 0, 0},
		{"GETATTR file", fusetest.Request(fuse.OpGetattr, 4, file, fuse.GetAttrIn{}), 0, 0},
		{"LOOKUP hit", hit, 0, 1},
		{"LOOKUP miss", miss, 2, 1},
	} {
		n := testing.AllocsPerRun(200, func() {
			if got := r.serve(c.req); got != c.want {
				t.Fatalf("%s: errno %d, want %d", c.name, got, c.want)
			}
		})
		if n > c.max {
			t.Errorf("%s: %v allocations per request, want at most %v", c.name, n, c.max)
		}
	}

	// READ of an open file (the read workload's request): its argument
	// moved to the heap when handed on by pointer.
	if r.serve(fusetest.Request(fuse.OpOpen, 5, file, fuse.OpenIn{Flags: uint32(os.O_RDONLY)})) != 0 {
		t.Fatal("OPEN failed")
	}
	fh := binary.LittleEndian.Uint64(r.out[fuse.OutHeaderSize:])
	read := fusetest.Request(fuse.OpRead, 6, file, fuse.ReadIn{Fh: fh, Size: 4096})
	if n := testing.AllocsPerRun(200, func() {
		if got := r.serve(read); got != 0 {
			t.Fatalf("READ: errno %d", got)
		}
	}); n != 0 {
		t.Errorf("READ: %v allocations per request, want 0", n)
	}

	pt, err := passthrough.New(r.dir, passthrough.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer pt.Close()
	req := &fuse.Request{}
	var out fuse.EntryOut
	if e := pt.Lookup(req, fuse.RootID, "f00000", &out); e != 0 {
		t.Fatalf("Lookup: %v", e)
	}
	for _, c := range []struct {
		name string
		want fuse.Errno
	}{{"f00000", 0}, {"nothere", 2}} {
		n := testing.AllocsPerRun(200, func() {
			if e := pt.Lookup(req, fuse.RootID, c.name, &out); e != c.want {
				t.Fatalf("Lookup %s: %v, want %v", c.name, e, c.want)
			}
		})
		if n != 0 {
			t.Errorf("passthrough Lookup %s: %v allocations, want 0", c.name, n)
		}
	}
}
