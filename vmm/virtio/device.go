package virtio

// Feature bit numbers (not masks): feature f is offered when
// features&(1<<f) != 0.
const (
	FeatureIndirectDesc   = 28 // VIRTIO_RING_F_INDIRECT_DESC
	FeatureEventIdx       = 29 // VIRTIO_RING_F_EVENT_IDX
	FeatureVersion1       = 32 // VIRTIO_F_VERSION_1
	FeatureAccessPlatform = 33 // VIRTIO_F_ACCESS_PLATFORM
	FeatureRingPacked     = 34 // VIRTIO_F_RING_PACKED (not supported by Queue)
	FeatureInOrder        = 35 // VIRTIO_F_IN_ORDER
)

// Descriptor flags (struct virtq_desc.flags).
const (
	DescFNext     uint16 = 1 // VIRTQ_DESC_F_NEXT: the chain continues via next
	DescFWrite    uint16 = 2 // VIRTQ_DESC_F_WRITE: buffer is device-writable
	DescFIndirect uint16 = 4 // VIRTQ_DESC_F_INDIRECT: buffer is a descriptor table
)

// Ring flags.
const (
	// AvailFNoInterrupt (VIRTQ_AVAIL_F_NO_INTERRUPT) in avail.flags asks the
	// device not to interrupt; only meaningful without EVENT_IDX.
	AvailFNoInterrupt uint16 = 1
	// UsedFNoNotify (VIRTQ_USED_F_NO_NOTIFY) in used.flags asks the driver
	// not to kick; only meaningful without EVENT_IDX.
	UsedFNoNotify uint16 = 1
)

// Device IDs.
const (
	DeviceIDNet     uint32 = 1
	DeviceIDBlock   uint32 = 2
	DeviceIDConsole uint32 = 3
	DeviceIDRNG     uint32 = 4
	DeviceIDBalloon uint32 = 5
	DeviceIDSCSI    uint32 = 8
	DeviceID9P      uint32 = 9
	DeviceIDGPU     uint32 = 16
	DeviceIDInput   uint32 = 18
	DeviceIDVsock   uint32 = 19
	DeviceIDFS      uint32 = 26
)

// Device status bits, as written by the driver to the transport.
const (
	StatusAcknowledge      uint32 = 1
	StatusDriver           uint32 = 2
	StatusDriverOK         uint32 = 4
	StatusFeaturesOK       uint32 = 8
	StatusDeviceNeedsReset uint32 = 64
	StatusFailed           uint32 = 128
)

// Notifier signals the driver that a queue has new used buffers (a used
// buffer notification: an interrupt for virtio-mmio, the call eventfd for
// vhost-user). Devices decide when to call it, normally after
// Queue.NeedsNotification reports true.
type Notifier interface {
	Notify() error
}

// NotifierFunc adapts a function to the Notifier interface.
type NotifierFunc func() error

// Notify calls f.
func (f NotifierFunc) Notify() error { return f() }

// Device is a virtio device as seen by a transport (in-process virtio-mmio
// or a vhost-user backend). The transport owns feature negotiation, queue
// configuration and status; the device owns the queues' contents once
// activated.
//
// Call order: Features, AckFeatures (with the negotiated subset), config
// access at any time, then Activate once the driver sets DRIVER_OK. Reset
// returns the device to its pre-Activate state; queues may be activated
// again afterwards.
type Device interface {
	// Type returns the virtio device ID (DeviceIDFS, ...).
	Type() uint32
	// Features returns the feature bits the device offers.
	Features() uint64
	// AckFeatures records the features accepted by the driver, a subset
	// of Features.
	AckFeatures(features uint64)
	// ReadConfig fills data from the device configuration space at off.
	// Out-of-range bytes read as zero.
	ReadConfig(off uint64, data []byte)
	// WriteConfig writes data to the device configuration space at off.
	// Writes to read-only or out-of-range fields are ignored.
	WriteConfig(off uint64, data []byte)
	// NumQueues returns the number of virtqueues the device uses.
	NumQueues() int
	// MaxQueueSize returns the largest queue size the device accepts (a
	// power of two, at most MaxQueueSize).
	MaxQueueSize() uint16
	// Activate starts the device. queues and notifiers have NumQueues
	// entries; queues not enabled by the driver are nil or not Ready. The
	// device must Validate each queue it uses.
	Activate(mem GuestMemory, queues []*Queue, notifiers []Notifier) error
	// QueueNotify tells the device that the driver kicked queue index
	// (an available buffer notification). It must not block for long.
	QueueNotify(index int)
	// Reset stops the device and drops its references to the queues and
	// guest memory handed to Activate.
	Reset()
}
