package main

import (
	"encoding/binary"
	"errors"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/krunbench/krunbench/virtiofs/fuse"
	"github.com/krunbench/krunbench/virtiofs/fuse/fusetest"
	"github.com/krunbench/krunbench/vmm/virtio"
	"github.com/krunbench/krunbench/vmm/virtio/virtiotest"
)

// TestServeSocketSurvivesHostileFrontEnds runs `krunbench serve --socket`
// as its own process and attacks it with vhost-user front-ends over its
// real socket, with real memfds and eventfds (the guest driver is the
// virtiotest mock inside the shared memfd; no guest kernel is needed for
// these attacks): one shrinks guest RAM to 0 and kicks, one makes
// notifications block (a blocking call eventfd at its maximum) and hangs
// up. A well-behaved front-end is served after each, and SIGTERM ends the
// process while a hostile one is connected.
func TestServeSocketSurvivesHostileFrontEnds(t *testing.T) {
	sock := filepath.Join(t.TempDir(), "vfs.sock")
	serve := startProcess(t, exec.Command(krunbenchBin(t), "serve", "--shared-dir", t.TempDir(), "--socket", sock))
	out := serve.out
	serve.waitPath(t, sock, 30*time.Second)
	served := func(what string) {
		t.Helper()
		fe := dialVhostUser(t, sock, out, false)
		fe.initRoundTrip(what)
		fe.close()
	}

	// Guest RAM shrinks under the mapping: the queue breaks, the process lives.
	fe := dialVhostUser(t, sock, out, false)
	fe.initRoundTrip("before the shrink")
	fe.publishInit()
	vuMust(t, unix.Ftruncate(fe.memfd, 0))
	fe.kickRing()
	waitOutput(t, out, "guest memory fault")
	fe.barrier("after the shrink")
	fe.close()
	served("after a front-end shrank guest RAM")

	// Notifications that would block: the request is answered, the
	// hang-up resets the device, the next front-end is served.
	fe = dialVhostUser(t, sock, out, true)
	fe.publishInit()
	fe.kickRing()
	fe.waitUsed("with a saturated call fd")
	fe.close()
	served("after a front-end with a saturated call fd")

	// SIGTERM while such a front-end is connected ends the process.
	fe = dialVhostUser(t, sock, out, true)
	defer fe.close()
	fe.publishInit()
	fe.kickRing()
	fe.waitUsed("with a saturated call fd, before SIGTERM")
	vuMust(t, serve.cmd.Process.Signal(syscall.SIGTERM))
	if err := serve.waitExit(t, 60*time.Second, "serve after SIGTERM"); err != nil {
		t.Fatalf("serve after SIGTERM: %v\n%s", err, out.String())
	}
}

func vuMust(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// waitOutput waits (bounded) for text in the server's output.
func waitOutput(t *testing.T, out *syncBuffer, text string) {
	t.Helper()
	for deadline := time.Now().Add(30 * time.Second); !strings.Contains(out.String(), text); time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("no %q from serve within 30 s:\n%s", text, out.String())
		}
	}
}

// vhost-user wire values (see virtiofs/vhostuser/protocol.go).
const (
	vuGetFeatures  = 1
	vuSetFeatures  = 2
	vuSetOwner     = 3
	vuSetMemTable  = 5
	vuSetVringNum  = 8
	vuSetVringAddr = 9
	vuSetVringBase = 10
	vuSetVringKick = 12
	vuSetVringCall = 13
	vuVersion      = 1
	vuReply        = 4
	vuHeaderSize   = 12
	vuRequestRing  = 1 // virtio-fs: ring 0 is hiprio, 1 the first request queue
	vuRAMBase      = 0x100000
	vuRAMSize      = 1 << 20
	vuUserBase     = 0x7f00_0000_0000
)

var vuOrder = binary.NativeEndian

