package vhostuser

import (
	"bytes"
	"errors"
	"log/slog"
	"net"
	"os"
	"sync"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/krunbench/krunbench/vmm/virtio"
	"github.com/krunbench/krunbench/vmm/virtio/virtiotest"
)

// The fake front-end below plays QEMU 7.2 over a real unix socket with a
// real memfd for guest RAM and real eventfds; only the guest driver is the
// virtiotest mock, laying its rings out in the shared memfd.

// Guest RAM layout, as QEMU lays out a microvm guest: two regions of one
// memfd, the first below the 0xF0000 hole, the second from 1 MiB at mmap
// offset 1 MiB. The front-end's "user addresses" are made up.
const (
	ramSize  = 4 << 20
	userBase = 0x7f3a_0000_0000
	lowSize  = 0xF0000
	highGPA  = 0x100000
	ringSize = 16
)

// ringBase returns the GPA of queue i's rings and buffers (1 MiB each).
func ringBase(i int) uint64 { return 0x200000 + uint64(i)*0x100000 }

// echoDevice copies each chain's readable bytes to its writable buffers,
// on a goroutine per chain (after delay), so that Reset has requests in
// flight to wait for.
type echoDevice struct {
	delay time.Duration

	mu          sync.Mutex
	mem         virtio.GuestMemory
	queues      []*virtio.Queue
	notifiers   []virtio.Notifier
	acked       uint64
	activations int
	resets      int
	kicks       int
	popped      int
	inflight    sync.WaitGroup
}

var _ virtio.Device = (*echoDevice)(nil)

func (d *echoDevice) Type() uint32 { return virtio.DeviceIDFS }
func (d *echoDevice) Features() uint64 {
	return 1<<virtio.FeatureVersion1 | 1<<virtio.FeatureIndirectDesc | 1<<virtio.FeatureRingPacked
}
func (d *echoDevice) AckFeatures(f uint64) { d.mu.Lock(); d.acked = f; d.mu.Unlock() }
func (d *echoDevice) ReadConfig(off uint64, data []byte) {
	clear(data)
	if cfg := []byte("echo-cfg"); off < uint64(len(cfg)) {
		copy(data, cfg[off:])
	}
}
func (d *echoDevice) WriteConfig(uint64, []byte) {}
func (d *echoDevice) NumQueues() int             { return 2 }
func (d *echoDevice) MaxQueueSize() uint16       { return 256 }

func (d *echoDevice) Activate(mem virtio.GuestMemory, queues []*virtio.Queue, notifiers []virtio.Notifier) error {
	for _, q := range queues {
		if q == nil {
			continue
		}
		if err := q.Validate(mem); err != nil {
			return err
		}
		if !q.Ready() {
			return errors.New("queue not ready")
		}
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	d.mem, d.queues, d.notifiers = mem, queues, notifiers
	d.activations++
	return nil
}

func (d *echoDevice) QueueNotify(i int) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.kicks++
	if d.queues == nil || d.queues[i] == nil {
		return
	}
	mem, q, n := d.mem, d.queues[i], d.notifiers[i]
	for {
		c, err := q.Pop(mem)
		if c == nil || err != nil {
			return
		}
		d.popped++
		d.inflight.Add(1)
		go func() {
			defer d.inflight.Done()
			time.Sleep(d.delay)
			var buf bytes.Buffer
			w := c.Writer()
			// Guarded as real devices are: the fuzzer shrinks guest RAM.
			_ = virtio.GuardFaults(func() {
				_, _ = buf.ReadFrom(c.Reader())
				_, _ = w.Write(buf.Bytes())
			})
			if err := q.AddUsed(mem, c.Head, uint32(w.Written())); err != nil {
				return
			}
			if need, _ := q.NeedsNotification(mem); need {
				_ = n.Notify()
			}
		}()
	}
}

func (d *echoDevice) Reset() {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.inflight.Wait()
	d.mem, d.queues, d.notifiers = nil, nil, nil
	d.resets++
}

func (d *echoDevice) poppedCount() int {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.popped
}

func (d *echoDevice) counts() (activations, resets int) {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.activations, d.resets
}

// frontEnd is the fake QEMU side of one connection.
type frontEnd struct {
	t        testing.TB
	fd       int // the socket, blocking, with a receive timeout
	memfd    int
	ram      []byte
	drivers  [2]*virtiotest.Driver
	kick     [2]int
	call     [2]int
	err      [2]int
	extraFds []int
}

