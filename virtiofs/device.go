// Package virtiofs is the virtio-fs device: it takes FUSE requests from a
// hiprio queue and request queues, serves them through a fuse.Server (the
// last request a kick brought on the queue's own goroutine, any others on a
// pool of workers), and returns the replies on the used rings. The transport
// (virtio-mmio in the in-process VMM, or a vhost-user backend) configures
// the queues and delivers kicks; notifications go through virtio.Notifier.
package virtiofs

import (
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"runtime"
	"sync"
	"sync/atomic"

	"github.com/krunbench/krunbench/virtiofs/fuse"
	"github.com/krunbench/krunbench/vmm/virtio"
)

// RootTag is the tag of the device that becomes the guest's root.
const RootTag = "/dev/root"

// TagSize is the size of the tag field in the config space.
const TagSize = 36

// QueueSize is the largest queue the device accepts.
const QueueSize = 1024

// ErrTag reports an unusable tag.
var ErrTag = errors.New("virtiofs: tag must be 1 to 36 bytes")

// DeviceOptions configure a Device.
type DeviceOptions struct {
	// Tag names the filesystem for the guest (mount -t virtiofs TAG).
	Tag string
	// RequestQueues is the number of request queues; default 1.
	RequestQueues int
	// Workers serve requests in parallel; default 2 x CPUs, at least 4.
	Workers int
	// Log receives queue errors; nil discards them.
	Log *slog.Logger
}

// Device is a virtio-fs device (virtio device id 26).
type Device struct {
	srv     *fuse.Server
	tag     [TagSize]byte
	nreq    int
	workers int
	log     *slog.Logger
	acked   uint64

	// run is the activation being served, nil between Reset and
	// Activate: an atomic pointer rather than a field under a mutex, which
	// was one more lock a kick (ServeKick, QueueNotify).
	run atomic.Pointer[activation]
}

// activation is the state of one Activate..Reset period.
type activation struct {
	mem       virtio.GuestMemory
	queues    []*virtio.Queue
	notifiers []virtio.Notifier
	kicks     []chan struct{}
	lanes     []*lane
	jobs      chan job
	stop      chan struct{}
	pollers   sync.WaitGroup
	workers   sync.WaitGroup
}

// lane is the popping state of one queue. Its poller serves the last
// chain it popped itself, which saves handing it to a worker (a goroutine
// and often a thread wake-up per request). While it serves, kicks also go
// to the lane's helper, which hands what arrives to the workers, so a slow
// or held request never holds up the requests behind it.
type lane struct {
	serving atomic.Bool // the poller is serving, or about to serve, a chain
	help    chan struct{}
}

type job struct {
	queue int
	chain *virtio.Chain
}

// NewDevice returns a device serving srv's filesystem under tag.
func NewDevice(srv *fuse.Server, opts DeviceOptions) (*Device, error) {
	if len(opts.Tag) == 0 || len(opts.Tag) > TagSize {
		return nil, fmt.Errorf("%w: %q", ErrTag, opts.Tag)
	}
	d := &Device{srv: srv, nreq: max(opts.RequestQueues, 1), workers: opts.Workers, log: opts.Log}
	copy(d.tag[:], opts.Tag)
	if d.workers <= 0 {
		d.workers = max(4, 2*runtime.NumCPU())
	}
	if d.log == nil {
		d.log = slog.New(slog.DiscardHandler)
	}
	return d, nil
}

// Server returns the FUSE server behind the device.
func (d *Device) Server() *fuse.Server { return d.srv }

// Type is virtio-fs.
func (d *Device) Type() uint32 { return virtio.DeviceIDFS }

// Features offers VERSION_1, EVENT_IDX and indirect descriptors.
func (d *Device) Features() uint64 {
	return 1<<virtio.FeatureVersion1 | 1<<virtio.FeatureEventIdx | 1<<virtio.FeatureIndirectDesc
}

// AckFeatures records the driver's features.
func (d *Device) AckFeatures(f uint64) { d.acked = f & d.Features() }

// config is struct virtio_fs_config: tag[36], num_request_queues (le32).
func (d *Device) config() []byte {
	c := make([]byte, TagSize+4)
	copy(c, d.tag[:])
	binary.LittleEndian.PutUint32(c[TagSize:], uint32(d.nreq))
	return c
}

