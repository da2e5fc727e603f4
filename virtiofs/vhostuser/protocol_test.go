package vhostuser

import (
	"context"
	"errors"
	"net"
	"os"
	"path/filepath"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/krunbench/krunbench/vmm/virtio"
	"github.com/krunbench/krunbench/vmm/virtio/virtiotest"
)

// waitFor polls cond for up to 10 s.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); !cond(); {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// openFds lists the process's open fds and what they refer to.
func openFds(t *testing.T) map[string]string {
	es, err := os.ReadDir("/proc/self/fd")
	must(t, err)
	fds := map[string]string{}
	for _, e := range es {
		fds[e.Name()], _ = os.Readlink("/proc/self/fd/" + e.Name())
	}
	return fds
}

// TestQEMUSequence replays what QEMU 7.2 sends for a vhost-user-fs device
// across two guest lifetimes on two sequential connections: handshake,
// driver start, requests through kick -> device -> used ring -> call fd,
// power-off with GET_VRING_BASE waiting for a request in flight; a third
// connection while one is served is refused; nothing leaks.
func TestQEMUSequence(t *testing.T) {
	// Warm up the runtime's network poller so that its fds are not
	// counted as leaks.
	warm, err := net.ListenUnix("unix", &net.UnixAddr{Name: filepath.Join(t.TempDir(), "warm"), Net: "unix"})
	must(t, err)
	warm.Close()
	baseline := openFds(t)

	dev := &echoDevice{delay: 100 * time.Millisecond}
	b := NewBackend(dev, Options{Log: testLogger(t), BusyWait: 200 * time.Millisecond})
	t.Cleanup(func() { b.Close() })
	path := filepath.Join(t.TempDir(), "vfs.sock")
	ctx, cancel := context.WithCancel(context.Background())
	served := make(chan error, 1)
	go func() { served <- b.ListenAndServe(ctx, path) }()
	waitFor(t, "the socket", func() bool { _, err := os.Stat(path); return err == nil })

	for round := 1; round <= 2; round++ {
		fe := dialFrontEnd(t, path)
		fe.handshake()
		fe.start()
		fe.roundTrip(0, "hello hiprio")
		for range 3 {
			fe.roundTrip(1, "hello request")
		}
		var fl int
		if fl, err = unix.FcntlInt(uintptr(fe.kick[1]), unix.F_GETFL, 0); err != nil || fl&unix.O_NONBLOCK == 0 {
			t.Fatalf("kick fd flags %#x (%v): O_NONBLOCK was cleared", fl, err)
		}
		if round == 2 {
			other := dialFrontEnd(t, path)
			other.expectClosed()
			other.close()
		}

		// A request in flight when the guest powers off: GET_VRING_BASE
		// must answer only once it is on the used ring.
		d := fe.drivers[1]
		p, err := d.AddChain(virtiotest.R([]byte("late")), virtiotest.W(64))
		must(t, err)
		d.Publish()
		_, err = unix.Write(fe.kick[1], u64Bytes(1))
		must(t, err)
		waitFor(t, "the device to pop the late request", func() bool { return dev.poppedCount() == 5*round })
		if bases := fe.stop(); bases != [2]uint32{1, 4} {
			t.Fatalf("GET_VRING_BASE returned %v, want [1 4]", bases)
		}
		if used := d.TakeUsed(); len(used) != 1 || used[0].ID != uint32(p.Head) || used[0].Len != 4 {
			t.Fatalf("after GET_VRING_BASE the used ring holds %+v, want the late request", used)
		}
		fe.hangUp()
		if round == 1 {
			// Reconnect at once, while the first session may still be
			// tearing down: the new connection waits instead of being
			// refused.
			fe.close()
			continue
		}
		waitFor(t, "the device reset after hang-up", func() bool { _, r := dev.counts(); return r >= 2*round })
		if a, _ := dev.counts(); a != round {
			t.Fatalf("round %d: %d activations", round, a)
		}
		fe.close()
	}

	cancel()
	if err := <-served; !errors.Is(err, context.Canceled) {
		t.Fatalf("ListenAndServe returned %v", err)
	}
	if _, err := os.Stat(path); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("socket file left behind: %v", err)
	}
	b.Close()
	after := openFds(t)
	for deadline := time.Now().Add(2 * time.Second); len(after) > len(baseline) && time.Now().Before(deadline); {
		time.Sleep(20 * time.Millisecond)
		after = openFds(t)
	}
	if len(after) > len(baseline) {
		t.Fatalf("fds open after the backend closed: %v; before: %v", after, baseline)
	}
}

