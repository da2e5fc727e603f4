// Package mmio is the virtio-mmio (version 2) transport: it presents a
// virtio.Device to the guest as the register block of virtio spec 4.2.2 in
// a 4 KiB MMIO window, negotiates features, lets the driver program the
// virtqueues and activates the device on DRIVER_OK.
//
// The transport knows nothing about KVM: the VMM's bus calls Read and Write
// with offsets relative to the window base, kicks arrive either as writes
// to the QueueNotify register or through Kick (from an ioeventfd; see
// ServeIoeventfds), and interrupts leave through the Interrupt passed in
// Options (an irqfd in the VMM; see EventfdInterrupt). The device knows
// nothing about MMIO: it sees queues, notifiers and config accesses.
//
// Everything the guest writes is validated: bad values are ignored and
// logged, never trusted and never a reason to panic.
package mmio

import (
	"encoding/binary"
	"fmt"
	"log/slog"
	"math/bits"
	"sync"
	"sync/atomic"

	"github.com/krunbench/krunbench/vmm/virtio"
)

// Identification values.
const (
	// WindowSize is the size of one device's MMIO window.
	WindowSize = 0x1000
	// MagicValue is "virt" in little-endian.
	MagicValue = 0x74726976
	// Version is the virtio-mmio version implemented (2: virtio 1.x,
	// no legacy interface).
	Version = 2
	// VendorID is reported in the VendorID register: the bytes "KRUN" as
	// they appear in guest memory (little-endian), following QEMU's
	// convention of an ASCII vendor tag ("QEMU" = 0x554d4551).
	VendorID = 0x4e55524b
	// ConfigOffset is where the device configuration space starts.
	ConfigOffset = 0x100
)

// Register offsets (virtio spec 4.2.2, table "MMIO Device Register Layout").
const (
	RegMagicValue        = 0x000
	RegVersion           = 0x004
	RegDeviceID          = 0x008
	RegVendorID          = 0x00c
	RegDeviceFeatures    = 0x010
	RegDeviceFeaturesSel = 0x014
	RegDriverFeatures    = 0x020
	RegDriverFeaturesSel = 0x024
	RegQueueSel          = 0x030
	RegQueueNumMax       = 0x034
	RegQueueNum          = 0x038
	RegQueueReady        = 0x044
	RegQueueNotify       = 0x050
	RegInterruptStatus   = 0x060
	RegInterruptACK      = 0x064
	RegStatus            = 0x070
	RegQueueDescLow      = 0x080
	RegQueueDescHigh     = 0x084
	RegQueueDriverLow    = 0x090
	RegQueueDriverHigh   = 0x094
	RegQueueDeviceLow    = 0x0a0
	RegQueueDeviceHigh   = 0x0a4
	RegSHMSel            = 0x0ac
	RegSHMLenLow         = 0x0b0
	RegSHMLenHigh        = 0x0b4
	RegSHMBaseLow        = 0x0b8
	RegSHMBaseHigh       = 0x0bc
	RegQueueReset        = 0x0c0
	RegConfigGeneration  = 0x0fc
)

// InterruptStatus bits.
const (
	// InterruptUsedBuffer reports a used buffer notification.
	InterruptUsedBuffer uint32 = 1
	// InterruptConfigChange reports a configuration change (or
	// DEVICE_NEEDS_RESET).
	InterruptConfigChange uint32 = 2
)

// Feature bits the transport never offers, whatever the device says: the
// queue implementation has no packed rings, and per-queue reset and
// notification data are not implemented by this transport.
const (
	featureRingReset        = 40 // VIRTIO_F_RING_RESET
	featureNotificationData = 38 // VIRTIO_F_NOTIFICATION_DATA
	unsupportedFeatures     = 1<<virtio.FeatureRingPacked | 1<<featureRingReset | 1<<featureNotificationData
)

// Interrupt raises the device's interrupt line in the guest. The VMM
// implements it with an irqfd (EventfdInterrupt); tests use a counter.
type Interrupt interface {
	Trigger() error
}

// InterruptFunc adapts a function to Interrupt.
type InterruptFunc func() error

// Trigger calls f.
func (f InterruptFunc) Trigger() error { return f() }

// ConfigNotifiee is implemented by devices whose configuration space can
// change at run time. New hands them a notifier that raises a
// configuration change interrupt (see Transport.ConfigChanged).
type ConfigNotifiee interface {
	SetConfigNotifier(n virtio.Notifier)
}

