package mmio_test

import (
	"bytes"
	"encoding/binary"
	"errors"
	"testing"

	"github.com/krunbench/krunbench/vmm/virtio"
	"github.com/krunbench/krunbench/vmm/virtio/mmio"
	"github.com/krunbench/krunbench/vmm/virtio/virtiotest"
)

const (
	ack        = virtio.StatusAcknowledge
	driver     = virtio.StatusDriver
	featuresOK = virtio.StatusFeaturesOK
	driverOK   = virtio.StatusDriverOK
	needsReset = virtio.StatusDeviceNeedsReset
)

func TestIdentificationRegisters(t *testing.T) {
	dev := newEcho(1)
	dev.features = 1 << 3 // no VERSION_1: the transport adds it
	r := newRig(t, dev, virtiotest.New(virtiotest.Config{}).Mem)
	for _, c := range []struct {
		off  uint64
		want uint32
	}{
		{mmio.RegMagicValue, 0x74726976},
		{mmio.RegVersion, 2},
		{mmio.RegDeviceID, echoID},
		{mmio.RegVendorID, mmio.VendorID},
		{mmio.RegSHMLenLow, 0xffffffff},
		{mmio.RegSHMLenHigh, 0xffffffff},
		{mmio.RegSHMBaseLow, 0xffffffff},
		{mmio.RegConfigGeneration, 0},
		{mmio.RegStatus, 0},
		{mmio.RegInterruptStatus, 0},
		{mmio.RegQueueDescLow, 0}, // write-only
		{0x0f0, 0},                // unknown
	} {
		if got := r.r32(c.off); got != c.want {
			t.Errorf("register %#x = %#x, want %#x", c.off, got, c.want)
		}
	}
	if got := r.offered(); got != 1<<virtio.FeatureVersion1|1<<3 {
		t.Errorf("offered features %#x: VERSION_1 must always be offered", got)
	}
	r.w32(mmio.RegDeviceFeaturesSel, 2)
	if got := r.r32(mmio.RegDeviceFeatures); got != 0 {
		t.Errorf("feature word 2 = %#x", got)
	}
	if string(binary.LittleEndian.AppendUint32(nil, mmio.VendorID)) != "KRUN" {
		t.Error("VendorID is not \"KRUN\" in guest byte order")
	}
	if got := mmio.KernelParam(0xd0000000, 5); got != "virtio_mmio.device=4K@0xd0000000:5" {
		t.Errorf("KernelParam = %q", got)
	}
}

func TestWrongWidthRegisterAccess(t *testing.T) {
	r := newRig(t, newEcho(1), virtiotest.New(virtiotest.Config{}).Mem)
	for _, c := range []struct {
		off uint64
		n   int
	}{{mmio.RegMagicValue, 1}, {mmio.RegMagicValue, 2}, {mmio.RegMagicValue, 8}, {mmio.RegMagicValue + 1, 4}, {mmio.RegVersion, 1}} {
		b := bytes.Repeat([]byte{0x55}, c.n)
		r.tr.Read(c.off, b)
		if !bytes.Equal(b, make([]byte, c.n)) {
			t.Errorf("%d-byte read at %#x = %x, want zeros", c.n, c.off, b)
		}
	}
	r.tr.Write(mmio.RegStatus, []byte{1})
	r.tr.Write(mmio.RegStatus, []byte{1, 0})
	r.tr.Write(mmio.RegStatus+1, []byte{1, 0, 0, 0})
	if got := r.r32(mmio.RegStatus); got != 0 {
		t.Fatalf("narrow/unaligned status writes were accepted: status %#x", got)
	}
}

