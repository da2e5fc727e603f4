package trace

import (
	"io"
	"time"

	"github.com/krunbench/krunbench/virtiofs/fuse"
)

// DefaultFlushInterval is how often a Recorder flushes when not told.
const DefaultFlushInterval = time.Second

// recordBuffer is the recorder's subscription buffer, and recordNap how
// long it lets events pile up there once they flow. A receiver parked on
// the channel is woken by every event, a cost paid on the serving
// goroutine; one that naps between drains is not, and writes each batch
// under one lock. 16384 events last over 300 ms at 50,000 requests/s.
const (
	recordBuffer = 16384
	recordNap    = 2 * time.Millisecond
	recordBatch  = 1024
)

// Recorder is a subscriber that writes every event it receives to a
// FileWriter, resolving paths and flushing periodically.
type Recorder struct {
	sub   *Subscription
	fw    *FileWriter
	paths pathCache
	done  chan struct{}
	err   error
}

// Record subscribes to the tap and writes events observed from now on to w
// as JSON lines, flushing every flushEvery (0 means DefaultFlushInterval).
// Call Close to stop, drain and flush.
func (t *Tap) Record(w io.Writer, flushEvery time.Duration) *Recorder {
	if flushEvery <= 0 {
		flushEvery = DefaultFlushInterval
	}
	r := &Recorder{sub: t.Subscribe(recordBuffer), fw: NewFileWriter(w), done: make(chan struct{})}
	go r.run(flushEvery)
	return r
}

// run waits for an event (or a flush tick) parked on the channel while the
// filesystem is idle; once events flow it drains them in batches, napping
// in between, until a drain finds nothing.
func (r *Recorder) run(every time.Duration) {
	defer close(r.done)
	tick := time.NewTicker(every)
	defer tick.Stop()
	batch := make([]Event, 0, recordBatch)
	for {
		select {
		case ev, ok := <-r.sub.C():
			if !ok {
				r.finish(nil)
				return
			}
			batch = append(batch[:0], ev)
		case <-tick.C:
			if err := r.fw.Flush(); err != nil {
				r.finish(err)
				return
			}
			continue
		}
		for {
			var open bool
			batch, open = r.drain(batch)
			if err := r.write(batch); err != nil {
				r.finish(err)
				return
			}
			if !open {
				r.finish(nil)
				return
			}
			if len(batch) == 0 {
				break
			}
			select {
			case <-tick.C:
				if err := r.fw.Flush(); err != nil {
					r.finish(err)
					return
				}
			default:
			}
			time.Sleep(recordNap)
			batch = batch[:0]
		}
		batch = batch[:0]
	}
}

// drain appends what the subscription holds, up to a batch; open is false
// once the subscription is closed and empty.
func (r *Recorder) drain(batch []Event) (_ []Event, open bool) {
	for len(batch) < cap(batch) {
		select {
		case ev, ok := <-r.sub.C():
			if !ok {
				return batch, false
			}
			batch = append(batch, ev)
		default:
			return batch, true
		}
	}
	return batch, true
}

// write names the batch's nodeids and writes it. Paths are resolved here,
// off the serving goroutines, once per nodeid per batch at most (see
// pathCache), so the resolver's lock is rarely taken.
func (r *Recorder) write(batch []Event) error {
	r.paths.clear()
	for i := range batch {
		r.paths.resolve(r.sub.tap, &batch[i])
	}
	return r.fw.writeEvents(batch)
}

// finish records err, or closes the writer cleanly; after an error it
// unsubscribes and discards what is left.
func (r *Recorder) finish(err error) {
	if err == nil {
		r.err = r.fw.Close()
		return
	}
	r.err = err
	r.sub.Close()
	for range r.sub.C() {
	}
}

// Written is how many events were written so far.
func (r *Recorder) Written() uint64 { return r.fw.Written() }

// Dropped is how many events were lost because writing lagged.
func (r *Recorder) Dropped() uint64 { return r.sub.Dropped() }

// Close stops recording, writes what was already received, flushes and
// returns the first error met.
func (r *Recorder) Close() error {
	r.sub.Close()
	<-r.done
	return r.err
}

// pathSlots is the size of the recorder's path cache: a few directories
// and the files being worked on.
const pathSlots = 64

// pathCache remembers the paths a Recorder resolved within one batch, so a
// run of requests about the same nodeids (WRITEs to one file, CREATE and
// UNLINK in one directory) asks the resolver, and takes its lock, once.
// A path is as fresh as lazy resolution makes it anyway (resolved when the
// batch is written, a few milliseconds after the request): the cache is
// emptied for every batch, after any event that can rename what it holds,
// and after a gap in sequence numbers (events this subscriber lost).
type pathCache struct {
	gen   uint64
	last  uint64 // Seq of the previous event
	slots [pathSlots]pathSlot
}

type pathSlot struct {
	nodeid uint64
	gen    uint64
	path   string
}

// clear forgets every path.
func (c *pathCache) clear() { c.gen++ }

// resolve fills ev.Path like Tap.Resolve, from the cache when it can.
func (c *pathCache) resolve(t *Tap, ev *Event) {
	if ev.Seq != c.last+1 {
		c.clear()
	}
	c.last = ev.Seq
	if ev.Path == "" && ev.Nodeid != 0 {
		s := &c.slots[ev.Nodeid%pathSlots]
		if s.gen == c.gen && s.nodeid == ev.Nodeid {
			ev.Path = s.path
		} else {
			ev.Path = t.PathOf(ev.Nodeid)
			*s = pathSlot{nodeid: ev.Nodeid, gen: c.gen, path: ev.Path}
		}
	}
	c.renamed(ev)
}

// renamed drops what ev may have renamed: a RENAME moves a subtree; a
// LINK, a successful LOOKUP or a READDIRPLUS can name a known inode (a
// directory too) by another name; an entry reply for a new file, node,
// symlink or directory can only rename that inode.
func (c *pathCache) renamed(ev *Event) {
	switch ev.Op {
	case fuse.OpRename, fuse.OpRename2, fuse.OpLink, fuse.OpReaddirplus:
		c.clear()
	case fuse.OpLookup:
		if ev.NewNodeid != 0 {
			c.clear()
		}
	default:
		if ev.NewNodeid != 0 {
			if s := &c.slots[ev.NewNodeid%pathSlots]; s.nodeid == ev.NewNodeid {
				s.gen = c.gen - 1
			}
		}
	}
}
