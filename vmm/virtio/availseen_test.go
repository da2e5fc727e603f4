package virtio_test

import (
	"errors"
	"testing"

	"github.com/krunbench/krunbench/vmm/virtio"
	"github.com/krunbench/krunbench/vmm/virtio/virtiotest"
)

// TestPopReadsAvailIdxOncePerBatch: three chains published together cost
// one read of avail->idx for their three pops, the empty pop after them
// one more, and PopSeenInto none at all; a chain published after the last
// read is not seen by PopSeenInto and is found by PopInto. Before Pop kept
// the index it read, every pop read it (4 reads for the first four pops).
func TestPopReadsAvailIdxOncePerBatch(t *testing.T) {
	d := virtiotest.New(virtiotest.Config{QueueSize: 8, EventIdx: true})
	q := d.Queue()
	mem := d.CountAvailIdx()
	for i := range 3 {
		if _, err := d.AddChain(virtiotest.R(pattern(8, byte(i))), virtiotest.W(8)); err != nil {
			t.Fatal(err)
		}
	}
	d.Publish()
	var c virtio.Chain
	for i := range 3 {
		if ok, err := q.PopInto(mem, &c); !ok || err != nil {
			t.Fatalf("pop %d: %v %v", i, ok, err)
		}
	}
	if n := mem.Loads(); n != 1 {
		t.Fatalf("3 pops of 3 chains published together read avail->idx %d times, want 1", n)
	}
	if ok, err := q.PopInto(mem, &c); ok || err != nil {
		t.Fatalf("empty PopInto = %v %v", ok, err)
	}
	if n := mem.Loads(); n != 2 {
		t.Fatalf("the empty pop read avail->idx %d times in all, want 2", n)
	}
	if _, err := d.AddChain(virtiotest.R(pattern(8, 9)), virtiotest.W(8)); err != nil {
		t.Fatal(err)
	}
	d.Publish()
	if ok, err := q.PopSeenInto(mem, &c); ok || err != nil {
		t.Fatalf("PopSeenInto of a chain published after the last read = %v %v, want false", ok, err)
	}
	if n := mem.Loads(); n != 2 {
		t.Fatalf("PopSeenInto read avail->idx (%d reads in all, want 2)", n)
	}
	if ok, err := q.PopInto(mem, &c); !ok || err != nil {
		t.Fatalf("PopInto of the new chain = %v %v", ok, err)
	}
	if a := d.AvailEvent(); a != 4 {
		t.Fatalf("avail_event %d after 4 pops, want 4", a)
	}
}

// TestAvailIdxValidatedAtEachRead: a hostile driver that moves avail->idx
// more than the queue's size ahead after the device read it breaks the
// queue at the next read, once the entries seen at the earlier read are
// consumed; those are popped as published, never more than the size.
func TestAvailIdxValidatedAtEachRead(t *testing.T) {
	d, q := twoPublishedOnePopped(t)
	var c virtio.Chain
	d.SetAvailIdx(q.NextAvail() + 1 + 5) // 6 ahead of the next entry, size 4
	if ok, err := q.PopInto(d.Mem, &c); !ok || err != nil {
		t.Fatalf("the second chain, seen at the first read: %v %v", ok, err)
	}
	if ok, err := q.PopInto(d.Mem, &c); ok || !errors.Is(err, virtio.ErrBroken) {
		t.Fatalf("pop after avail->idx moved 5 past the size: %v %v, want ErrBroken", ok, err)
	}
}

// TestSetNextAvailForgetsSeenEntries: after SetNextAvail (vhost-user's
// SET_VRING_BASE) no entry of an earlier read is popped without a new one.
func TestSetNextAvailForgetsSeenEntries(t *testing.T) {
	d, q := twoPublishedOnePopped(t)
	var c virtio.Chain
	q.SetNextAvail(q.NextAvail() + 1) // the front-end says the second is consumed
	if ok, err := q.PopSeenInto(d.Mem, &c); ok || err != nil {
		t.Fatalf("PopSeenInto after SetNextAvail = %v %v, want nothing", ok, err)
	}
	if ok, err := q.PopInto(d.Mem, &c); ok || err != nil {
		t.Fatalf("PopInto after SetNextAvail past the last entry = %v %v, want empty", ok, err)
	}
}

// TestRingChangesForgetSeenEntries: a front-end that sets the queue's size
// or its avail ring again (vhost-user SET_VRING_NUM, SET_VRING_ADDR; a
// hostile one may do so while the queue runs) makes the queue forget the
// avail index it read, which was validated against the old ring: the
// entries it showed are not taken without reading avail->idx again.
func TestRingChangesForgetSeenEntries(t *testing.T) {
	for name, change := range map[string]func(q *virtio.Queue){
		"SetSize":      func(q *virtio.Queue) { q.SetSize(q.Size()) },
		"SetAvailRing": func(q *virtio.Queue) { q.SetAvailRing(q.AvailRing()) },
	} {
		d, q := twoPublishedOnePopped(t)
		var c virtio.Chain
		change(q)
		if ok, err := q.PopSeenInto(d.Mem, &c); ok || err != nil {
			t.Errorf("%s: PopSeenInto after the change = %v %v, want nothing", name, ok, err)
		}
		if ok, err := q.PopInto(d.Mem, &c); !ok || err != nil {
			t.Errorf("%s: PopInto after the change = %v %v, want the second chain (avail->idx read again)", name, ok, err)
		}
	}
}

// twoPublishedOnePopped is a queue of size 4 whose driver published two
// chains in one avail->idx update, the first of them popped (so the
// queue has read the index and seen the second).
func twoPublishedOnePopped(t *testing.T) (*virtiotest.Driver, *virtio.Queue) {
	t.Helper()
	d := virtiotest.New(virtiotest.Config{QueueSize: 4})
	q := d.Queue()
	for i := range 2 {
		if _, err := d.AddChain(virtiotest.R(pattern(8, byte(i))), virtiotest.W(8)); err != nil {
			t.Fatal(err)
		}
	}
	d.Publish()
	var c virtio.Chain
	if ok, err := q.PopInto(d.Mem, &c); !ok || err != nil {
		t.Fatalf("first pop: %v %v", ok, err)
	}
	return d, q
}