func TestProbeAndRoundTrip(t *testing.T) {
	dev := newEcho(1)
	// Two ring areas in one memory: the second serves the probe after reset.
	m := virtiotest.NewMulti(virtiotest.Config{QueueSize: 16}, 2)
	d := m.Drivers[0]
	r := newRig(t, dev, m.Mem)
	if st := r.probe(d); st != ack|driver|featuresOK|driverOK {
		t.Fatalf("status after probe %#x", st)
	}
	if dev.acked != dev.features || dev.ackCalls != 1 || dev.activations != 1 {
		t.Fatalf("device acked %#x (%d calls), %d activations", dev.acked, dev.ackCalls, dev.activations)
	}
	q := r.tr.Queue(0)
	if q.Size() != 16 || q.DescTable() != d.Desc || q.AvailRing() != d.Avail || q.UsedRing() != d.Used || !q.EventIdx() {
		t.Fatalf("queue programmed as size %d desc %#x avail %#x used %#x eventidx %v",
			q.Size(), q.DescTable(), q.AvailRing(), q.UsedRing(), q.EventIdx())
	}

	p, err := d.AddChain(virtiotest.R([]byte("hello, ")), virtiotest.R([]byte("virtio")), virtiotest.W(5), virtiotest.W(20))
	if err != nil {
		t.Fatal(err)
	}
	d.Publish()
	r.w32(mmio.RegQueueNotify, 0)
	u := waitUsed(t, d, p.Head)
	if got := writable(d, p, u.Len); string(got) != "hello, virtio" {
		t.Fatalf("echo returned %q", got)
	}
	if isr := r.r32(mmio.RegInterruptStatus); isr != mmio.InterruptUsedBuffer || r.irqs.Load() != 1 {
		t.Fatalf("InterruptStatus %#x, %d interrupts", isr, r.irqs.Load())
	}
	r.w32(mmio.RegInterruptACK, mmio.InterruptUsedBuffer)
	if isr := r.r32(mmio.RegInterruptStatus); isr != 0 {
		t.Fatalf("InterruptStatus %#x after ACK", isr)
	}

	// Kicks for queues that do not exist are ignored.
	r.w32(mmio.RegQueueNotify, 7)
	r.w32(mmio.RegQueueNotify, 0xffffffff)

	// Status 0 resets the device and every transport register.
	stale := dev.notifiers[0]
	r.w32(mmio.RegDeviceFeaturesSel, 1)
	r.w32(mmio.RegQueueSel, 5)
	r.w32(mmio.RegStatus, 0)
	if st, isr := r.r32(mmio.RegStatus), r.r32(mmio.RegInterruptStatus); st != 0 || isr != 0 || dev.resets == 0 {
		t.Fatalf("after reset: status %#x isr %#x resets %d", st, isr, dev.resets)
	}
	if q.Ready() || q.Size() != 64 || q.DescTable() != 0 || r.r32(mmio.RegQueueNumMax) != 64 || r.r32(mmio.RegDeviceFeatures) != uint32(dev.features) {
		t.Fatal("transport state survived reset")
	}
	// A notifier of the reset activation must not raise anything.
	stale.Notify()
	if r.r32(mmio.RegInterruptStatus) != 0 || r.irqs.Load() != 1 {
		t.Fatal("notifier of a reset activation raised an interrupt")
	}
	// Kicks while reset do not reach the device.
	d.AddChain(virtiotest.R([]byte("x")), virtiotest.W(1))
	d.Publish()
	r.tr.Kick(0)
	if len(d.TakeUsed()) != 0 {
		t.Fatal("a reset device served a kick")
	}

	// The same transport is probed again with new rings.
	d2 := m.Drivers[1]
	if st := r.probe(d2); st != ack|driver|featuresOK|driverOK || dev.activations != 2 {
		t.Fatalf("second probe: status %#x activations %d", st, dev.activations)
	}
	p, _ = d2.AddChain(virtiotest.R([]byte("again")), virtiotest.W(8))
	d2.Publish()
	r.tr.Kick(0)
	if u := waitUsed(t, d2, p.Head); string(writable(d2, p, u.Len)) != "again" {
		t.Fatal("second activation does not echo")
	}
}

