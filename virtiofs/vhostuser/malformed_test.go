package vhostuser

import (
	"errors"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/krunbench/krunbench/vmm/virtio"
	"github.com/krunbench/krunbench/vmm/virtio/virtiotest"
)

// setupMemory acks PROTOCOL_FEATURES and adds both regions, so that ring
// addresses can be translated.
func (fe *frontEnd) setupMemory() {
	fe.t.Helper()
	fe.send(reqSetFeatures, 0, u64Bytes(1<<virtio.FeatureVersion1|1<<FeatureProtocolFeatures))
	fe.mustAck(reqAddMemReg, lowRegion(), fe.memfd)
	fe.mustAck(reqAddMemReg, highRegion(), fe.memfd)
}

// TestMalformedNacked: bad messages sent with need_reply get a failure ack
// and the connection goes on.
func TestMalformedNacked(t *testing.T) {
	small, err := unix.MemfdCreate("small", unix.MFD_CLOEXEC)
	must(t, err)
	defer unix.Close(small)
	must(t, unix.Ftruncate(small, 0x10000))
	pipe := make([]int, 2)
	must(t, unix.Pipe2(pipe, unix.O_CLOEXEC))
	defer unix.Close(pipe[0])
	defer unix.Close(pipe[1])

	type send func(fe *frontEnd)
	cases := []struct {
		name string
		send send
	}{
		{"SET_VRING_NUM short payload", func(fe *frontEnd) { fe.mustNack(reqSetVringNum, []byte{0, 0, 0, 0}) }},
		{"SET_VRING_NUM bad index", func(fe *frontEnd) { fe.mustNack(reqSetVringNum, state(2, 16)) }},
		{"SET_VRING_NUM huge index", func(fe *frontEnd) { fe.mustNack(reqSetVringNum, state(0xffffffff, 16)) }},
		{"SET_VRING_NUM not a power of two", func(fe *frontEnd) { fe.mustNack(reqSetVringNum, state(0, 24)) }},
		{"SET_VRING_NUM zero", func(fe *frontEnd) { fe.mustNack(reqSetVringNum, state(0, 0)) }},
		{"SET_VRING_NUM above the device maximum", func(fe *frontEnd) { fe.mustNack(reqSetVringNum, state(0, 512)) }},
		{"SET_VRING_NUM with an fd", func(fe *frontEnd) { fe.mustNack(reqSetVringNum, state(0, 16), pipe[0]) }},
		{"SET_VRING_BASE beyond 16 bits", func(fe *frontEnd) { fe.mustNack(reqSetVringBase, state(0, 0x10000)) }},
		{"SET_VRING_ENABLE 2", func(fe *frontEnd) { fe.mustNack(reqSetVringEnable, state(0, 2)) }},
		{"SET_FEATURES not offered", func(fe *frontEnd) { fe.mustNack(reqSetFeatures, u64Bytes(1<<virtio.FeatureRingPacked)) }},
		{"SET_PROTOCOL_FEATURES not offered", func(fe *frontEnd) { fe.mustNack(reqSetProtocolFeatures, u64Bytes(1<<ProtocolStatus)) }},
		{"ADD_MEM_REG without fd", func(fe *frontEnd) { fe.mustNack(reqAddMemReg, lowRegion()) }},
		{"ADD_MEM_REG two fds", func(fe *frontEnd) { fe.mustNack(reqAddMemReg, lowRegion(), fe.memfd, fe.memfd) }},
		{"ADD_MEM_REG short payload", func(fe *frontEnd) { fe.mustNack(reqAddMemReg, lowRegion()[:32], fe.memfd) }},
		{"ADD_MEM_REG empty", func(fe *frontEnd) { fe.mustNack(reqAddMemReg, regionPayload(0, 0, userBase, 0), fe.memfd) }},
		{"ADD_MEM_REG unaligned", func(fe *frontEnd) { fe.mustNack(reqAddMemReg, regionPayload(0x800, 0x1000, userBase, 0), fe.memfd) }},
		{"ADD_MEM_REG wrapping", func(fe *frontEnd) {
			fe.mustNack(reqAddMemReg, regionPayload(0xffff_ffff_ffff_f000, 0x2000, userBase, 0), fe.memfd)
		}},
		{"ADD_MEM_REG huge offset", func(fe *frontEnd) {
			fe.mustNack(reqAddMemReg, regionPayload(0, 0x1000, userBase, 0xffff_ffff_ffff_0000), fe.memfd)
		}},
		{"ADD_MEM_REG beyond the file", func(fe *frontEnd) { fe.mustNack(reqAddMemReg, regionPayload(0, 0x20000, userBase, 0), small) }},
		{"ADD_MEM_REG offset beyond the file", func(fe *frontEnd) {
			fe.mustNack(reqAddMemReg, regionPayload(0, 0x1000, userBase, 0x10000), small)
		}},
		{"ADD_MEM_REG a pipe", func(fe *frontEnd) { fe.mustNack(reqAddMemReg, lowRegion(), pipe[0]) }},
		{"ADD_MEM_REG overlapping guest range", func(fe *frontEnd) {
			fe.mustAck(reqAddMemReg, lowRegion(), fe.memfd)
			fe.mustNack(reqAddMemReg, regionPayload(0xE0000, 0x20000, userBase+0x800000, 0), fe.memfd)
		}},
		{"ADD_MEM_REG overlapping user range", func(fe *frontEnd) {
			fe.mustAck(reqAddMemReg, lowRegion(), fe.memfd)
			fe.mustNack(reqAddMemReg, regionPayload(0x800000, 0x1000, userBase+0x1000, 0), fe.memfd)
		}},
		{"REM_MEM_REG unknown region", func(fe *frontEnd) { fe.mustNack(reqRemMemReg, highRegion()) }},
		{"SET_MEM_TABLE count mismatch", func(fe *frontEnd) {
			p := make([]byte, sizeMemTableHd+sizeMemRegion)
			ne.PutUint32(p, 2)
			copy(p[sizeMemTableHd:], lowRegion()[8:])
			fe.mustNack(reqSetMemTable, p, fe.memfd)
		}},
		{"SET_MEM_TABLE nine regions", func(fe *frontEnd) {
			p := make([]byte, sizeMemTableHd)
			ne.PutUint32(p, 9)
			fe.mustNack(reqSetMemTable, p)
		}},
		{"SET_VRING_ADDR untranslatable", func(fe *frontEnd) {
			fe.setupMemory()
			d := fe.drivers[0]
			fe.mustNack(reqSetVringAddr, addrPayload(0, user(d.Desc), 0x1000, user(d.Avail)))
		}},
		{"SET_VRING_ADDR without memory", func(fe *frontEnd) {
			d := fe.drivers[0]
			fe.mustNack(reqSetVringAddr, addrPayload(0, user(d.Desc), user(d.Used), user(d.Avail)))
		}},
		{"SET_VRING_ADDR misaligned ring fails at activation", func(fe *frontEnd) {
			fe.setupMemory()
			d := fe.drivers[0]
			fe.send(reqSetVringAddr, 0, addrPayload(0, user(d.Desc)+2, user(d.Used), user(d.Avail)))
			fe.setVringFd(reqSetVringKick, 0, &fe.kick[0])
			fe.mustNack(reqSetVringEnable, state(0, 1))
		}},
		{"SET_VRING_ADDR ring beyond memory fails at activation", func(fe *frontEnd) {
			fe.setupMemory()
			d := fe.drivers[0]
			fe.send(reqSetVringNum, 0, state(0, 256))
			fe.send(reqSetVringAddr, 0, addrPayload(0, user(d.Desc), user(ramSize-8), user(d.Avail)))
			fe.setVringFd(reqSetVringKick, 0, &fe.kick[0])
			fe.mustNack(reqSetVringEnable, state(0, 1))
		}},
		{"SET_VRING_KICK polling mode", func(fe *frontEnd) { fe.mustNack(reqSetVringKick, u64Bytes(vringFdNone)) }},
		{"SET_VRING_KICK no-fd flag with an fd", func(fe *frontEnd) {
			fe.mustNack(reqSetVringKick, u64Bytes(vringFdNone|1), pipe[0])
		}},
		{"SET_VRING_KICK without an fd", func(fe *frontEnd) { fe.mustNack(reqSetVringKick, u64Bytes(0)) }},
		{"SET_VRING_KICK /dev/zero", func(fe *frontEnd) { fe.mustNack(reqSetVringKick, u64Bytes(0), devZero(fe.t)) }},
		{"SET_VRING_KICK a pipe", func(fe *frontEnd) { fe.mustNack(reqSetVringKick, u64Bytes(1), pipe[0]) }},
		{"SET_VRING_KICK a memfd", func(fe *frontEnd) { fe.mustNack(reqSetVringKick, u64Bytes(0), small) }},
		{"SET_VRING_KICK a semaphore eventfd", func(fe *frontEnd) {
			fd, err := unix.Eventfd(0, unix.EFD_SEMAPHORE|unix.EFD_NONBLOCK|unix.EFD_CLOEXEC)
			must(fe.t, err)
			defer unix.Close(fd)
			fe.mustNack(reqSetVringKick, u64Bytes(0), fd)
		}},
		{"SET_VRING_CALL bad index", func(fe *frontEnd) { fe.mustNack(reqSetVringCall, u64Bytes(7), pipe[1]) }},
		{"SET_VRING_CALL short payload", func(fe *frontEnd) { fe.mustNack(reqSetVringCall, []byte{1}, pipe[1]) }},
		{"SET_BACKEND_REQ_FD without fd", func(fe *frontEnd) { fe.mustNack(reqSetBackendReqFd, nil) }},
		{"SET_CONFIG size mismatch", func(fe *frontEnd) {
			fe.mustNack(reqSetConfig, configMsg{size: 8, data: make([]byte, 4)}.bytes())
		}},
		{"unknown request", func(fe *frontEnd) { fe.mustNack(99, []byte("whatever"), pipe[0]) }},
		{"unsupported request", func(fe *frontEnd) { fe.mustNack(reqSetLogFd, nil, pipe[0]) }},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			b, _ := echoBackend(t, Options{Log: testLogger(t)})
			fe, done := pairFrontEnd(t, b)
			tc.send(fe)
			if n := fe.getU64(reqGetQueueNum); n != 2 {
				t.Fatalf("GET_QUEUE_NUM after the failure: %d", n)
			}
			fe.hangUp()
			if err := <-done; err != nil {
				t.Fatalf("ServeConn: %v", err)
			}
		})
	}
}

