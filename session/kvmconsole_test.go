package session

import (
	"bytes"
	"errors"
	"io"
	"os"
	"syscall"
	"testing"
	"time"

	"github.com/creack/pty"

	"github.com/krunbench/krunbench/session/terminal"
)

// TestPollableConsoleSlaveEndsOutput is the kvm engine's console pty without
// KVM (a real pty): a reader blocked on the slave (the console's input
// loop), output written to the slave, then the slave closed. The
// session's reader of the master must get every byte and then the end of
// output. With the slave as a blocking file (before pollable), the close
// waited for the pending read, the slave stayed open, and the master's
// reader never saw the end: every kvm run waited out the session's
// timeout for the console's last bytes.
func TestPollableConsoleSlaveEndsOutput(t *testing.T) {
	master, rawSlave, err := pty.Open()
	if err != nil {
		t.Skipf("SKIPPED: no pty: %v", err)
	}
	defer master.Close()
	if _, err := terminal.MakeRaw(int(rawSlave.Fd())); err != nil {
		t.Fatal(err)
	}
	slave, err := pollable(rawSlave)
	if err != nil {
		t.Fatal(err)
	}
	readerDone := make(chan struct{})
	go func() { // the console's input loop: nothing is typed
		defer close(readerDone)
		_, _ = slave.Read(make([]byte, 64))
	}()
	want := bytes.Repeat([]byte("0123456789abcdef"), 64<<10) // 1 MiB, more than the pty holds
	got := make(chan []byte, 1)
	go func() {
		b, err := io.ReadAll(master)
		var errno syscall.Errno
		if err != nil && !(errors.As(err, &errno) && errno == syscall.EIO) && !errors.Is(err, os.ErrClosed) {
			t.Errorf("master: %v", err)
		}
		got <- b
	}()
	if _, err := slave.Write(want); err != nil {
		t.Fatal(err)
	}
	slave.Close()
	select {
	case b := <-got:
		if !bytes.Equal(b, want) {
			t.Fatalf("master read %d bytes, want the %d written", len(b), len(want))
		}
	case <-time.After(30 * time.Second):
		t.Fatal("no end of output on the master 30 s after the slave was closed")
	}
	select {
	case <-readerDone:
	case <-time.After(30 * time.Second):
		t.Fatal("the slave's reader still blocked 30 s after Close")
	}
}
