package trace

import (
	"context"
	"errors"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/krunbench/krunbench/virtiofs/fuse"
)

type fakeFS struct {
	mu    sync.Mutex
	paths map[uint64]string
	syn   map[uint64]bool
	calls int
}

func newFakeFS() *fakeFS {
	return &fakeFS{
		paths: map[uint64]string{1: "/", 2: "/init.krun", 5: "/a"},
		syn:   map[uint64]bool{2: true},
	}
}

func (f *fakeFS) PathOf(n uint64) string {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls++
	return f.paths[n]
}

func (f *fakeFS) Inodes() []fuse.InodeInfo {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []fuse.InodeInfo
	for n, p := range f.paths {
		out = append(out, fuse.InodeInfo{Nodeid: n, Path: p, Nlookup: n * 10, Synthetic: f.syn[n]})
	}
	return out
}

func (f *fakeFS) set(n uint64, p string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if p == "" {
		delete(f.paths, n)
	} else {
		f.paths[n] = p
	}
}

func served(op uint32, nodeid uint64) *fuse.Served {
	return &fuse.Served{Opcode: op, Nodeid: nodeid, Unique: nodeid * 2, Start: time.Now(), Latency: 10 * time.Microsecond}
}

func TestConcurrentObserveSeqAndCounts(t *testing.T) {
	const workers, per = 16, 3000
	tap := NewTap(Options{RingSize: 1 << 16})
	var wg sync.WaitGroup
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range per {
				op := uint32(fuse.OpGetattr)
				if w%2 == 1 {
					op = fuse.OpRead
				}
				s := served(op, uint64(w*per+i+1))
				s.Bytes = 3
				tap.Observe(s)
			}
		}()
	}
	wg.Wait()
	total := uint64(workers * per)
	if got := tap.Seq(); got != total {
		t.Fatalf("Seq = %d, want %d", got, total)
	}
	recent := tap.Recent(0)
	if len(recent) != int(total) {
		t.Fatalf("Recent holds %d events, want %d", len(recent), total)
	}
	seen := make(map[uint64]bool, total)
	for i, ev := range recent {
		if ev.Seq != uint64(i+1) {
			t.Fatalf("ring position %d has seq %d", i, ev.Seq)
		}
		if seen[ev.Nodeid] {
			t.Fatalf("nodeid %d recorded twice", ev.Nodeid)
		}
		seen[ev.Nodeid] = true
	}
	st := tap.Stats()
	if st.Total.Count != total {
		t.Fatalf("total count %d, want %d", st.Total.Count, total)
	}
	half := total / 2
	if g, r := st.Op(fuse.OpGetattr), st.Op(fuse.OpRead); g.Count != half || r.Count != half {
		t.Fatalf("GETATTR %d READ %d, want %d each", g.Count, r.Count, half)
	}
	if got := st.Total.Bytes; got != 3*total {
		t.Fatalf("bytes %d, want %d", got, 3*total)
	}
	if st.Drops.RingOverwritten != 0 {
		t.Fatalf("ring overwrote %d", st.Drops.RingOverwritten)
	}
}

func TestRingOverwrite(t *testing.T) {
	tap := NewTap(Options{RingSize: 8})
	for i := range 20 {
		tap.Observe(served(fuse.OpGetattr, uint64(i+1)))
	}
	if got := tap.Overwritten(); got != 12 {
		t.Fatalf("Overwritten = %d, want 12", got)
	}
	if got := tap.Stats().Drops.RingOverwritten; got != 12 {
		t.Fatalf("Stats ring drops = %d, want 12", got)
	}
	all := tap.Recent(0)
	if len(all) != 8 || all[0].Seq != 13 || all[7].Seq != 20 || all[7].Nodeid != 20 {
		t.Fatalf("Recent(0) = %d events from %d to %d", len(all), all[0].Seq, all[len(all)-1].Seq)
	}
	last := tap.Recent(3)
	if len(last) != 3 || last[0].Seq != 18 || last[2].Seq != 20 {
		t.Fatalf("Recent(3) = %+v", last)
	}
	if got := len(tap.Recent(100)); got != 8 {
		t.Fatalf("Recent(100) returned %d", got)
	}
}

