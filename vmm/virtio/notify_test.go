package virtio_test

import (
	"math/rand/v2"
	"testing"

	"github.com/krunbench/krunbench/vmm/virtio"
	"github.com/krunbench/krunbench/vmm/virtio/virtiotest"
)

// wantNotify is the reference for EVENT_IDX: with 64-bit (unwrapped) used
// counts, the driver wants an interrupt when the used index moves from a
// value <= used_event to one past it, i.e. some k in (old, new] has
// (k-1) mod 2^16 == event.
func wantNotify(event uint16, old, new uint64) bool {
	for k := old + 1; k <= new; k++ {
		if uint16(k-1) == event {
			return true
		}
	}
	return false
}

func TestEventIdxWraparound(t *testing.T) {
	const size = 8
	d := virtiotest.New(virtiotest.Config{QueueSize: size, EventIdx: true})
	q := d.Queue()
	rng := rand.New(rand.NewPCG(1, 2))
	var used64, signalled64 uint64
	first := true
	calls, notified := 0, 0
	for used64 < 70000+rng.Uint64N(2000) {
		batch := 1 + rng.IntN(size/2) // two descriptors per chain
		for i := range batch {
			if _, err := d.AddChain(virtiotest.R([]byte{byte(i)}), virtiotest.W(2)); err != nil {
				t.Fatal(err)
			}
		}
		d.Publish()
		var heads []uint16
		for range batch {
			c := mustPop(t, q, d.Mem)
			heads = append(heads, c.Head)
			if got, want := d.AvailEvent(), q.NextAvail(); got != want {
				t.Fatalf("avail_event %d, want %d", got, want)
			}
		}
		for _, h := range heads {
			if err := q.AddUsed(d.Mem, h, 2); err != nil {
				t.Fatal(err)
			}
			used64++
			if rng.IntN(2) == 0 {
				continue
			}
			// The driver picks used_event around the current used index,
			// including values behind it and beyond the next batch.
			event := uint16(used64) + uint16(rng.IntN(2*size+4)) - uint16(size)
			d.SetUsedEvent(event)
			got, err := q.NeedsNotification(d.Mem)
			if err != nil {
				t.Fatal(err)
			}
			want := first || wantNotify(event, signalled64, used64)
			if got != want {
				t.Fatalf("used %d (idx %d) old %d event %d: NeedsNotification %v, want %v",
					used64, uint16(used64), uint16(signalled64), event, got, want)
			}
			first = false
			signalled64 = used64
			calls++
			if got {
				notified++
			}
		}
		if u := d.TakeUsed(); len(u) != batch {
			t.Fatalf("took %d used, want %d", len(u), batch)
		}
	}
	if q.NextUsed() != uint16(used64) || q.NextAvail() != uint16(used64) || d.UsedIdx() != uint16(used64) {
		t.Fatalf("indices: next used %d avail %d ring %d, want %d", q.NextUsed(), q.NextAvail(), d.UsedIdx(), uint16(used64))
	}
	// Sanity: the random events produced both answers plenty of times.
	if notified < calls/20 || notified > calls-calls/20 {
		t.Fatalf("%d notifications in %d calls: test not exercising both outcomes", notified, calls)
	}
	// Nothing added since the last call: never notify.
	if got, _ := q.NeedsNotification(d.Mem); got {
		t.Fatal("notified with no new used elements")
	}
}

func TestNoInterruptFlag(t *testing.T) {
	d := virtiotest.New(virtiotest.Config{QueueSize: 4})
	q := d.Queue()
	for i := range 70000 {
		if _, err := d.AddChain(virtiotest.W(1)); err != nil {
			t.Fatal(err)
		}
		d.Publish()
		c := mustPop(t, q, d.Mem)
		if err := q.AddUsed(d.Mem, c.Head, 0); err != nil {
			t.Fatal(err)
		}
		d.TakeUsed()
		suppress := i%3 == 1
		if suppress {
			d.SetAvailFlags(virtio.AvailFNoInterrupt)
		} else {
			d.SetAvailFlags(0)
		}
		if got, _ := q.NeedsNotification(d.Mem); got == suppress {
			t.Fatalf("request %d: NeedsNotification %v with NO_INTERRUPT=%v", i, got, suppress)
		}
	}
	d.SetAvailFlags(0)
	if got, _ := q.NeedsNotification(d.Mem); got {
		t.Fatal("notified with no new used elements")
	}
}

