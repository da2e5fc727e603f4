package vhostuser

import (
	"encoding/binary"
	"errors"
	"fmt"
)

// Request codes of front-end messages (the spec's "front-end message types").
const (
	reqGetFeatures         = 1
	reqSetFeatures         = 2
	reqSetOwner            = 3
	reqResetOwner          = 4
	reqSetMemTable         = 5
	reqSetLogBase          = 6
	reqSetLogFd            = 7
	reqSetVringNum         = 8
	reqSetVringAddr        = 9
	reqSetVringBase        = 10
	reqGetVringBase        = 11
	reqSetVringKick        = 12
	reqSetVringCall        = 13
	reqSetVringErr         = 14
	reqGetProtocolFeatures = 15
	reqSetProtocolFeatures = 16
	reqGetQueueNum         = 17
	reqSetVringEnable      = 18
	reqSendRARP            = 19
	reqNetSetMTU           = 20
	reqSetBackendReqFd     = 21
	reqIOTLBMsg            = 22
	reqSetVringEndian      = 23
	reqGetConfig           = 24
	reqSetConfig           = 25
	reqCreateCryptoSession = 26
	reqCloseCryptoSession  = 27
	reqPostcopyAdvise      = 28
	reqPostcopyListen      = 29
	reqPostcopyEnd         = 30
	reqGetInflightFd       = 31
	reqSetInflightFd       = 32
	reqGPUSetSocket        = 33
	reqResetDevice         = 34
	reqVringKick           = 35
	reqGetMaxMemSlots      = 36
	reqAddMemReg           = 37
	reqRemMemReg           = 38
	reqSetStatus           = 39
	reqGetStatus           = 40
)

var requestNames = map[uint32]string{
	reqGetFeatures: "GET_FEATURES", reqSetFeatures: "SET_FEATURES",
	reqSetOwner: "SET_OWNER", reqResetOwner: "RESET_OWNER",
	reqSetMemTable: "SET_MEM_TABLE", reqSetLogBase: "SET_LOG_BASE",
	reqSetLogFd: "SET_LOG_FD", reqSetVringNum: "SET_VRING_NUM",
	reqSetVringAddr: "SET_VRING_ADDR", reqSetVringBase: "SET_VRING_BASE",
	reqGetVringBase: "GET_VRING_BASE", reqSetVringKick: "SET_VRING_KICK",
	reqSetVringCall: "SET_VRING_CALL", reqSetVringErr: "SET_VRING_ERR",
	reqGetProtocolFeatures: "GET_PROTOCOL_FEATURES", reqSetProtocolFeatures: "SET_PROTOCOL_FEATURES",
	reqGetQueueNum: "GET_QUEUE_NUM", reqSetVringEnable: "SET_VRING_ENABLE",
	reqSendRARP: "SEND_RARP", reqNetSetMTU: "NET_SET_MTU",
	reqSetBackendReqFd: "SET_BACKEND_REQ_FD", reqIOTLBMsg: "IOTLB_MSG",
	reqSetVringEndian: "SET_VRING_ENDIAN", reqGetConfig: "GET_CONFIG",
	reqSetConfig: "SET_CONFIG", reqCreateCryptoSession: "CREATE_CRYPTO_SESSION",
	reqCloseCryptoSession: "CLOSE_CRYPTO_SESSION", reqPostcopyAdvise: "POSTCOPY_ADVISE",
	reqPostcopyListen: "POSTCOPY_LISTEN", reqPostcopyEnd: "POSTCOPY_END",
	reqGetInflightFd: "GET_INFLIGHT_FD", reqSetInflightFd: "SET_INFLIGHT_FD",
	reqGPUSetSocket: "GPU_SET_SOCKET", reqResetDevice: "RESET_DEVICE",
	reqVringKick: "VRING_KICK", reqGetMaxMemSlots: "GET_MAX_MEM_SLOTS",
	reqAddMemReg: "ADD_MEM_REG", reqRemMemReg: "REM_MEM_REG",
	reqSetStatus: "SET_STATUS", reqGetStatus: "GET_STATUS",
}

// requestName returns the spec name of a request code.
func requestName(r uint32) string {
	if n, ok := requestNames[r]; ok {
		return n
	}
	return fmt.Sprintf("UNKNOWN(%d)", r)
}

// Requests that always solicit a reply from the back-end. An unsupported
// one of these cannot be answered meaningfully, so it closes the connection
// rather than leaving the front-end waiting.
var repliedRequests = map[uint32]bool{
	reqGetFeatures: true, reqGetProtocolFeatures: true, reqGetVringBase: true,
	reqGetQueueNum: true, reqGetConfig: true, reqGetMaxMemSlots: true,
	reqSetLogBase: true, reqCreateCryptoSession: true, reqPostcopyAdvise: true,
	reqPostcopyEnd: true, reqGetInflightFd: true, reqGetStatus: true,
}

