package virtio_test

import (
	"encoding/binary"
	"errors"
	"slices"
	"testing"
	"unsafe"

	"github.com/krunbench/krunbench/vmm/virtio"
)

// Fuzz guest layout: 192 KiB of RAM at fuzzBase in three GPA-contiguous
// regions (so buffers may cross region boundaries), rings at the start,
// and a scratch area where indirect tables and buffers live.
const (
	fuzzBase    = 0x10000
	fuzzRAM     = 0x30000
	fuzzUsed    = fuzzBase + 0x1000
	fuzzScratch = fuzzBase + 0x2000
	fuzzHeader  = 8
)

// fuzzAddr maps a fuzzed descriptor address into guest RAM unless its top
// bit is set, so that most inputs describe buffers that exist while raw
// hostile addresses stay reachable.
func fuzzAddr(a uint64) uint64 {
	if a>>63 != 0 {
		return a
	}
	return fuzzBase + a%fuzzRAM
}

// writeFuzzDescs copies 16-byte descriptors from src to dst, remapping
// each address with fuzzAddr.
func writeFuzzDescs(dst, src []byte) {
	for off := 0; off < len(src) && off < len(dst); off += 16 {
		n := copy(dst[off:], src[off:min(off+16, len(src))])
		if n >= 8 {
			binary.LittleEndian.PutUint64(dst[off:], fuzzAddr(binary.LittleEndian.Uint64(src[off:])))
		}
	}
}

// FuzzQueue interprets the input as a queue configuration, a descriptor
// table, an available ring and scratch memory (indirect tables), then pops
// everything. It asserts that nothing panics, that every returned buffer
// lies inside guest RAM, that lengths add up and that each outcome leaves
// the queue in a consistent state.
//
// Input: [0] log2 size (mod 5), [1] flags (bit 0 EVENT_IDX, bit 1 start
// with notifications disabled), [2:4] avail idx, [4:6] initial
// last_avail_idx, [6:8] used_event, then size*16 descriptor bytes, size*2
// avail ring bytes, and the rest copied to the scratch area.
func FuzzQueue(f *testing.F) {
	for _, s := range fuzzSeeds() {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, in []byte) { runFuzzQueue(t, in) })
}

// fuzzStats counts what runFuzzQueue saw.
type fuzzStats struct {
	chains, bad int
	broken      bool
	crossing    bool // a descriptor buffer was split at a region boundary
}

func runFuzzQueue(t *testing.T, in []byte) (st fuzzStats) {
	if len(in) < fuzzHeader {
		return st
	}
	ram := make([]byte, fuzzRAM)
	third := uint64(fuzzRAM / 3)
	mem, err := virtio.NewMemory(
		virtio.Region{GPA: fuzzBase, Data: ram[:third]},
		virtio.Region{GPA: fuzzBase + third, Data: ram[third : 2*third]},
		virtio.Region{GPA: fuzzBase + 2*third, Data: ram[2*third:]},
	)
	if err != nil {
		t.Fatal(err)
	}
	size := uint16(1) << (in[0] % 5)
	eventIdx := in[1]&1 != 0
	desc := uint64(fuzzBase)
	avail := desc + 16*uint64(size)
	body := in[fuzzHeader:]
	writeFuzzDescs(ram[desc-fuzzBase:avail-fuzzBase], body)
	body = body[min(len(body), 16*int(size)):]
	ring := ram[avail+4-fuzzBase : avail+4+2*uint64(size)-fuzzBase]
	copy(ring, body)
	body = body[min(len(body), len(ring)):]
	writeFuzzDescs(ram[fuzzScratch-fuzzBase:], body)
	copy(ram[avail+2-fuzzBase:], in[2:4])
	copy(ram[avail+4+2*uint64(size)-fuzzBase:], in[6:8])

	q, err := virtio.NewQueue(16)
	if err != nil {
		t.Fatal(err)
	}
	q.SetSize(size)
	q.SetDescTable(desc)
	q.SetAvailRing(avail)
	q.SetUsedRing(fuzzUsed)
	q.SetEventIdx(eventIdx)
	q.SetNextAvail(binary.LittleEndian.Uint16(in[4:6]))
	q.SetReady(true)
	if err := q.Validate(mem); err != nil {
		t.Fatalf("valid layout rejected: %v", err)
	}
	if in[1]&2 != 0 {
		if err := q.DisableNotification(mem); err != nil {
			t.Fatal(err)
		}
	}

	lo := uintptr(unsafe.Pointer(&ram[0]))
	hi := lo + uintptr(len(ram))
	inside := func(b []byte) bool {
		if cap(b) == 0 {
			return false
		}
		p := uintptr(unsafe.Pointer(unsafe.SliceData(b)))
		return p >= lo && p <= hi && uintptr(cap(b)) <= hi-p
	}
	var c virtio.Chain
	for range 2*int(size) + 2 {
		ok, err := q.PopInto(mem, &c)
		var ce *virtio.ChainError
		switch {
		case ok:
			st.chains++
			st.crossing = st.crossing || crossesRegion(&c, lo+uintptr(third), lo+2*uintptr(third))
			for name, list := range map[string][][]byte{"readable": c.Readable, "writable": c.Writable} {
				var total uint32
				for _, b := range list {
					if len(b) == 0 || !inside(b) {
						t.Fatalf("%s buffer of %d bytes outside guest RAM or empty", name, len(b))
					}
					total += uint32(len(b))
				}
				want := c.ReadableLen
				if name == "writable" {
					want = c.WritableLen
				}
				if total != want {
					t.Fatalf("%s total %d, want %d", name, total, want)
				}
			}
			if uint64(c.ReadableLen)+uint64(c.WritableLen) > virtio.DefaultMaxChainBytes {
				t.Fatal("chain over the byte cap")
			}
			if c.Head >= size {
				t.Fatalf("head %d >= size %d", c.Head, size)
			}
			if err := q.AddUsed(mem, c.Head, c.WritableLen); err != nil {
				t.Fatal(err)
			}
		case errors.As(err, &ce):
			st.bad++
			if ce.Head >= size || q.Broken() {
				t.Fatalf("chain error with head %d, broken %v", ce.Head, q.Broken())
			}
			if err := q.AddUsed(mem, ce.Head, 0); err != nil {
				t.Fatal(err)
			}
		case errors.Is(err, virtio.ErrBroken):
			if !q.Broken() {
				t.Fatal("ErrBroken without Broken()")
			}
			st.broken = true
			return st
		case err != nil:
			t.Fatalf("unexpected error %v", err)
		default:
			if _, err := q.NeedsNotification(mem); err != nil {
				t.Fatal(err)
			}
			if _, err := q.EnableNotification(mem); err != nil {
				t.Fatal(err)
			}
			return st
		}
	}
	t.Fatalf("popped more than %d chains from a queue of %d", 2*int(size)+2, size)
	return st
}

