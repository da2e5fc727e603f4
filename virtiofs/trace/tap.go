package trace

import (
	"context"
	"errors"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/krunbench/krunbench/virtiofs/fuse"
)

// DefaultRingSize is the ring size used when Options.RingSize is 0. The
// ring is for late joiners that ask for what happened before them
// (Tap.Recent); krunbench's own readers take subscriptions from the start
// (the TUI's traffic pane keeps its own ring, --trace files and the rules
// engine subscribe, replay reads files, statistics and boot times are
// counters), so a large ring is memory no one reads. At 65,536 events
// (248 bytes each, 16 MiB, and every name they held on to): serve's
// backend anonymous RSS after a guest's find+stat of 15,000 files
// (guestbench, QEMU TCG, --readdirplus auto) was 35.2 MiB against 12.0
// MiB at 256 and 9.7 MiB with the tap off, its Go heap 16 MB right after
// start instead of 2-3 and its first GC spent 102 ms scanning it; and
// `krunbench run --engine qemu --accel tcg` over find /data | wc -l of
// 50,050 entries, 3 interleaved pairs: peak RssAnon 56.1 -> 48.1 MiB
// (0.86x in each pair), VmHWM 100.3 -> 93.1 MiB, wall time unchanged
// (29-34 s).
const DefaultRingSize = 256

// DefaultSubscriberBuffer is the buffer used when Subscribe is given 0.
const DefaultSubscriberBuffer = 4096

// ErrClosed is returned by Subscription.Next once the subscription is closed.
var ErrClosed = errors.New("trace: subscription closed")

// Options configure a Tap.
type Options struct {
	// RingSize is how many recent events are kept for late joiners;
	// 0 means DefaultRingSize.
	RingSize int
	// Resolver names nodeids. Paths are resolved lazily, on the reader's
	// side (Recent, Subscription.Next, Resolve, recordings), unless
	// EagerPaths asks for them on the serving goroutine.
	Resolver fuse.PathResolver
	// Inodes lists the filesystem's inode table for Tap.Inodes.
	Inodes fuse.InodeLister
	// EagerPaths resolves Path while observing, so it is exact even for
	// nodeids forgotten soon after, at the price of a resolver call (and
	// usually an allocation) per request.
	EagerPaths bool
	// Disabled starts the tap switched off; see SetEnabled.
	Disabled bool
	// NoNodeCounters keeps no per-nodeid counters (opens, bytes, ops, last
	// access, last path): Inodes then lists the filesystem's table without
	// them (nothing without an InodeLister), and PathOf has no fallback
	// for forgotten nodeids. For a tap whose inode table no one reads
	// (serve without --trace): the counters cost about 70 bytes of live
	// heap per nodeid seen (trace.(*nodeShard).entry, heap profile after a
	// find over 15,000 files through serve --mount: 1,060 kB), up to
	// 64 x maxShardNodes entries.
	NoNodeCounters bool
}

// Tap is a fuse.Observer that records served requests. Observe never
// blocks on readers: lagging subscribers lose events (counted), and the
// ring overwrites its oldest entries (counted). A nil *Tap observes nothing.
type Tap struct {
	start    time.Time
	resolver fuse.PathResolver
	lister   fuse.InodeLister
	eager    bool
	enabled  atomic.Bool

	ops        [numOps + 1]opCounters
	malformed  atomic.Uint64
	subDropped atomic.Uint64
	firstAt    atomic.Int64 // unix nanoseconds; see FirstRequest
	initEOFAt  atomic.Int64 // unix nanoseconds; see InitEOF

	mu   sync.Mutex
	ring []Event
	seq  uint64
	subs []*Subscription

	nodes nodeTable
}

// NewTap returns a tap; hand it to the server as its fuse.Observer.
func NewTap(opts Options) *Tap {
	size := opts.RingSize
	if size <= 0 {
		size = DefaultRingSize
	}
	t := &Tap{
		start:    time.Now(),
		resolver: opts.Resolver,
		lister:   opts.Inodes,
		eager:    opts.EagerPaths && opts.Resolver != nil,
		ring:     make([]Event, size),
	}
	if !opts.NoNodeCounters {
		t.nodes.init()
	}
	t.enabled.Store(!opts.Disabled)
	return t
}

