package virtio_test

import (
	"errors"
	"strings"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/krunbench/krunbench/vmm/virtio"
	"github.com/krunbench/krunbench/vmm/virtio/virtiotest"
)

// memfdDriver returns a mock driver whose RAM is a shared mapping of a
// memfd, as a vhost-user front-end shares guest RAM, and the memfd.
func memfdDriver(t *testing.T, size uint64) (*virtiotest.Driver, int) {
	t.Helper()
	fd, err := unix.MemfdCreate("guest-ram", unix.MFD_CLOEXEC)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { unix.Close(fd) })
	if err := unix.Ftruncate(fd, int64(size)); err != nil {
		t.Fatal(err)
	}
	ram, err := unix.Mmap(fd, 0, int(size), unix.PROT_READ|unix.PROT_WRITE, unix.MAP_SHARED)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { unix.Munmap(ram) })
	d := virtiotest.New(virtiotest.Config{QueueSize: 8, MemSize: size})
	d.RAM = ram
	if d.Mem, err = virtio.NewMemory(virtio.Region{GPA: d.Base, Data: ram}); err != nil {
		t.Fatal(err)
	}
	return d, fd
}

// TestShrunkMemoryBreaksQueue: guest RAM whose file is truncated under the
// mapping makes the next ring access fault; the queue reports it as broken
// instead of the process dying of SIGBUS.
func TestShrunkMemoryBreaksQueue(t *testing.T) {
	d, fd := memfdDriver(t, 64<<10)
	q := d.Queue()
	if _, err := d.AddChain(virtiotest.R([]byte("x")), virtiotest.W(8)); err != nil {
		t.Fatal(err)
	}
	d.Publish()
	if err := unix.Ftruncate(fd, 0); err != nil {
		t.Fatal(err)
	}
	c, err := q.Pop(d.Mem)
	if c != nil || !errors.Is(err, virtio.ErrBroken) || !q.Broken() || !strings.Contains(err.Error(), "fault") {
		t.Fatalf("Pop on shrunk memory = %v, %v (broken %v); want a broken queue naming the fault", c, err, q.Broken())
	}
	if _, err := q.NeedsNotification(d.Mem); !errors.Is(err, virtio.ErrBroken) {
		t.Fatalf("NeedsNotification afterwards = %v", err)
	}
}

// TestGuardFaults: a read of shrunk memory inside GuardFaults is an error
// wrapping ErrMemoryFault; the goroutine goes on.
func TestGuardFaults(t *testing.T) {
	d, fd := memfdDriver(t, 64<<10)
	if err := unix.Ftruncate(fd, 4096); err != nil {
		t.Fatal(err)
	}
	var sum byte
	err := virtio.GuardFaults(func() {
		for _, b := range d.RAM[8192:8200] {
			sum += b
		}
	})
	if !errors.Is(err, virtio.ErrMemoryFault) {
		t.Fatalf("GuardFaults = %v, want ErrMemoryFault", err)
	}
	if err := virtio.GuardFaults(func() { sum += d.RAM[100] }); err != nil {
		t.Fatalf("a read of memory still backed: %v", err)
	}
}
