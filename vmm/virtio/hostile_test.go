package virtio_test

import (
	"bytes"
	"errors"
	"log/slog"
	"math"
	"strings"
	"testing"

	"github.com/krunbench/krunbench/vmm/virtio"
	"github.com/krunbench/krunbench/vmm/virtio/virtiotest"
)

const (
	next     = virtio.DescFNext
	write    = virtio.DescFWrite
	indirect = virtio.DescFIndirect
)

// TestBadChains builds malformed chains at head 0 and checks that Pop
// rejects each with a *ChainError for that head without breaking the
// queue, that the head can be completed with length 0, and that a valid
// chain behind it is still served.
func TestBadChains(t *testing.T) {
	const size = 8
	cases := []struct {
		name  string
		build func(d *virtiotest.Driver, data, table uint64)
		want  string // substring of the reason
	}{
		{"self loop", func(d *virtiotest.Driver, data, _ uint64) {
			d.SetDesc(0, data, 8, next, 0)
		}, "loop"},
		{"loop back", func(d *virtiotest.Driver, data, _ uint64) {
			d.SetDesc(0, data, 8, next, 1)
			d.SetDesc(1, data, 8, next, 2)
			d.SetDesc(2, data, 8, next, 1)
		}, "loop"},
		{"next out of range", func(d *virtiotest.Driver, data, _ uint64) {
			d.SetDesc(0, data, 8, next, size)
		}, "out of range"},
		{"next far out of range", func(d *virtiotest.Driver, data, _ uint64) {
			d.SetDesc(0, data, 8, next, 0xffff)
		}, "out of range"},
		{"address outside memory", func(d *virtiotest.Driver, _, _ uint64) {
			d.SetDesc(0, 0x10, 8, 0, 0)
		}, "out of bounds"},
		{"address past end", func(d *virtiotest.Driver, _, _ uint64) {
			d.SetDesc(0, d.Base+uint64(len(d.RAM))-4, 8, 0, 0)
		}, "out of bounds"},
		{"address+len overflow", func(d *virtiotest.Driver, _, _ uint64) {
			d.SetDesc(0, math.MaxUint64-3, 8, write, 0)
		}, "overflow"},
		{"huge length", func(d *virtiotest.Driver, data, _ uint64) {
			d.SetDesc(0, data, math.MaxUint32, 0, 0)
		}, "bytes"},
		{"readable after writable", func(d *virtiotest.Driver, data, _ uint64) {
			d.SetDesc(0, data, 8, write|next, 1)
			d.SetDesc(1, data+8, 8, 0, 0)
		}, "readable descriptor after"},
		{"readable after writable via indirect", func(d *virtiotest.Driver, data, table uint64) {
			d.SetDesc(0, data, 8, write|next, 1)
			d.WriteDescAt(table, data+8, 8, 0, 0)
			d.SetDesc(1, table, 16, indirect, 0)
		}, "readable descriptor after"},
		{"nested indirect", func(d *virtiotest.Driver, data, table uint64) {
			d.WriteDescAt(table, table+64, 16, indirect, 0)
			d.WriteDescAt(table+64, data, 8, 0, 0)
			d.SetDesc(0, table, 16, indirect, 0)
		}, "nested"},
		{"indirect with next", func(d *virtiotest.Driver, data, table uint64) {
			d.WriteDescAt(table, data, 8, 0, 0)
			d.SetDesc(0, table, 16, indirect|next, 1)
			d.SetDesc(1, data, 8, 0, 0)
		}, "NEXT"},
		{"indirect length not multiple of 16", func(d *virtiotest.Driver, data, table uint64) {
			d.WriteDescAt(table, data, 8, 0, 0)
			d.SetDesc(0, table, 24, indirect, 0)
		}, "multiple"},
		{"indirect length zero", func(d *virtiotest.Driver, _, table uint64) {
			d.SetDesc(0, table, 0, indirect, 0)
		}, "multiple"},
		{"indirect table longer than the queue", func(d *virtiotest.Driver, _, table uint64) {
			d.SetDesc(0, table, 16*(size+1), indirect, 0)
		}, "exceeds the queue size"},
		{"direct and indirect longer than the queue", func(d *virtiotest.Driver, data, table uint64) {
			d.SetDesc(0, data, 8, next, 1)
			d.SetDesc(1, table, 16*size, indirect, 0)
		}, "exceeds the queue size"},
		{"indirect table outside memory", func(d *virtiotest.Driver, _, _ uint64) {
			d.SetDesc(0, d.Base+uint64(len(d.RAM))-16, 32, indirect, 0)
		}, "out of bounds"},
		{"indirect table overflows", func(d *virtiotest.Driver, _, _ uint64) {
			d.SetDesc(0, math.MaxUint64-15, 32, indirect, 0)
		}, "overflow"},
		{"indirect loop", func(d *virtiotest.Driver, data, table uint64) {
			d.WriteDescAt(table, data, 8, next, 1)
			d.WriteDescAt(table+16, data, 8, next, 0)
			d.SetDesc(0, table, 32, indirect, 0)
		}, "loop"},
		{"indirect next out of range", func(d *virtiotest.Driver, data, table uint64) {
			d.WriteDescAt(table, data, 8, next, 2)
			d.SetDesc(0, table, 32, indirect, 0)
		}, "out of range"},
		{"indirect buffer outside memory", func(d *virtiotest.Driver, _, table uint64) {
			d.WriteDescAt(table, 0x100, 8, write, 0)
			d.SetDesc(0, table, 16, indirect, 0)
		}, "out of bounds"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			var logs bytes.Buffer
			d := virtiotest.New(virtiotest.Config{QueueSize: size, MemSize: 256 << 10})
			q := d.Queue()
			q.SetLogger(slog.New(slog.NewTextHandler(&logs, nil)))
			data := d.Alloc(64, 16)
			table := d.Alloc(256, 16)
			c.build(d, data, table)
			d.PushHead(0)
			d.SetDesc(5, data, 4, 0, 0) // a good chain behind the bad one
			d.PushHead(5)
			d.Publish()

			ch, err := q.Pop(d.Mem)
			var ce *virtio.ChainError
			if ch != nil || !errors.As(err, &ce) || !errors.Is(err, virtio.ErrBadChain) {
				t.Fatalf("Pop = %v, %v; want *ChainError", ch, err)
			}
			if ce.Head != 0 || !strings.Contains(ce.Reason, c.want) {
				t.Fatalf("ChainError head %d reason %q, want head 0 and %q", ce.Head, ce.Reason, c.want)
			}
			if !strings.Contains(logs.String(), "rejecting descriptor chain") {
				t.Errorf("rejection not logged: %q", logs.String())
			}
			if q.Broken() {
				t.Fatal("a bad chain must not break the queue")
			}
			if err := q.AddUsed(d.Mem, ce.Head, 0); err != nil {
				t.Fatal(err)
			}
			if u := d.TakeUsed(); len(u) != 1 || u[0].ID != 0 || u[0].Len != 0 {
				t.Fatalf("used %+v", u)
			}
			ch = mustPop(t, q, d.Mem)
			if ch.Head != 5 || ch.ReadableLen != 4 {
				t.Fatalf("good chain after bad: head %d len %d", ch.Head, ch.ReadableLen)
			}
		})
	}
}