func TestSlowSubscriberNeverBlocks(t *testing.T) {
	const n = 5000
	tap := NewTap(Options{RingSize: 128})
	stuck := tap.Subscribe(10)
	slow := tap.Subscribe(64)
	var got []Event
	readerDone := make(chan struct{})
	go func() {
		defer close(readerDone)
		for ev := range slow.C() {
			got = append(got, ev)
			time.Sleep(20 * time.Microsecond)
		}
	}()

	observed := make(chan struct{})
	go func() {
		defer close(observed)
		var wg sync.WaitGroup
		for w := range 4 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for i := range n / 4 {
					tap.Observe(served(fuse.OpLookup, uint64(w*n+i+1)))
				}
			}()
		}
		wg.Wait()
	}()
	select {
	case <-observed:
	case <-time.After(10 * time.Second):
		t.Fatal("Observe blocked on a subscriber")
	}

	if d, x := stuck.Delivered(), stuck.Dropped(); d != 10 || x != n-10 {
		t.Fatalf("stuck subscriber delivered %d dropped %d, want 10 and %d", d, x, n-10)
	}
	stuck.Close()
	var buffered []uint64
	for ev := range stuck.C() {
		buffered = append(buffered, ev.Seq)
	}
	for i, s := range buffered {
		if s != uint64(i+1) {
			t.Fatalf("stuck subscriber got seqs %v", buffered)
		}
	}
	if len(buffered) != 10 {
		t.Fatalf("stuck subscriber buffered %d events", len(buffered))
	}

	slow.Close()
	<-readerDone
	if d, x := slow.Delivered(), slow.Dropped(); d+x != n || uint64(len(got)) != d {
		t.Fatalf("slow subscriber delivered %d dropped %d received %d, observed %d", d, x, len(got), n)
	}
	for i := 1; i < len(got); i++ {
		if got[i].Seq <= got[i-1].Seq {
			t.Fatalf("slow subscriber out of order at %d: %d after %d", i, got[i].Seq, got[i-1].Seq)
		}
	}
	st := tap.Stats()
	if want := stuck.Dropped() + slow.Dropped(); st.Drops.Subscribers != want {
		t.Fatalf("stats subscriber drops %d, want %d", st.Drops.Subscribers, want)
	}
	if st.Subscribers != 0 {
		t.Fatalf("%d subscribers left after Close", st.Subscribers)
	}
	stuck.Close()
	tap.Unsubscribe(slow)
}

func TestSubscriptionNextResolvesLazily(t *testing.T) {
	fs := newFakeFS()
	tap := NewTap(Options{Resolver: fs})
	sub := tap.Subscribe(4)
	tap.Observe(served(fuse.OpGetattr, 5))
	if fs.calls != 0 {
		t.Fatalf("Observe called the resolver %d times", fs.calls)
	}
	ev, err := sub.Next(context.Background())
	if err != nil || ev.Path != "/a" || ev.Seq != 1 {
		t.Fatalf("Next = %+v, %v", ev, err)
	}

	tap.Observe(served(fuse.OpForget, 5))
	fs.set(5, "")
	ev, err = sub.Next(context.Background())
	if err != nil || ev.Path != "/a" {
		t.Fatalf("forgotten nodeid resolved to %q (%v), want the remembered /a", ev.Path, err)
	}

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Millisecond)
	defer cancel()
	if _, err := sub.Next(ctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Next on an idle subscription = %v", err)
	}
	sub.Close()
	if _, err := sub.Next(context.Background()); !errors.Is(err, ErrClosed) {
		t.Fatalf("Next after Close = %v", err)
	}
}

func TestEagerPaths(t *testing.T) {
	fs := newFakeFS()
	tap := NewTap(Options{Resolver: fs, EagerPaths: true})
	sub := tap.Subscribe(4)
	tap.Observe(served(fuse.OpGetattr, 2))
	ev := <-sub.C()
	if ev.Path != "/init.krun" {
		t.Fatalf("eager path = %q", ev.Path)
	}
}