// Options configure a Transport.
type Options struct {
	// Interrupt is raised for used buffer and configuration change
	// notifications; nil drops them.
	Interrupt Interrupt
	// Log receives guest protocol errors (at Warn) and ignored accesses
	// (at Debug); nil discards them.
	Log *slog.Logger
}

// Transport is one virtio-mmio device window. Its Read and Write methods
// may be called concurrently from several vCPUs; Kick from any goroutine.
type Transport struct {
	dev      virtio.Device
	mem      virtio.GuestMemory
	irq      Interrupt
	log      *slog.Logger
	offered  uint64
	maxQueue uint16

	mu          sync.Mutex
	queues      []*virtio.Queue // nil where the device's max size was unusable
	devFeatSel  uint32
	drvFeatSel  uint32
	drvFeatures uint64
	queueSel    uint32
	shmSel      uint32

	status     atomic.Uint32 // written under mu
	isr        atomic.Uint32
	generation atomic.Uint32
	active     atomic.Bool   // the device is activated
	epoch      atomic.Uint64 // bumped by reset and activation; stales old notifiers
}

var _ interface {
	Read(offset uint64, data []byte)
	Write(offset uint64, data []byte)
} = (*Transport)(nil)

// New returns the transport for dev, whose queues live in mem. The device
// starts reset; if it implements ConfigNotifiee it is given a notifier for
// configuration change interrupts.
func New(dev virtio.Device, mem virtio.GuestMemory, opts Options) *Transport {
	t := &Transport{dev: dev, mem: mem, irq: opts.Interrupt, log: opts.Log}
	if t.log == nil {
		t.log = slog.New(slog.DiscardHandler)
	}
	t.log = t.log.With("virtio_device", dev.Type())
	t.offered = (dev.Features() | 1<<virtio.FeatureVersion1) &^ unsupportedFeatures
	t.maxQueue = dev.MaxQueueSize()
	n := max(dev.NumQueues(), 0)
	t.queues = make([]*virtio.Queue, n)
	for i := range t.queues {
		q, err := virtio.NewQueue(t.maxQueue)
		if err != nil {
			t.log.Error("virtio-mmio: device reports an unusable queue size; queue disabled", "queue", i, "err", err)
			continue
		}
		q.SetLogger(t.log.With("queue", i))
		t.queues[i] = q
	}
	if c, ok := dev.(ConfigNotifiee); ok {
		c.SetConfigNotifier(virtio.NotifierFunc(t.ConfigChanged))
	}
	return t
}

// KernelParam returns the kernel command-line parameter that declares a
// virtio-mmio device with its window at base and interrupt irq
// ("virtio_mmio.device=4K@0xd0000000:5").
func KernelParam(base uint64, irq uint32) string {
	return fmt.Sprintf("virtio_mmio.device=4K@%#x:%d", base, irq)
}

// Device returns the device behind the transport.
func (t *Transport) Device() virtio.Device { return t.dev }

// NumQueues returns the number of queues (the device's NumQueues).
func (t *Transport) NumQueues() int { return len(t.queues) }

// Queue returns queue i as programmed by the driver, or nil when i is out
// of range or the queue is unusable. It is for inspection (tests, debug
// views); the device gets its queues from Activate.
func (t *Transport) Queue(i int) *virtio.Queue {
	if i < 0 || i >= len(t.queues) {
		return nil
	}
	return t.queues[i]
}

// NotifyOffset returns the offset of the QueueNotify register, where the
// VMM registers one ioeventfd per queue (4 bytes, datamatch = queue index).
func (t *Transport) NotifyOffset() uint64 { return RegQueueNotify }

// Status returns the device status register.
func (t *Transport) Status() uint32 { return t.status.Load() }

// InterruptStatus returns the InterruptStatus register.
func (t *Transport) InterruptStatus() uint32 { return t.isr.Load() }

// Active reports whether the device is activated (DRIVER_OK accepted).
func (t *Transport) Active() bool { return t.active.Load() }

// Kick delivers an available buffer notification for queue i to the
// device, as a write of i to QueueNotify does. It is ignored unless the
// device is active and queue i is ready.
func (t *Transport) Kick(i int) {
	if !t.active.Load() || i < 0 || i >= len(t.queues) || t.queues[i] == nil || !t.queues[i].Ready() {
		return
	}
	t.dev.QueueNotify(i)
}