func TestFeaturesOKRefused(t *testing.T) {
	cases := []struct {
		name   string
		accept func(uint64) uint64
	}{
		{"unoffered bit", func(f uint64) uint64 { return f | 1<<5 }},
		{"unoffered high bit", func(f uint64) uint64 { return f | 1<<50 }},
		{"packed ring", func(f uint64) uint64 { return f | 1<<virtio.FeatureRingPacked }},
		{"no VERSION_1", func(f uint64) uint64 { return f &^ (1 << virtio.FeatureVersion1) }},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			dev := newEcho(1)
			dev.features |= 1 << virtio.FeatureRingPacked // offered by the device, never by the transport
			d := virtiotest.New(virtiotest.Config{})
			r := newRig(t, dev, d.Mem)
			if r.negotiate(c.accept) {
				t.Fatal("FEATURES_OK accepted")
			}
			if st := r.r32(mmio.RegStatus); st != ack|driver || dev.ackCalls != 0 {
				t.Fatalf("status %#x, AckFeatures called %d times", st, dev.ackCalls)
			}
			// Queue setup and DRIVER_OK without FEATURES_OK are ignored.
			r.w32(mmio.RegQueueSel, 0)
			r.w32(mmio.RegQueueNum, 8)
			r.w32(mmio.RegQueueReady, 1)
			r.addStatus(driverOK)
			if st := r.r32(mmio.RegStatus); st != ack|driver || r.tr.Queue(0).Ready() || dev.activations != 0 {
				t.Fatalf("status %#x ready %v activations %d", st, r.tr.Queue(0).Ready(), dev.activations)
			}
			// A correct negotiation after a reset succeeds.
			if !r.negotiate(func(f uint64) uint64 { return f &^ (1 << virtio.FeatureRingPacked) }) {
				t.Fatal("valid features refused after reset")
			}
			if dev.acked != 1<<virtio.FeatureVersion1|1<<virtio.FeatureEventIdx|1<<3 {
				t.Fatalf("acked %#x", dev.acked)
			}
		})
	}
}

func TestStatusStateMachine(t *testing.T) {
	dev := newEcho(1)
	r := newRig(t, dev, virtiotest.New(virtiotest.Config{}).Mem)
	r.w32(mmio.RegStatus, driver) // DRIVER without ACKNOWLEDGE
	if st := r.r32(mmio.RegStatus); st != 0 {
		t.Fatalf("DRIVER before ACKNOWLEDGE accepted: %#x", st)
	}
	r.w32(mmio.RegStatus, ack|featuresOK)
	if st := r.r32(mmio.RegStatus); st != 0 {
		t.Fatalf("FEATURES_OK before DRIVER accepted: %#x", st)
	}
	r.w32(mmio.RegStatus, ack|driver)
	r.w32(mmio.RegStatus, ack) // clears DRIVER without reset
	if st := r.r32(mmio.RegStatus); st != ack|driver {
		t.Fatalf("clearing a bit was accepted: %#x", st)
	}
	r.w32(mmio.RegStatus, ack|driver|0x10)
	if st := r.r32(mmio.RegStatus); st != ack|driver {
		t.Fatalf("unknown status bit accepted: %#x", st)
	}
	// Features written before DRIVER or after FEATURES_OK do not count.
	r.writeFeatures(1 << virtio.FeatureVersion1)
	r.addStatus(featuresOK)
	r.writeFeatures(1<<virtio.FeatureVersion1 | 1<<5)
	r.addStatus(driverOK)
	if st := r.r32(mmio.RegStatus); st != ack|driver|featuresOK|driverOK || dev.acked != 1<<virtio.FeatureVersion1 {
		t.Fatalf("status %#x acked %#x", st, dev.acked)
	}
	r.addStatus(virtio.StatusFailed)
	if st := r.r32(mmio.RegStatus); st&virtio.StatusFailed == 0 {
		t.Fatalf("FAILED not recorded: %#x", st)
	}
}

