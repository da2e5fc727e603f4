package vhostuser

import (
	"errors"
	"io"
	"log/slog"
	"net"

	"golang.org/x/sys/unix"

	"github.com/krunbench/krunbench/vmm/virtio"
)

// session is the protocol state of one front-end connection. All fields
// are owned by the goroutine running serve, except what the poller and
// the vrings' notifiers synchronise themselves.
type session struct {
	dev      virtio.Device
	log      *slog.Logger
	c        *conn
	maxSlots int

	features   uint64 // virtio features acked with SET_FEATURES, bit 30 included
	protocol   uint64 // protocol features acked with SET_PROTOCOL_FEATURES
	mem        memTable
	vrings     []*vring
	backendReq int // SET_BACKEND_REQ_FD, kept only to be closed

	active   bool
	queues   []*virtio.Queue // while active: the started rings' queues
	watching map[int]int     // queue index -> kick fd handed to the poller
	poller   *poller
}

// handler serves one request type. reply marks requests that always
// answer with a payload; the others answer only with a REPLY_ACK when the
// front-end set need_reply.
type handler struct {
	fn    func(s *session, m *message) ([]byte, error)
	reply bool
}

var handlers = map[uint32]handler{
	reqGetFeatures:         {(*session).getFeatures, true},
	reqSetFeatures:         {(*session).setFeatures, false},
	reqGetProtocolFeatures: {(*session).getProtocolFeatures, true},
	reqSetProtocolFeatures: {(*session).setProtocolFeatures, false},
	reqSetOwner:            {(*session).setOwner, false},
	reqResetOwner:          {(*session).resetDevice, false},
	reqResetDevice:         {(*session).resetDevice, false},
	reqGetQueueNum:         {(*session).getQueueNum, true},
	reqGetMaxMemSlots:      {(*session).getMaxMemSlots, true},
	reqSetMemTable:         {(*session).setMemTable, false},
	reqAddMemReg:           {(*session).addMemReg, false},
	reqRemMemReg:           {(*session).remMemReg, false},
	reqSetVringNum:         {(*session).setVringNum, false},
	reqSetVringAddr:        {(*session).setVringAddr, false},
	reqSetVringBase:        {(*session).setVringBase, false},
	reqGetVringBase:        {(*session).getVringBase, true},
	reqSetVringKick:        {(*session).setVringKick, false},
	reqSetVringCall:        {(*session).setVringCall, false},
	reqSetVringErr:         {(*session).setVringErr, false},
	reqSetVringEnable:      {(*session).setVringEnable, false},
	reqGetConfig:           {(*session).getConfig, true},
	reqSetConfig:           {(*session).setConfig, false},
	reqSetBackendReqFd:     {(*session).setBackendReqFd, false},
}

func newSession(dev virtio.Device, uc *net.UnixConn, log *slog.Logger, maxSlots int) (*session, error) {
	c, err := newConn(uc)
	if err != nil {
		return nil, err
	}
	s := &session{dev: dev, log: log, c: c, maxSlots: maxSlots, backendReq: -1}
	var serve func(int)
	if k, ok := dev.(kickServer); ok {
		serve = func(i int) { k.ServeKick(i) }
	}
	var threaded func(int) int
	if t, ok := dev.(queueThreader); ok {
		threaded = t.QueueThread
	}
	s.poller, err = newPoller(s.queueNotify, serve, threaded, log)
	if err != nil {
		return nil, err
	}
	s.vrings = make([]*vring, dev.NumQueues())
	for i := range s.vrings {
		s.vrings[i] = newVring(i)
	}
	return s, nil
}

// kickServer is a device that serves a kick on the goroutine that got it
// (virtiofs.Device.ServeKick); the poller calls it on its reader.
type kickServer interface {
	ServeKick(index int) bool
}

// queueNotify forwards a kick to the device's queue poller; it runs on a
// kick fd's reader goroutine for a device without ServeKick, or on the
// session's goroutine for the notification set sends.
func (s *session) queueNotify(i int) { s.dev.QueueNotify(i) }

// serve handles messages until the front-end disconnects or breaks the
// protocol, then releases everything: the device is reset before guest
// memory is unmapped.
func (s *session) serve() error {
	defer s.teardown()
	for {
		m, err := s.c.read()
		if err != nil {
			if errors.Is(err, io.EOF) || errors.Is(err, net.ErrClosed) {
				return nil
			}
			return err
		}
		if err := s.dispatch(m); err != nil {
			return err
		}
	}
}

func (s *session) teardown() {
	s.deactivate()
	s.dev.Reset()
	s.poller.close()
	for _, v := range s.vrings {
		v.close()
	}
	s.mem.clear()
	if s.backendReq >= 0 {
		unix.Close(s.backendReq)
	}
}

// dispatch serves one message. It returns an error only when the
// connection must be closed.
func (s *session) dispatch(m *message) error {
	defer closeFds(m.fds)
	name := requestName(m.req)
	s.log.Debug("vhost-user: request", "req", name, "flags", m.flags, "size", len(m.payload), "fds", len(m.fds))
	h, ok := handlers[m.req]
	if !ok {
		switch {
		case m.needReply():
			s.log.Warn("vhost-user: unsupported request; replying with a failure", "req", name, "code", m.req)
			return s.c.reply(m, u64Bytes(1))
		case repliedRequests[m.req]:
			return protoErr("unsupported request %s (%d), which wants a reply", name, m.req)
		}
		s.log.Warn("vhost-user: ignoring unsupported request", "req", name, "code", m.req)
		return nil
	}
	reply, err := h.fn(s, m)
	switch {
	case h.reply && err == nil:
		return s.c.reply(m, reply)
	case err != nil && (h.reply || !m.needReply() || !errors.Is(err, errProtocol)):
		return err
	case m.needReply():
		status := uint64(0)
		if err != nil {
			s.log.Warn("vhost-user: request failed", "req", name, "err", err)
			status = 1
		}
		return s.c.reply(m, u64Bytes(status))
	}
	return nil
}