// Header flags.
const (
	flagVersionMask = 0x3
	flagVersion     = 0x1
	flagReply       = 0x4
	flagNeedReply   = 0x8
)

// Protocol feature bits (VHOST_USER_PROTOCOL_F_*).
const (
	ProtocolMQ                = 0
	ProtocolLogShmfd          = 1
	ProtocolReplyAck          = 3
	ProtocolBackendReq        = 5
	ProtocolConfig            = 9
	ProtocolBackendSendFd     = 10
	ProtocolResetDevice       = 13
	ProtocolConfigureMemSlots = 15
	ProtocolStatus            = 16
)

// FeatureProtocolFeatures is VHOST_USER_F_PROTOCOL_FEATURES, the virtio
// feature bit (number) through which the front-end learns that
// GET_PROTOCOL_FEATURES is supported. Once acked with SET_FEATURES, rings
// start disabled until SET_VRING_ENABLE.
const FeatureProtocolFeatures = 30

// offeredProtocol is what GET_PROTOCOL_FEATURES returns. BACKEND_REQ is
// not offered: the backend never sends requests to the front-end. CONFIG
// is not offered either, as QEMU's vhost-user-fs keeps the config space
// itself (and warns about a backend offering it); GET_CONFIG and
// SET_CONFIG are still served from the device for front-ends that send
// them.
const offeredProtocol = 1<<ProtocolMQ | 1<<ProtocolReplyAck |
	1<<ProtocolResetDevice | 1<<ProtocolConfigureMemSlots

// Protocol limits.
const (
	headerSize = 12
	// maxPayload bounds a message payload; the largest legitimate one is
	// SET_MEM_TABLE with 8 regions (264 bytes) or GET_CONFIG (12 + 256).
	maxPayload = 4096
	// maxFds is the most fds a message may carry
	// (VHOST_MEMORY_BASELINE_NREGIONS).
	maxFds = 8
	// maxConfigSize bounds GET_CONFIG and SET_CONFIG.
	maxConfigSize = 256
	// vringFdNone is bit 8 of the SET_VRING_KICK/CALL/ERR payload: no fd.
	vringFdNone = 1 << 8
	// vringIndexMask selects the ring index in those payloads.
	vringIndexMask = 0xff
	// vringFLog is bit 0 of SET_VRING_ADDR's flags (dirty logging).
	vringFLog = 1
)

// Payload sizes.
const (
	sizeU64        = 8
	sizeVringState = 8
	sizeVringAddr  = 40
	sizeMemRegion  = 32
	sizeMemTableHd = 8
	sizeMemRegMsg  = 8 + sizeMemRegion
	sizeConfigHd   = 12
)

var ne = binary.NativeEndian

// errProtocol wraps every error caused by what the front-end sent.
var errProtocol = errors.New("vhost-user: protocol error")

// protoErr returns a protocol error with a formatted reason.
func protoErr(format string, args ...any) error {
	return fmt.Errorf("%w: %s", errProtocol, fmt.Sprintf(format, args...))
}

// message is one front-end message: header fields, payload and the fds
// received with it. Handlers that keep an fd set its entry to -1; the
// dispatcher closes the rest.
type message struct {
	req     uint32
	flags   uint32
	payload []byte
	fds     []int
}

func (m *message) needReply() bool { return m.flags&flagNeedReply != 0 }

// takeFd returns fd i and marks it as kept.
func (m *message) takeFd(i int) int {
	fd := m.fds[i]
	m.fds[i] = -1
	return fd
}

// expect checks the payload size and fd count of a message.
func (m *message) expect(size, fds int) error {
	if len(m.payload) != size {
		return protoErr("%s: payload of %d bytes, want %d", requestName(m.req), len(m.payload), size)
	}
	if len(m.fds) != fds {
		return protoErr("%s: %d fds, want %d", requestName(m.req), len(m.fds), fds)
	}
	return nil
}

// getPayload checks the payload of a request that carries no argument:
// empty, or a u64 that is ignored (front-ends differ), and no fds.
func (m *message) getPayload() error {
	if len(m.payload) != 0 && len(m.payload) != sizeU64 {
		return protoErr("%s: payload of %d bytes, want none", requestName(m.req), len(m.payload))
	}
	return m.expectFds(0)
}