// FirstRequest is when the first request the tap recorded arrived, zero
// before one has.
func (t *Tap) FirstRequest() time.Time { return unixNano(t.firstAt.Load()) }

// InitEOF is when the first READ at or past the end of the synthetic init
// arrived (the guest has read all of /init.krun), zero before.
func (t *Tap) InitEOF() time.Time { return unixNano(t.initEOFAt.Load()) }

func unixNano(ns int64) time.Time {
	if ns == 0 {
		return time.Time{}
	}
	return time.Unix(0, ns)
}

// Start is when the tap was created; Event.Time counts from it.
func (t *Tap) Start() time.Time { return t.start }

// SetEnabled switches recording on or off; while off Observe returns at once.
func (t *Tap) SetEnabled(on bool) { t.enabled.Store(on) }

// Enabled reports whether the tap records.
func (t *Tap) Enabled() bool { return t != nil && t.enabled.Load() }

// Observe records one served request. It is safe for concurrent use, does
// not allocate for requests without a new name to keep, and never waits
// for a reader.
func (t *Tap) Observe(s *fuse.Served) {
	if t == nil || !t.enabled.Load() {
		return
	}
	ev := Event{
		Op:        s.Opcode,
		OpName:    opName(s.Opcode),
		Unique:    s.Unique,
		Nodeid:    s.Nodeid,
		Name:      s.Name,
		NewName:   s.NewName,
		Offset:    s.Offset,
		Size:      s.Size,
		Flags:     s.Flags,
		Mode:      s.Mode,
		Fh:        s.Fh,
		Errno:     int(s.Errno),
		Bytes:     s.Bytes,
		Latency:   s.Latency,
		Synthetic: s.Synthetic,
		EOF:       s.EOF,
		NewNodeid: s.NewNodeid,
		Dropped:   s.Dropped,
		Injected:  s.Injected,
		Uid:       s.Caller.Uid,
		Gid:       s.Caller.Gid,
		Pid:       s.Caller.Pid,
	}
	start := s.Start
	if start.IsZero() {
		start = time.Now()
	}
	if t.firstAt.Load() == 0 {
		t.firstAt.CompareAndSwap(0, start.UnixNano())
	}
	if s.Synthetic && s.EOF && t.initEOFAt.Load() == 0 {
		t.initEOFAt.CompareAndSwap(0, start.UnixNano())
	}
	ev.Time = max(start.Sub(t.start), 0)
	ev.Wall = start.Round(0)

	slot := min(s.Opcode, numOps)
	t.ops[slot].add(ev.OK(), ev.Bytes, ev.Latency)
	if ev.Dropped != "" {
		t.malformed.Add(1)
	} else {
		t.nodes.touch(&ev)
	}
	if t.eager && ev.Nodeid != 0 {
		ev.Path = t.PathOf(ev.Nodeid)
	}

	t.mu.Lock()
	t.seq++
	ev.Seq = t.seq
	t.ring[(t.seq-1)%uint64(len(t.ring))] = ev
	for _, sub := range t.subs {
		select {
		case sub.ch <- ev:
			sub.delivered.Add(1)
		default:
			sub.dropped.Add(1)
			t.subDropped.Add(1)
		}
	}
	t.mu.Unlock()
}

// PathOf names a nodeid through the resolver, falling back to the last
// path seen for it (so events about forgotten nodeids still read well).
func (t *Tap) PathOf(nodeid uint64) string {
	var p string
	if t.resolver != nil {
		p = t.resolver.PathOf(nodeid)
	}
	p = t.nodes.rememberPath(nodeid, p)
	if p == "" && nodeid == fuse.RootID {
		p = "/"
	}
	return p
}

// Resolve fills ev.Path if it is empty and the nodeid can be named.
func (t *Tap) Resolve(ev *Event) {
	if ev.Path == "" && ev.Nodeid != 0 {
		ev.Path = t.PathOf(ev.Nodeid)
	}
}