// TestIndirectTableAtQueueSize: an indirect table of exactly queue-size
// entries is a chain the spec allows, and is served whole.
func TestIndirectTableAtQueueSize(t *testing.T) {
	const size = 8
	d := virtiotest.New(virtiotest.Config{QueueSize: size})
	q := d.Queue()
	var bufs []virtiotest.Buf
	for range size - 1 {
		bufs = append(bufs, virtiotest.R([]byte("r")))
	}
	bufs = append(bufs, virtiotest.W(3))
	p, err := d.AddIndirect(bufs...)
	if err != nil {
		t.Fatal(err)
	}
	d.Publish()
	c := mustPop(t, q, d.Mem)
	if c.Head != p.Head || c.ReadableLen != size-1 || c.WritableLen != 3 {
		t.Fatalf("chain head %d readable %d writable %d", c.Head, c.ReadableLen, c.WritableLen)
	}
}

func TestZeroLengthDescriptors(t *testing.T) {
	d := virtiotest.New(virtiotest.Config{QueueSize: 8})
	q := d.Queue()
	data := d.Alloc(16, 16)
	d.Write(data, []byte("hello"))
	// Zero-length descriptors are skipped, whatever their address.
	d.SetDesc(0, 0xdead0000, 0, next, 1)
	d.SetDesc(1, data, 5, next, 2)
	d.SetDesc(2, math.MaxUint64, 0, write|next, 3)
	d.SetDesc(3, data+8, 4, write, 0)
	d.PushHead(0)
	d.Publish()
	c := mustPop(t, q, d.Mem)
	if len(c.Readable) != 1 || string(c.Readable[0]) != "hello" || len(c.Writable) != 1 || c.WritableLen != 4 {
		t.Fatalf("readable %q writable %v", c.Readable, lens(c.Writable))
	}
}

