package virtio

import (
	"errors"
	"fmt"
	"log/slog"
	"runtime/debug"
	"sync"
)

// MaxQueueSize is the largest split virtqueue size allowed by the spec.
const MaxQueueSize = 32768

// DefaultMaxChainBytes is the default cap on the total buffer length of one
// descriptor chain (readable plus writable bytes).
const DefaultMaxChainBytes = 64 << 20

// Ring layout (virtio 1.x, split virtqueue).
const (
	descSize      = 16
	descAlign     = 16
	availAlign    = 2
	usedAlign     = 4
	usedElemSize  = 8
	ringHeaderLen = 4 // flags + idx
)

// Queue errors; errors returned by Queue wrap one of them.
var (
	// ErrInvalidQueue reports a queue configuration (size, ring
	// addresses) that cannot be used.
	ErrInvalidQueue = errors.New("virtio: invalid queue configuration")
	// ErrNotReady reports use of a queue the driver has not enabled.
	ErrNotReady = errors.New("virtio: queue not ready")
	// ErrBroken reports a queue that stopped serving because the driver
	// corrupted it (see Queue.Broken).
	ErrBroken = errors.New("virtio: queue broken by driver")
	// ErrBadChain reports a rejected descriptor chain; the error is a
	// *ChainError carrying the head to return to the used ring.
	ErrBadChain = errors.New("virtio: malformed descriptor chain")
	// ErrInvalidHead reports an AddUsed head that is outside the queue or
	// not in flight.
	ErrInvalidHead = errors.New("virtio: used head not in flight")
)

// ChainError is returned by Pop for a malformed descriptor chain whose head
// index was valid. The available entry has been consumed; the device should
// complete it with q.AddUsed(mem, e.Head, 0) so the driver can reclaim the
// descriptors. It wraps ErrBadChain.
type ChainError struct {
	Head   uint16
	Reason string
}

// Error describes the rejected chain.
func (e *ChainError) Error() string {
	return fmt.Sprintf("virtio: malformed descriptor chain at head %d: %s", e.Head, e.Reason)
}

// Unwrap returns ErrBadChain.
func (e *ChainError) Unwrap() error { return ErrBadChain }

// Queue is the device side of a split virtqueue. Transports configure it
// through the setters as the driver programs the queue; devices consume it
// with Pop, AddUsed and NeedsNotification. All methods are safe for
// concurrent use (one mutex per queue), so completions may be added from
// goroutines other than the one popping.
//
// The queue knows nothing of interrupts or eventfds: after adding used
// elements the device asks NeedsNotification and, if true, calls its
// Notifier.
//
// Kick handling: Pop keeps avail_event (EVENT_IDX) up to date while
// notifications are enabled, so the simple loop "on kick, Pop until empty"
// loses no kicks. Devices that want fewer kicks while busy use
//
//	for {
//		q.DisableNotification(mem)
//		for { c, err := q.Pop(mem); if c == nil && err == nil { break }; ... }
//		if more, _ := q.EnableNotification(mem); !more { break }
//	}
//
// Validation: the driver-provided indices and the avail index are checked
// against the queue size, and descriptor buffers against guest memory. A
// bad chain yields a *ChainError; a bad avail index or head index, a head
// published again while the device still holds it, rings outside guest
// memory, or a fault on guest memory (ErrMemoryFault: the file behind a
// vhost-user front-end's memory shrank), mark the queue broken: every
// later Pop and AddUsed fails with ErrBroken until Reset.
//
// In flight: the queue remembers every head it handed out (by Pop, or in a
// *ChainError) until AddUsed completes it, with the chain's writable
// length. AddUsed accepts only such heads and never publishes a used
// length larger than the chain's writable bytes, whatever the device
// passes.
type Queue struct {
	mu sync.Mutex

	maxSize  uint16
	size     uint16
	desc     uint64
	avail    uint64
	used     uint64
	ready    bool
	eventIdx bool

	nextAvail uint16
	nextUsed  uint16
	// availSeen is avail->idx as last read (and validated against
	// nextAvail and the size): the entries [nextAvail, availSeen) are
	// published and Pop takes them without reading avail->idx again.
	availSeen uint16

	signalledUsed  uint16
	signalledValid bool
	notifyOn       bool
	broken         bool

	// inflight is indexed by head: the chains handed out and not yet
	// completed (sized to the queue on first Pop).
	inflight []inflightChain

	maxChainBytes uint32
	log           *slog.Logger
}