func TestDisabledAndNilTap(t *testing.T) {
	var nilTap *Tap
	nilTap.Observe(served(fuse.OpGetattr, 1))
	if nilTap.Enabled() {
		t.Fatal("nil tap enabled")
	}
	tap := NewTap(Options{Disabled: true})
	tap.Observe(served(fuse.OpGetattr, 1))
	if tap.Seq() != 0 || tap.Stats().Total.Count != 0 {
		t.Fatal("disabled tap recorded")
	}
	tap.SetEnabled(true)
	tap.Observe(served(fuse.OpGetattr, 1))
	if tap.Seq() != 1 || !tap.Stats().Enabled {
		t.Fatal("enabled tap did not record")
	}
}

func TestObserveDoesNotAllocate(t *testing.T) {
	if raceEnabled {
		t.Skip("the race detector allocates")
	}
	tap := NewTap(Options{RingSize: 1024, Resolver: newFakeFS()})
	sub := tap.Subscribe(1)
	defer sub.Close()
	s := served(fuse.OpRead, 2)
	s.Name = "x"
	s.Bytes = 4096
	tap.Observe(s)
	if n := testing.AllocsPerRun(1000, func() { tap.Observe(s) }); n != 0 {
		t.Fatalf("Observe allocates %.1f times per call", n)
	}
}

func TestStatsCounts(t *testing.T) {
	tap := NewTap(Options{})
	for i := range 100 {
		s := served(fuse.OpRead, 5)
		s.Bytes = 4096
		s.Latency = 10 * time.Microsecond
		if i == 99 {
			s.Latency = 300 * time.Millisecond
		}
		tap.Observe(s)
	}
	for range 10 {
		s := served(fuse.OpLookup, 1)
		s.Name = "missing"
		s.Errno = syscall.ENOENT
		tap.Observe(s)
	}
	tap.Observe(&fuse.Served{Opcode: 9999, Dropped: "short request"})
	tap.Observe(&fuse.Served{Opcode: fuse.OpWrite, Nodeid: 5, Dropped: "lying length"})

	st := tap.Stats()
	read := st.Op(fuse.OpRead)
	if read.Name != "READ" || read.Count != 100 || read.Errors != 0 || read.Bytes != 409600 {
		t.Fatalf("READ stats %+v", read)
	}
	if read.Latency.P50 < 8*time.Microsecond || read.Latency.P50 >= 16*time.Microsecond {
		t.Fatalf("READ p50 %v not in the 10µs bucket", read.Latency.P50)
	}
	if read.Latency.P99 >= 16*time.Microsecond {
		t.Fatalf("READ p99 %v, want the 10µs bucket (99 of 100 are 10µs)", read.Latency.P99)
	}
	if read.Latency.Max != 300*time.Millisecond || read.Latency.Percentile(1) != 300*time.Millisecond {
		t.Fatalf("READ max %v p100 %v", read.Latency.Max, read.Latency.Percentile(1))
	}
	if lk := st.Op(fuse.OpLookup); lk.Count != 10 || lk.Errors != 10 {
		t.Fatalf("LOOKUP stats %+v", lk)
	}
	other := st.Op(numOps)
	if other.Name != "OTHER" || other.Count != 1 || other.Errors != 1 {
		t.Fatalf("OTHER stats %+v", other)
	}
	if st.Total.Count != 112 || st.Total.Errors != 12 || st.Drops.Malformed != 2 {
		t.Fatalf("totals %+v drops %+v", st.Total, st.Drops)
	}
	if st.Total.Latency.Count() != 112 {
		t.Fatalf("total histogram holds %d", st.Total.Latency.Count())
	}
	if rows := tap.Inodes(); len(rows) != 2 || rows[1].Ops != 100 {
		t.Fatalf("a dropped request touched the inode table: %+v", rows)
	}

	later := st
	later.Time = st.Time.Add(2 * time.Second)
	later.Total.Count += 50
	later.Total.Bytes += 1000
	r := later.RatesSince(&st)
	if r.Events != 25 || r.Bytes != 500 || r.Errors != 0 || r.Interval != 2*time.Second {
		t.Fatalf("rates %+v", r)
	}
}