func TestChainByteCap(t *testing.T) {
	d := virtiotest.New(virtiotest.Config{QueueSize: 8})
	q := d.Queue()
	q.SetMaxChainBytes(100)
	ok, _ := d.AddChain(virtiotest.R(make([]byte, 60)), virtiotest.W(40))
	bad, _ := d.AddChain(virtiotest.R(make([]byte, 60)), virtiotest.W(41))
	d.Publish()
	if c := mustPop(t, q, d.Mem); c.Head != ok.Head {
		t.Fatal("chain at the cap rejected")
	}
	var ce *virtio.ChainError
	if _, err := q.Pop(d.Mem); !errors.As(err, &ce) || ce.Head != bad.Head {
		t.Fatalf("chain over the cap: %v", err)
	}
}

func TestBrokenQueue(t *testing.T) {
	cases := []struct {
		name  string
		setup func(d *virtiotest.Driver)
	}{
		{"avail idx jumps ahead", func(d *virtiotest.Driver) { d.SetAvailIdx(9) }},
		{"avail idx far ahead", func(d *virtiotest.Driver) { d.SetAvailIdx(0x8000) }},
		{"avail idx behind", func(d *virtiotest.Driver) { d.SetAvailIdx(0xffff) }},
		{"head out of range", func(d *virtiotest.Driver) {
			d.PushHead(8)
			d.Publish()
		}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			var logs bytes.Buffer
			d := virtiotest.New(virtiotest.Config{QueueSize: 8})
			q := d.Queue()
			q.SetLogger(slog.New(slog.NewTextHandler(&logs, nil)))
			c.setup(d)
			if _, err := q.Pop(d.Mem); !errors.Is(err, virtio.ErrBroken) || !q.Broken() {
				t.Fatalf("Pop = %v, broken %v", err, q.Broken())
			}
			if !strings.Contains(logs.String(), "broken") {
				t.Errorf("not logged: %q", logs.String())
			}
			// Stays broken even once the ring looks sane again.
			d.SetAvailIdx(0)
			if _, err := q.Pop(d.Mem); !errors.Is(err, virtio.ErrBroken) {
				t.Fatalf("second Pop = %v", err)
			}
			if err := q.AddUsed(d.Mem, 0, 0); !errors.Is(err, virtio.ErrBroken) {
				t.Fatalf("AddUsed = %v", err)
			}
			if _, err := q.NeedsNotification(d.Mem); !errors.Is(err, virtio.ErrBroken) {
				t.Fatalf("NeedsNotification = %v", err)
			}
			q.Reset()
			d.Configure(q)
			if c, err := q.Pop(d.Mem); c != nil || err != nil || q.Broken() {
				t.Fatalf("after Reset: %v %v", c, err)
			}
		})
	}
}

func TestAvailIdxExactlySizeAhead(t *testing.T) {
	d := virtiotest.New(virtiotest.Config{QueueSize: 4})
	q := d.Queue()
	q.SetNextAvail(65534)
	d.SetAvailIdx(65534)
	for range 4 {
		if _, err := d.AddChain(virtiotest.R([]byte("x"))); err != nil {
			t.Fatal(err)
		}
	}
	d.Publish() // avail idx wraps to 2, exactly size ahead of 65534
	for range 4 {
		mustPop(t, q, d.Mem)
	}
	if q.NextAvail() != 2 || q.Broken() {
		t.Fatalf("next avail %d broken %v", q.NextAvail(), q.Broken())
	}
}

func TestAddUsedBadHead(t *testing.T) {
	d := virtiotest.New(virtiotest.Config{QueueSize: 8})
	q := d.Queue()
	if err := q.AddUsed(d.Mem, 8, 0); !errors.Is(err, virtio.ErrInvalidHead) {
		t.Fatalf("AddUsed(8) = %v", err)
	}
	if q.Broken() || d.UsedIdx() != 0 {
		t.Fatal("bad AddUsed changed the queue")
	}
}