func TestQueueRegisterValidation(t *testing.T) {
	dev := newEcho(2)
	m := virtiotest.NewMulti(virtiotest.Config{QueueSize: 16}, 2)
	r := newRig(t, dev, m.Mem)
	// Before FEATURES_OK queue configuration is ignored.
	r.w32(mmio.RegQueueSel, 0)
	r.w32(mmio.RegQueueNum, 16)
	if r.tr.Queue(0).Size() != 64 {
		t.Fatal("QueueNum accepted before FEATURES_OK")
	}
	if !r.negotiate(func(f uint64) uint64 { return f }) {
		t.Fatal("negotiation failed")
	}
	q := r.tr.Queue(0)
	r.w32(mmio.RegQueueSel, 0)
	for _, bad := range []uint32{3, 0, 128, 0x10000 | 16} {
		r.w32(mmio.RegQueueNum, bad)
		if q.Size() != 64 {
			t.Fatalf("QueueNum %d accepted: size %d", bad, q.Size())
		}
	}
	r.w32(mmio.RegQueueReady, 2)
	if q.Ready() {
		t.Fatal("QueueReady 2 accepted")
	}
	// QueueSel out of range: reads are 0, writes go nowhere.
	r.w32(mmio.RegQueueSel, 99)
	if r.r32(mmio.RegQueueNumMax) != 0 || r.r32(mmio.RegQueueReady) != 0 {
		t.Fatal("out-of-range queue reads non-zero")
	}
	r.w32(mmio.RegQueueNum, 16)
	r.w32(mmio.RegQueueDescLow, 0x1000)
	r.w32(mmio.RegQueueReady, 1)
	for i := range 2 {
		if q := r.tr.Queue(i); q.Ready() || q.Size() != 64 || q.DescTable() != 0 {
			t.Fatalf("write through QueueSel 99 reached queue %d", i)
		}
	}
	// 64-bit addresses are assembled from both halves.
	r.w32(mmio.RegQueueSel, 1)
	r.w32(mmio.RegQueueDescHigh, 0x12)
	r.w32(mmio.RegQueueDescLow, 0x345000)
	if got := r.tr.Queue(1).DescTable(); got != 0x12_00345000 {
		t.Fatalf("desc table %#x", got)
	}
	r.w32(mmio.RegQueueReady, 1) // enabled with rings outside guest memory
	// A ready queue cannot be reprogrammed.
	r.setupQueue(0, m.Drivers[0])
	r.w32(mmio.RegQueueSel, 0)
	r.w32(mmio.RegQueueNum, 4)
	r.w32(mmio.RegQueueDescLow, 0)
	if q.Size() != 16 || q.DescTable() != m.Drivers[0].Desc {
		t.Fatal("ready queue was reprogrammed")
	}
	// Queue 1 is enabled with a bogus descriptor table: activation fails.
	r.addStatus(driverOK)
	if st := r.r32(mmio.RegStatus); st&needsReset == 0 || r.tr.Active() || dev.activations != 0 {
		t.Fatalf("bad queue layout: status %#x active %v", st, r.tr.Active())
	}
}

func TestActivationFailureNeedsReset(t *testing.T) {
	dev := newEcho(1)
	dev.fail = errors.New("no")
	m := virtiotest.NewMulti(virtiotest.Config{QueueSize: 16}, 2)
	d := m.Drivers[0]
	r := newRig(t, dev, m.Mem)
	st := r.probe(d)
	if st != ack|driver|featuresOK|driverOK|needsReset || r.tr.Active() {
		t.Fatalf("status %#x active %v", st, r.tr.Active())
	}
	if isr := r.r32(mmio.RegInterruptStatus); isr != mmio.InterruptConfigChange || r.irqs.Load() != 1 {
		t.Fatalf("isr %#x irqs %d: a config change interrupt must announce DEVICE_NEEDS_RESET", isr, r.irqs.Load())
	}
	d.AddChain(virtiotest.R([]byte("x")), virtiotest.W(1))
	d.Publish()
	r.w32(mmio.RegQueueNotify, 0)
	if len(d.TakeUsed()) != 0 {
		t.Fatal("inactive device served a kick")
	}
	// The driver echoes NEEDS_RESET back; that is not a protocol error.
	r.w32(mmio.RegStatus, st)
	dev.fail = nil
	r.w32(mmio.RegStatus, 0)
	if r.r32(mmio.RegStatus) != 0 {
		t.Fatal("reset did not clear DEVICE_NEEDS_RESET")
	}
	if st := r.probe(m.Drivers[1]); st != ack|driver|featuresOK|driverOK {
		t.Fatalf("status after recovery %#x", st)
	}
}