// unsupportedFeatures are virtio features the backend cannot provide
// whatever the device offers: packed rings (virtio.Queue is split only)
// and ACCESS_PLATFORM (no IOTLB).
const unsupportedFeatures = 1<<virtio.FeatureRingPacked | 1<<virtio.FeatureAccessPlatform

func (s *session) offeredFeatures() uint64 {
	return s.dev.Features()&^unsupportedFeatures | 1<<FeatureProtocolFeatures
}

func (s *session) getFeatures(m *message) ([]byte, error) {
	if err := m.getPayload(); err != nil {
		return nil, err
	}
	return u64Bytes(s.offeredFeatures()), nil
}

func (s *session) setFeatures(m *message) ([]byte, error) {
	f, err := m.u64()
	if err != nil {
		return nil, err
	}
	if extra := f &^ s.offeredFeatures(); extra != 0 {
		return nil, protoErr("SET_FEATURES %#x acks features %#x that were not offered", f, extra)
	}
	if s.active && f != s.features {
		s.log.Warn("vhost-user: features changed while the device runs; restarting it")
		s.deactivate()
	}
	s.features = f
	s.dev.AckFeatures(f &^ (1 << FeatureProtocolFeatures))
	return nil, s.update()
}

func (s *session) getProtocolFeatures(m *message) ([]byte, error) {
	if err := m.getPayload(); err != nil {
		return nil, err
	}
	return u64Bytes(offeredProtocol), nil
}

func (s *session) setProtocolFeatures(m *message) ([]byte, error) {
	f, err := m.u64()
	if err != nil {
		return nil, err
	}
	if extra := f &^ offeredProtocol; extra != 0 {
		return nil, protoErr("SET_PROTOCOL_FEATURES %#x acks features %#x that were not offered", f, extra)
	}
	s.protocol = f
	return nil, nil
}

func (s *session) setOwner(m *message) ([]byte, error) {
	return nil, m.getPayload()
}

// resetDevice serves RESET_OWNER and RESET_DEVICE: the device and every
// ring return to their initial state; memory and protocol features stay.
func (s *session) resetDevice(m *message) ([]byte, error) {
	if err := m.expectFds(0); err != nil {
		return nil, err
	}
	s.deactivate()
	s.dev.Reset()
	s.features = 0
	s.syncKicks()
	for i, v := range s.vrings {
		v.close()
		s.vrings[i] = newVring(i)
	}
	return nil, nil
}

func (s *session) getQueueNum(m *message) ([]byte, error) {
	if err := m.getPayload(); err != nil {
		return nil, err
	}
	return u64Bytes(uint64(len(s.vrings))), nil
}

func (s *session) getMaxMemSlots(m *message) ([]byte, error) {
	if err := m.getPayload(); err != nil {
		return nil, err
	}
	return u64Bytes(uint64(s.maxSlots)), nil
}

// Memory changes reset a running device first: it must not touch a
// mapping being removed, and it sees guest memory only at Activate.

func (s *session) setMemTable(m *message) ([]byte, error) {
	rs, err := m.memTable()
	if err != nil {
		return nil, err
	}
	if len(rs) > s.maxSlots {
		return nil, protoErr("SET_MEM_TABLE: %d regions exceed %d slots", len(rs), s.maxSlots)
	}
	s.deactivate()
	if err := s.mem.replace(rs, m.fds); err != nil {
		return nil, err
	}
	s.log.Debug("vhost-user: memory table", "regions", len(rs))
	return nil, s.update()
}

func (s *session) addMemReg(m *message) ([]byte, error) {
	r, err := m.memReg()
	if err != nil {
		return nil, err
	}
	if err := m.expectFds(1); err != nil {
		return nil, err
	}
	s.deactivate()
	if err := s.mem.add(r, m.fds[0], s.maxSlots); err != nil {
		return nil, err
	}
	s.log.Debug("vhost-user: memory region added", "gpa", r.gpa, "size", r.size, "user", r.userAddr, "offset", r.mmapOffset)
	return nil, s.update()
}

func (s *session) remMemReg(m *message) ([]byte, error) {
	r, err := m.memReg()
	if err != nil {
		return nil, err
	}
	if len(m.fds) > 1 {
		return nil, protoErr("REM_MEM_REG: %d fds, want at most 1", len(m.fds))
	}
	s.deactivate()
	if err := s.mem.remove(r); err != nil {
		return nil, err
	}
	return nil, s.update()
}

func (s *session) getConfig(m *message) ([]byte, error) {
	c, err := m.config()
	if err != nil {
		return nil, err
	}
	c.data = make([]byte, c.size)
	s.dev.ReadConfig(uint64(c.offset), c.data)
	return c.bytes(), nil
}

func (s *session) setConfig(m *message) ([]byte, error) {
	c, err := m.config()
	if err != nil {
		return nil, err
	}
	s.dev.WriteConfig(uint64(c.offset), c.data)
	return nil, nil
}

// setBackendReqFd keeps the backend request channel only to close it: the
// backend never sends requests (BACKEND_REQ is not offered, but a
// front-end may send the fd anyway).
func (s *session) setBackendReqFd(m *message) ([]byte, error) {
	if err := m.expect(0, 1); err != nil {
		return nil, err
	}
	if s.backendReq >= 0 {
		unix.Close(s.backendReq)
	}
	s.backendReq = m.takeFd(0)
	return nil, nil
}