// vuFrontEnd is a minimal vhost-user front-end: one memfd region of guest
// RAM, the request ring only (without PROTOCOL_FEATURES it starts
// enabled), real eventfds. QEMU's full sequence is covered by the
// vhostuser package's fake QEMU; this one reaches the real process.
type vuFrontEnd struct {
	t          *testing.T
	out        *syncBuffer
	fd, memfd  int
	kick, call int
	ram        []byte
	drv        *virtiotest.Driver
	unique     uint64
	lastHead   uint16
}

func dialVhostUser(t *testing.T, sock string, out *syncBuffer, saturatedCall bool) *vuFrontEnd {
	t.Helper()
	fe := &vuFrontEnd{t: t, out: out, fd: -1, memfd: -1, kick: -1, call: -1}
	var err error
	fe.fd, err = unix.Socket(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	vuMust(t, err)
	vuMust(t, unix.SetsockoptTimeval(fe.fd, unix.SOL_SOCKET, unix.SO_RCVTIMEO, &unix.Timeval{Sec: 30}))
	// The socket file exists from bind on, a moment before listen.
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(10 * time.Millisecond) {
		err = unix.Connect(fe.fd, &unix.SockaddrUnix{Name: sock})
		if err == nil {
			break
		}
		if !errors.Is(err, unix.ECONNREFUSED) || time.Now().After(deadline) {
			t.Fatalf("connecting to serve: %v\nserver:\n%s", err, out.String())
		}
	}
	fe.memfd, err = unix.MemfdCreate("guest-ram", unix.MFD_CLOEXEC)
	vuMust(t, err)
	vuMust(t, unix.Ftruncate(fe.memfd, vuRAMSize))
	fe.ram, err = unix.Mmap(fe.memfd, 0, vuRAMSize, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_SHARED)
	vuMust(t, err)
	fe.drv = virtiotest.New(virtiotest.Config{QueueSize: 64, MemSize: vuRAMSize, Base: vuRAMBase})
	fe.drv.RAM = fe.ram
	fe.drv.Mem, err = virtio.NewMemory(virtio.Region{GPA: vuRAMBase, Data: fe.ram})
	vuMust(t, err)
	fe.kick, err = unix.Eventfd(0, unix.EFD_NONBLOCK|unix.EFD_CLOEXEC)
	vuMust(t, err)
	if saturatedCall {
		fe.call, err = unix.Eventfd(0, unix.EFD_CLOEXEC) // blocking
		vuMust(t, err)
		_, err = unix.Write(fe.call, u64(0xffff_ffff_ffff_fffe))
	} else {
		fe.call, err = unix.Eventfd(0, unix.EFD_NONBLOCK|unix.EFD_CLOEXEC)
	}
	vuMust(t, err)

	fe.send(vuSetOwner, nil)
	fe.send(vuSetFeatures, u64(1<<virtio.FeatureVersion1))
	table := make([]byte, 8+32)
	vuOrder.PutUint32(table, 1)
	vuOrder.PutUint64(table[8:], vuRAMBase)
	vuOrder.PutUint64(table[16:], vuRAMSize)
	vuOrder.PutUint64(table[24:], vuUserBase)
	fe.send(vuSetMemTable, table, fe.memfd)
	fe.send(vuSetVringNum, vuState(vuRequestRing, 64))
	fe.send(vuSetVringBase, vuState(vuRequestRing, 0))
	addr := make([]byte, 40)
	vuOrder.PutUint32(addr, vuRequestRing)
	user := func(gpa uint64) uint64 { return vuUserBase + gpa - vuRAMBase }
	vuOrder.PutUint64(addr[8:], user(fe.drv.Desc))
	vuOrder.PutUint64(addr[16:], user(fe.drv.Used))
	vuOrder.PutUint64(addr[24:], user(fe.drv.Avail))
	fe.send(vuSetVringAddr, addr)
	fe.send(vuSetVringCall, u64(vuRequestRing), fe.call)
	fe.send(vuSetVringKick, u64(vuRequestRing), fe.kick)
	fe.barrier("setting up the ring")
	return fe
}

func u64(v uint64) []byte { return vuOrder.AppendUint64(nil, v) }

func vuState(index, num uint32) []byte {
	return vuOrder.AppendUint32(vuOrder.AppendUint32(nil, index), num)
}

func (fe *vuFrontEnd) send(req uint32, payload []byte, fds ...int) {
	fe.t.Helper()
	msg := vuOrder.AppendUint32(vuOrder.AppendUint32(vuOrder.AppendUint32(nil, req), vuVersion), uint32(len(payload)))
	msg = append(msg, payload...)
	var oob []byte
	if len(fds) > 0 {
		oob = unix.UnixRights(fds...)
	}
	if err := unix.Sendmsg(fe.fd, msg, oob, nil, unix.MSG_NOSIGNAL); err != nil {
		fe.t.Fatalf("sending request %d: %v\nserver:\n%s", req, err, fe.out.String())
	}
}

// barrier sends GET_FEATURES and reads its reply: the backend has handled
// every earlier message and is alive.
func (fe *vuFrontEnd) barrier(when string) {
	fe.t.Helper()
	fe.send(vuGetFeatures, nil)
	reply := make([]byte, vuHeaderSize+8)
	for got := 0; got < len(reply); {
		n, err := unix.Read(fe.fd, reply[got:])
		if errors.Is(err, unix.EINTR) {
			continue
		}
		if n <= 0 {
			fe.t.Fatalf("%s: no GET_FEATURES reply (%d, %v): the connection was refused or the server died\nserver:\n%s", when, n, err, fe.out.String())
		}
		got += n
	}
	if vuOrder.Uint32(reply) != vuGetFeatures || vuOrder.Uint32(reply[4:]) != vuVersion|vuReply {
		fe.t.Fatalf("%s: reply header %x", when, reply[:vuHeaderSize])
	}
}

// publishInit makes a FUSE INIT request available on the request ring.
func (fe *vuFrontEnd) publishInit() {
	fe.t.Helper()
	fe.unique++
	// A well-formed request: the attacks here are on the vhost-user
	// protocol and the rings, never on the FUSE bytes.
	req := fusetest.Request(fuse.OpInit, fe.unique, 0, fuse.InitIn{Major: 7, Minor: 37})
	fe.drv.TakeUsed()
	p, err := fe.drv.AddChain(virtiotest.R(req), virtiotest.W(256))
	vuMust(fe.t, err)
	fe.lastHead = p.Head
	fe.drv.Publish()
}

func (fe *vuFrontEnd) kickRing() {
	fe.t.Helper()
	_, err := unix.Write(fe.kick, u64(1))
	vuMust(fe.t, err)
}

// waitUsed waits (bounded) for the last published request's used element
// and returns its length.
func (fe *vuFrontEnd) waitUsed(what string) uint32 {
	fe.t.Helper()
	for deadline := time.Now().Add(30 * time.Second); time.Now().Before(deadline); time.Sleep(2 * time.Millisecond) {
		for _, u := range fe.drv.TakeUsed() {
			if u.ID == uint32(fe.lastHead) {
				return u.Len
			}
		}
	}
	fe.t.Fatalf("%s: request not answered within 30 s\nserver:\n%s", what, fe.out.String())
	return 0
}

// initRoundTrip sends FUSE INIT and checks the reply.
func (fe *vuFrontEnd) initRoundTrip(what string) {
	fe.t.Helper()
	fe.publishInit()
	fe.kickRing()
	if n := fe.waitUsed(what); n <= uint32(fuse.OutHeaderSize) {
		fe.t.Fatalf("%s: INIT reply of %d bytes\nserver:\n%s", what, n, fe.out.String())
	}
}

func (fe *vuFrontEnd) close() {
	for _, fd := range []*int{&fe.fd, &fe.memfd, &fe.kick, &fe.call} {
		if *fd >= 0 {
			unix.Close(*fd)
			*fd = -1
		}
	}
	if fe.ram != nil {
		unix.Munmap(fe.ram)
		fe.ram = nil
	}
}