func TestConfigSpace(t *testing.T) {
	dev := newEcho(1)
	r := newRig(t, dev, virtiotest.New(virtiotest.Config{}).Mem)
	for _, n := range []int{1, 2, 4, 8} {
		b := make([]byte, n)
		r.tr.Read(mmio.ConfigOffset+4, b)
		for i := range b {
			if b[i] != byte(0xa4+i) {
				t.Fatalf("%d-byte config read: %x", n, b)
			}
		}
	}
	b := []byte{1, 2, 3}
	r.tr.Read(mmio.ConfigOffset, b)
	if !bytes.Equal(b, make([]byte, 3)) {
		t.Fatalf("3-byte config read returned %x", b)
	}
	b = make([]byte, 8)
	r.tr.Read(mmio.WindowSize-4, b)
	if !bytes.Equal(b, make([]byte, 8)) {
		t.Fatal("config read past the window returned data")
	}
	r.tr.Write(mmio.ConfigOffset+2, []byte{0x11, 0x22})
	r.tr.Write(mmio.ConfigOffset, []byte{1, 2, 3})
	r.tr.Write(mmio.WindowSize-2, []byte{1, 2, 3, 4})
	if dev.config[2] != 0x11 || dev.config[3] != 0x22 || dev.config[0] != 0xa0 {
		t.Fatalf("config after writes: %x", dev.config)
	}
	r.tr.Read(mmio.ConfigOffset+100, b) // beyond the device's config: zeros
	if !bytes.Equal(b, make([]byte, 8)) {
		t.Fatal("out-of-range config read returned data")
	}
}

func TestConfigChangeInterrupt(t *testing.T) {
	dev := newEcho(1)
	d := virtiotest.New(virtiotest.Config{})
	r := newRig(t, dev, d.Mem)
	if dev.cfgNotifier == nil {
		t.Fatal("the transport did not hand the device a config notifier")
	}
	dev.cfgNotifier.Notify() // no driver yet: generation only
	if r.r32(mmio.RegConfigGeneration) != 1 || r.irqs.Load() != 0 || r.r32(mmio.RegInterruptStatus) != 0 {
		t.Fatal("config change before a driver attached raised an interrupt")
	}
	r.probe(d)
	dev.cfgNotifier.Notify()
	if r.r32(mmio.RegConfigGeneration) != 2 || r.irqs.Load() != 1 || r.r32(mmio.RegInterruptStatus) != mmio.InterruptConfigChange {
		t.Fatalf("generation %d irqs %d isr %#x", r.r32(mmio.RegConfigGeneration), r.irqs.Load(), r.r32(mmio.RegInterruptStatus))
	}
	r.w32(mmio.RegInterruptACK, mmio.InterruptConfigChange)
	if r.r32(mmio.RegInterruptStatus) != 0 {
		t.Fatal("ACK did not clear bit 1")
	}
}

func TestUnusableQueueSize(t *testing.T) {
	dev := newEcho(1)
	dev.maxSize = 100
	r := newRig(t, dev, virtiotest.New(virtiotest.Config{}).Mem)
	r.w32(mmio.RegQueueSel, 0)
	if r.r32(mmio.RegQueueNumMax) != 0 || r.tr.Queue(0) != nil {
		t.Fatal("a queue with max size 100 was offered")
	}
}