// TestActivationWaitsForEveryRing: with PROTOCOL_FEATURES the device starts
// only once every configured ring is enabled.
func TestActivationWaitsForEveryRing(t *testing.T) {
	b, dev := echoBackend(t, Options{Log: testLogger(t)})
	fe, _ := pairFrontEnd(t, b)
	fe.handshake()
	fe.send(reqSetFeatures, 0, u64Bytes(1<<virtio.FeatureVersion1|1<<FeatureProtocolFeatures))
	fe.mustAck(reqAddMemReg, lowRegion(), fe.memfd)
	fe.mustAck(reqAddMemReg, highRegion(), fe.memfd)
	for i, d := range fe.drivers {
		fe.send(reqSetVringNum, 0, state(uint32(i), ringSize))
		fe.send(reqSetVringAddr, 0, addrPayload(uint32(i), user(d.Desc), user(d.Used), user(d.Avail)))
		fe.setVringFd(reqSetVringKick, i, &fe.kick[i])
	}
	fe.send(reqSetVringEnable, 0, state(0, 1))
	fe.getU64(reqGetQueueNum) // a barrier: the messages before were handled
	if a, _ := dev.counts(); a != 0 {
		t.Fatalf("activated with ring 1 still disabled")
	}
	fe.mustAck(reqSetVringEnable, state(1, 1))
	if a, _ := dev.counts(); a != 1 {
		t.Fatalf("%d activations once both rings were enabled", a)
	}
	fe.roundTrip(1, "both enabled")

	// A replaced kick fd is polled from then on.
	fe.setVringFd(reqSetVringKick, 1, &fe.kick[1])
	fe.roundTrip(1, "new kick fd")

	// Disabled rings are not polled; re-enabling delivers the kick.
	fe.mustAck(reqSetVringEnable, state(1, 0))
	d := fe.drivers[1]
	_, err := d.AddChain(virtiotest.R([]byte("queued")), virtiotest.W(64))
	must(t, err)
	d.Publish()
	_, err = unix.Write(fe.kick[1], u64Bytes(1))
	must(t, err)
	time.Sleep(50 * time.Millisecond)
	if n := d.UsedIdx(); n != 2 {
		t.Fatalf("a disabled ring was served: used idx %d", n)
	}
	fe.mustAck(reqSetVringEnable, state(1, 1))
	fe.waitCall(1)
	if used := d.TakeUsed(); len(used) != 1 || used[0].Len != 6 {
		t.Fatalf("after re-enabling: used %+v", used)
	}

	// Guest memory changing under a running device: reset and restarted.
	fe.mustAck(reqRemMemReg, lowRegion())
	fe.mustAck(reqAddMemReg, lowRegion(), fe.memfd)
	if a, r := dev.counts(); a != 3 || r != 2 {
		t.Fatalf("after a memory change: %d activations, %d resets; want 3, 2", a, r)
	}
	fe.roundTrip(1, "after memory change")
	fe.roundTrip(0, "hiprio")
}

// TestWithoutProtocolFeatures: rings start with their kick fd, and a ring
// starting after activation restarts the device.
func TestWithoutProtocolFeatures(t *testing.T) {
	b, dev := echoBackend(t, Options{Log: testLogger(t)})
	fe, _ := pairFrontEnd(t, b)
	fe.send(reqSetOwner, 0, nil)
	fe.send(reqSetFeatures, 0, u64Bytes(1<<virtio.FeatureVersion1))
	regions := make([]byte, sizeMemTableHd+2*sizeMemRegion)
	ne.PutUint32(regions, 2)
	copy(regions[sizeMemTableHd:], lowRegion()[8:])
	copy(regions[sizeMemTableHd+sizeMemRegion:], highRegion()[8:])
	fe.send(reqSetMemTable, 0, regions, fe.memfd, fe.memfd)
	for i, d := range fe.drivers {
		fe.setVringFd(reqSetVringCall, i, &fe.call[i])
		fe.send(reqSetVringNum, 0, state(uint32(i), ringSize))
		fe.send(reqSetVringAddr, 0, addrPayload(uint32(i), user(d.Desc), user(d.Used), user(d.Avail)))
		fe.setVringFd(reqSetVringKick, i, &fe.kick[i])
	}
	fe.getU64(reqGetQueueNum)
	if a, r := dev.counts(); a != 2 || r != 1 {
		t.Fatalf("%d activations, %d resets; want 2, 1", a, r)
	}
	fe.roundTrip(0, "zero")
	fe.roundTrip(1, "one")
	if bases := fe.stop(); bases != [2]uint32{1, 1} {
		t.Fatalf("bases %v", bases)
	}
}

// TestConfigAndBusy covers GET_CONFIG and a second ServeConn while one
// connection is served.
func TestConfigAndBusy(t *testing.T) {
	b, _ := echoBackend(t, Options{Log: testLogger(t)})
	fe, done := pairFrontEnd(t, b)
	cfg := configMsg{offset: 4, size: 8, data: make([]byte, 8)}
	p := fe.get(reqGetConfig, cfg.bytes())
	if want := append([]byte{4, 0, 0, 0, 8, 0, 0, 0, 0, 0, 0, 0}, "-cfg\x00\x00\x00\x00"...); string(p) != string(want) {
		t.Fatalf("GET_CONFIG reply %q, want %q", p, want)
	}
	fe.mustAck(reqSetConfig, cfg.bytes())

	_, done2 := pairFrontEnd(t, b)
	if err := <-done2; !errors.Is(err, ErrBusy) {
		t.Fatalf("second ServeConn: %v, want ErrBusy", err)
	}
	fe.hangUp()
	if err := <-done; err != nil {
		t.Fatalf("ServeConn after hang-up: %v", err)
	}
	b.Close()
	if _, done3 := pairFrontEnd(t, b); !errors.Is(<-done3, ErrClosed) {
		t.Fatal("ServeConn after Close did not fail with ErrClosed")
	}
}
