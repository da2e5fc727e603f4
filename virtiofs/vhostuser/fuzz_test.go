package vhostuser

import (
	"os"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/krunbench/krunbench/vmm/virtio"
	"github.com/krunbench/krunbench/vmm/virtio/virtiotest"
)

// FuzzVhostUser sends a sequence of vhost-user messages with attached fds,
// decoded from the input, to the real backend over a real socket pair; the
// fds are created per input: the guest-RAM memfd of the fake QEMU (whose
// rings hold a published chain on each queue), memfds of odd sizes,
// eventfds (one blocking and saturated), /dev/zero and pipe ends. Actions
// between messages shrink the guest memfd and kick every eventfd.
//
// It asserts that the backend neither panics nor dies of a fault, that it
// ends the connection within a bounded time once the front-end hangs up
// (so no input can hang it), and that it leaves no fd open.
//
// Input: messages of [request][flags][fd kind][payload length][payload].
// request: a vhost-user request code, or fuzzTruncate / fuzzKick. flags:
// bit 0 need_reply, bit 1 the reply flag, bit 2 a wrong version. fd kind:
// see fuzzFd.
func FuzzVhostUser(f *testing.F) {
	for _, s := range vhostUserSeeds() {
		f.Add(s)
	}
	warmUpNetpoll(f)
	f.Fuzz(func(t *testing.T, in []byte) { runFuzzVhostUser(t, in) })
}

// Actions in place of a request code.
const (
	fuzzTruncate = 0xf0 // shrink the guest memfd to 0
	fuzzKick     = 0xf1 // write 1 to every non-blocking eventfd sent so far
	fuzzMaxMsgs  = 64
)

// fuzzFd kinds (low 3 bits; the high bits size the odd memfd).
const (
	fdNone = iota
	fdGuestRAM
	fdOddMemfd
	fdEventfd
	fdSaturated
	fdDevZero
	fdPipeRead
	fdPipeWrite
)

// warmUpNetpoll makes the runtime open its network poller's fds before
// any fd is counted.
func warmUpNetpoll(tb testing.TB) {
	fds, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		tb.Fatal(err)
	}
	f := os.NewFile(uintptr(fds[0]), "warm")
	_ = f.SetDeadline(time.Now())
	f.Close()
	unix.Close(fds[1])
}

func countFds(t *testing.T) int {
	es, err := os.ReadDir("/proc/self/fd")
	must(t, err)
	return len(es)
}

func runFuzzVhostUser(t *testing.T, in []byte) {
	baseline := countFds(t)
	dev := &echoDevice{}
	b := NewBackend(dev, Options{})
	fe, done := pairFrontEnd(t, b)
	for _, d := range fe.drivers {
		if _, err := d.AddChain(virtiotest.R([]byte("fuzz")), virtiotest.W(16)); err != nil {
			t.Fatal(err)
		}
		d.Publish()
	}
	var owned, kicks []int
	defer func() { closeFds(owned) }()
messages:
	for n := 0; len(in) >= 4 && n < fuzzMaxMsgs; n++ {
		req, flags, kind, size := in[0], in[1], in[2], int(in[3])
		in = in[4:]
		payload := in[:min(size, len(in))]
		in = in[len(payload):]
		switch req {
		case fuzzTruncate, fuzzKick:
			if !fuzzBarrier(fe) {
				break messages
			}
			if req == fuzzTruncate {
				_ = unix.Ftruncate(fe.memfd, 0)
			}
			for _, fd := range kicks {
				_, _ = unix.Write(fd, u64Bytes(1))
			}
			continue
		}
		fd, own, kick := fuzzFd(t, fe, kind)
		owned = append(owned, own...)
		if kick {
			kicks = append(kicks, fd)
		}
		hdrFlags := uint32(flagVersion)
		if flags&1 != 0 {
			hdrFlags |= flagNeedReply
		}
		if flags&2 != 0 {
			hdrFlags |= flagReply
		}
		if flags&4 != 0 {
			hdrFlags = hdrFlags&^flagVersionMask | 2
		}
		msg := make([]byte, headerSize+len(payload))
		ne.PutUint32(msg, uint32(req))
		ne.PutUint32(msg[4:], hdrFlags)
		ne.PutUint32(msg[8:], uint32(len(payload)))
		copy(msg[headerSize:], payload)
		var oob []byte
		if fd >= 0 {
			oob = unix.UnixRights(fd)
		}
		if err := unix.Sendmsg(fe.fd, msg, oob, nil, unix.MSG_NOSIGNAL); err != nil {
			break messages // the backend closed the connection
		}
	}
	unix.Shutdown(fe.fd, unix.SHUT_WR)
	select {
	case <-done:
	case <-time.After(30 * time.Second):
		t.Fatal("the backend did not end the connection within 30 s of the hang-up")
	}
	b.Close()
	fe.close()
	closeFds(owned)
	owned = nil
	for deadline := time.Now().Add(5 * time.Second); countFds(t) > baseline; time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("%d fds open after the connection, %d before", countFds(t), baseline)
		}
	}
}

// fuzzBarrier waits until the backend has handled every message sent so
// far (the reply to a GET_QUEUE_NUM sent now), so that an action lands
// between the messages the input puts it between. It reports false when
// the connection is closed (or silent for SO_RCVTIMEO, a hang the caller
// then reports).
func fuzzBarrier(fe *frontEnd) bool {
	msg := make([]byte, headerSize)
	ne.PutUint32(msg, reqGetQueueNum)
	ne.PutUint32(msg[4:], flagVersion)
	if err := unix.Sendmsg(fe.fd, msg, nil, nil, unix.MSG_NOSIGNAL); err != nil {
		return false
	}
	for {
		hdr, err := fe.readFull(headerSize)
		if err != nil {
			return false
		}
		if _, err := fe.readFull(int(ne.Uint32(hdr[8:]))); err != nil {
			return false
		}
		if ne.Uint32(hdr) == reqGetQueueNum {
			return true
		}
	}
}