// u64 decodes a u64 payload.
func (m *message) u64() (uint64, error) {
	if err := m.expect(sizeU64, 0); err != nil {
		return 0, err
	}
	return ne.Uint64(m.payload), nil
}

// vringState is struct vhost_vring_state.
type vringState struct {
	index uint32
	num   uint32
}

func (m *message) vringState() (vringState, error) {
	if err := m.expect(sizeVringState, 0); err != nil {
		return vringState{}, err
	}
	return vringState{index: ne.Uint32(m.payload), num: ne.Uint32(m.payload[4:])}, nil
}

func (s vringState) bytes() []byte {
	b := make([]byte, sizeVringState)
	ne.PutUint32(b, s.index)
	ne.PutUint32(b[4:], s.num)
	return b
}

// vringAddr is struct vhost_vring_addr; the addresses are the front-end's
// user (virtual) addresses.
type vringAddr struct {
	index, flags          uint32
	desc, used, avail, lg uint64
}

func (m *message) vringAddr() (vringAddr, error) {
	if err := m.expect(sizeVringAddr, 0); err != nil {
		return vringAddr{}, err
	}
	p := m.payload
	return vringAddr{
		index: ne.Uint32(p), flags: ne.Uint32(p[4:]),
		desc: ne.Uint64(p[8:]), used: ne.Uint64(p[16:]),
		avail: ne.Uint64(p[24:]), lg: ne.Uint64(p[32:]),
	}, nil
}

// memRegionMsg is struct vhost_user_memory_region.
type memRegionMsg struct {
	gpa, size, userAddr, mmapOffset uint64
}

func decodeRegion(p []byte) memRegionMsg {
	return memRegionMsg{gpa: ne.Uint64(p), size: ne.Uint64(p[8:]), userAddr: ne.Uint64(p[16:]), mmapOffset: ne.Uint64(p[24:])}
}

// memTable decodes SET_MEM_TABLE: {nregions u32, padding u32,
// regions[nregions]}, one fd per region.
func (m *message) memTable() ([]memRegionMsg, error) {
	if len(m.payload) < sizeMemTableHd {
		return nil, protoErr("SET_MEM_TABLE: payload of %d bytes", len(m.payload))
	}
	n := int(ne.Uint32(m.payload))
	if n < 1 || n > maxFds {
		return nil, protoErr("SET_MEM_TABLE: %d regions, want 1 to %d", n, maxFds)
	}
	if err := m.expect(sizeMemTableHd+n*sizeMemRegion, n); err != nil {
		return nil, err
	}
	rs := make([]memRegionMsg, n)
	for i := range rs {
		rs[i] = decodeRegion(m.payload[sizeMemTableHd+i*sizeMemRegion:])
	}
	return rs, nil
}

// memReg decodes ADD_MEM_REG and REM_MEM_REG: {padding u64, region}.
func (m *message) memReg() (memRegionMsg, error) {
	if len(m.payload) != sizeMemRegMsg {
		return memRegionMsg{}, protoErr("%s: payload of %d bytes, want %d", requestName(m.req), len(m.payload), sizeMemRegMsg)
	}
	return decodeRegion(m.payload[8:]), nil
}

// configMsg is struct vhost_user_config.
type configMsg struct {
	offset, size, flags uint32
	data                []byte
}

func (m *message) config() (configMsg, error) {
	if err := m.expectFds(0); err != nil {
		return configMsg{}, err
	}
	if len(m.payload) < sizeConfigHd {
		return configMsg{}, protoErr("%s: payload of %d bytes", requestName(m.req), len(m.payload))
	}
	c := configMsg{offset: ne.Uint32(m.payload), size: ne.Uint32(m.payload[4:]), flags: ne.Uint32(m.payload[8:])}
	if c.size > maxConfigSize || int(c.size) != len(m.payload)-sizeConfigHd {
		return configMsg{}, protoErr("%s: config size %d in a payload of %d bytes", requestName(m.req), c.size, len(m.payload))
	}
	c.data = m.payload[sizeConfigHd:]
	return c, nil
}

func (c configMsg) bytes() []byte {
	b := make([]byte, sizeConfigHd+len(c.data))
	ne.PutUint32(b, c.offset)
	ne.PutUint32(b[4:], c.size)
	ne.PutUint32(b[8:], c.flags)
	copy(b[sizeConfigHd:], c.data)
	return b
}

func (m *message) expectFds(n int) error {
	if len(m.fds) != n {
		return protoErr("%s: %d fds, want %d", requestName(m.req), len(m.fds), n)
	}
	return nil
}

func u64Bytes(v uint64) []byte {
	b := make([]byte, sizeU64)
	ne.PutUint64(b, v)
	return b
}