// ConfigChanged raises a configuration change interrupt: it bumps
// ConfigGeneration, sets InterruptStatus bit 1 and triggers the interrupt
// if a driver is attached (status non-zero). Devices reach it through the
// notifier set by New.
func (t *Transport) ConfigChanged() error {
	t.generation.Add(1)
	if t.status.Load() == 0 {
		return nil
	}
	t.isr.Or(InterruptConfigChange)
	return t.trigger()
}

func (t *Transport) trigger() error {
	if t.irq == nil {
		return nil
	}
	return t.irq.Trigger()
}

// notifier returns the used buffer notifier handed to the device for one
// activation; it does nothing once the transport is reset.
func (t *Transport) notifier(epoch uint64) virtio.Notifier {
	return virtio.NotifierFunc(func() error {
		if t.epoch.Load() != epoch {
			return nil
		}
		t.isr.Or(InterruptUsedBuffer)
		return t.trigger()
	})
}

// Read handles a guest read of len(data) bytes at offset in the window.
// Registers take 32-bit aligned accesses only; other accesses read as
// zero. The configuration space takes 1, 2, 4 and 8-byte accesses.
func (t *Transport) Read(offset uint64, data []byte) {
	clear(data)
	if offset >= ConfigOffset {
		if t.configAccessOK(offset, data, "read") {
			t.dev.ReadConfig(offset-ConfigOffset, data)
		}
		return
	}
	if len(data) != 4 || offset%4 != 0 {
		t.log.Debug("virtio-mmio: ignoring register read of wrong width", "offset", offset, "len", len(data))
		return
	}
	binary.LittleEndian.PutUint32(data, t.readReg(offset))
}

// Write handles a guest write of data at offset in the window, with the
// same width rules as Read.
func (t *Transport) Write(offset uint64, data []byte) {
	if offset >= ConfigOffset {
		if t.configAccessOK(offset, data, "write") {
			t.dev.WriteConfig(offset-ConfigOffset, data)
		}
		return
	}
	if len(data) != 4 || offset%4 != 0 {
		t.log.Debug("virtio-mmio: ignoring register write of wrong width", "offset", offset, "len", len(data))
		return
	}
	t.writeReg(offset, binary.LittleEndian.Uint32(data))
}

func (t *Transport) configAccessOK(offset uint64, data []byte, what string) bool {
	switch n := uint64(len(data)); {
	case n != 1 && n != 2 && n != 4 && n != 8:
	case offset > WindowSize-n:
	default:
		return true
	}
	t.log.Debug("virtio-mmio: ignoring config "+what, "offset", offset, "len", len(data))
	return false
}

// selected returns the queue chosen by QueueSel, or nil when out of range.
func (t *Transport) selected() *virtio.Queue {
	if int64(t.queueSel) >= int64(len(t.queues)) {
		return nil
	}
	return t.queues[t.queueSel]
}

func (t *Transport) readReg(offset uint64) uint32 {
	t.mu.Lock()
	defer t.mu.Unlock()
	switch offset {
	case RegMagicValue:
		return MagicValue
	case RegVersion:
		return Version
	case RegDeviceID:
		return t.dev.Type()
	case RegVendorID:
		return VendorID
	case RegDeviceFeatures:
		switch t.devFeatSel {
		case 0:
			return uint32(t.offered)
		case 1:
			return uint32(t.offered >> 32)
		}
		return 0
	case RegQueueNumMax:
		if q := t.selected(); q != nil {
			return uint32(q.MaxSize())
		}
		return 0
	case RegQueueReady:
		if q := t.selected(); q != nil && q.Ready() {
			return 1
		}
		return 0
	case RegInterruptStatus:
		return t.isr.Load()
	case RegStatus:
		return t.status.Load()
	case RegSHMLenLow, RegSHMLenHigh, RegSHMBaseLow, RegSHMBaseHigh:
		return ^uint32(0) // no shared memory regions: length ~0
	case RegQueueReset:
		return 0
	case RegConfigGeneration:
		return t.generation.Load()
	}
	t.log.Debug("virtio-mmio: read of write-only or unknown register", "offset", offset)
	return 0
}