// fuzzFd creates the fd of a kind to attach to a message: it returns the
// fd (-1 for none), the fds the test must close, and whether the fd may be
// kicked (a non-blocking eventfd).
func fuzzFd(t *testing.T, fe *frontEnd, kind byte) (fd int, owned []int, kick bool) {
	var err error
	switch kind & 7 {
	case fdGuestRAM:
		return fe.memfd, nil, false
	case fdOddMemfd:
		fd, err = unix.MemfdCreate("odd", unix.MFD_CLOEXEC)
		if err == nil {
			err = unix.Ftruncate(fd, int64(kind>>3)*0x1003)
		}
	case fdEventfd:
		fd, err = unix.Eventfd(0, unix.EFD_NONBLOCK|unix.EFD_CLOEXEC)
		kick = true
	case fdSaturated:
		fd, err = unix.Eventfd(0, unix.EFD_CLOEXEC)
		if err == nil {
			_, err = unix.Write(fd, u64Bytes(0xffff_ffff_ffff_fffe))
		}
	case fdDevZero:
		fd, err = unix.Open("/dev/zero", unix.O_RDONLY|unix.O_CLOEXEC, 0)
	case fdPipeRead, fdPipeWrite:
		p := make([]int, 2)
		if err = unix.Pipe2(p, unix.O_CLOEXEC|unix.O_NONBLOCK); err == nil {
			return p[kind&7-fdPipeRead], p, false
		}
	default:
		return -1, nil, false
	}
	if err != nil {
		t.Fatal(err)
	}
	return fd, []int{fd}, kick
}

// fuzzMsg encodes one message of the fuzz input format.
func fuzzMsg(req, flags, kind byte, payload []byte) []byte {
	return append([]byte{req, flags, kind, byte(len(payload))}, payload...)
}

// vhostUserSeeds are QEMU's start sequence (as in fakeqemu_test.go) and
// hostile variations of it.
func vhostUserSeeds() [][]byte {
	feats := u64Bytes(1<<virtio.FeatureVersion1 | 1<<FeatureProtocolFeatures)
	proto := u64Bytes(1<<ProtocolMQ | 1<<ProtocolReplyAck | 1<<ProtocolConfigureMemSlots)
	start := func(kick, call byte) []byte {
		var s []byte
		s = append(s, fuzzMsg(reqGetFeatures, 0, fdNone, nil)...)
		s = append(s, fuzzMsg(reqSetProtocolFeatures, 0, fdNone, proto)...)
		s = append(s, fuzzMsg(reqSetOwner, 0, fdNone, nil)...)
		s = append(s, fuzzMsg(reqSetFeatures, 0, fdNone, feats)...)
		s = append(s, fuzzMsg(reqAddMemReg, 1, fdGuestRAM, lowRegion())...)
		s = append(s, fuzzMsg(reqAddMemReg, 1, fdGuestRAM, highRegion())...)
		for i := range 2 {
			base := ringBase(i)
			d := virtiotest.New(virtiotest.Config{QueueSize: ringSize, MemSize: 1 << 20, Base: base})
			s = append(s, fuzzMsg(reqSetVringNum, 0, fdNone, state(uint32(i), ringSize))...)
			s = append(s, fuzzMsg(reqSetVringBase, 0, fdNone, state(uint32(i), 0))...)
			s = append(s, fuzzMsg(reqSetVringAddr, 0, fdNone, addrPayload(uint32(i), user(d.Desc), user(d.Used), user(d.Avail)))...)
			s = append(s, fuzzMsg(reqSetVringCall, 0, call, u64Bytes(uint64(i)))...)
			s = append(s, fuzzMsg(reqSetVringKick, 1, kick, u64Bytes(uint64(i)))...)
			s = append(s, fuzzMsg(reqSetVringEnable, 0, fdNone, state(uint32(i), 1))...)
		}
		return s
	}
	kick := fuzzMsg(fuzzKick, 0, 0, nil)
	stop := append(fuzzMsg(reqGetVringBase, 0, fdNone, state(0, 0)), fuzzMsg(reqGetVringBase, 0, fdNone, state(1, 0))...)
	join := func(parts ...[]byte) []byte {
		var s []byte
		for _, p := range parts {
			s = append(s, p...)
		}
		return s
	}
	return [][]byte{
		join(start(fdEventfd, fdEventfd), kick, stop),
		join(start(fdEventfd, fdEventfd), fuzzMsg(fuzzTruncate, 0, 0, nil), kick, stop),
		join(start(fdEventfd, fdSaturated), kick, kick, stop),
		join(start(fdDevZero, fdPipeWrite), kick),
		join(start(fdPipeRead, fdEventfd), kick),
		join(fuzzMsg(reqAddMemReg, 1, fdOddMemfd|5<<3, lowRegion()), start(fdEventfd, fdEventfd), kick),
		join(fuzzMsg(reqSetMemTable, 1, fdGuestRAM, make([]byte, 8+32)), fuzzMsg(99, 7, fdPipeRead, []byte("junk"))),
		join(start(fdEventfd, fdEventfd), fuzzMsg(reqResetDevice, 0, 0, nil), kick, start(fdEventfd, fdEventfd), kick),
	}
}