// TestDuplicateHeadInFlight: a driver that publishes a head the device has
// not completed yet breaks the queue (the chain is never served twice); a
// head published again after its completion is served normally.
func TestDuplicateHeadInFlight(t *testing.T) {
	var logs bytes.Buffer
	d := virtiotest.New(virtiotest.Config{QueueSize: 8})
	q := d.Queue()
	q.SetLogger(slog.New(slog.NewTextHandler(&logs, nil)))
	p, err := d.AddChain(virtiotest.R([]byte("x")), virtiotest.W(4))
	if err != nil {
		t.Fatal(err)
	}
	d.PushHead(p.Head) // the same head twice
	d.Publish()
	if c := mustPop(t, q, d.Mem); c.Head != p.Head {
		t.Fatalf("first Pop: head %d", c.Head)
	}
	if c, err := q.Pop(d.Mem); c != nil || !errors.Is(err, virtio.ErrBroken) || !q.Broken() {
		t.Fatalf("second Pop of head %d in flight = %v, %v; want the queue broken", p.Head, c, err)
	}
	if !strings.Contains(logs.String(), "still in flight") {
		t.Errorf("not logged: %q", logs.String())
	}

	// Completed first, then published again: fine.
	d = virtiotest.New(virtiotest.Config{QueueSize: 8})
	q = d.Queue()
	p, _ = d.AddChain(virtiotest.R([]byte("x")), virtiotest.W(4))
	d.Publish()
	c := mustPop(t, q, d.Mem)
	if err := q.AddUsed(d.Mem, c.Head, 1); err != nil {
		t.Fatal(err)
	}
	d.PushHead(p.Head)
	d.Publish()
	if c := mustPop(t, q, d.Mem); c.Head != p.Head || q.Broken() {
		t.Fatalf("head published again after completion: %d, broken %v", c.Head, q.Broken())
	}
}

// TestAddUsedNotInFlight: AddUsed for a head the queue never handed out, or
// already completed, publishes nothing.
func TestAddUsedNotInFlight(t *testing.T) {
	d := virtiotest.New(virtiotest.Config{QueueSize: 8})
	q := d.Queue()
	if err := q.AddUsed(d.Mem, 3, 0); !errors.Is(err, virtio.ErrInvalidHead) {
		t.Fatalf("AddUsed of a head never popped = %v", err)
	}
	d.AddChain(virtiotest.R([]byte("x")))
	d.Publish()
	c := mustPop(t, q, d.Mem)
	if err := q.AddUsed(d.Mem, c.Head, 0); err != nil {
		t.Fatal(err)
	}
	if err := q.AddUsed(d.Mem, c.Head, 0); !errors.Is(err, virtio.ErrInvalidHead) {
		t.Fatalf("second AddUsed of head %d = %v", c.Head, err)
	}
	if q.Broken() || d.UsedIdx() != 1 {
		t.Fatalf("used idx %d broken %v; want 1, not broken", d.UsedIdx(), q.Broken())
	}
}

// TestUsedLenCappedToWritable: the used length published for a chain never
// exceeds its writable bytes, whatever the device passes to AddUsed: a
// reply that does not fit is reported as length 0. Rejected chains
// (*ChainError) have no writable bytes.
func TestUsedLenCappedToWritable(t *testing.T) {
	d := virtiotest.New(virtiotest.Config{QueueSize: 8})
	q := d.Queue()
	fits, _ := d.AddChain(virtiotest.R([]byte("x")), virtiotest.W(16))
	tooBig, _ := d.AddChain(virtiotest.R([]byte("x")), virtiotest.W(8))
	noWritable, _ := d.AddChain(virtiotest.R(make([]byte, 40)))
	d.SetDesc(7, 0x10, 8, write, 0) // a bad chain: buffer outside memory
	d.PushHead(7)
	d.Publish()
	for _, h := range []uint16{fits.Head, tooBig.Head, noWritable.Head} {
		if c := mustPop(t, q, d.Mem); c.Head != h {
			t.Fatalf("popped head %d, want %d", c.Head, h)
		}
	}
	var ce *virtio.ChainError
	if _, err := q.Pop(d.Mem); !errors.As(err, &ce) {
		t.Fatalf("Pop of the bad chain = %v", err)
	}
	for _, u := range []struct {
		head uint16
		n    uint32
	}{{fits.Head, 16}, {tooBig.Head, 16}, {noWritable.Head, 16}, {ce.Head, 16}} {
		if err := q.AddUsed(d.Mem, u.head, u.n); err != nil {
			t.Fatal(err)
		}
	}
	want := map[uint32]uint32{uint32(fits.Head): 16, uint32(tooBig.Head): 0, uint32(noWritable.Head): 0, 7: 0}
	used := d.TakeUsed()
	if len(used) != len(want) {
		t.Fatalf("used %+v", used)
	}
	for _, u := range used {
		if u.Len != want[u.ID] {
			t.Errorf("head %d: used len %d, want %d", u.ID, u.Len, want[u.ID])
		}
	}
}