// dialFrontEnd connects to a listening backend.
func dialFrontEnd(t *testing.T, path string) *frontEnd {
	fd, err := unix.Socket(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	must(t, err)
	must(t, unix.Connect(fd, &unix.SockaddrUnix{Name: path}))
	return newFrontEnd(t, fd)
}

// echoBackend is a backend over an echo device, closed when the test
// ends.
func echoBackend(t *testing.T, opts Options) (*Backend, *echoDevice) {
	dev := &echoDevice{}
	b := NewBackend(dev, opts)
	t.Cleanup(func() { b.Close() })
	return b, dev
}

// pairFrontEnd serves one end of a socketpair with b.ServeConn; the
// returned channel yields ServeConn's result.
func pairFrontEnd(t testing.TB, b *Backend) (*frontEnd, <-chan error) {
	fds, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	must(t, err)
	f := os.NewFile(uintptr(fds[1]), "backend")
	c, err := net.FileConn(f)
	f.Close()
	must(t, err)
	done := make(chan error, 1)
	go func() { done <- b.ServeConn(c.(*net.UnixConn)) }()
	return newFrontEnd(t, fds[0]), done
}

func newFrontEnd(t testing.TB, fd int) *frontEnd {
	fe := &frontEnd{t: t, fd: fd, memfd: -1}
	must(t, unix.SetsockoptTimeval(fd, unix.SOL_SOCKET, unix.SO_RCVTIMEO, &unix.Timeval{Sec: 10}))
	memfd, err := unix.MemfdCreate("guest-ram", unix.MFD_CLOEXEC)
	must(t, err)
	must(t, unix.Ftruncate(memfd, ramSize))
	fe.memfd = memfd
	fe.ram, err = unix.Mmap(memfd, 0, ramSize, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_SHARED)
	must(t, err)
	for i := range fe.drivers {
		base := ringBase(i)
		d := virtiotest.New(virtiotest.Config{QueueSize: ringSize, MemSize: 1 << 20, Base: base})
		// Point the mock driver at the shared memfd instead of its own RAM.
		d.RAM = fe.ram[base : base+1<<20 : base+1<<20]
		d.Mem, err = virtio.NewMemory(virtio.Region{GPA: base, Data: d.RAM})
		must(t, err)
		fe.drivers[i] = d
		fe.kick[i], fe.call[i], fe.err[i] = -1, -1, -1
	}
	t.Cleanup(fe.close)
	return fe
}

func (fe *frontEnd) close() {
	for _, fd := range append([]int{fe.fd, fe.memfd}, append(append(fe.kick[:], fe.call[:]...), append(fe.err[:], fe.extraFds...)...)...) {
		if fd >= 0 {
			unix.Close(fd)
		}
	}
	fe.fd, fe.memfd = -1, -1
	fe.kick, fe.call, fe.err, fe.extraFds = [2]int{-1, -1}, [2]int{-1, -1}, [2]int{-1, -1}, nil
	if fe.ram != nil {
		_ = unix.Munmap(fe.ram)
		fe.ram = nil
	}
}

// hangUp closes the socket only.
func (fe *frontEnd) hangUp() {
	unix.Close(fe.fd)
	fe.fd = -1
}

func must(t testing.TB, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// send writes one message, fds attached to its first byte.
func (fe *frontEnd) send(req, flags uint32, payload []byte, fds ...int) {
	fe.t.Helper()
	b := make([]byte, headerSize+len(payload))
	ne.PutUint32(b, req)
	ne.PutUint32(b[4:], flagVersion|flags)
	ne.PutUint32(b[8:], uint32(len(payload)))
	copy(b[headerSize:], payload)
	var oob []byte
	if len(fds) > 0 {
		oob = unix.UnixRights(fds...)
	}
	must(fe.t, unix.Sendmsg(fe.fd, b, oob, nil, 0))
}

// recv reads one reply to req.
func (fe *frontEnd) recv(req uint32) []byte {
	fe.t.Helper()
	hdr, err := fe.readFull(headerSize)
	must(fe.t, err)
	if r, fl := ne.Uint32(hdr), ne.Uint32(hdr[4:]); r != req || fl != flagVersion|flagReply {
		fe.t.Fatalf("reply header: request %s flags %#x, want %s flags %#x", requestName(r), fl, requestName(req), flagVersion|flagReply)
	}
	p, err := fe.readFull(int(ne.Uint32(hdr[8:])))
	must(fe.t, err)
	return p
}

func (fe *frontEnd) readFull(n int) ([]byte, error) {
	b := make([]byte, n)
	for got := 0; got < n; {
		k, err := unix.Read(fe.fd, b[got:])
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			return nil, err
		}
		if k == 0 {
			return nil, errors.New("connection closed")
		}
		got += k
	}
	return b, nil
}

// expectClosed checks that the backend closed the connection.
func (fe *frontEnd) expectClosed() {
	fe.t.Helper()
	var b [1]byte
	n, err := unix.Read(fe.fd, b[:])
	if n != 0 || err != nil {
		fe.t.Fatalf("read after a fatal error: %d bytes, err %v; want EOF", n, err)
	}
}

// get sends a request with a reply and returns the reply.
func (fe *frontEnd) get(req uint32, payload []byte) []byte {
	fe.t.Helper()
	fe.send(req, 0, payload)
	return fe.recv(req)
}

func (fe *frontEnd) getU64(req uint32) uint64 {
	fe.t.Helper()
	p := fe.get(req, nil)
	if len(p) != 8 {
		fe.t.Fatalf("%s: reply of %d bytes", requestName(req), len(p))
	}
	return ne.Uint64(p)
}

// acked sends a message with need_reply and returns the ack status.
func (fe *frontEnd) acked(req uint32, payload []byte, fds ...int) uint64 {
	fe.t.Helper()
	fe.send(req, flagNeedReply, payload, fds...)
	p := fe.recv(req)
	if len(p) != 8 {
		fe.t.Fatalf("%s: ack of %d bytes", requestName(req), len(p))
	}
	return ne.Uint64(p)
}

// mustAck expects a successful ack.
func (fe *frontEnd) mustAck(req uint32, payload []byte, fds ...int) {
	fe.t.Helper()
	if st := fe.acked(req, payload, fds...); st != 0 {
		fe.t.Fatalf("%s: ack status %d", requestName(req), st)
	}
}

// mustNack expects a failure ack.
func (fe *frontEnd) mustNack(req uint32, payload []byte, fds ...int) {
	fe.t.Helper()
	if st := fe.acked(req, payload, fds...); st == 0 {
		fe.t.Fatalf("%s: succeeded, want a failure ack", requestName(req))
	}
}

func state(index, num uint32) []byte { return vringState{index: index, num: num}.bytes() }

func regionPayload(gpa, size, user, off uint64) []byte {
	b := make([]byte, sizeMemRegMsg)
	ne.PutUint64(b[8:], gpa)
	ne.PutUint64(b[16:], size)
	ne.PutUint64(b[24:], user)
	ne.PutUint64(b[32:], off)
	return b
}

// lowRegion and highRegion are the two ADD_MEM_REG payloads for the memfd.
func lowRegion() []byte  { return regionPayload(0, lowSize, userBase, 0) }
func highRegion() []byte { return regionPayload(highGPA, ramSize-highGPA, userBase+highGPA, highGPA) }

func addrPayload(index uint32, desc, used, avail uint64) []byte {
	b := make([]byte, sizeVringAddr)
	ne.PutUint32(b, index)
	ne.PutUint64(b[8:], desc)
	ne.PutUint64(b[16:], used)
	ne.PutUint64(b[24:], avail)
	return b
}

// user converts a GPA of the high region to the front-end's user address.
func user(gpa uint64) uint64 { return userBase + gpa }

func eventfd(t testing.TB) int {
	fd, err := unix.Eventfd(0, unix.EFD_NONBLOCK|unix.EFD_CLOEXEC)
	must(t, err)
	return fd
}

// setVringFd sends SET_VRING_KICK/CALL/ERR with a new eventfd, keeping it
// in *slot (the previous one is closed).
func (fe *frontEnd) setVringFd(req uint32, i int, slot *int) {
	fe.t.Helper()
	fd := eventfd(fe.t)
	fe.send(req, 0, u64Bytes(uint64(i)), fd)
	if *slot >= 0 {
		unix.Close(*slot)
	}
	*slot = fd
}

// handshake is what QEMU 7.2 sends when vhost-user-fs is realized.
func (fe *frontEnd) handshake() {
	t := fe.t
	t.Helper()
	f := fe.getU64(reqGetFeatures)
	if f&(1<<FeatureProtocolFeatures) == 0 || f&(1<<virtio.FeatureVersion1) == 0 || f&(1<<virtio.FeatureRingPacked) != 0 {
		t.Fatalf("GET_FEATURES %#x: want PROTOCOL_FEATURES and VERSION_1, no RING_PACKED", f)
	}
	pf := fe.getU64(reqGetProtocolFeatures)
	want := uint64(1<<ProtocolMQ | 1<<ProtocolReplyAck | 1<<ProtocolConfigureMemSlots)
	if pf&want != want {
		t.Fatalf("GET_PROTOCOL_FEATURES %#x lacks %#x", pf, want)
	}
	fe.send(reqSetProtocolFeatures, 0, u64Bytes(want))
	if n := fe.getU64(reqGetQueueNum); n != 2 {
		t.Fatalf("GET_QUEUE_NUM = %d", n)
	}
	if n := fe.getU64(reqGetMaxMemSlots); n != DefaultMaxMemSlots {
		t.Fatalf("GET_MAX_MEM_SLOTS = %d", n)
	}
	sp, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	must(t, err)
	fe.mustAck(reqSetBackendReqFd, nil, sp[1])
	unix.Close(sp[1])
	fe.extraFds = append(fe.extraFds, sp[0])
	fe.send(reqSetOwner, 0, nil)
	fe.getU64(reqGetFeatures)
	for i := range 2 {
		fe.setVringFd(reqSetVringCall, i, &fe.call[i])
		fe.setVringFd(reqSetVringErr, i, &fe.err[i])
	}
}

// start is what QEMU 7.2 sends when the guest driver sets DRIVER_OK.
func (fe *frontEnd) start() {
	t := fe.t
	t.Helper()
	for i := range 2 {
		fe.setVringFd(reqSetVringCall, i, &fe.call[i])
	}
	fe.send(reqSetFeatures, 0, u64Bytes(1<<virtio.FeatureVersion1|1<<FeatureProtocolFeatures))
	fe.mustAck(reqAddMemReg, lowRegion(), fe.memfd)
	fe.mustAck(reqAddMemReg, highRegion(), fe.memfd)
	for i, d := range fe.drivers {
		fe.send(reqSetVringNum, 0, state(uint32(i), ringSize))
		fe.send(reqSetVringBase, 0, state(uint32(i), uint32(d.AvailIdx())))
		fe.send(reqSetVringAddr, 0, addrPayload(uint32(i), user(d.Desc), user(d.Used), user(d.Avail)))
		fe.setVringFd(reqSetVringKick, i, &fe.kick[i])
	}
	for i := range 2 {
		fe.send(reqSetVringEnable, 0, state(uint32(i), 1))
	}
	for i := range 2 {
		fe.setVringFd(reqSetVringCall, i, &fe.call[i])
	}
	// A barrier (not part of QEMU's sequence): kicks do not wait for
	// messages, so a test kicking now could otherwise be notified on a
	// call fd the backend has not replaced yet.
	fe.getU64(reqGetQueueNum)
}

// stop is what QEMU 7.2 sends at guest power-off; it returns the bases.
func (fe *frontEnd) stop() [2]uint32 {
	fe.t.Helper()
	for i := range 2 {
		fe.send(reqSetVringEnable, 0, state(uint32(i), 0))
	}
	var bases [2]uint32
	for i := range 2 {
		p := fe.get(reqGetVringBase, state(uint32(i), 0))
		st := vringState{index: ne.Uint32(p), num: ne.Uint32(p[4:])}
		if len(p) != sizeVringState || st.index != uint32(i) {
			fe.t.Fatalf("GET_VRING_BASE %d: reply %x", i, p)
		}
		bases[i] = st.num
	}
	for i := range 2 {
		fe.setVringFd(reqSetVringCall, i, &fe.call[i])
	}
	return bases
}

// roundTrip sends data on queue i, kicks, waits for the call eventfd and
// checks the echo.
func (fe *frontEnd) roundTrip(i int, data string) {
	t := fe.t
	t.Helper()
	d := fe.drivers[i]
	p, err := d.AddChain(virtiotest.R([]byte(data)), virtiotest.W(64))
	must(t, err)
	d.Publish()
	one := u64Bytes(1)
	_, err = unix.Write(fe.kick[i], one)
	must(t, err)
	fe.waitCall(i)
	used := d.TakeUsed()
	if len(used) != 1 || used[0].ID != uint32(p.Head) || used[0].Len != uint32(len(data)) {
		t.Fatalf("queue %d: used %+v, want head %d len %d", i, used, p.Head, len(data))
	}
	if got := d.Read(p.Addrs[1], uint64(len(data))); string(got) != data {
		t.Fatalf("queue %d: echoed %q, want %q", i, got, data)
	}
}

// waitCall waits for the call eventfd of queue i and clears it.
func (fe *frontEnd) waitCall(i int) {
	fe.t.Helper()
	pfd := []unix.PollFd{{Fd: int32(fe.call[i]), Events: unix.POLLIN}}
	n, err := unix.Poll(pfd, 10000)
	for err == unix.EINTR {
		n, err = unix.Poll(pfd, 10000)
	}
	if err != nil || n != 1 {
		fe.t.Fatalf("queue %d: no used buffer notification (poll %d, %v)", i, n, err)
	}
	var b [8]byte
	_, err = unix.Read(fe.call[i], b[:])
	must(fe.t, err)
}

// testLogger logs to the test at debug level, so failures show the
// messages exchanged.
func testLogger(t testing.TB) *slog.Logger {
	return slog.New(slog.NewTextHandler(testWriter{t}, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

type testWriter struct{ t testing.TB }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Logf("%s", bytes.TrimRight(p, "\n"))
	return len(p), nil
}
