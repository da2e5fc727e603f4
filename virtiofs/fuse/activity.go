package fuse

import (
	"context"
	"sync/atomic"
)

// Activity tells a watcher whether requests came to a Server since it
// last looked, and wakes a watcher that sleeps until the next one. Every
// transport serves through Server.ServePending, so one Activity sees
// /dev/fuse and virtqueue requests alike (idlefree uses it to return
// the heap once a burst is over).
//
// While a burst lasts a request costs one atomic load of a word that is
// written only when the watcher looks (Take) and by the first request
// after that: a handful of writes per second, not one per request.
type Activity struct {
	_     [64]byte // keep state off the cache lines of the fields around it
	state atomic.Uint32
	_     [60]byte
	wake  chan struct{}
}

const (
	// activityQuiet: no request since the watcher's last Take.
	activityQuiet = iota
	// activityBusy: at least one request since then.
	activityBusy
	// activityAsleep: no request, and the watcher sleeps until one comes.
	activityAsleep
)

func newActivity() *Activity { return &Activity{wake: make(chan struct{}, 1)} }

// mark is the request path's part: one load while busy.
func (a *Activity) mark() {
	if a.state.Load() != activityBusy {
		a.markSlow()
	}
}

func (a *Activity) markSlow() {
	if a.state.Swap(activityBusy) == activityAsleep {
		select {
		case a.wake <- struct{}{}:
		default:
		}
	}
}

// Take reports whether a request came since the last Take (or the last
// Sleep), and starts a new interval.
func (a *Activity) Take() bool {
	return a.state.CompareAndSwap(activityBusy, activityQuiet)
}

// Sleep blocks until a request comes, returning true at once if one came
// since the last Take; it returns false when ctx is done first. One
// watcher at a time may call Take and Sleep.
func (a *Activity) Sleep(ctx context.Context) bool {
	if a.state.CompareAndSwap(activityQuiet, activityAsleep) {
		select {
		case <-a.wake:
		case <-ctx.Done():
			// A request may come now and find the watcher gone; the
			// token it leaves makes a later Sleep return at once, which
			// costs that watcher one look at a burst that did not come.
			a.state.CompareAndSwap(activityAsleep, activityQuiet)
			return false
		}
	}
	// Counting starts afresh from here: the request that woke the
	// watcher (or one since its last Take) is the burst's latest so far.
	a.state.Store(activityQuiet)
	return true
}
