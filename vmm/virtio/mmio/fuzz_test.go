package mmio_test

import (
	"encoding/binary"
	"testing"

	"github.com/krunbench/krunbench/vmm/virtio"
	"github.com/krunbench/krunbench/vmm/virtio/mmio"
	"github.com/krunbench/krunbench/vmm/virtio/virtiotest"
)

// FuzzMMIO drives the transport's register window with a sequence of
// accesses decoded from the input, with the echo device behind it and a
// mock driver whose rings the input can fill, corrupt and kick. It asserts
// that nothing panics and that the transport's invariants hold after
// every access (status bits, activation, magic value). Each input is at
// most fuzzMaxOps accesses, each bounded work, so every input finishes in
// bounded time.
//
// Input: 6-byte operations [kind][register][v0 v1 v2 v3]; see applyFuzzOp.
func FuzzMMIO(f *testing.F) {
	for _, s := range mmioSeeds() {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, in []byte) {
		m := virtiotest.NewMulti(virtiotest.Config{QueueSize: 8}, 2)
		r := newRig(t, newEcho(2), m.Mem)
		for n := 0; len(in) >= 6 && n < fuzzMaxOps; n++ {
			applyFuzzOp(r, m, in[0], in[1], binary.LittleEndian.Uint32(in[2:6]))
			in = in[6:]
			checkInvariants(t, r)
		}
	})
}

const fuzzMaxOps = 512

// Operation kinds.
const (
	opRead        = iota // 4-byte read of the register
	opWrite              // 4-byte write of v
	opOddAccess          // a read or write of width v%9 (0..8 bytes)
	opUseful             // a write of a value that makes progress (see useful)
	opAddChain           // the driver adds and publishes a chain on queue v%2
	opHostileRing        // the driver corrupts queue v%2's rings
	opNotifyReg          // QueueNotify register write of v%3
	opKick               // Transport.Kick(v%3), the ioeventfd path
)

// fuzzOffset maps a register byte to a window offset: the registers, the
// config space, or anywhere up to 4 KiB (beyond the window too).
func fuzzOffset(reg byte) uint64 {
	switch {
	case reg < 0x40:
		return uint64(reg) * 4
	case reg < 0x80:
		return 0x100 + uint64(reg-0x40)
	}
	return uint64(reg) << 4
}

var fuzzStatuses = []uint32{0, 1, 3, 11, 15, 128, 64, 0x4f}

func applyFuzzOp(r *rig, m *virtiotest.Multi, kind, reg byte, v uint32) {
	off := fuzzOffset(reg)
	d := m.Drivers[v%2]
	switch kind % 8 {
	case opRead:
		r.tr.Read(off, make([]byte, 4))
	case opWrite:
		r.w32(off, v)
	case opOddAccess:
		b := binary.LittleEndian.AppendUint64(nil, uint64(v)*0x9e3779b97f4a7c15)[:v%9]
		if v&0x100 != 0 {
			r.tr.Read(off, b)
		} else {
			r.tr.Write(off, b)
		}
	case opUseful:
		useful(r, m, reg, v)
	case opAddChain:
		d.TakeUsed()
		if _, err := d.AddChain(virtiotest.R(make([]byte, 1+v>>8%64)), virtiotest.W(int(v>>16%64))); err == nil {
			d.Publish()
		}
	case opHostileRing:
		switch v >> 8 % 3 {
		case 0:
			d.SetAvailIdx(uint16(v >> 16))
		case 1:
			d.SetDesc(uint16(v>>16)%d.Size, uint64(v)*0x1001, v>>12, uint16(v>>24)%8, uint16(v>>20)%16)
		case 2:
			d.PushHead(uint16(v>>16) % 10)
			d.Publish()
		}
	case opNotifyReg:
		r.w32(mmio.RegQueueNotify, v%3)
	case opKick:
		r.tr.Kick(int(v % 3))
	}
}

