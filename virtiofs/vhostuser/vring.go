package vhostuser

import (
	"errors"
	"maps"
	"strconv"
	"sync"

	"golang.org/x/sys/unix"

	"github.com/krunbench/krunbench/vmm/virtio"
)

// vring is the configuration of one ring as the front-end set it. It is
// also the ring's virtio.Notifier: Notify writes to the current call fd,
// which the front-end may replace at any time.
type vring struct {
	index   int
	num     uint16 // 0: not set, the device's maximum is used
	addrSet bool
	desc    uint64 // guest-physical
	avail   uint64
	used    uint64
	base    uint16 // last_avail_idx
	kick    int    // -1: none
	enabled bool
	errFd   int

	callMu sync.RWMutex
	call   int
}

var _ virtio.Notifier = (*vring)(nil)

func newVring(i int) *vring { return &vring{index: i, kick: -1, errFd: -1, call: -1} }

// Notify signals the call eventfd. Without one the notification is
// dropped, as the front-end asked for no interrupts. It never blocks: the
// call fd is a non-blocking eventfd (adoptEventfd), and EAGAIN means its
// counter is at the maximum, so a notification is pending anyway.
//
// Tried and not kept: the write as unix.RawSyscall (no entersyscall and
// exitsyscall around it, legitimate for a call that never blocks).
// BenchmarkKickToCallCPU, 30 rounds of 5,000 GETATTRs, the test binaries
// alternating in one hold: CPU per request 0.991x [0.896-1.060] (37.2
// against 36.8 us, medians): no gain this machine shows; perf put the
// whole entersyscall/exitsyscall pair at about 1.6% of the backend for
// all of its system calls, a quarter of them this write.
func (v *vring) Notify() error {
	v.callMu.RLock()
	defer v.callMu.RUnlock()
	if v.call < 0 {
		return nil
	}
	var one [8]byte
	ne.PutUint64(one[:], 1)
	_, err := unix.Write(v.call, one[:])
	if errors.Is(err, unix.EAGAIN) {
		return nil // the counter is saturated: the front-end is notified anyway
	}
	return err
}

// setCall replaces the call fd, closing the old one once no Notify uses it.
func (v *vring) setCall(fd int) {
	v.callMu.Lock()
	old := v.call
	v.call = fd
	v.callMu.Unlock()
	if old >= 0 {
		unix.Close(old)
	}
}

// close releases the ring's fds. The poller must no longer watch the kick fd.
func (v *vring) close() {
	v.setCall(-1)
	for _, fd := range []*int{&v.kick, &v.errFd} {
		if *fd >= 0 {
			unix.Close(*fd)
			*fd = -1
		}
	}
}

// stateRing decodes a vring-state payload and looks up its ring.
func (s *session) stateRing(m *message) (vringState, *vring, error) {
	st, err := m.vringState()
	if err != nil {
		return st, nil, err
	}
	v, err := s.ring(m, uint64(st.index))
	return st, v, err
}

// ring returns the vring for a front-end supplied index.
func (s *session) ring(m *message, index uint64) (*vring, error) {
	if index >= uint64(len(s.vrings)) {
		return nil, protoErr("%s: ring index %d out of range (%d rings)", requestName(m.req), index, len(s.vrings))
	}
	return s.vrings[index], nil
}

// runnable reports whether a ring is started: configured, with a kick fd,
// and enabled (rings are enabled from the start unless
// VHOST_USER_F_PROTOCOL_FEATURES was acked).
func (s *session) runnable(v *vring) bool {
	return v.addrSet && v.kick >= 0 && (v.enabled || s.features&(1<<FeatureProtocolFeatures) == 0)
}

// stopRing resets a running device if it uses ring v, which the front-end
// is about to reconfigure; the ring's position is saved in v.base.
func (s *session) stopRing(v *vring) {
	if s.active && s.queues[v.index] != nil {
		s.deactivate()
	}
}

func (s *session) setVringNum(m *message) ([]byte, error) {
	st, v, err := s.stateRing(m)
	if err != nil {
		return nil, err
	}
	if max := uint32(s.dev.MaxQueueSize()); st.num == 0 || st.num&(st.num-1) != 0 || st.num > max {
		return nil, protoErr("SET_VRING_NUM: ring %d size %d is not a power of two <= %d", st.index, st.num, max)
	}
	s.stopRing(v)
	v.num = uint16(st.num)
	return nil, s.update()
}

