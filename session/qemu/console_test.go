package qemu

import (
	"os"
	"syscall"
	"testing"
	"time"

	"github.com/creack/pty"
	"golang.org/x/sys/unix"
)

// TestKeepBlockingUndoesNonblock: what QEMU does to its chardev output
// and to its ports' sockets (sets O_NONBLOCK on the open file
// description, here on a real pty and a real socketpair) is undone on
// krunbench's copies of those descriptions, which are the same ones, by
// the one goroutine that watches them all; and again when it is set a
// second time, after the first clearing. The flood tests show the effect
// with a real QEMU.
func TestKeepBlockingUndoesNonblock(t *testing.T) {
	master, slave, err := pty.Open()
	if err != nil {
		t.Skipf("SKIPPED: no pty: %v", err)
	}
	defer master.Close()
	defer slave.Close()
	out, err := os.OpenFile(slave.Name(), os.O_WRONLY|syscall.O_NOCTTY, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer out.Close()
	pair, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(pair[0])
	defer unix.Close(pair[1])
	fds := []uintptr{out.Fd(), uintptr(pair[0])}
	done := make(chan struct{})
	stopped := make(chan struct{})
	go func() {
		keepBlocking(fds, done)
		close(stopped)
	}()
	defer func() { close(done); <-stopped }()
	// "QEMU" sets it through other fds of the same descriptions.
	setNonblockElsewhere := func(fd uintptr) {
		t.Helper()
		other, err := unix.Dup(int(fd))
		if err != nil {
			t.Fatal(err)
		}
		defer unix.Close(other)
		if err := unix.SetNonblock(other, true); err != nil {
			t.Fatal(err)
		}
	}
	waitBlocking := func(fd uintptr) {
		t.Helper()
		for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(time.Millisecond) {
			flags, err := unix.FcntlInt(fd, unix.F_GETFL, 0)
			if err != nil {
				t.Fatal(err)
			}
			if flags&unix.O_NONBLOCK == 0 {
				return
			}
			if time.Now().After(deadline) {
				t.Fatalf("O_NONBLOCK still set on fd %d 30 s after it was set", fd)
			}
		}
	}
	for _, fd := range fds {
		setNonblockElsewhere(fd)
	}
	for _, fd := range fds {
		waitBlocking(fd)
	}
	setNonblockElsewhere(fds[1])
	waitBlocking(fds[1])
}