// Recent returns up to n of the most recent events, oldest first, with
// paths resolved. n <= 0 means all the ring holds.
func (t *Tap) Recent(n int) []Event {
	t.mu.Lock()
	held := min(t.seq, uint64(len(t.ring)))
	if n <= 0 || uint64(n) > held {
		n = int(held)
	}
	out := make([]Event, n)
	size := uint64(len(t.ring))
	first := t.seq - uint64(n)
	for i := range out {
		out[i] = t.ring[(first+uint64(i))%size]
	}
	t.mu.Unlock()
	for i := range out {
		t.Resolve(&out[i])
	}
	return out
}

// Seq is the sequence number of the latest event (the number recorded).
func (t *Tap) Seq() uint64 {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.seq
}

// Overwritten is how many events the ring has overwritten.
func (t *Tap) Overwritten() uint64 {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.overwrittenLocked()
}

func (t *Tap) overwrittenLocked() uint64 {
	if size := uint64(len(t.ring)); t.seq > size {
		return t.seq - size
	}
	return 0
}

// Stats returns a snapshot of the counters.
func (t *Tap) Stats() Snapshot {
	now := time.Now()
	s := Snapshot{Time: now, Uptime: now.Sub(t.start), Enabled: t.Enabled()}
	for i := range t.ops {
		c := &t.ops[i]
		if c.count.Load() == 0 {
			continue
		}
		o := c.load(uint32(i))
		if i == numOps {
			o.Name = "OTHER"
		}
		s.Ops = append(s.Ops, o)
	}
	finishOps(&s)
	s.Drops.Malformed = t.malformed.Load()
	s.Drops.Subscribers = t.subDropped.Load()
	t.mu.Lock()
	s.Drops.RingOverwritten = t.overwrittenLocked()
	s.Subscribers = len(t.subs)
	t.mu.Unlock()
	return s
}

// Subscription receives events as they are observed, through a buffer of
// its own. When the buffer is full, events are dropped for it alone and
// counted; the server is never held up.
type Subscription struct {
	tap       *Tap
	ch        chan Event
	closed    bool
	delivered atomic.Uint64
	dropped   atomic.Uint64
}

// Subscribe starts delivering events observed from now on into a buffer of
// buf events (0 means DefaultSubscriberBuffer). Close it when done.
func (t *Tap) Subscribe(buf int) *Subscription {
	if buf <= 0 {
		buf = DefaultSubscriberBuffer
	}
	s := &Subscription{tap: t, ch: make(chan Event, buf)}
	t.mu.Lock()
	t.subs = append(t.subs, s)
	t.mu.Unlock()
	return s
}

// Unsubscribe stops delivery to s and closes its channel; same as s.Close.
func (t *Tap) Unsubscribe(s *Subscription) {
	t.mu.Lock()
	if s.closed {
		t.mu.Unlock()
		return
	}
	s.closed = true
	t.subs = slices.DeleteFunc(t.subs, func(x *Subscription) bool { return x == s })
	t.mu.Unlock()
	close(s.ch)
}

// C is the raw event channel; it is closed by Close. Paths are not
// resolved unless the tap resolves them eagerly: use Next, or Tap.Resolve.
func (s *Subscription) C() <-chan Event { return s.ch }

// Next waits for the next event and resolves its path. It returns
// ErrClosed once the subscription is closed and drained, or ctx's error.
func (s *Subscription) Next(ctx context.Context) (Event, error) {
	select {
	case ev, ok := <-s.ch:
		if !ok {
			return Event{}, ErrClosed
		}
		s.tap.Resolve(&ev)
		return ev, nil
	case <-ctx.Done():
		return Event{}, ctx.Err()
	}
}

// Delivered is how many events were put into the buffer.
func (s *Subscription) Delivered() uint64 { return s.delivered.Load() }

// Dropped is how many events were lost because the buffer was full.
func (s *Subscription) Dropped() uint64 { return s.dropped.Load() }

// Close stops delivery and closes the channel; buffered events can still
// be read. It is safe to call more than once.
func (s *Subscription) Close() { s.tap.Unsubscribe(s) }