// ReadConfig reads the config space; bytes past its end read as zero.
func (d *Device) ReadConfig(off uint64, data []byte) {
	clear(data)
	if c := d.config(); off < uint64(len(c)) {
		copy(data, c[off:])
	}
}

// WriteConfig ignores writes: the config space is read-only.
func (d *Device) WriteConfig(uint64, []byte) {}

// NumQueues is the hiprio queue plus the request queues.
func (d *Device) NumQueues() int { return 1 + d.nreq }

// MaxQueueSize is QueueSize.
func (d *Device) MaxQueueSize() uint16 { return QueueSize }

// Activate starts serving the queues.
func (d *Device) Activate(mem virtio.GuestMemory, queues []*virtio.Queue, notifiers []virtio.Notifier) error {
	if len(queues) != d.NumQueues() || len(notifiers) != len(queues) {
		return fmt.Errorf("virtiofs: activate with %d queues and %d notifiers, want %d", len(queues), len(notifiers), d.NumQueues())
	}
	eventIdx := d.acked&(1<<virtio.FeatureEventIdx) != 0
	for i, q := range queues {
		if q == nil || !q.Ready() {
			continue
		}
		q.SetEventIdx(eventIdx)
		if err := q.Validate(mem); err != nil {
			return fmt.Errorf("virtiofs: queue %d: %w", i, err)
		}
	}
	d.Reset()
	a := &activation{
		mem: mem, queues: queues, notifiers: notifiers,
		kicks: make([]chan struct{}, len(queues)),
		jobs:  make(chan job, 2*QueueSize),
		stop:  make(chan struct{}),
	}
	for range d.workers {
		a.workers.Add(1)
		go d.work(a)
	}
	a.lanes = make([]*lane, len(queues))
	for i, q := range queues {
		a.kicks[i] = make(chan struct{}, 1)
		a.lanes[i] = &lane{help: make(chan struct{}, 1)}
		if q == nil || !q.Ready() {
			continue
		}
		a.pollers.Add(2)
		go d.poll(a, i)
		go d.help(a, i)
	}
	d.run.Store(a)
	return nil
}

// QueueNotify wakes the queue's poller; it never blocks.
func (d *Device) QueueNotify(index int) {
	a := d.run.Load()
	if a == nil || index < 0 || index >= len(a.kicks) {
		return
	}
	select {
	case a.kicks[index] <- struct{}{}:
	default:
	}
	if a.lanes[index].serving.Load() {
		select {
		case a.lanes[index].help <- struct{}{}:
		default:
		}
	}
}

// Reset stops the pollers, waits for requests in flight to be answered,
// and ends the FUSE session.
func (d *Device) Reset() {
	a := d.run.Swap(nil)
	if a == nil {
		return
	}
	d.srv.Release() // a breakpoint must not hold the workers we wait for
	close(a.stop)
	a.pollers.Wait()
	close(a.jobs)
	a.workers.Wait()
	d.srv.Reset()
}

// poll pops every available chain of one queue on each kick: it hands all
// but the last to the workers and serves the last itself (drain). While it
// serves, kicks also wake the lane's helper (QueueNotify).
func (d *Device) poll(a *activation, qi int) {
	defer a.pollers.Done()
	for {
		if !d.drain(a, qi) {
			return
		}
		select {
		case <-a.kicks[qi]:
		case <-a.stop:
			return
		}
	}
}