func TestHistogramPercentiles(t *testing.T) {
	var l Latency
	for i := 1; i <= 1000; i++ {
		l.Add(time.Duration(i) * time.Microsecond)
	}
	l.Finish()
	if l.P50 < 256*time.Microsecond || l.P50 > 1024*time.Microsecond {
		t.Fatalf("p50 %v for uniform 1..1000µs", l.P50)
	}
	if l.P99 < 512*time.Microsecond || l.P99 > time.Millisecond {
		t.Fatalf("p99 %v for uniform 1..1000µs", l.P99)
	}
	prev := time.Duration(0)
	for p := 0.01; p <= 1; p += 0.01 {
		v := l.Percentile(p)
		if v < prev {
			t.Fatalf("percentile not monotonic at %.2f: %v < %v", p, v, prev)
		}
		prev = v
	}
	if l.Mean() != 500500*time.Nanosecond {
		t.Fatalf("mean %v", l.Mean())
	}

	var slow Latency
	slow.Add(3 * time.Second)
	slow.Add(500 * time.Nanosecond)
	if slow.Buckets[NumBuckets-1] != 1 || slow.Buckets[0] != 1 {
		t.Fatalf("buckets %v", slow.Buckets)
	}
	if got := slow.Percentile(1); got != 3*time.Second {
		t.Fatalf("p100 %v", got)
	}
	if got := slow.Percentile(0.5); got >= time.Microsecond {
		t.Fatalf("p50 %v", got)
	}
	var empty Latency
	if empty.Percentile(0.5) != 0 || empty.Mean() != 0 {
		t.Fatal("empty histogram has percentiles")
	}
	for i := range NumBuckets {
		lo, hi := BucketRange(i)
		if i > 0 && i < NumBuckets-1 && (bucketOf(lo) != i || bucketOf(hi-1) != i) {
			t.Fatalf("bucket %d range [%v,%v) maps to %d..%d", i, lo, hi, bucketOf(lo), bucketOf(hi-1))
		}
	}
}

func TestInodeMerge(t *testing.T) {
	fs := newFakeFS()
	tap := NewTap(Options{Resolver: fs, Inodes: fs})
	obs := func(op uint32, nodeid uint64, errno syscall.Errno, bytes int, newNode uint64) {
		s := served(op, nodeid)
		s.Errno, s.Bytes, s.NewNodeid = errno, bytes, newNode
		tap.Observe(s)
	}
	obs(fuse.OpOpen, 5, 0, 0, 0)
	obs(fuse.OpOpen, 5, 0, 0, 0)
	obs(fuse.OpOpen, 5, syscall.EACCES, 0, 0)
	obs(fuse.OpRead, 5, 0, 100, 0)
	obs(fuse.OpRead, 5, syscall.EIO, 7, 0)
	obs(fuse.OpWrite, 5, 0, 50, 0)
	obs(fuse.OpRelease, 5, 0, 0, 0)
	fs.set(7, "/new")
	obs(fuse.OpCreate, 1, 0, 0, 7)
	obs(fuse.OpGetattr, 9, 0, 0, 0)
	obs(fuse.OpRead, 2, 0, 0, 0)

	rows := tap.Inodes()
	byID := map[uint64]InodeRow{}
	for i, r := range rows {
		if i > 0 && rows[i-1].Nodeid >= r.Nodeid {
			t.Fatalf("rows not sorted: %+v", rows)
		}
		byID[r.Nodeid] = r
	}
	if len(rows) != 4 {
		t.Fatalf("rows %+v, want nodeids 1 2 5 7", rows)
	}
	a := byID[5]
	if a.Path != "/a" || a.Nlookup != 50 || a.Open != 1 || a.BytesRead != 100 || a.BytesWritten != 50 || a.Ops != 7 {
		t.Fatalf("row 5 %+v", a)
	}
	if a.LastAccess.Before(tap.Start()) {
		t.Fatalf("row 5 last access %v before the tap started", a.LastAccess)
	}
	if n := byID[7]; n.Open != 1 || n.Path != "/new" {
		t.Fatalf("created row %+v", n)
	}
	if r := byID[2]; !r.Synthetic || r.Ops != 1 {
		t.Fatalf("init row %+v", r)
	}
	if _, ok := tap.nodes.get(9); ok {
		t.Fatal("counters for nodeid 9, unknown to the filesystem, were kept")
	}

	fs.set(5, "")
	obs(fuse.OpGetattr, 5, 0, 0, 0)
	tap.nodes.epoch.Add(1)
	if _, ok := tap.nodes.get(5); !ok {
		t.Fatal("counters vanished before a merge")
	}
	tap.Inodes()
	if _, ok := tap.nodes.get(5); ok {
		t.Fatal("counters for forgotten nodeid 5 survived the merge")
	}
}