// inflightChain is the state of one head between Pop and AddUsed.
type inflightChain struct {
	busy     bool
	writable uint32 // the chain's WritableLen: the most AddUsed may report
}

// NewQueue returns a reset queue whose size may be configured up to
// maxSize, a power of two no larger than MaxQueueSize.
func NewQueue(maxSize uint16) (*Queue, error) {
	if !isPow2(uint32(maxSize)) || maxSize > MaxQueueSize {
		return nil, fmt.Errorf("%w: max size %d is not a power of two <= %d", ErrInvalidQueue, maxSize, MaxQueueSize)
	}
	q := &Queue{maxSize: maxSize, maxChainBytes: DefaultMaxChainBytes}
	q.resetLocked()
	return q, nil
}

func isPow2(n uint32) bool { return n != 0 && n&(n-1) == 0 }

// Reset returns the queue to its initial state: size = MaxSize, addresses
// zero, not ready, EVENT_IDX off, indices zero, notifications enabled, not
// broken. The chain byte cap and logger are kept.
func (q *Queue) Reset() {
	q.mu.Lock()
	defer q.mu.Unlock()
	q.resetLocked()
}

func (q *Queue) resetLocked() {
	q.size = q.maxSize
	q.desc, q.avail, q.used = 0, 0, 0
	q.ready, q.eventIdx = false, false
	q.nextAvail, q.nextUsed, q.availSeen = 0, 0, 0
	q.signalledUsed, q.signalledValid = 0, false
	q.notifyOn = true
	q.broken = false
	q.inflight = nil
}

// lock takes the mutex and returns the unlock function, keeping the
// accessors one-liners.
func (q *Queue) lock() func() { q.mu.Lock(); return q.mu.Unlock }

// MaxSize returns the largest size the queue accepts.
func (q *Queue) MaxSize() uint16 { return q.maxSize }

// Size returns the configured queue size.
func (q *Queue) Size() uint16 { defer q.lock()(); return q.size }

// SetSize sets the queue size (QueueNum); Validate checks it. The avail
// index read last is forgotten: it was validated against the old size.
func (q *Queue) SetSize(n uint16) { defer q.lock()(); q.size, q.availSeen = n, q.nextAvail }

// DescTable returns the guest-physical address of the descriptor table.
func (q *Queue) DescTable() uint64 { defer q.lock()(); return q.desc }

// SetDescTable sets the descriptor table address.
func (q *Queue) SetDescTable(gpa uint64) { defer q.lock()(); q.desc = gpa }

// AvailRing returns the guest-physical address of the available ring.
func (q *Queue) AvailRing() uint64 { defer q.lock()(); return q.avail }

// SetAvailRing sets the available (driver) ring address and forgets the
// avail index read from the old one.
func (q *Queue) SetAvailRing(gpa uint64) { defer q.lock()(); q.avail, q.availSeen = gpa, q.nextAvail }

// UsedRing returns the guest-physical address of the used ring.
func (q *Queue) UsedRing() uint64 { defer q.lock()(); return q.used }

// SetUsedRing sets the used (device) ring address.
func (q *Queue) SetUsedRing(gpa uint64) { defer q.lock()(); q.used = gpa }

// Ready reports whether the driver enabled the queue.
func (q *Queue) Ready() bool { defer q.lock()(); return q.ready }

// SetReady sets the ready flag (QueueReady, or vhost-user SET_VRING_ENABLE).
func (q *Queue) SetReady(ready bool) { defer q.lock()(); q.ready = ready }

// EventIdx reports whether VIRTIO_RING_F_EVENT_IDX is in use.
func (q *Queue) EventIdx() bool { defer q.lock()(); return q.eventIdx }

// SetEventIdx records whether VIRTIO_RING_F_EVENT_IDX was negotiated.
func (q *Queue) SetEventIdx(on bool) { defer q.lock()(); q.eventIdx = on }

// NextAvail returns the index of the next available-ring entry to consume
// (last_avail_idx; vhost-user GET_VRING_BASE).
func (q *Queue) NextAvail() uint16 { defer q.lock()(); return q.nextAvail }