// ServeKick handles a kick of queue index on the caller's goroutine, as
// QueueNotify's poller would: it pops every available chain, hands all but
// the last to the workers and serves the last itself, until the ring is
// empty. A transport that waits for kicks on a goroutine of its own (the
// vhost-user backend) calls it there, which saves the hand-off to the
// queue's poller: a goroutine switch and often a thread wake-up per
// request. Requests slow by nature (slowRequest) go to the workers. While
// it serves, the caller reads no kicks: a request served inline that takes
// long holds up the requests behind it, as in virtiofsd's queue thread. So
// when a Hook intercepts requests (a breakpoint may hold one for as long as
// the user likes), ServeKick is QueueNotify, whose poller has a helper
// for the kicks that come while it serves. It returns false once the
// device is stopped or the queue broke.
func (d *Device) ServeKick(index int) bool {
	if d.srv.Hooked() {
		d.QueueNotify(index)
		return true
	}
	a := d.run.Load()
	if a == nil || index < 0 || index >= len(a.kicks) || a.queues[index] == nil {
		return false
	}
	// Tried and not adopted: serving every chain of the kick inline, one
	// after the other, as virtiofsd's queue thread does, instead of
	// handing all but the last to the workers. strace -c -f of the
	// backend under guestbench (128 MiB read + 1,000 create+unlink, about
	// 8,000 requests): futex 5,216 against 5,940, nanosleep 11,011
	// against 13,511, epoll_pwait 12,382 against 14,611, so 10-15% fewer
	// scheduler syscalls; one timed round (5,000 create+unlink, 256 MiB
	// read) CPU ratio to virtiofsd 3.52x against 4.01x for create and
	// 1.79x against 2.05x for read, within the noise of this machine. It
	// gives up serving a queue's concurrent requests (the guest's
	// readahead READs, several clients) in parallel, so it stays a
	// candidate for a quieter measurement.
	// Measured again on a quieter machine (load 1.1-1.4; guestbench
	// -bin-b, the old binary as mode virtiofs-b, 4 boots of each rotated
	// with virtiofsd in one run; 256 MiB seq read, 2,056 requests, then
	// 5,000 create+unlink): backend CPU inline over hand-off, per boot
	// pair, read 0.967, 1.000, 1.069, 1.034 (median 1.017), create
	// 0.667, 0.988, 0.988, 1.040 (one chain per kick there: no change
	// but the first pair's noise); CPU per 1,000 requests over
	// virtiofsd's, read 1.22x against 1.16x. What the hand-off costs by
	// guestbench -profile (read, per 1,000 requests, with perf's share):
	// futex 359 and nanosleep 180 calls, 1,571 context switches against
	// virtiofsd's 1,025, the Go scheduler's and the futex's kernel time
	// about 7 ms of 143; serving inline did not turn that into a gain
	// this machine can show. Not adopted.
	return d.drain(a, index)
}

// QueueThread says which thread a transport that waits for kicks itself
// (the vhost-user backend) should wait for queue index's kicks in: each
// request queue gets a thread of its own, blocked outside the runtime's
// netpoller and serving kicks with ServeKick (it returns the queue's own
// index), and the hiprio queue (index 0) shares the first request queue's
// thread (it returns 1). -1 (the netpoller) for no queue of this device.
//
// The hiprio queue carries FORGETs, one a file in the create workload
// (every unlinked inode's), which take the inode table's lock and nothing
// else. In the netpoller each cost a thread of its own waking (the
// netpoller's), two reads of the kick eventfd (the kick, then EAGAIN) and
// two epoll_pwait calls; in the request queue's wait it is one more fd in
// the same epoll, an event that often comes with the next request's kick.
// A thread of its own for it was measured and rejected (queuethread.go:
// with both Ps in system calls, sysmon retakes them on every kick).
func (d *Device) QueueThread(index int) int {
	switch {
	case index >= 1 && index <= d.nreq:
		return index
	case index == 0:
		return 1
	}
	return -1
}

// slowRequest reports whether a request belongs to a class that is slow on
// the host by nature and is never served inline: FSYNC and FSYNCDIR (wait
// for the disk), FALLOCATE and COPY_FILE_RANGE (move or reserve extents),
// SETLKW (waits for another lock holder, possibly forever).
// The opcode is read from guest memory, so under GuardFaults: a fault (a
// front-end shrank guest RAM) counts as not slow, and serving the chain
// then abandons it.
func slowRequest(c *virtio.Chain) (slow bool) {
	if len(c.Readable) == 0 || len(c.Readable[0]) < 8 {
		return false // malformed: the server answers it at once
	}
	_ = virtio.GuardFaults(func() {
		switch binary.LittleEndian.Uint32(c.Readable[0][4:8]) {
		case fuse.OpFsync, fuse.OpFsyncdir, fuse.OpFallocate, fuse.OpCopyFileRange, fuse.OpSetlkw:
			slow = true
		}
	})
	return slow
}