// devZero opens /dev/zero for the test: always readable, never an eventfd.
func devZero(t testing.TB) int {
	fd, err := unix.Open("/dev/zero", unix.O_RDONLY|unix.O_CLOEXEC, 0)
	must(t, err)
	t.Cleanup(func() { unix.Close(fd) })
	return fd
}

// TestKickFdMadeNonBlocking: a kick eventfd the front-end created blocking
// (and may read itself) is made non-blocking when it arrives, so the
// poller's read after poll can never block on a counter the front-end
// emptied in between; the ring still works.
func TestKickFdMadeNonBlocking(t *testing.T) {
	b, _ := echoBackend(t, Options{Log: testLogger(t)})
	fe, _ := pairFrontEnd(t, b)
	fe.handshake()
	fe.start()
	blocking, err := unix.Eventfd(0, unix.EFD_CLOEXEC)
	must(t, err)
	fe.mustAck(reqSetVringKick, u64Bytes(1), blocking)
	unix.Close(fe.kick[1])
	fe.kick[1] = blocking
	fl, err := unix.FcntlInt(uintptr(blocking), unix.F_GETFL, 0)
	must(t, err)
	if fl&unix.O_NONBLOCK == 0 {
		t.Fatal("the kick eventfd is still blocking: a read the front-end races with can hang the poller")
	}
	fe.roundTrip(1, "after a blocking kick fd")
}