func TestEnableDisableNotification(t *testing.T) {
	t.Run("flags", func(t *testing.T) {
		d := virtiotest.New(virtiotest.Config{QueueSize: 4})
		q := d.Queue()
		if err := q.DisableNotification(d.Mem); err != nil || d.UsedFlags() != virtio.UsedFNoNotify {
			t.Fatalf("Disable: %v flags %d", err, d.UsedFlags())
		}
		more, err := q.EnableNotification(d.Mem)
		if err != nil || more || d.UsedFlags() != 0 {
			t.Fatalf("Enable on empty ring: %v %v flags %d", more, err, d.UsedFlags())
		}
		d.AddChain(virtiotest.R([]byte("x")))
		d.Publish()
		if more, _ := q.EnableNotification(d.Mem); !more {
			t.Fatal("Enable did not report the pending chain")
		}
	})
	t.Run("event idx", func(t *testing.T) {
		d := virtiotest.New(virtiotest.Config{QueueSize: 4, EventIdx: true})
		q := d.Queue()
		if err := q.DisableNotification(d.Mem); err != nil {
			t.Fatal(err)
		}
		for range 3 {
			d.AddChain(virtiotest.R([]byte("x")))
		}
		d.Publish()
		mustPop(t, q, d.Mem)
		mustPop(t, q, d.Mem)
		if d.AvailEvent() != 0 || d.UsedFlags() != 0 {
			t.Fatalf("disabled: avail_event %d flags %d", d.AvailEvent(), d.UsedFlags())
		}
		more, err := q.EnableNotification(d.Mem)
		if err != nil || !more || d.AvailEvent() != 2 {
			t.Fatalf("Enable: %v %v avail_event %d", more, err, d.AvailEvent())
		}
		mustPop(t, q, d.Mem)
		if d.AvailEvent() != 3 {
			t.Fatalf("Pop with notifications enabled: avail_event %d, want 3", d.AvailEvent())
		}
		if more, _ := q.EnableNotification(d.Mem); more {
			t.Fatal("Enable reported a chain on an empty ring")
		}
	})
}

// TestAddUsedNotifyAgreesWithTwoCalls: AddUsedNotify answers as AddUsed
// followed by NeedsNotification does, on two queues driven alike, with and
// without EVENT_IDX, for used_event and NO_INTERRUPT values around the used
// index; a head not in flight fails it without publishing or asking.
func TestAddUsedNotifyAgreesWithTwoCalls(t *testing.T) {
	for _, eventIdx := range []bool{true, false} {
		const size = 8
		one := virtiotest.New(virtiotest.Config{QueueSize: size, EventIdx: eventIdx})
		two := virtiotest.New(virtiotest.Config{QueueSize: size, EventIdx: eventIdx})
		q1, q2 := one.Queue(), two.Queue()
		rng := rand.New(rand.NewPCG(3, 4))
		for round := range 3000 {
			var heads []uint16
			for _, d := range []*virtiotest.Driver{one, two} {
				if _, err := d.AddChain(virtiotest.R([]byte{1}), virtiotest.W(2)); err != nil {
					t.Fatal(err)
				}
				d.Publish()
			}
			heads = append(heads, mustPop(t, q1, one.Mem).Head, mustPop(t, q2, two.Mem).Head)
			event := one.UsedIdx() + uint16(rng.IntN(6)) - 3
			flags := uint16(rng.IntN(2)) * virtio.AvailFNoInterrupt
			for _, d := range []*virtiotest.Driver{one, two} {
				d.SetUsedEvent(event)
				d.SetAvailFlags(flags)
			}
			got, err := q1.AddUsedNotify(one.Mem, heads[0], 2)
			if err != nil {
				t.Fatal(err)
			}
			if err := q2.AddUsed(two.Mem, heads[1], 2); err != nil {
				t.Fatal(err)
			}
			want, err := q2.NeedsNotification(two.Mem)
			if err != nil {
				t.Fatal(err)
			}
			if got != want {
				t.Fatalf("event idx %v, round %d: AddUsedNotify = %v, AddUsed+NeedsNotification = %v", eventIdx, round, got, want)
			}
			one.TakeUsed()
			two.TakeUsed()
		}
		before := one.UsedIdx()
		if need, err := q1.AddUsedNotify(one.Mem, 0, 0); err == nil || need || one.UsedIdx() != before {
			t.Fatalf("AddUsedNotify of a head not in flight = %v, %v, used idx %d -> %d", need, err, before, one.UsedIdx())
		}
	}
}