// SetNextAvail sets last_avail_idx (vhost-user SET_VRING_BASE) and forgets
// the avail index read last.
func (q *Queue) SetNextAvail(idx uint16) { defer q.lock()(); q.nextAvail, q.availSeen = idx, idx }

// NextUsed returns the index the next used element will be written at (the
// device's shadow of used->idx).
func (q *Queue) NextUsed() uint16 { defer q.lock()(); return q.nextUsed }

// SetNextUsed sets the shadow used index, e.g. to used->idx when a
// vhost-user backend resumes a ring, and forgets the last notification.
func (q *Queue) SetNextUsed(idx uint16) {
	defer q.lock()()
	q.nextUsed = idx
	q.signalledValid = false
}

// MaxChainBytes returns the cap on a chain's total buffer length.
func (q *Queue) MaxChainBytes() uint32 { defer q.lock()(); return q.maxChainBytes }

// SetMaxChainBytes sets the cap on a chain's total buffer length; chains
// exceeding it are rejected. Zero restores DefaultMaxChainBytes.
func (q *Queue) SetMaxChainBytes(n uint32) {
	defer q.lock()()
	if n == 0 {
		n = DefaultMaxChainBytes
	}
	q.maxChainBytes = n
}

// SetLogger sets the logger for rejected chains and broken queues (nil
// disables logging). Callers typically pass l.With("queue", index).
func (q *Queue) SetLogger(l *slog.Logger) { defer q.lock()(); q.log = l }

// Broken reports whether the driver corrupted the queue; a broken queue
// serves nothing until Reset.
func (q *Queue) Broken() bool { defer q.lock()(); return q.broken }

// Validate checks the configuration against mem: size a power of two no
// larger than MaxSize, rings aligned as the spec requires (descriptor table
// 16, available ring 2, used ring 4 bytes) and lying entirely inside guest
// memory, including the event index fields.
func (q *Queue) Validate(mem GuestMemory) error {
	defer q.lock()()
	if err := q.checkLayout(); err != nil {
		return err
	}
	n := uint64(q.size)
	rings := [...]struct {
		name     string
		gpa, len uint64
	}{
		{"descriptor table", q.desc, descSize * n},
		{"available ring", q.avail, ringHeaderLen + 2*n + 2},
		{"used ring", q.used, ringHeaderLen + usedElemSize*n + 2},
	}
	for _, r := range rings {
		// Slice first: rings are not buffers, and AppendSlices would run
		// the memory's FirstUse on the blocks around them; a ring over two
		// contiguous regions is still accepted through AppendSlices.
		if _, err := mem.Slice(r.gpa, r.len); err == nil {
			continue
		}
		if _, err := mem.AppendSlices(nil, r.gpa, r.len); err != nil {
			return fmt.Errorf("%w: %s %#x+%#x: %w", ErrInvalidQueue, r.name, r.gpa, r.len, err)
		}
	}
	return nil
}

// checkLayout checks size and alignment; it is cheap and runs on every Pop
// so that a misconfigured queue can never be indexed.
func (q *Queue) checkLayout() error {
	switch {
	case !isPow2(uint32(q.size)) || q.size > q.maxSize:
		return fmt.Errorf("%w: size %d is not a power of two <= %d", ErrInvalidQueue, q.size, q.maxSize)
	case q.desc%descAlign != 0:
		return fmt.Errorf("%w: descriptor table %#x not %d-byte aligned", ErrInvalidQueue, q.desc, descAlign)
	case q.avail%availAlign != 0:
		return fmt.Errorf("%w: available ring %#x not %d-byte aligned", ErrInvalidQueue, q.avail, availAlign)
	case q.used%usedAlign != 0:
		return fmt.Errorf("%w: used ring %#x not %d-byte aligned", ErrInvalidQueue, q.used, usedAlign)
	}
	return nil
}

// usable returns nil when the queue may be accessed: ready, not broken and
// sanely laid out. A bad layout marks the queue broken.
func (q *Queue) usable() error {
	if q.broken {
		return ErrBroken
	}
	if !q.ready {
		return ErrNotReady
	}
	if err := q.checkLayout(); err != nil {
		return q.breakLocked(err.Error())
	}
	return nil
}