// The guest path's bookkeeping per request (the stat workload's user
// time). Before: drain popped 4 times for a one-chain kick (the chain, an
// empty pop, another after marking the lane serving, the look after
// serving), each pop a read of avail->idx under the lane's lock and the
// queue's, and completion took the queue's lock twice (AddUsed, then
// NeedsNotification), ServeKick the device's mutex: 12 lock operations a
// request with the call fd's. Now 3 pops of which 2 read avail->idx (the
// queue keeps the index it read: Queue.PopSeenInto), no lane lock, one for
// completion (Queue.AddUsedNotify), the activation an atomic pointer: 5.
// BenchmarkServeKick (in-process, old and new test binaries alternating, 8
// pairs): an empty ServeKick 86 -> 58 ns (medians; new/old per pair
// 0.76), a whole GETATTR 2.79 -> 2.73 us and LOOKUP 3.36 -> 3.53 us from
// kick to used element, syscalls included: within their spread. guestbench
// -profile (3 boots a side, old and new rotated in one run, default
// settings), self time per 1,000 requests: the pops (Queue.PopInto,
// Device.pop) 0.39 -> 0.20 ms stat and 0.29 -> 0.18 create, completion
// (complete, AddUsed, NeedsNotification) 0.36 -> 0.21 and 0.41 -> 0.18,
// Mutex.Unlock 0.12 -> 0.07 and 0.12 -> 0.06, the queue's and device's
// bookkeeping without readDesc 2.83 -> 2.38 and 2.58 -> 2.02 ms: 0.8%
// and 1.3% of the backend's task-clock (58 and 42 ms per 1,000). The rest
// of the queue's user time is first loads of what the vCPU just wrote
// (readDesc 5.1-5.2 ms per 1,000 stat requests, 82% of it on the
// descriptor's first load: avail ring, descriptor, indirect table, header,
// a chain of dependent misses on swiotlb pages that move with every
// request), which fewer instructions do not shorten; virtiofsd takes the
// same loads. Timed A/B numbers are in the commit that made the change.

// drain pops every available chain of one queue: it hands all but the last
// to the workers and serves the last itself, and repeats until the ring is
// empty. It marks the lane serving before the read of avail->idx that the
// pops of one round go by, so that a kick for a chain published after that
// read wakes the helper rather than waiting for the chain it serves. Only
// the first pop of a round reads avail->idx; the others take what that
// read showed (PopSeenInto), and the look after serving reads it again
// (chains that came meanwhile may have had their kick taken by this
// round). It returns false once the device stopped or the queue broke.
//
// Before, every pop read avail->idx and a round ended with an empty pop,
// a second one after marking the lane serving, and the empty look after
// serving: 4 pops, 4 reads of avail->idx and 8 locks (the lane's and the
// queue's) for a stat request, one chain per kick. Now 3 pops, 2 reads and
// 3 locks (TestServeKickReadsAvailIdxTwice); the numbers are above drain.
// A chain published while a round pops is found by the look after
// serving rather than by the round's next pop (the ServeKick path: no
// helper there), which only moves a chain that raced a read of avail->idx
// by nanoseconds behind the one served inline.
func (d *Device) drain(a *activation, qi int) bool {
	l := a.lanes[qi]
	for {
		l.serving.Store(true)
		var last *virtio.Chain
		for {
			c, ok := d.pop(a, qi, last == nil)
			if !ok {
				if last != nil {
					a.jobs <- job{queue: qi, chain: last}
				}
				l.serving.Store(false)
				return false
			}
			if c == nil {
				break
			}
			if last != nil {
				a.jobs <- job{queue: qi, chain: last}
			}
			last = c
		}
		if last != nil && slowRequest(last) {
			a.jobs <- job{queue: qi, chain: last}
			last = nil
		}
		if last == nil {
			l.serving.Store(false)
			return true
		}
		d.complete(a, qi, last.Head, d.serve(job{queue: qi, chain: last}))
		putChain(last)
		// chains that came meanwhile may have had their kick taken or
		// suppressed: look again
	}
}

// help hands every available chain of one queue to the workers when a kick
// comes while the poller is serving.
func (d *Device) help(a *activation, qi int) {
	defer a.pollers.Done()
	for {
		select {
		case <-a.lanes[qi].help:
		case <-a.stop:
			return
		}
		for {
			c, ok := d.pop(a, qi, true)
			if !ok {
				return
			}
			if c == nil {
				break
			}
			a.jobs <- job{queue: qi, chain: c}
		}
	}
}