func (t *Transport) writeReg(offset uint64, v uint32) {
	if offset == RegQueueNotify {
		t.Kick(int(v))
		return
	}
	if offset == RegInterruptACK {
		t.isr.And(^v)
		return
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	switch offset {
	case RegDeviceFeaturesSel:
		t.devFeatSel = v
	case RegDriverFeaturesSel:
		t.drvFeatSel = v
	case RegDriverFeatures:
		t.writeDriverFeatures(v)
	case RegQueueSel:
		t.queueSel = v
	case RegQueueNum, RegQueueReady, RegQueueDescLow, RegQueueDescHigh,
		RegQueueDriverLow, RegQueueDriverHigh, RegQueueDeviceLow, RegQueueDeviceHigh:
		t.writeQueueReg(offset, v)
	case RegStatus:
		t.writeStatus(v)
	case RegSHMSel:
		t.shmSel = v
	case RegQueueReset:
		t.log.Debug("virtio-mmio: QueueReset not supported (VIRTIO_F_RING_RESET is not offered)", "value", v)
	default:
		t.log.Debug("virtio-mmio: write to read-only or unknown register", "offset", offset, "value", v)
	}
}

func (t *Transport) writeDriverFeatures(v uint32) {
	st := t.status.Load()
	if st&virtio.StatusDriver == 0 || st&(virtio.StatusFeaturesOK|virtio.StatusFailed) != 0 {
		t.log.Warn("virtio-mmio: DriverFeatures written outside feature negotiation; ignored", "status", st)
		return
	}
	switch t.drvFeatSel {
	case 0:
		t.drvFeatures = t.drvFeatures&^0xffffffff | uint64(v)
	case 1:
		t.drvFeatures = t.drvFeatures&0xffffffff | uint64(v)<<32
	default:
		if v != 0 {
			t.log.Warn("virtio-mmio: driver accepted features in unknown word; FEATURES_OK will be refused", "sel", t.drvFeatSel, "value", v)
			t.drvFeatures |= 1 << 63 // never offered: makes negotiation fail
		}
	}
}

func (t *Transport) writeQueueReg(offset uint64, v uint32) {
	q := t.selected()
	if q == nil {
		t.log.Debug("virtio-mmio: queue register write with QueueSel out of range", "sel", t.queueSel, "offset", offset)
		return
	}
	st := t.status.Load()
	if st&virtio.StatusFeaturesOK == 0 || st&(virtio.StatusDriverOK|virtio.StatusFailed) != 0 {
		t.log.Warn("virtio-mmio: queue configured outside FEATURES_OK..DRIVER_OK; ignored", "queue", t.queueSel, "offset", offset, "status", st)
		return
	}
	if offset == RegQueueReady {
		if v > 1 {
			t.log.Warn("virtio-mmio: QueueReady value not 0 or 1; ignored", "queue", t.queueSel, "value", v)
			return
		}
		q.SetReady(v == 1)
		return
	}
	if q.Ready() {
		t.log.Warn("virtio-mmio: configuring a queue that is ready; ignored", "queue", t.queueSel, "offset", offset)
		return
	}
	lo := func(old uint64) uint64 { return old&^0xffffffff | uint64(v) }
	hi := func(old uint64) uint64 { return old&0xffffffff | uint64(v)<<32 }
	switch offset {
	case RegQueueNum:
		if v == 0 || v > uint32(q.MaxSize()) || bits.OnesCount32(v) != 1 {
			t.log.Warn("virtio-mmio: QueueNum not a power of two <= QueueNumMax; ignored", "queue", t.queueSel, "value", v, "max", q.MaxSize())
			return
		}
		q.SetSize(uint16(v))
	case RegQueueDescLow:
		q.SetDescTable(lo(q.DescTable()))
	case RegQueueDescHigh:
		q.SetDescTable(hi(q.DescTable()))
	case RegQueueDriverLow:
		q.SetAvailRing(lo(q.AvailRing()))
	case RegQueueDriverHigh:
		q.SetAvailRing(hi(q.AvailRing()))
	case RegQueueDeviceLow:
		q.SetUsedRing(lo(q.UsedRing()))
	case RegQueueDeviceHigh:
		q.SetUsedRing(hi(q.UsedRing()))
	}
}

// driverStatusBits are the status bits a driver may set.
const driverStatusBits = virtio.StatusAcknowledge | virtio.StatusDriver | virtio.StatusFeaturesOK | virtio.StatusDriverOK | virtio.StatusFailed

// writeStatus implements the device status state machine (virtio spec
// 3.1.1): 0 resets; otherwise bits are only added, in the order
// ACKNOWLEDGE, DRIVER, FEATURES_OK, DRIVER_OK. FEATURES_OK is refused
// (left clear) when the driver accepted features that were not offered or
// did not accept VERSION_1. DRIVER_OK activates the device; if that fails
// the status gets DEVICE_NEEDS_RESET and a configuration change interrupt.
func (t *Transport) writeStatus(v uint32) {
	if v == 0 {
		t.resetLocked()
		return
	}
	old := t.status.Load()
	v &^= virtio.StatusDeviceNeedsReset // device-owned; drivers echo it back
	switch {
	case v&^driverStatusBits != 0:
		t.log.Warn("virtio-mmio: unknown status bits; write ignored", "status", v)
		return
	case old&^v&^virtio.StatusDeviceNeedsReset != 0:
		t.log.Warn("virtio-mmio: driver cleared status bits without reset; write ignored", "old", old, "new", v)
		return
	}
	next := old | v
	added := next &^ old
	if added&virtio.StatusFailed != 0 {
		t.log.Warn("virtio-mmio: driver gave up on the device (FAILED)", "status", next)
		t.status.Store(old | virtio.StatusFailed)
		return
	}
	switch {
	case next&virtio.StatusDriver != 0 && next&virtio.StatusAcknowledge == 0,
		next&virtio.StatusFeaturesOK != 0 && next&virtio.StatusDriver == 0,
		next&virtio.StatusDriverOK != 0 && next&virtio.StatusFeaturesOK == 0:
		t.log.Warn("virtio-mmio: status bits set out of order; write ignored", "old", old, "new", v)
		return
	}
	if added&virtio.StatusFeaturesOK != 0 && !t.negotiate() {
		next &^= virtio.StatusFeaturesOK | virtio.StatusDriverOK
		added &^= virtio.StatusDriverOK
	}
	if added&virtio.StatusDriverOK != 0 {
		if err := t.activate(); err != nil {
			t.log.Warn("virtio-mmio: activation failed; DEVICE_NEEDS_RESET", "err", err)
			t.status.Store(next | virtio.StatusDeviceNeedsReset)
			t.isr.Or(InterruptConfigChange)
			if err := t.trigger(); err != nil {
				t.log.Warn("virtio-mmio: interrupt", "err", err)
			}
			return
		}
	}
	t.status.Store(next)
}

// negotiate checks the driver's features for FEATURES_OK and hands the
// accepted ones to the device.
func (t *Transport) negotiate() bool {
	f := t.drvFeatures
	if extra := f &^ t.offered; extra != 0 {
		t.log.Warn("virtio-mmio: driver accepted features not offered; FEATURES_OK refused", "features", f, "offered", t.offered, "extra", extra)
		return false
	}
	if f&(1<<virtio.FeatureVersion1) == 0 {
		t.log.Warn("virtio-mmio: driver did not accept VERSION_1; FEATURES_OK refused", "features", f)
		return false
	}
	t.dev.AckFeatures(f & t.dev.Features())
	return true
}

// activate configures the queues from the negotiated features and starts
// the device. Queues the driver did not enable are passed as nil.
func (t *Transport) activate() error {
	eventIdx := t.drvFeatures&(1<<virtio.FeatureEventIdx) != 0
	queues := make([]*virtio.Queue, len(t.queues))
	for i, q := range t.queues {
		if q == nil || !q.Ready() {
			continue
		}
		q.SetEventIdx(eventIdx)
		if err := q.Validate(t.mem); err != nil {
			return fmt.Errorf("queue %d: %w", i, err)
		}
		queues[i] = q
	}
	epoch := t.epoch.Add(1)
	notifiers := make([]virtio.Notifier, len(t.queues))
	for i := range notifiers {
		notifiers[i] = t.notifier(epoch)
	}
	if err := t.dev.Activate(t.mem, queues, notifiers); err != nil {
		t.epoch.Add(1)
		return err
	}
	t.active.Store(true)
	return nil
}

// resetLocked handles a write of 0 to Status: the device is reset and the
// transport returns to its initial state (ConfigGeneration keeps counting).
func (t *Transport) resetLocked() {
	t.active.Store(false)
	t.epoch.Add(1)
	t.dev.Reset()
	for _, q := range t.queues {
		if q != nil {
			q.Reset()
		}
	}
	t.devFeatSel, t.drvFeatSel, t.drvFeatures = 0, 0, 0
	t.queueSel, t.shmSel = 0, 0
	t.isr.Store(0)
	t.status.Store(0)
}