// guardFaults is deferred, right after the lock, by every method that
// touches guest memory: a fault there (a vhost-user front-end shrank the
// file behind guest RAM) breaks the queue instead of killing the process.
// restore is the goroutine's previous panic-on-fault setting.
func (q *Queue) guardFaults(err *error, restore bool) {
	debug.SetPanicOnFault(restore)
	if r := recover(); r != nil {
		*err = q.breakLocked(faultError(r).Error())
	}
}

// breakLocked marks the queue broken and returns the error to report.
func (q *Queue) breakLocked(reason string) error {
	if !q.broken && q.log != nil {
		q.log.Error("virtio: queue broken by driver", "reason", reason)
	}
	q.broken = true
	return fmt.Errorf("%w: %s", ErrBroken, reason)
}

// Address helpers for ring fields.
func (q *Queue) availIdxAddr() uint64       { return q.avail + 2 }
func (q *Queue) availEntry(i uint16) uint64 { return q.avail + ringHeaderLen + 2*uint64(i%q.size) }
func (q *Queue) usedEventAddr() uint64      { return q.avail + ringHeaderLen + 2*uint64(q.size) }
func (q *Queue) usedIdxAddr() uint64        { return q.used + 2 }
func (q *Queue) usedElem(i uint16) uint64 {
	return q.used + ringHeaderLen + usedElemSize*uint64(i%q.size)
}
func (q *Queue) availEventAddr() uint64 { return q.used + ringHeaderLen + usedElemSize*uint64(q.size) }

// pendingLocked reads avail->idx and returns how many available entries
// are not yet consumed, breaking the queue if the driver's avail index is
// implausible (more than the queue's size ahead of nextAvail). A plausible
// one is kept in availSeen.
func (q *Queue) pendingLocked(mem GuestMemory) (uint16, error) {
	idx, err := mem.LoadU16(q.availIdxAddr())
	if err != nil {
		return 0, q.breakLocked("reading avail idx: " + err.Error())
	}
	n := idx - q.nextAvail
	if n > q.size {
		return 0, q.breakLocked(fmt.Sprintf("avail idx %d is %d entries ahead of %d (size %d)", idx, n, q.nextAvail, q.size))
	}
	q.availSeen = idx
	return n, nil
}

// Pending returns the number of available entries not yet popped.
func (q *Queue) Pending(mem GuestMemory) (n uint16, err error) {
	defer q.lock()()
	defer q.guardFaults(&err, debug.SetPanicOnFault(true))
	if err := q.usable(); err != nil {
		return 0, err
	}
	return q.pendingLocked(mem)
}

// Pop consumes the next available descriptor chain. It returns (nil, nil)
// when the ring is empty. A malformed chain returns a *ChainError (the
// entry is consumed; complete its Head with length 0). A broken queue
// returns an error wrapping ErrBroken.
func (q *Queue) Pop(mem GuestMemory) (*Chain, error) {
	c := new(Chain)
	ok, err := q.PopInto(mem, c)
	if !ok {
		return nil, err
	}
	return c, nil
}

// PopInto is Pop that reuses c (and the capacity of its buffer lists). It
// reports whether a chain was stored in c; on a *ChainError it returns
// false and c holds only the head.
//
// avail->idx is read only once the entries seen at its last read are all
// consumed (as a driver reads used->idx), so a kick that brings several
// chains costs one read of it, not one per chain. Each read is validated
// as before (at most the queue's size ahead of nextAvail); the entries
// seen are never more than that, and each Pop consumes one.
func (q *Queue) PopInto(mem GuestMemory, c *Chain) (ok bool, err error) {
	return q.popInto(mem, c, true)
}

// PopSeenInto is PopInto limited to the entries published when avail->idx
// was last read (by a Pop, Pending or EnableNotification): it never reads
// avail->idx, and reports false, without touching guest memory, once
// those are consumed. A device that has just popped a chain uses it to
// learn whether that chain was the last one the driver had published,
// which PopInto would answer with one more read of avail->idx; a chain
// published since is found by its next PopInto.
func (q *Queue) PopSeenInto(mem GuestMemory, c *Chain) (ok bool, err error) {
	return q.popInto(mem, c, false)
}