func (s *session) setVringAddr(m *message) ([]byte, error) {
	a, err := m.vringAddr()
	if err != nil {
		return nil, err
	}
	v, err := s.ring(m, uint64(a.index))
	if err != nil {
		return nil, err
	}
	if a.flags&vringFLog != 0 {
		return nil, protoErr("SET_VRING_ADDR: ring %d asks for dirty logging, which is not supported", a.index)
	}
	var gpa [3]uint64
	for i, u := range []uint64{a.desc, a.avail, a.used} {
		g, ok := s.mem.translate(u)
		if !ok {
			return nil, protoErr("SET_VRING_ADDR: ring %d: %s address %#x is in no memory region",
				a.index, [...]string{"descriptor table", "available ring", "used ring"}[i], u)
		}
		gpa[i] = g
	}
	s.stopRing(v)
	v.desc, v.avail, v.used, v.addrSet = gpa[0], gpa[1], gpa[2], true
	return nil, s.update()
}

func (s *session) setVringBase(m *message) ([]byte, error) {
	st, v, err := s.stateRing(m)
	if err != nil {
		return nil, err
	}
	if st.num > 0xffff {
		return nil, protoErr("SET_VRING_BASE: ring %d base %#x does not fit a split ring", st.index, st.num)
	}
	s.stopRing(v)
	v.base = uint16(st.num)
	return nil, s.update()
}

// getVringBase stops the ring: the device is reset (which waits for the
// requests in flight to be answered), the kick fd dropped, and the ring's
// last_avail_idx returned.
func (s *session) getVringBase(m *message) ([]byte, error) {
	st, v, err := s.stateRing(m)
	if err != nil {
		return nil, err
	}
	s.stopRing(v)
	old := v.kick
	v.kick = -1
	err = s.update()
	if old >= 0 {
		unix.Close(old)
	}
	s.log.Debug("vhost-user: ring stopped", "queue", v.index, "last_avail_idx", v.base)
	if err != nil {
		return nil, err
	}
	return vringState{index: st.index, num: uint32(v.base)}.bytes(), nil
}

// vringFd decodes SET_VRING_KICK/CALL/ERR: the ring index in the low byte,
// bit 8 meaning "no fd". It returns the ring and the fd, or -1. With
// eventfd set, the fd must be an eventfd and is made non-blocking (see
// adoptEventfd).
func (s *session) vringFd(m *message, eventfd bool) (*vring, int, error) {
	if len(m.payload) != sizeU64 {
		return nil, -1, protoErr("%s: payload of %d bytes, want %d", requestName(m.req), len(m.payload), sizeU64)
	}
	u := ne.Uint64(m.payload)
	v, err := s.ring(m, u&vringIndexMask)
	if err != nil {
		return nil, -1, err
	}
	want := 1
	if u&vringFdNone != 0 {
		want = 0
	}
	if err := m.expectFds(want); err != nil {
		return nil, -1, err
	}
	if want == 0 {
		return v, -1, nil
	}
	if eventfd {
		what := requestName(m.req) + ": ring " + strconv.Itoa(v.index)
		if err := adoptEventfd(what, m.fds[0]); err != nil {
			return nil, -1, err
		}
	}
	return v, m.takeFd(0), nil
}

func (s *session) setVringKick(m *message) ([]byte, error) {
	v, fd, err := s.vringFd(m, true)
	if err != nil {
		return nil, err
	}
	if fd < 0 {
		return nil, protoErr("SET_VRING_KICK: ring %d without a kick fd (polling mode) is not supported", v.index)
	}
	old := v.kick
	v.kick = fd
	err = s.update()
	if old >= 0 {
		unix.Close(old)
	}
	return nil, err
}

func (s *session) setVringCall(m *message) ([]byte, error) {
	v, fd, err := s.vringFd(m, true)
	if err != nil {
		return nil, err
	}
	v.setCall(fd)
	return nil, nil
}

func (s *session) setVringErr(m *message) ([]byte, error) {
	v, fd, err := s.vringFd(m, false)
	if err != nil {
		return nil, err
	}
	if v.errFd >= 0 {
		unix.Close(v.errFd)
	}
	v.errFd = fd
	return nil, nil
}

func (s *session) setVringEnable(m *message) ([]byte, error) {
	st, v, err := s.stateRing(m)
	if err != nil {
		return nil, err
	}
	if st.num > 1 {
		return nil, protoErr("SET_VRING_ENABLE: ring %d state %d is neither 0 nor 1", st.index, st.num)
	}
	v.enabled = st.num == 1
	return nil, s.update()
}

