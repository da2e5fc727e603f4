package idlefree

import (
	"context"
	"sync/atomic"
	"testing"
	"time"

	"github.com/krunbench/krunbench/virtiofs/fuse"
	"github.com/krunbench/krunbench/virtiofs/fuse/fusetest"
)

// fixture is a watcher over a real fuse.Server whose clock ticks when
// the test says, whose heap reads what the test sets and whose releases
// are counted.
type fixture struct {
	t        *testing.T
	srv      *fuse.Server
	ticks    chan time.Time
	heap     atomic.Uint64
	released chan uint64
	looked   chan bool
	unique   uint64
}

func newFixture(t *testing.T) *fixture {
	f := &fixture{t: t, srv: fuse.NewServer(nopFS{}, fuse.Options{}), ticks: make(chan time.Time), released: make(chan uint64, 16), looked: make(chan bool)}
	f.heap.Store(10 << 20)
	baseRead := make(chan struct{}, 1)
	act := f.srv.Activity()
	w := &watcher{
		act: act,
		// Each look reports what it saw, so a test's next request comes
		// after it, never races it.
		take:      func() bool { busy := act.Take(); f.looked <- busy; return busy },
		minGrowth: DefaultMinGrowth,
		heap: func() uint64 {
			select {
			case baseRead <- struct{}{}:
			default:
			}
			return f.heap.Load()
		},
		release: func() {
			f.released <- f.heap.Load()
			f.heap.Store(10 << 20) // what a release leaves
		},
		ticker: func() (<-chan time.Time, func()) { return f.ticks, func() {} },
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); w.run(ctx) }()
	t.Cleanup(func() { cancel(); <-done })
	<-baseRead // the heap's starting point is read before any growth
	return f
}

// request serves one request (a LOOKUP the filesystem refuses).
func (f *fixture) request() {
	f.unique++
	in := fusetest.Request(fuse.OpLookup, f.unique, 1, "name\x00")
	f.srv.Serve([][]byte{in}, [][]byte{make([]byte, 4096)})
}

// tick is one look of the watcher, returned once it has looked; false
// if the watcher is not looking (asleep until a request) within a
// generous minute.
func (f *fixture) tick() bool {
	select {
	case f.ticks <- time.Time{}:
		<-f.looked
		return true
	case <-time.After(time.Minute):
		return false
	}
}

// tickAsleep checks that the watcher takes no look: it is asleep. Not a
// timing claim: a watcher that wrongly looks would take the tick within
// this time on any machine, and a right one never does.
func (f *fixture) tickAsleep() {
	f.t.Helper()
	select {
	case f.ticks <- time.Time{}:
		f.t.Fatal("the watcher looked although no request came since it last released")
	case <-time.After(100 * time.Millisecond):
	}
}

func (f *fixture) noRelease() {
	f.t.Helper()
	select {
	case h := <-f.released:
		f.t.Fatalf("released (heap %d) inside a burst", h)
	default:
	}
}

func (f *fixture) wantRelease() {
	f.t.Helper()
	select {
	case <-f.released:
	case <-time.After(time.Minute):
		f.t.Fatal("no release a minute after the burst's idle looks")
	}
}

// TestNoReleaseInsideABurst: as long as a request comes between any two
// looks, the watcher never releases, however long the burst (here 400
// looks, 100 idle periods), and the heap's growth does not change that;
// four looks without a request end the burst and release once.
func TestNoReleaseInsideABurst(t *testing.T) {
	f := newFixture(t)
	f.request()
	f.heap.Add(4 << 20)
	for i := 0; i < 400; i++ {
		f.request()
		if !f.tick() {
			t.Fatalf("look %d: the watcher stopped looking inside a burst", i)
		}
		// Up to looks-1 quiet looks in a row are still inside the burst.
		if i%50 == 25 {
			for q := 0; q < looks-1; q++ {
				f.tick()
			}
		}
	}
	f.noRelease()
	for q := 0; q < looks; q++ {
		if !f.tick() {
			t.Fatalf("quiet look %d not taken", q)
		}
	}
	f.wantRelease()
	f.tickAsleep()
}

// TestReleaseNeedsGrowth: a burst that grew the heap by less than
// DefaultMinGrowth ends without a collection; the next one, which takes
// the growth past it, releases.
func TestReleaseNeedsGrowth(t *testing.T) {
	f := newFixture(t)
	f.request()
	f.heap.Add(DefaultMinGrowth / 2)
	for q := 0; q < looks; q++ {
		f.tick()
	}
	f.tickAsleep() // the burst ended, nothing released, asleep again
	f.noRelease()
	f.request()
	f.heap.Add(DefaultMinGrowth / 2)
	for q := 0; q < looks; q++ {
		f.tick()
	}
	f.wantRelease()
}

// nopFS answers nothing: the requests only need to reach the server.
type nopFS struct{ fuse.FileSystem }
