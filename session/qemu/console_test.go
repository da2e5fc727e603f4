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
// (sets O_NONBLOCK on the open file description, here on a real pty) is
// undone on krunbench's copy of that description, which is the same one.
// The flood tests show the effect with a real QEMU.
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
	fd := out.Fd()
	done := make(chan struct{})
	stopped := make(chan struct{})
	go func() {
		keepBlocking(fd, done)
		close(stopped)
	}()
	defer func() { close(done); <-stopped }()
	// "QEMU" sets it through another fd of the same description.
	other, err := unix.Dup(int(fd))
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(other)
	if err := unix.SetNonblock(other, true); err != nil {
		t.Fatal(err)
	}
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(time.Millisecond) {
		flags, err := unix.FcntlInt(fd, unix.F_GETFL, 0)
		if err != nil {
			t.Fatal(err)
		}
		if flags&unix.O_NONBLOCK == 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatal("O_NONBLOCK still set 30 s after it was set")
		}
	}
}