func (q *Queue) popInto(mem GuestMemory, c *Chain, look bool) (ok bool, err error) {
	defer q.lock()()
	defer q.guardFaults(&err, debug.SetPanicOnFault(true))
	if err := q.usable(); err != nil {
		return false, err
	}
	if q.availSeen == q.nextAvail {
		if !look {
			return false, nil
		}
		if n, err := q.pendingLocked(mem); err != nil || n == 0 {
			return false, err
		}
	}
	head, err := mem.LoadU16(q.availEntry(q.nextAvail))
	if err != nil {
		return false, q.breakLocked("reading avail ring: " + err.Error())
	}
	if head >= q.size {
		return false, q.breakLocked(fmt.Sprintf("avail ring entry %d holds head %d >= size %d", q.nextAvail, head, q.size))
	}
	if len(q.inflight) != int(q.size) {
		q.inflight = make([]inflightChain, q.size)
	}
	if q.inflight[head].busy {
		return false, q.breakLocked(fmt.Sprintf("avail ring entry %d holds head %d, which is still in flight", q.nextAvail, head))
	}
	q.nextAvail++
	if q.eventIdx && q.notifyOn {
		if err := mem.StoreU16(q.availEventAddr(), q.nextAvail); err != nil {
			return false, q.breakLocked("writing avail_event: " + err.Error())
		}
	}
	c.reset(head)
	reason, fatal := q.walk(mem, c)
	if fatal {
		return false, q.breakLocked(reason)
	}
	q.inflight[head] = inflightChain{busy: true, writable: c.WritableLen}
	if reason != "" {
		q.inflight[head].writable = 0
		c.reset(head)
		if q.log != nil {
			q.log.Warn("virtio: rejecting descriptor chain", "head", head, "reason", reason)
		}
		return false, &ChainError{Head: head, Reason: reason}
	}
	return true, nil
}

// AddUsed publishes a used element for the chain at head, with n bytes
// written into its writable buffers, and advances used->idx (an atomic
// store ordered after the element). head must be in flight (popped, or
// reported in a *ChainError, and not completed yet); otherwise AddUsed
// fails with ErrInvalidHead and publishes nothing. An n larger than the
// chain's WritableLen is a device bug: the element is published with
// length 0 (the driver must not trust bytes the device claims beyond its
// buffers) and the error is logged.
func (q *Queue) AddUsed(mem GuestMemory, head uint16, n uint32) (err error) {
	defer q.lock()()
	defer q.guardFaults(&err, debug.SetPanicOnFault(true))
	if err := q.usable(); err != nil {
		return err
	}
	return q.addUsedLocked(mem, head, n)
}

// AddUsedNotify is AddUsed followed by NeedsNotification, under one lock:
// it reports whether the driver wants a notification for the element (and
// any added since the previous NeedsNotification). When AddUsed fails it
// returns its error and does not ask. A device that notifies after each
// completion saves a lock, a fault guard and a usable check per request
// against the two calls.
func (q *Queue) AddUsedNotify(mem GuestMemory, head uint16, n uint32) (need bool, err error) {
	defer q.lock()()
	defer q.guardFaults(&err, debug.SetPanicOnFault(true))
	if err := q.usable(); err != nil {
		return false, err
	}
	if err := q.addUsedLocked(mem, head, n); err != nil {
		return false, err
	}
	return q.needsNotificationLocked(mem)
}

func (q *Queue) addUsedLocked(mem GuestMemory, head uint16, n uint32) error {
	if head >= q.size {
		return fmt.Errorf("%w: %d >= %d", ErrInvalidHead, head, q.size)
	}
	if int(head) >= len(q.inflight) || !q.inflight[head].busy {
		return fmt.Errorf("%w: head %d is not in flight", ErrInvalidHead, head)
	}
	if w := q.inflight[head].writable; n > w {
		if q.log != nil {
			q.log.Error("virtio: used length exceeds the chain's writable bytes; reporting 0", "head", head, "len", n, "writable", w)
		}
		n = 0
	}
	b, err := mem.Slice(q.usedElem(q.nextUsed), usedElemSize)
	if err != nil {
		return q.breakLocked("writing used ring: " + err.Error())
	}
	putLE32(b[0:4], uint32(head))
	putLE32(b[4:8], n)
	q.inflight[head] = inflightChain{}
	q.nextUsed++
	if err := mem.StoreU16(q.usedIdxAddr(), q.nextUsed); err != nil {
		return q.breakLocked("writing used idx: " + err.Error())
	}
	return nil
}