// pop takes the next chain of a queue; nil when the ring is empty. With
// look it reads avail->idx once the entries seen at its last read are
// consumed (PopInto); without, it takes only those (PopSeenInto). It
// completes a rejected chain with length 0 and goes on. ok is false once
// the device stops or the queue broke. Every caller hands a popped chain on
// or serves it: the workers drain jobs until Reset closes it after the
// pollers are gone, and a dropped chain would never be answered. The stop
// check before every pop keeps a driver that keeps the ring full from
// holding Reset off. The poller and the helper pop the same queue
// concurrently; the queue's own lock orders their pops (a lane lock
// around each pop, kept from when Pop was not safe for concurrent use,
// was two more lock operations a pop).
func (d *Device) pop(a *activation, qi int, look bool) (c *virtio.Chain, ok bool) {
	q := a.queues[qi]
	for {
		select {
		case <-a.stop:
			return nil, false
		default:
		}
		c := getChain()
		var got bool
		var err error
		if look {
			got, err = q.PopInto(a.mem, c)
		} else {
			got, err = q.PopSeenInto(a.mem, c)
		}
		if err != nil {
			putChain(c)
			// Only a failed pop asks what failed: errors.As's target,
			// declared for every pop, escaped (one allocation a pop).
			var ce *virtio.ChainError
			if errors.As(err, &ce) {
				d.log.Warn("virtio-fs: rejected descriptor chain", "queue", qi, "reason", ce.Reason)
				d.complete(a, qi, ce.Head, 0)
				continue
			}
			d.log.Error("virtio-fs: queue stopped", "queue", qi, "err", err)
			return nil, false
		}
		if !got {
			putChain(c)
			return nil, true
		}
		return c, true
	}
}

// chainPool recycles popped chains with their buffer lists. Queue.Pop
// allocated a chain for every pop, the empty one that ends each drain
// included, and the lists grew anew in each: most of the guest path's
// allocations (perf of serve --socket under guestbench stat+create:
// runtime.mallocgc 3.3% of the backend's samples, 2.7 of them here).
var chainPool = sync.Pool{New: func() any { return new(virtio.Chain) }}

func getChain() *virtio.Chain { return chainPool.Get().(*virtio.Chain) }

// putChain returns a completed chain to the pool, dropping its views of
// guest memory.
func putChain(c *virtio.Chain) {
	clear(c.Readable)
	clear(c.Writable)
	*c = virtio.Chain{Readable: c.Readable[:0], Writable: c.Writable[:0]}
	chainPool.Put(c)
}

func (d *Device) work(a *activation) {
	defer a.workers.Done()
	for j := range a.jobs {
		d.complete(a, j.queue, j.chain.Head, d.serve(j))
		putChain(j.chain)
	}
}

// serve answers one request and returns the used length. A fault on the
// chain's buffers (a vhost-user front-end shrank the file behind guest RAM)
// abandons the request, which is completed with length 0.
func (d *Device) serve(j job) uint32 {
	var n int
	var reply bool
	out := j.chain.Writable
	if j.chain.WritableLen < uint32(fuse.OutHeaderSize) {
		out = nil // no reply fits: nothing may be written, not even part of a header
	}
	if err := virtio.GuardFaults(func() { n, reply = d.srv.Serve(j.chain.Readable, out) }); err != nil {
		d.log.Error("virtio-fs: request abandoned", "queue", j.queue, "head", j.chain.Head, "err", err)
		return 0
	}
	return d.usedLen(j, n, reply)
}

// usedLen is the length to report for a served chain: what the server
// wrote, but never more than the chain's writable bytes (a reply that did
// not fit is reported as 0, as is a request that has no reply).
func (d *Device) usedLen(j job, n int, reply bool) uint32 {
	switch {
	case !reply || n <= 0:
		return 0
	case uint64(n) > uint64(j.chain.WritableLen):
		d.log.Warn("virtio-fs: reply larger than the chain's writable buffers; completed with length 0",
			"queue", j.queue, "head", j.chain.Head, "reply", n, "writable", j.chain.WritableLen)
		return 0
	}
	return uint32(n)
}

// complete returns a chain to the driver and notifies it when needed.
func (d *Device) complete(a *activation, qi int, head uint16, n uint32) {
	need, err := a.queues[qi].AddUsedNotify(a.mem, head, n)
	if err != nil {
		d.log.Error("virtio-fs: add used", "queue", qi, "err", err)
		return
	}
	if !need {
		return
	}
	if err := a.notifiers[qi].Notify(); err != nil {
		d.log.Warn("virtio-fs: notify", "queue", qi, "err", err)
	}
}
