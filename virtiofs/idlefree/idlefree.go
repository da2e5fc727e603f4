// Package idlefree gives a FUSE server's free heap back to the operating
// system once a burst of requests is over and the server has been idle
// for a while (DefaultIdle), so a backend that served a walk over many
// inodes and now waits does not keep the walk's garbage resident.
//
// Why it is needed: the Go runtime returns free heap pages only above its
// retain goal, and a heap that a burst grew but that stays under its GC
// goal is never collected until the runtime's forced GC two minutes on.
// Measured before this package (serve --mount, find -ls over 15,000
// files, session 12): RssAnon 5,636 KiB right after the walk, 5,636 at
// +60 s and 5,724 at +250 s; the scavenger returned 0 KiB.
//
// How: the server marks each request on its fuse.Activity (one atomic
// load per request while a burst lasts); Run sleeps until a request
// comes, then looks every Idle/4 whether more came, and once Idle has
// passed without one, calls debug.FreeOSMemory (a full collection and a
// release of every free page) if the heap grew by at least MinGrowth
// since the last release; then it sleeps again until the next request.
// So an idle server wakes no one, a busy one pays four looks a second,
// and the collection runs once per burst, never inside one.
//
// Measured (session 13, busy 2-CPU machine, default settings): a release
// takes 2-14 ms (serve --verbose). What it returns: serve.go's comment
// (guest path, 15,000-file walk: 668-1,088 KiB of RssAnon 2 s after the
// walk; a /dev/fuse burst with 10,000 READLINKs: about 10 MB). Backend
// CPU per 1,000 requests (guestbench, serve --socket, TCG, 1 vCPU,
// rotated boots): the new binary against fdf6d5a's, 6 pairs in two runs,
// per-pair ratio medians stat 0.94 [0.85-1.06], read 0.96 [0.70-1.41],
// create 1.26 [0.73-1.54], memory walk 1.40 [0.97-1.75]; the same binary
// with --idle-release 1s against 0 (3 pairs, one run): stat 0.72
// [0.69-0.99], read 0.85 [0.80-0.87], create 0.73 [0.63-0.97], memory
// 0.87 [0.66-1.29]; and the new binary with --idle-release 0 against
// fdf6d5a's (3 pairs, one run: the build and the per-request mark
// without any release): stat 1.00, read 1.05, create 0.96, memory 0.98,
// the slow outlier this time on the old binary's side (create 8.2 s,
// 1.29 s CPU). So the create and memory rises of the first pairs are
// this machine's swings (virtiofsd's own create wall 4.7-7.6 s in one
// run), not the release: no cost shown, and none claimed saved.
package idlefree

import (
	"context"
	"log/slog"
	"runtime/debug"
	"runtime/metrics"
	"time"

	"github.com/krunbench/krunbench/virtiofs/fuse"
)

// DefaultIdle is how long a server must go without a request before its
// free heap is returned: long enough that the pauses of a workload (a
// program's start, a guest's page-cache drop, a shell between commands)
// do not end a burst, short enough that a user sees the memory come back.
const DefaultIdle = time.Second

// DefaultMinGrowth is how much the heap must have grown since the last
// release for another to be worth its collection. A walk over 15,000
// inodes grows it by about 2.2 MiB; a few requests now and then do not
// reach it, so a guest that stats a file every other second does not get
// a collection every other second.
const DefaultMinGrowth = 1 << 20

// looks is how many times per Idle the watcher checks for requests.
const looks = 4

// Options configure Run.
type Options struct {
	// Idle is the time without requests that ends a burst; 0:
	// DefaultIdle.
	Idle time.Duration
	// MinGrowth is the heap growth in bytes since the last release that
	// a release needs; 0: DefaultMinGrowth.
	MinGrowth uint64
	// Log receives a debug line per release; nil: none.
	Log *slog.Logger
}

// Run returns the free heap to the OS after each burst of requests on
// act that grew the heap, until ctx is done. One Run per Activity.
func Run(ctx context.Context, act *fuse.Activity, opts Options) {
	idle := opts.Idle
	if idle <= 0 {
		idle = DefaultIdle
	}
	w := watcher{
		act:       act,
		take:      act.Take,
		minGrowth: opts.MinGrowth,
		heap:      heapBytes,
		release:   debug.FreeOSMemory,
		log:       opts.Log,
		ticker: func() (<-chan time.Time, func()) {
			t := time.NewTicker(idle / looks)
			return t.C, t.Stop
		},
	}
	if w.minGrowth == 0 {
		w.minGrowth = DefaultMinGrowth
	}
	w.run(ctx)
}

// watcher is Run's loop with its clock, heap reading and release
// replaceable (tests).
type watcher struct {
	act       *fuse.Activity
	take      func() bool // act.Take
	minGrowth uint64
	heap      func() uint64
	release   func()
	ticker    func() (ticks <-chan time.Time, stop func())
	log       *slog.Logger
}

func (w *watcher) run(ctx context.Context) {
	base := w.heap()
	for w.act.Sleep(ctx) {
		if !w.waitIdle(ctx) {
			return
		}
		h := w.heap()
		switch {
		case h >= base+w.minGrowth:
			start := time.Now()
			w.release()
			base = w.heap()
			if w.log != nil {
				w.log.Debug("idle: returned free heap to the OS", "heap_before", h, "heap_after", base, "took", time.Since(start))
			}
		case h < base:
			base = h
		}
	}
}

// waitIdle returns true once `looks` looks in a row found no request,
// false if ctx ends first.
func (w *watcher) waitIdle(ctx context.Context) bool {
	ticks, stop := w.ticker()
	defer stop()
	for quiet := 0; quiet < looks; {
		select {
		case <-ticks:
		case <-ctx.Done():
			return false
		}
		if w.take() {
			quiet = 0
		} else {
			quiet++
		}
	}
	return true
}

// heapSamples are the heap's pages that hold memory from the OS: objects
// (live or not yet swept), unused room in spans, and free pages not yet
// released.
var heapSamples = []metrics.Sample{
	{Name: "/memory/classes/heap/objects:bytes"},
	{Name: "/memory/classes/heap/unused:bytes"},
	{Name: "/memory/classes/heap/free:bytes"},
}

func heapBytes() uint64 {
	s := make([]metrics.Sample, len(heapSamples))
	copy(s, heapSamples)
	metrics.Read(s)
	var n uint64
	for _, v := range s {
		if v.Value.Kind() == metrics.KindUint64 {
			n += v.Value.Uint64()
		}
	}
	return n
}