// update brings the device in line with the rings after a change: it
// activates the device once every configured ring is started (and at
// least one is), restarts it when a ring starts late, and hands the
// started rings' kick fds to the poller.
func (s *session) update() error {
	err := s.reconcile()
	s.syncKicks()
	return err
}

func (s *session) reconcile() error {
	if s.active {
		for i, v := range s.vrings {
			if s.runnable(v) && s.queues[i] == nil {
				s.log.Warn("vhost-user: ring started after the device was activated; restarting the device", "queue", i)
				s.deactivate()
				break
			}
		}
		if s.active {
			return nil
		}
	}
	started := 0
	for _, v := range s.vrings {
		switch {
		case s.runnable(v):
			started++
		case v.addrSet:
			return nil // a configured ring is not started yet
		}
	}
	if started == 0 {
		return nil
	}
	return s.activate()
}

// activate hands the started rings to the device.
func (s *session) activate() error {
	mem := s.mem.mem
	if mem == nil {
		return protoErr("rings started without guest memory")
	}
	queues := make([]*virtio.Queue, len(s.vrings))
	notifiers := make([]virtio.Notifier, len(s.vrings))
	var started []int
	for i, v := range s.vrings {
		notifiers[i] = v
		if !s.runnable(v) {
			continue
		}
		q, err := s.newQueue(v, mem)
		if err != nil {
			return err
		}
		queues[i] = q
		started = append(started, i)
	}
	if err := s.dev.Activate(mem, queues, notifiers); err != nil {
		return protoErr("activating the device: %v", err)
	}
	s.active, s.queues = true, queues
	s.log.Info("vhost-user: device activated", "queues", started)
	return nil
}

// newQueue builds the virtio.Queue of a started ring, resuming at the
// ring's base and at the used index found in guest memory.
func (s *session) newQueue(v *vring, mem *virtio.Memory) (*virtio.Queue, error) {
	q, err := virtio.NewQueue(s.dev.MaxQueueSize())
	if err != nil {
		return nil, err
	}
	if v.num != 0 {
		q.SetSize(v.num)
	}
	q.SetDescTable(v.desc)
	q.SetAvailRing(v.avail)
	q.SetUsedRing(v.used)
	q.SetEventIdx(s.features&(1<<virtio.FeatureEventIdx) != 0)
	q.SetLogger(s.log.With("queue", v.index))
	if err := q.Validate(mem); err != nil {
		return nil, protoErr("ring %d: %v", v.index, err)
	}
	var usedIdx uint16
	if ferr := virtio.GuardFaults(func() { usedIdx, err = mem.LoadU16(v.used + 2) }); ferr != nil {
		err = ferr
	}
	if err != nil {
		return nil, protoErr("ring %d: reading used idx: %v", v.index, err)
	}
	q.SetNextAvail(v.base)
	q.SetNextUsed(usedIdx)
	q.SetReady(true)
	return q, nil
}

// deactivate resets a running device, saving each ring's position. The
// poller is stopped first so that no kick reaches the device during Reset.
func (s *session) deactivate() {
	if !s.active {
		return
	}
	s.poller.set(nil, nil)
	s.watching = nil
	s.dev.Reset()
	for i, q := range s.queues {
		if q != nil {
			s.vrings[i].base = q.NextAvail()
		}
	}
	s.active, s.queues = false, nil
	s.log.Info("vhost-user: device reset")
}

// syncKicks hands the poller the kick fds of the running device's enabled
// rings. A ring whose fd is new to the poller also gets one notification
// without a kick, for buffers made available before it was polled.
func (s *session) syncKicks() {
	want := map[int]int{}
	if s.active {
		for i, q := range s.queues {
			if q != nil && s.runnable(s.vrings[i]) {
				want[i] = s.vrings[i].kick
			}
		}
	}
	if maps.Equal(want, s.watching) {
		return
	}
	var watch []kickWatch
	var pending []int
	for i := range s.vrings {
		fd, ok := want[i]
		if !ok {
			continue
		}
		watch = append(watch, kickWatch{index: i, fd: fd})
		if old, ok := s.watching[i]; !ok || old != fd {
			pending = append(pending, i)
		}
	}
	s.poller.set(watch, pending)
	s.watching = want
}
