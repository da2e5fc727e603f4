package console_test

import (
	"encoding/binary"
	"sync/atomic"
	"testing"

	"github.com/krunbench/krunbench/vmm/console"
	"github.com/krunbench/krunbench/vmm/virtio"
	"github.com/krunbench/krunbench/vmm/virtio/mmio"
	"github.com/krunbench/krunbench/vmm/virtio/virtiotest"
)

var _ mmio.ConfigNotifiee = (*console.Console)(nil)

// TestBehindMMIOTransport probes the console through virtio-mmio
// registers as a driver without MULTIPORT does (queues 0 and 1 only) and
// checks data flow, interrupts and the config-change path of Resize.
func TestBehindMMIOTransport(t *testing.T) {
	h := newHost(t)
	con, err := console.New(console.Options{Ports: []console.Port{{Console: true, Host: h.Side()}}})
	if err != nil {
		t.Fatal(err)
	}
	defer con.Close()
	m := virtiotest.NewMulti(virtiotest.Config{QueueSize: 16}, con.NumQueues())
	var irqs atomic.Int32
	tr := mmio.New(con, m.Mem, mmio.Options{Interrupt: mmio.InterruptFunc(func() error { irqs.Add(1); return nil })})
	defer tr.Write(mmio.RegStatus, make([]byte, 4))
	r32 := func(off uint64) uint32 {
		b := make([]byte, 4)
		tr.Read(off, b)
		return binary.LittleEndian.Uint32(b)
	}
	w32 := func(off uint64, v uint32) { tr.Write(off, binary.LittleEndian.AppendUint32(nil, v)) }

	con.Resize(80, 25)
	if r32(mmio.RegDeviceID) != virtio.DeviceIDConsole || r32(mmio.ConfigOffset)&0xffff != 80 || r32(mmio.ConfigOffset+4) != 1 {
		t.Fatal("identification or config space through the transport")
	}
	w32(mmio.RegStatus, virtio.StatusAcknowledge)
	w32(mmio.RegStatus, virtio.StatusAcknowledge|virtio.StatusDriver)
	w32(mmio.RegDriverFeaturesSel, 1)
	w32(mmio.RegDriverFeatures, 1) // VERSION_1
	w32(mmio.RegDriverFeaturesSel, 0)
	w32(mmio.RegDriverFeatures, 1<<console.FeatureSize)
	w32(mmio.RegStatus, virtio.StatusAcknowledge|virtio.StatusDriver|virtio.StatusFeaturesOK)
	for i := range 2 {
		d := m.Drivers[i]
		w32(mmio.RegQueueSel, uint32(i))
		w32(mmio.RegQueueNum, uint32(d.Size))
		w32(mmio.RegQueueDescLow, uint32(d.Desc))
		w32(mmio.RegQueueDriverLow, uint32(d.Avail))
		w32(mmio.RegQueueDeviceLow, uint32(d.Used))
		w32(mmio.RegQueueReady, 1)
	}
	w32(mmio.RegStatus, virtio.StatusAcknowledge|virtio.StatusDriver|virtio.StatusFeaturesOK|virtio.StatusDriverOK)
	if st := r32(mmio.RegStatus); st != 15 {
		t.Fatalf("status %#x", st)
	}

	g := &guest{t: t, con: con, m: m, placed: make([]map[uint16]virtiotest.Placed, con.NumQueues())}
	for i := range g.placed {
		g.placed[i] = map[uint16]virtiotest.Placed{}
	}
	go h.In.Write([]byte("login: "))
	if got := g.receive(0, 7, 2, 32); string(got) != "login: " {
		t.Fatalf("guest got %q", got)
	}
	if r32(mmio.RegInterruptStatus)&mmio.InterruptUsedBuffer == 0 || irqs.Load() == 0 {
		t.Fatal("no used buffer interrupt through the transport")
	}
	w32(mmio.RegInterruptACK, r32(mmio.RegInterruptStatus))

	before := irqs.Load()
	con.Resize(100, 50)
	if r32(mmio.RegConfigGeneration) == 0 || r32(mmio.RegInterruptStatus) != mmio.InterruptConfigChange || irqs.Load() != before+1 {
		t.Fatal("Resize did not raise a configuration change interrupt")
	}
	if v := r32(mmio.ConfigOffset); v&0xffff != 100 || v>>16 != 50 {
		t.Fatalf("config cols/rows %#x", v)
	}
}