// TestMalformedClosed: errors that cannot be answered close the
// connection, and ServeConn reports why.
func TestMalformedClosed(t *testing.T) {
	raw := func(hdr ...uint32) func(fe *frontEnd) {
		return func(fe *frontEnd) {
			b := make([]byte, 4*len(hdr))
			for i, v := range hdr {
				ne.PutUint32(b[4*i:], v)
			}
			_, err := unix.Write(fe.fd, b)
			must(fe.t, err)
		}
	}
	cases := []struct {
		name string
		send func(fe *frontEnd)
	}{
		{"GET_VRING_BASE bad index", func(fe *frontEnd) { fe.send(reqGetVringBase, 0, state(5, 0)) }},
		{"GET_VRING_BASE short payload", func(fe *frontEnd) { fe.send(reqGetVringBase, 0, []byte{0}) }},
		{"SET_VRING_NUM bad index without need_reply", func(fe *frontEnd) { fe.send(reqSetVringNum, 0, state(9, 16)) }},
		{"GET_CONFIG too large", func(fe *frontEnd) { fe.send(reqGetConfig, 0, configMsg{size: 300, data: make([]byte, 300)}.bytes()) }},
		{"GET_FEATURES with an fd", func(fe *frontEnd) {
			fd := eventfd(fe.t)
			defer unix.Close(fd)
			fe.send(reqGetFeatures, 0, nil, fd)
		}},
		{"unsupported request that wants a reply", func(fe *frontEnd) { fe.send(reqGetInflightFd, 0, make([]byte, 16)) }},
		{"payload too large", raw(reqSetVringNum, flagVersion, maxPayload+1)},
		{"version 2", raw(reqGetFeatures, 2, 0)},
		{"reply flag", raw(reqGetFeatures, flagVersion|flagReply, 0)},
		{"truncated payload", raw(reqSetVringNum, flagVersion, 8, 0)},
		{"truncated header", raw(reqSetVringNum)},
		{"too many fds", func(fe *frontEnd) {
			var fds []int
			for range maxFds + 1 {
				fds = append(fds, eventfd(fe.t))
			}
			fe.send(reqSetVringCall, 0, u64Bytes(0), fds...)
			closeFds(fds)
		}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			b, _ := echoBackend(t, Options{Log: testLogger(t)})
			fe, done := pairFrontEnd(t, b)
			fe.handshake()
			tc.send(fe)
			unix.Shutdown(fe.fd, unix.SHUT_WR)
			err := <-done
			if err == nil {
				t.Fatal("ServeConn returned nil")
			}
			t.Logf("ServeConn: %v", err)
			if tc.name != "truncated payload" && tc.name != "truncated header" && !errors.Is(err, errProtocol) {
				t.Errorf("error %v is not a protocol error", err)
			}
			fe.expectClosed()
		})
	}
}

// TestNoCallFd: a ring whose call fd is "none" drops notifications; an
// unknown request without need_reply is ignored.
func TestNoCallFd(t *testing.T) {
	b, _ := echoBackend(t, Options{Log: testLogger(t)})
	fe, _ := pairFrontEnd(t, b)
	fe.send(99, 0, nil)
	fe.handshake()
	fe.start()
	fe.send(reqSetVringCall, 0, u64Bytes(vringFdNone|1))
	fe.getU64(reqGetQueueNum) // a barrier: kicks do not wait for messages
	d := fe.drivers[1]
	_, err := d.AddChain(virtiotest.R([]byte("x")), virtiotest.W(8))
	must(t, err)
	d.Publish()
	_, err = unix.Write(fe.kick[1], u64Bytes(1))
	must(t, err)
	waitFor(t, "the used ring", func() bool { return d.UsedIdx() == 1 })
	var b8 [8]byte
	if _, err := unix.Read(fe.call[1], b8[:]); err != unix.EAGAIN {
		t.Fatalf("the old call fd was signalled (%v)", err)
	}
}