func TestInodesWithoutLister(t *testing.T) {
	tap := NewTap(Options{})
	tap.Observe(served(fuse.OpGetattr, 1))
	s := served(fuse.OpLookup, 1)
	s.Name, s.NewNodeid = "x", 3
	tap.Observe(s)
	rows := tap.Inodes()
	if len(rows) != 2 || rows[0].Nodeid != 1 || rows[0].Path != "/" || rows[1].Nodeid != 3 || rows[0].Ops != 2 {
		t.Fatalf("rows %+v", rows)
	}
}

func TestInodeMergeKeepsNodesTouchedDuringListing(t *testing.T) {
	lh := &listHook{fs: newFakeFS()}
	tap := NewTap(Options{Inodes: lh})
	lh.hook = func() { tap.Observe(served(fuse.OpGetattr, 42)) }
	tap.Inodes()
	if _, ok := tap.nodes.get(42); !ok {
		t.Fatal("a nodeid observed while the filesystem was listed was pruned")
	}
	lh.hook = func() {}
	tap.Inodes()
	if _, ok := tap.nodes.get(42); ok {
		t.Fatal("nodeid 42, never listed, survived the next merge")
	}
}

type listHook struct {
	fs   *fakeFS
	hook func()
}

func (l *listHook) Inodes() []fuse.InodeInfo {
	out := l.fs.Inodes()
	l.hook()
	return out
}

// TestBootMoments: the tap remembers when the first request and the first
// 0-byte READ at the synthetic init's end arrived, and nothing else moves
// them.
func TestBootMoments(t *testing.T) {
	tap := NewTap(Options{})
	if !tap.FirstRequest().IsZero() || !tap.InitEOF().IsZero() {
		t.Fatal("moments set before any request")
	}
	first := served(fuse.OpInit, 0)
	tap.Observe(first)
	read := served(fuse.OpRead, 2)
	read.Synthetic = true
	tap.Observe(read)
	if !tap.InitEOF().IsZero() {
		t.Fatal("a READ with data counted as the EOF read")
	}
	eof := served(fuse.OpRead, 2)
	eof.Synthetic, eof.EOF, eof.Start = true, true, first.Start.Add(time.Second)
	tap.Observe(eof)
	later := served(fuse.OpRead, 2)
	later.Synthetic, later.EOF, later.Start = true, true, first.Start.Add(2*time.Second)
	tap.Observe(later)
	if !tap.FirstRequest().Equal(first.Start.Round(0)) || !tap.InitEOF().Equal(eof.Start.Round(0)) {
		t.Fatalf("first %v (want %v), EOF %v (want %v)", tap.FirstRequest(), first.Start, tap.InitEOF(), eof.Start)
	}
}

// TestNoNodeCounters: a tap without node counters keeps no entry per
// nodeid however many it sees, and still lists the filesystem's table.
func TestNoNodeCounters(t *testing.T) {
	fs := newFakeFS()
	tap := NewTap(Options{Resolver: fs, Inodes: fs, NoNodeCounters: true})
	for i := range 1000 {
		s := served(fuse.OpLookup, 1)
		s.Name, s.NewNodeid = "x", uint64(10+i)
		tap.Observe(s)
		tap.Observe(served(fuse.OpGetattr, uint64(10+i)))
	}
	for i := range tap.nodes.shards {
		if n := len(tap.nodes.shards[i].m); n != 0 {
			t.Fatalf("shard %d holds %d entries", i, n)
		}
	}
	rows := tap.Inodes()
	if len(rows) != 3 || rows[2].Nodeid != 5 || rows[2].Path != "/a" || rows[2].Nlookup != 50 || rows[0].Ops != 0 {
		t.Fatalf("rows %+v", rows)
	}
	if p := tap.PathOf(5); p != "/a" {
		t.Fatalf("PathOf(5) = %q", p)
	}
	if st := tap.Stats(); st.Total.Count != 2000 {
		t.Fatalf("stats count %d, want 2000", st.Total.Count)
	}
}