// useful writes what a Linux driver would write to the register reg%8
// stands for, with the mock drivers' ring addresses, so that the fuzzer
// reaches active queues quickly.
func useful(r *rig, m *virtiotest.Multi, reg byte, v uint32) {
	d := m.Drivers[v%2]
	switch reg % 8 {
	case 0:
		r.w32(mmio.RegStatus, fuzzStatuses[v%uint32(len(fuzzStatuses))])
	case 1:
		r.w32(mmio.RegQueueSel, v%3)
	case 2:
		r.w32(mmio.RegQueueNum, uint32(d.Size))
	case 3:
		r.w32(mmio.RegQueueDescLow, uint32(d.Desc))
	case 4:
		r.w32(mmio.RegQueueDriverLow, uint32(d.Avail))
	case 5:
		r.w32(mmio.RegQueueDeviceLow, uint32(d.Used))
	case 6:
		r.w32(mmio.RegQueueReady, 1)
	case 7:
		r.writeFeatures(r.offered())
	}
}

func checkInvariants(t *testing.T, r *rig) {
	st := r.r32(mmio.RegStatus)
	if st&^0xcf != 0 {
		t.Fatalf("status %#x has bits no one may set", st)
	}
	if r.tr.Active() != (st&virtio.StatusDriverOK != 0 && st&virtio.StatusDeviceNeedsReset == 0) {
		t.Fatalf("active %v with status %#x", r.tr.Active(), st)
	}
	if r.r32(mmio.RegMagicValue) != mmio.MagicValue {
		t.Fatal("magic changed")
	}
}

// mmioSeeds are Linux's probe of a two-queue device followed by traffic,
// and hostile variations of it.
func mmioSeeds() [][]byte {
	op := func(kind, reg byte, v uint32) []byte {
		return binary.LittleEndian.AppendUint32([]byte{kind, reg}, v)
	}
	probe := func() []byte {
		var s []byte
		for _, st := range []uint32{0, 1, 2} { // statuses 0, ACKNOWLEDGE, +DRIVER
			s = append(s, op(opUseful, 0, st)...)
		}
		s = append(s, op(opUseful, 7, 0)...)
		s = append(s, op(opUseful, 0, 3)...) // FEATURES_OK
		for q := range uint32(2) {
			for reg := byte(1); reg <= 6; reg++ {
				s = append(s, op(opUseful, reg, q)...)
			}
		}
		return append(s, op(opUseful, 0, 4)...) // DRIVER_OK
	}
	traffic := func() []byte {
		s := op(opAddChain, 0, 0x00100400)
		s = append(s, op(opNotifyReg, 0, 0)...)
		s = append(s, op(opAddChain, 0, 0x00200301)...)
		s = append(s, op(opKick, 0, 1)...)
		return append(s, op(opRead, mmio.RegInterruptStatus/4, 0)...)
	}
	join := func(parts ...[]byte) []byte {
		var s []byte
		for _, p := range parts {
			s = append(s, p...)
		}
		return s
	}
	return [][]byte{
		join(probe(), traffic()),
		join(probe(), op(opHostileRing, 0, 0x12340000), op(opNotifyReg, 0, 0), traffic()),
		join(probe(), op(opHostileRing, 0, 0x00030100), op(opHostileRing, 0, 0x00030200), op(opKick, 0, 0)),
		join(probe(), op(opWrite, 0x1c, 0), traffic(), op(opUseful, 0, 1), traffic()),
		join(op(opOddAccess, 0x40, 0x105), op(opOddAccess, 0x1c, 0x3), op(opWrite, 0xff, 7), probe()),
	}
}

// TestFuzzMMIOSeedReachesTraffic: the first seed is a real probe; it must
// activate the device and have its chains served, or the fuzzer would
// start far from the interesting states.
func TestFuzzMMIOSeedReachesTraffic(t *testing.T) {
	m := virtiotest.NewMulti(virtiotest.Config{QueueSize: 8}, 2)
	r := newRig(t, newEcho(2), m.Mem)
	in := mmioSeeds()[0]
	for ; len(in) >= 6; in = in[6:] {
		applyFuzzOp(r, m, in[0], in[1], binary.LittleEndian.Uint32(in[2:6]))
		checkInvariants(t, r)
	}
	used := [2]uint16{m.Drivers[0].UsedIdx(), m.Drivers[1].UsedIdx()}
	if !r.tr.Active() || used != [2]uint16{1, 1} || r.irqs.Load() == 0 {
		t.Fatalf("active %v, used idx %v, interrupts %d; want active, [1 1], some", r.tr.Active(), used, r.irqs.Load())
	}
}
