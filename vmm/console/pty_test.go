package console_test

import (
	"bytes"
	"testing"

	"github.com/creack/pty"
	"golang.org/x/sys/unix"

	"github.com/krunbench/krunbench/vmm/console"
)

// makeRaw puts the terminal into raw mode (cfmakeraw), so that bytes pass
// the line discipline unchanged in both directions.
func makeRaw(t *testing.T, fd int) {
	t.Helper()
	tio, err := unix.IoctlGetTermios(fd, unix.TCGETS)
	if err != nil {
		t.Fatal(err)
	}
	tio.Iflag &^= unix.IGNBRK | unix.BRKINT | unix.PARMRK | unix.ISTRIP | unix.INLCR | unix.IGNCR | unix.ICRNL | unix.IXON
	tio.Oflag &^= unix.OPOST
	tio.Lflag &^= unix.ECHO | unix.ECHONL | unix.ICANON | unix.ISIG | unix.IEXTEN
	tio.Cflag &^= unix.CSIZE | unix.PARENB
	tio.Cflag |= unix.CS8
	tio.Cc[unix.VMIN], tio.Cc[unix.VTIME] = 1, 0
	if err := unix.IoctlSetTermios(fd, unix.TCSETS, tio); err != nil {
		t.Fatal(err)
	}
}

// TestPtyHost binds port 0 to the master side of a real pty, as krunbench
// does for the user's terminal: what a program writes on the slave side
// arrives in the guest's receive buffers, and the guest's output can be
// read on the slave side. The pty's size reaches the guest as RESIZE.
func TestPtyHost(t *testing.T) {
	master, slave, err := pty.Open()
	if err != nil {
		t.Skipf("no pty: %v", err)
	}
	defer master.Close()
	defer slave.Close()
	makeRaw(t, int(slave.Fd()))
	if err := pty.Setsize(slave, &pty.Winsize{Cols: 91, Rows: 37}); err != nil {
		t.Fatal(err)
	}

	g := newGuest(t, console.Options{Ports: []console.Port{{Console: true, Host: master}, idlePort}}, multiFeatures)
	ws, err := pty.GetsizeFull(slave)
	if err != nil {
		t.Fatal(err)
	}
	g.con.Resize(ws.Cols, ws.Rows)
	msgs := g.handshake(2, []int{3, 2})[0]
	if m := msgs[2]; m.Event != console.EventResize || !bytes.Equal(m.Payload, size(true, 91, 37)) {
		t.Fatalf("resize from the pty: %s", describe(msgs))
	}
	g.sendCtrl(0, console.EventPortOpen, 1)

	typed := []byte("ls -l\r\x03\x1b[A")
	if _, err := slave.Write(typed); err != nil {
		t.Fatal(err)
	}
	if got := g.receive(0, len(typed), 4, 8); !bytes.Equal(got, typed) {
		t.Fatalf("guest received %q, want %q", got, typed)
	}

	out := []byte("total 0\r\n$ ")
	g.send(txq(0), out)
	if got := readN(t, slave, len(out)); !bytes.Equal(got, out) {
		t.Fatalf("terminal received %q", got)
	}
}