// crossesRegion reports whether one of c's buffers ends exactly where the
// next begins at a region boundary, i.e. a descriptor was split there.
func crossesRegion(c *virtio.Chain, boundaries ...uintptr) bool {
	for _, list := range [][][]byte{c.Readable, c.Writable} {
		for i := 1; i < len(list); i++ {
			end := uintptr(unsafe.Pointer(unsafe.SliceData(list[i-1]))) + uintptr(len(list[i-1]))
			start := uintptr(unsafe.Pointer(unsafe.SliceData(list[i])))
			if end == start && slices.Contains(boundaries, start) {
				return true
			}
		}
	}
	return false
}

func TestFuzzSeeds(t *testing.T) {
	seeds := fuzzSeeds()
	want := []fuzzStats{{chains: 2}, {chains: 1, crossing: true}, {bad: 1}}
	for i, s := range seeds {
		if got := runFuzzQueue(t, s); got != want[i] {
			t.Errorf("seed %d: %+v, want %+v", i, got, want[i])
		}
	}
}

// fuzzSeeds returns a few well-formed inputs: a direct chain, a chain
// ending in an indirect table, and a loop.
func fuzzSeeds() [][]byte {
	mk := func(size uint16, eventIdx bool, availIdx uint16, descs [][4]uint64, avail []uint16, scratch [][4]uint64) []byte {
		b := make([]byte, fuzzHeader)
		for b[0] = 0; 1<<b[0] != size; b[0]++ {
		}
		if eventIdx {
			b[1] = 1
		}
		binary.LittleEndian.PutUint16(b[2:], availIdx)
		put := func(ds [][4]uint64, n int) {
			for i := range n {
				var e [16]byte
				if i < len(ds) {
					binary.LittleEndian.PutUint64(e[0:], ds[i][0]-fuzzBase)
					binary.LittleEndian.PutUint32(e[8:], uint32(ds[i][1]))
					binary.LittleEndian.PutUint16(e[12:], uint16(ds[i][2]))
					binary.LittleEndian.PutUint16(e[14:], uint16(ds[i][3]))
				}
				b = append(b, e[:]...)
			}
		}
		put(descs, int(size))
		for i := range int(size) {
			var h uint16
			if i < len(avail) {
				h = avail[i]
			}
			b = binary.LittleEndian.AppendUint16(b, h)
		}
		put(scratch, len(scratch))
		return b
	}
	const buf = fuzzScratch + 0x1000
	const nxt, wr, ind = uint64(virtio.DescFNext), uint64(virtio.DescFWrite), uint64(virtio.DescFIndirect)
	return [][]byte{
		mk(4, false, 2, [][4]uint64{{buf, 7, nxt, 1}, {buf + 7, 4093, wr, 0}, {buf + 0x2000, 3, 0, 0}}, []uint16{0, 2}, nil),
		mk(8, true, 1, [][4]uint64{{buf, 1, nxt, 1}, {fuzzScratch, 48, ind, 0}}, []uint16{0},
			[][4]uint64{{buf + 1, 3, nxt, 1}, {fuzzBase + fuzzRAM/3 - 2, 4, wr | nxt, 2}, {buf + 0x100, 4093, wr, 0}}),
		mk(2, false, 1, [][4]uint64{{buf, 8, nxt, 1}, {buf, 8, nxt, 0}}, []uint16{0}, nil),
	}
}
